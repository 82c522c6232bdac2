package domain

import (
	"fmt"
	"math/bits"
	"time"
)

// MaxUsageReports bounds one POST /api/v1/usage batch: one upsert of this many rows stays well
// under a second, and a mail store with more mailboxes sends several batches.
const MaxUsageReports = 10_000

// UsageReport is one mailbox's size as the mail store measured it. Usage is a measurement, not
// an administrator's decision: it is kept in a table beside the read models (mailbox_usage),
// never in the event stream. Only the warnings it causes are events.
type UsageReport struct {
	Address   Address
	UsedBytes int64
}

// RawUsageReport is a report as a client sent it.
type RawUsageReport struct {
	Address   string
	UsedBytes int64
}

// ParseUsageReports checks a batch: 1 to MaxUsageReports reports, each a valid address (stored
// lower-case, its domain in A-labels) and a size from 0 to MaxNumber, no address twice (which of
// two sizes would be the truth?). Any bad report refuses the whole batch, naming each bad one
// as reports[i].field (the first few; then a count), so that nothing is half written.
func ParseUsageReports(in []RawUsageReport) ([]UsageReport, error) {
	var fe fieldErrors
	switch {
	case len(in) == 0:
		return nil, Invalid("reports", "at least one report is required")
	case len(in) > MaxUsageReports:
		return nil, Invalid("reports", fmt.Sprintf("at most %d reports per request (got %d): send several batches", MaxUsageReports, len(in)))
	}
	var p addressParser
	out := make([]UsageReport, 0, len(in))
	seen := make(map[Address]int, len(in))
	bad := 0
	report := func(field, msg string) {
		bad++
		if bad <= maxReportedPerField {
			fe.add(field, msg)
		}
	}
	for i, r := range in {
		a, msg := p.parse(r.Address)
		if msg != "" {
			report(fmt.Sprintf("reports[%d].address", i), msg)
		} else if j, dup := seen[a]; dup {
			report(fmt.Sprintf("reports[%d].address", i), fmt.Sprintf("reported twice (also reports[%d])", j))
		} else {
			seen[a] = i
		}
		if msg := checkNonNegative(r.UsedBytes); msg != "" {
			report(fmt.Sprintf("reports[%d].used_bytes", i), msg)
		}
		out = append(out, UsageReport{Address: a, UsedBytes: r.UsedBytes})
	}
	if bad > maxReportedPerField {
		fe.add("reports", fmt.Sprintf("%d more invalid reports not listed", bad-maxReportedPerField))
	}
	if err := fe.err(); err != nil {
		return nil, err
	}
	return out, nil
}

// Quota warning scopes: one account's mailbox, or a domain's total.
const (
	QuotaScopeAccount = "account"
	QuotaScopeDomain  = "domain"
)

// QuotaCrossing is usage going from under an effective warning line to at or over it (a report
// that grew, or a limit lowered under the usage). Crossing numbers the crossings of one mailbox
// (or domain) since its usage was first reported: the warning for crossing n is sent once.
type QuotaCrossing struct {
	Scope       string // QuotaScopeAccount or QuotaScopeDomain
	Name        string // the account's address, or the domain's name
	Domain      string
	Crossing    int64
	UsedBytes   int64
	LimitBytes  int64
	WarnPercent int
}

// OverWarnLine reports whether used is at or over warnPercent of limit. A limit of 0 (no limit)
// or a warning percent of 0 (no warnings) never is. The usage upsert computes the same in SQL
// (projections/postgres usage.go); a test holds the two together.
func OverWarnLine(used, limit int64, warnPercent int) bool {
	if limit <= 0 || warnPercent <= 0 {
		return false
	}
	// In 128 bits: used×100 overflows int64 beyond 92 PB, which MaxNumber keeps out anyway.
	hiU, loU := bits.Mul64(uint64(max(used, 0)), 100)
	hiL, loL := bits.Mul64(uint64(limit), uint64(warnPercent))
	return hiU > hiL || hiU == hiL && loU >= loL
}

// QuotaWarningSent records a quota warning e-mail queued for a crossing, on the account's
// stream (scope account) or the domain's (scope domain). The mail itself is a send_email job
// queued in the same transaction; its delivery is recorded as MailSent with Cause.
type QuotaWarningSent struct {
	Scope       string    `json:"scope"`
	Name        string    `json:"name"`
	Crossing    int64     `json:"crossing"`
	UsedBytes   int64     `json:"used_bytes"`
	LimitBytes  int64     `json:"limit_bytes"`
	WarnPercent int       `json:"warn_percent"`
	To          []string  `json:"to"`
	Cause       string    `json:"cause"`
	At          time.Time `json:"at"`
}

// EventType implements Event.
func (QuotaWarningSent) EventType() string { return "QuotaWarningSent" }

// QuotaWarnings is what an account's or a domain's stream says about its quota warnings: the
// last crossing warned of. Aggregates' Evolve ignore QuotaWarningSent; this folds it. Crossing
// numbers only grow for an address, across a deletion and a new account there too (the usage
// row keeps its count), so the last one warned of is never reached again.
type QuotaWarnings struct {
	LastCrossing int64
}

// Evolve applies one event; others leave q unchanged.
func (q QuotaWarnings) Evolve(e Event) QuotaWarnings {
	if ev, ok := e.(QuotaWarningSent); ok {
		q.LastCrossing = max(q.LastCrossing, ev.Crossing)
	}
	return q
}

// SendQuotaWarning records the warning for a crossing. To are its recipients, chosen by the
// caller; Cause names the mail.
type SendQuotaWarning struct {
	Crossing QuotaCrossing
	To       []string
	Cause    string
	At       time.Time
}

// Decide returns the event to append: none when the crossing was warned of already (a retried
// job) or when nobody is to be warned. The caller checks that the object still exists.
func (q QuotaWarnings) Decide(c SendQuotaWarning) ([]Event, error) {
	if c.Crossing.Crossing <= q.LastCrossing || len(c.To) == 0 {
		return nil, nil
	}
	x := c.Crossing
	return []Event{QuotaWarningSent{Scope: x.Scope, Name: x.Name, Crossing: x.Crossing, UsedBytes: x.UsedBytes,
		LimitBytes: x.LimitBytes, WarnPercent: x.WarnPercent, To: c.To, Cause: c.Cause, At: c.At.UTC()}}, nil
}
