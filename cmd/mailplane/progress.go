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
	p.mu.Lock()
	defer p.mu.Unlock()
	every := 100 * time.Millisecond
	if !p.terminal {
		every = 5 * time.Second
	}
	if !pr.Final && time.Since(p.last) < every {
		return
	}
	p.last = time.Now()
	unit := phaseUnits[pr.Phase]
	rate := 0.0
	if s := pr.Elapsed.Seconds(); s > 0 {
		rate = float64(pr.Done) / s
	}
	status := fmt.Sprintf("%s %s", thousands(pr.Done), unit)
	eta := ""
	if pr.Total > 0 {
		status = fmt.Sprintf("%s/%s %s", thousands(pr.Done), thousands(pr.Total), unit)
		if rate > 0 && !pr.Final {
			eta = " ETA " + time.Duration(float64(pr.Total-pr.Done)/rate*float64(time.Second)).Round(time.Second).String()
		}
	}
	line := fmt.Sprintf("ldap rebuild: %-5s %s, %s/s%s", pr.Phase, status, thousands(int(rate)), eta)
	if pr.Final {
		line += fmt.Sprintf(" (%.1fs)", pr.Elapsed.Seconds())
	}
	if !p.terminal {
		fmt.Fprintln(p.w, line)
		return
	}
	if pr.Total > 0 {
		n := p.width - len(line) - 4
		if n > 10 {
			n = min(n, 40)
			full := n * min(pr.Done, pr.Total) / pr.Total
			line = "[" + strings.Repeat("#", full) + strings.Repeat("-", n-full) + "] " + line
		}
	}
	fmt.Fprintf(p.w, "\r\033[K%s", line)
	p.drawn = true
	if pr.Final {
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
