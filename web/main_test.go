package web_test

import (
	"context"
	"fmt"
	"os"
	"testing"
	"time"

	"github.com/chromedp/chromedp"
)

// browserCtx is one headless Chromium for the package's tests; each test opens its own
// incognito-like browser context in it (a cookie jar of its own).
var browserCtx context.Context

// chromium is Debian's package, which scripts/stack.sh installs: the tests fail without it
// rather than skip, so that CI cannot pass without running them.
func chromium() string {
	if p := os.Getenv("MAILPLANE_CHROMIUM"); p != "" {
		return p
	}
	return "/usr/bin/chromium"
}

func TestMain(m *testing.M) {
	if _, err := os.Stat(chromium()); err != nil {
		fmt.Fprintf(os.Stderr, "web tests: no Chromium at %s (scripts/stack.sh up installs Debian's chromium): %v\n", chromium(), err)
		os.Exit(1)
	}
	dir, err := os.MkdirTemp("", "mailplane-web-chromium-")
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
	opts := append(chromedp.DefaultExecAllocatorOptions[:],
		chromedp.ExecPath(chromium()),
		chromedp.NoSandbox, chromedp.Headless, chromedp.DisableGPU, chromedp.NoFirstRun,
		chromedp.UserDataDir(dir),
		chromedp.Flag("disable-quic", true),
		chromedp.Flag("disable-component-update", true),
		chromedp.WindowSize(1280, 900),
		// Keeps Chromium's singleton dir and crash reports inside the profile dir.
		chromedp.Env("TMPDIR="+dir, "XDG_CONFIG_HOME="+dir),
	)
	allocCtx, allocCancel := chromedp.NewExecAllocator(context.Background(), opts...)
	bctx, bcancel := chromedp.NewContext(allocCtx)
	// No deadline on this context: it owns the browser.
	if err := chromedp.Do(bctx); err != nil {
		fmt.Fprintln(os.Stderr, "web tests: start Chromium:", err)
		os.Exit(1)
	}
	browserCtx = bctx
	code := m.Run()
	cctx, ccancel := context.WithTimeout(bctx, 10*time.Second)
	_ = chromedp.Cancel(cctx)
	ccancel()
	bcancel()
	allocCancel()
	_ = os.RemoveAll(dir)
	os.Exit(code)
}
