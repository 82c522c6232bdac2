package main

import (
	"fmt"
	"io"
	"os"
	"strings"
	"sync"
	"time"

	"golang.org/x/term"

	"mailplane/projections/ldap"
)

// progressBar shows a rebuild's progress on stderr: a bar redrawn in place on a terminal, else a
// plain line every few seconds and at the end of each phase (for logs).
type progressBar struct {
	w        io.Writer
	terminal bool
	width    int

	mu    sync.Mutex
	last  time.Time
	drawn bool
}

func newProgressBar(w io.Writer) *progressBar {
	p := &progressBar{w: w, width: 80, last: time.Now()}
	if f, ok := w.(*os.File); ok && term.IsTerminal(int(f.Fd())) {
		p.terminal = true
		if cols, _, err := term.GetSize(int(f.Fd())); err == nil && cols > 40 {
			p.width = cols
		}
	}
	return p
}

// phaseUnits names what each phase counts.
var phaseUnits = map[string]string{
	ldap.PhaseFold: "events", ldap.PhaseRead: "entries read", ldap.PhaseWrite: "operations", ldap.PhaseLDIF: "entries", ldap.PhaseLoad: "entries loaded",
}

func (p *progressBar) update(pr ldap.Progress) {
	p.draw("ldap rebuild: "+fmt.Sprintf("%-5s", pr.Phase), phaseUnits[pr.Phase], pr.Done, pr.Total, pr.Elapsed, pr.Final)
}

// draw shows done of total (total 0: not known yet) units, with the rate and an estimate.
func (p *progressBar) draw(label, unit string, done, total int, elapsed time.Duration, final bool) {
	p.mu.Lock()
	defer p.mu.Unlock()
	every := 100 * time.Millisecond
	if !p.terminal {
		every = 5 * time.Second
	}
	if !final && time.Since(p.last) < every {
		return
	}
	p.last = time.Now()
	rate := 0.0
	if s := elapsed.Seconds(); s > 0 {
		rate = float64(done) / s
	}
	status := fmt.Sprintf("%s %s", thousands(done), unit)
	eta := ""
	if total > 0 {
		status = fmt.Sprintf("%s/%s %s", thousands(done), thousands(total), unit)
		if rate > 0 && !final {
			eta = " ETA " + time.Duration(float64(total-done)/rate*float64(time.Second)).Round(time.Second).String()
		}
	}
	line := fmt.Sprintf("%s %s, %s/s%s", label, status, thousands(int(rate)), eta)
	if final {
		line += fmt.Sprintf(" (%.1fs)", elapsed.Seconds())
	}
	if !p.terminal {
		fmt.Fprintln(p.w, line)
		return
	}
	if total > 0 {
		n := p.width - len(line) - 4
		if n > 10 {
			n = min(n, 40)
			full := n * min(done, total) / total
			line = "[" + strings.Repeat("#", full) + strings.Repeat("-", n-full) + "] " + line
		}
	}
	fmt.Fprintf(p.w, "\r\033[K%s", line)
	p.drawn = true
	if final {
		fmt.Fprintln(p.w)
		p.drawn = false
	}
}

// clear ends a bar left half drawn (before other output).
func (p *progressBar) clear() {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.drawn {
		fmt.Fprintln(p.w)
		p.drawn = false
	}
}
