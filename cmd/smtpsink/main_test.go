package main

import (
	"context"
	"encoding/json"
	"io"
	"log/slog"
	"net/http"
	"net/smtp"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// startSink runs the sink on free loopback ports until the test ends and
// returns its SMTP address and HTTP base URL.
func startSink(t *testing.T, dir string) (smtpAddr, baseURL string) {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	ready := make(chan [2]string, 1)
	done := make(chan error, 1)
	cfg := config{smtpAddr: "127.0.0.1:0", httpAddr: "127.0.0.1:0", dir: dir, maxBytes: 1 << 20}
	logger := slog.New(slog.NewTextHandler(io.Discard, nil))
	go func() {
		done <- run(ctx, cfg, logger, func(s, h string) { ready <- [2]string{s, h} })
	}()
	t.Cleanup(func() {
		cancel()
		if err := <-done; err != nil {
			t.Errorf("run: %v", err)
		}
	})
	select {
	case addrs := <-ready:
		return addrs[0], "http://" + addrs[1]
	case err := <-done:
		t.Fatalf("run: %v", err)
	case <-time.After(5 * time.Second):
		t.Fatal("sink did not start")
	}
	return "", ""
}

func getMessages(t *testing.T, url string) []Message {
	t.Helper()
	resp, err := http.Get(url)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("GET %s: %s", url, resp.Status)
	}
	var msgs []Message
	if err := json.NewDecoder(resp.Body).Decode(&msgs); err != nil {
		t.Fatal(err)
	}
	return msgs
}

func TestSendAndReadBack(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	smtpAddr, baseURL := startSink(t, dir)

	raw := "From: Mailplane <mailplane@mailplane.test>\r\n" +
		"To: alice@example.test\r\n" +
		"Subject: =?utf-8?q?Quota_warning_=E2=80=93_90=25?=\r\n" +
		"Content-Type: text/plain; charset=utf-8\r\n" +
		"Content-Transfer-Encoding: quoted-printable\r\n" +
		"\r\n" +
		"Your mailbox is 90=25 full.=\r\n" +
		" Clean up soon.\r\n"
	err := smtp.SendMail(smtpAddr, nil, "mailplane@mailplane.test",
		[]string{"alice@example.test", "Bob@Example.test"}, []byte(raw))
	if err != nil {
		t.Fatalf("SendMail: %v", err)
	}
	err = smtp.SendMail(smtpAddr, nil, "mailplane@mailplane.test", []string{"carol@example.test"},
		[]byte("Subject: other\r\n\r\nhello\r\n"))
	if err != nil {
		t.Fatalf("SendMail: %v", err)
	}

	all := getMessages(t, baseURL+"/messages")
	if len(all) != 2 {
		t.Fatalf("got %d messages, want 2", len(all))
	}
	msgs := getMessages(t, baseURL+"/messages?to=bob@example.test")
	if len(msgs) != 1 {
		t.Fatalf("got %d messages for bob, want 1", len(msgs))
	}
	m := msgs[0]
	if m.From != "mailplane@mailplane.test" {
		t.Errorf("from = %q", m.From)
	}
	if strings.Join(m.To, ",") != "alice@example.test,Bob@Example.test" {
		t.Errorf("to = %q", m.To)
	}
	if want := "Quota warning – 90%"; m.Subject != want {
		t.Errorf("subject = %q, want %q", m.Subject, want)
	}
	if got := m.Headers["Content-Type"]; got != "text/plain; charset=utf-8" {
		t.Errorf("Content-Type header = %q", got)
	}
	if want := "Your mailbox is 90% full. Clean up soon.\n"; m.Body != want {
		t.Errorf("body = %q, want %q", m.Body, want)
	}
	if m.ID == "" || time.Since(m.Date) > time.Minute {
		t.Errorf("id %q, date %v", m.ID, m.Date)
	}

	files, err := filepath.Glob(filepath.Join(dir, "*.eml"))
	if err != nil || len(files) != 2 {
		t.Fatalf("eml files = %v, %v; want 2", files, err)
	}
	eml, err := os.ReadFile(files[0])
	if err != nil || !strings.Contains(string(eml), "Content-Transfer-Encoding: quoted-printable") {
		t.Errorf("eml file %s: %v\n%s", files[0], err, eml)
	}

	req, _ := http.NewRequest(http.MethodDelete, baseURL+"/messages", nil)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusNoContent {
		t.Fatalf("DELETE: %s", resp.Status)
	}
	if msgs := getMessages(t, baseURL+"/messages"); len(msgs) != 0 {
		t.Fatalf("after DELETE: %d messages", len(msgs))
	}
}

func TestListenLoopbackOnly(t *testing.T) {
	t.Parallel()
	if ln, err := listenLoopback("0.0.0.0:0"); err == nil {
		ln.Close()
		t.Fatal("listened on 0.0.0.0")
	}
}
