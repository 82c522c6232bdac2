package main

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"net/url"
	"slices"
	"strconv"
	"strings"
	"time"
)

// The mixed mode's usage levels (cmd/loaddriver/mixed.go): a first report at 50% of the quota,
// a second at 90%.
const (
	usageLow = 500_000
	usageHi  = 900_000
)

// checkAll waits for the system to settle (projections caught up, every due job finished), then
// checks everything the package comment lists; s is a process still running.
func (r *run) checkAll(ctx context.Context, res map[string]string, s *server) error {
	token, err := r.login(s)
	if err != nil {
		return err
	}
	t0 := time.Now()
	if err := r.settle(ctx, s, token); err != nil {
		r.problem("did not settle: %v", err)
	}
	r.figure("settle_s", fmt.Sprintf("%.1f", time.Since(t0).Seconds()))
	entries := readJournal(journalPath(r.dir))
	r.figure("journal_lines", len(entries))
	r.checkRemoval(ctx, s, token, res["removal_domain"], res["removal_job"])
	r.checkJobs(ctx)
	// The rest reads the database and the directory alone; rebuild ldap wants no projection
	// running.
	for _, x := range r.servers {
		x.stop()
	}
	r.checkEvents(ctx, entries)
	r.checkUsageAndMail(ctx, entries)
	r.checkVersions(ctx, res["removal_domain"])
	r.checkVerify(ctx)
	r.checkLDAP(ctx)
	return nil
}

func journalPath(dir string) string { return dir + "/journal.tsv" }

// login logs the admin in, waiting while the process answers 503 (its read models catching up
// after a restart).
func (r *run) login(s *server) (string, error) {
	b, _ := json.Marshal(map[string]string{"email": r.admin, "password": r.password})
	var resp *http.Response
	var err error
	for deadline := time.Now().Add(2 * time.Minute); ; {
		resp, err = httpc.Post(s.url()+"/api/v1/auth/login", "application/json", bytes.NewReader(b))
		if err == nil && (resp.StatusCode != http.StatusServiceUnavailable || time.Now().After(deadline)) {
			break
		}
		if err == nil {
			resp.Body.Close()
		} else if time.Now().After(deadline) {
			return "", err
		}
		time.Sleep(250 * time.Millisecond)
	}
	defer resp.Body.Close()
	var out struct {
		Token string `json:"token"`
	}
	if err := json.NewDecoder(resp.Body).Decode(&out); err != nil || out.Token == "" {
		return "", fmt.Errorf("login: HTTP %d", resp.StatusCode)
	}
	return out.Token, nil
}

func authGet(u, token string) (int, []byte, error) {
	req, _ := http.NewRequest(http.MethodGet, u, nil)
	req.Header.Set("Authorization", "Bearer "+token)
	resp, err := httpc.Do(req)
	if err != nil {
		return 0, nil, err
	}
	defer resp.Body.Close()
	var buf bytes.Buffer
	_, err = buf.ReadFrom(resp.Body)
	return resp.StatusCode, buf.Bytes(), err
}

// settle waits until every projection has no lag and no job that is due is left to run.
func (r *run) settle(ctx context.Context, s *server, token string) error {
	var last string
	err := waitFor(ctx, r.o.settle, func() bool {
		code, b, err := authGet(s.url()+"/api/v1/projections", token)
		if err != nil || code != http.StatusOK {
			last = fmt.Sprintf("projections: HTTP %d %v", code, err)
			return false
		}
		var ps []struct {
			Name      string `json:"name"`
			LagEvents int64  `json:"lag_events"`
			State     string `json:"state"`
		}
		if err := json.Unmarshal(b, &ps); err != nil {
			last = err.Error()
			return false
		}
		for _, p := range ps {
			if p.LagEvents > 0 || p.State != "running" {
				last = fmt.Sprintf("projection %s: %s, %d events behind", p.Name, p.State, p.LagEvents)
				return false
			}
		}
		var pending int
		var kinds string
		if err := r.pool.QueryRow(ctx, `SELECT count(*), coalesce(string_agg(DISTINCT kind || ':' || state, ','), '') FROM river_job
			WHERE state NOT IN ('completed', 'cancelled', 'discarded') AND scheduled_at <= now() + interval '3 minutes'`).Scan(&pending, &kinds); err != nil {
			last = err.Error()
			return false
		}
		if pending > 0 {
			last = fmt.Sprintf("%d jobs not finished (%s)", pending, kinds)
			return false
		}
		return true
	})
	if err != nil {
		return fmt.Errorf("%w: %s", err, last)
	}
	return nil
}

// checkRemoval: the removal's job completed and the domain is gone.
func (r *run) checkRemoval(ctx context.Context, s *server, token, dom, job string) {
	if dom == "" {
		r.problem("the driver reported no removal domain")
		return
	}
	var state string
	var n int
	err := r.pool.QueryRow(ctx, `SELECT count(*), coalesce(max(state::text), '') FROM river_job WHERE kind = 'remove_domain' AND args->>'domain' = $1`, dom).Scan(&n, &state)
	switch {
	case err != nil:
		r.problem("removal job of %s: %v", dom, err)
	case n != 1:
		r.problem("%d remove_domain jobs for %s, want 1", n, dom)
	case state != "completed":
		r.problem("the removal job of %s is %s, not completed", dom, state)
	}
	if job != "" {
		var st string
		if err := r.pool.QueryRow(ctx, `SELECT state::text FROM river_job WHERE id = $1`, job).Scan(&st); err != nil || st != "completed" {
			r.problem("removal job %s (the 202's): state %q, %v", job, st, err)
		}
	}
	code, body, err := authGet(s.url()+"/api/v1/domains/"+url.PathEscape(dom), token)
	if err != nil || code != http.StatusNotFound {
		r.problem("GET /domains/%s after its removal: HTTP %d (%v), want 404: %.200s", dom, code, err, body)
	}
	var left int
	if err := r.pool.QueryRow(ctx, `SELECT (SELECT count(*) FROM rm_accounts WHERE domain = $1 AND NOT deleted) + (SELECT count(*) FROM rm_domains WHERE name = $1)`, dom).Scan(&left); err != nil || left != 0 {
		r.problem("after the removal of %s the read model still has %d of its rows (%v)", dom, left, err)
	}
	r.figure("removal", state)
}

// checkJobs: no job of the run was discarded (gave up) or is left running.
func (r *run) checkJobs(ctx context.Context) {
	rows, err := r.pool.Query(ctx, `SELECT kind, state::text, count(*) FROM river_job GROUP BY 1, 2 ORDER BY 1, 2`)
	if err != nil {
		r.problem("river_job: %v", err)
		return
	}
	defer rows.Close()
	var parts []string
	for rows.Next() {
		var kind, state string
		var n int
		if err := rows.Scan(&kind, &state, &n); err != nil {
			r.problem("river_job: %v", err)
			return
		}
		parts = append(parts, fmt.Sprintf("%s:%s:%d", kind, state, n))
		if state == "discarded" || state == "cancelled" {
			r.problem("%d %s jobs %s", n, kind, state)
		}
	}
	r.figure("jobs", strings.Join(parts, ","))
}

// checkEvents compares the journal with the event store, request id by request id.
func (r *run) checkEvents(ctx context.Context, entries []entry) {
	type appended struct {
		types []string
		txs   int
	}
	got := map[string]appended{}
	rows, err := r.pool.Query(ctx, `SELECT metadata->>'request_id', array_agg(event_type ORDER BY position), count(DISTINCT transaction_id)
		FROM events WHERE metadata->>'request_id' LIKE $1 || '%' GROUP BY 1`, r.prefix)
	if err != nil {
		r.problem("events: %v", err)
		return
	}
	for rows.Next() {
		var id string
		var a appended
		if err := rows.Scan(&id, &a.types, &a.txs); err != nil {
			r.problem("events: %v", err)
			rows.Close()
			return
		}
		got[id] = a
	}
	rows.Close()
	sig := func(types []string) string {
		s := slices.Clone(types)
		slices.Sort(s)
		return strings.Join(s, "+")
	}
	// What a 2xx request of each kind appended.
	sigs := map[string]map[string]int{}
	for _, e := range entries {
		if a, ok := got[e.id]; ok && ok2xx(e.status) {
			if sigs[e.kind] == nil {
				sigs[e.kind] = map[string]int{}
			}
			sigs[e.kind][sig(a.types)]++
		}
	}
	// A retry of a command whose unanswered attempt was applied may find nothing left to do
	// (a PATCH setting what is already there answers 200 and appends nothing): it counts as in
	// the store when an earlier attempt of the same command is.
	appliedBefore := map[string]bool{}
	applied := map[string]bool{}
	for _, e := range entries {
		if applied[e.cmd] {
			appliedBefore[e.id] = true
		}
		if _, ok := got[e.id]; ok {
			applied[e.cmd] = true
		}
	}
	var ok, missing, errApplied, noAnswerApplied, noAnswerNone, half int
	for _, e := range entries {
		a, has := got[e.id]
		if has && a.txs != 1 {
			half++
			r.problem("request %s (%s, %s) appended in %d transactions: %v", e.id, e.kind, statusText(e.status), a.txs, a.types)
		}
		switch {
		case ok2xx(e.status) && e.kind == "usage":
			// Usage is stored in mailbox_usage, not as events: checkUsageAndMail.
		case ok2xx(e.status):
			if !has && !appliedBefore[e.id] {
				missing++
				r.problem("request %s (%s %s) was answered %d but has no event", e.id, e.kind, e.target, e.status)
			} else {
				ok++
			}
		case e.status == 409 && appliedBefore[e.id] && !has:
			// The retry of an applied create: the conflict is with itself.
		case e.status != 0:
			if has {
				errApplied++
				r.problem("request %s (%s %s) was answered %d but appended %v", e.id, e.kind, e.target, e.status, a.types)
			}
		default: // no answer: all of it or nothing
			if !has {
				noAnswerNone++
				continue
			}
			noAnswerApplied++
			if sigs[e.kind][sig(a.types)] == 0 {
				half++
				r.problem("request %s (%s %s) got no answer and appended %v, which no answered %s request did (%v): half applied", e.id, e.kind, e.target, a.types, e.kind, keys(sigs[e.kind]))
			}
		}
	}
	for kind, m := range sigs {
		if len(m) > 1 {
			r.logf("answered %s requests appended %d different sets of events: %v", kind, len(m), m)
		}
	}
	r.figure("acked_in_store", ok)
	r.figure("acked_missing", missing)
	r.figure("error_but_applied", errApplied)
	r.figure("no_answer_applied_whole", noAnswerApplied)
	r.figure("no_answer_not_applied", noAnswerNone)
	r.figure("half_applied", half)
}

func statusText(s int) string {
	if s == 0 {
		return "no answer"
	}
	return strconv.Itoa(s)
}

func keys(m map[string]int) []string {
	var out []string
	for k := range m {
		out = append(out, k)
	}
	slices.Sort(out)
	return out
}

// checkUsageAndMail: every answered usage report is stored, every crossing has its warning
// event, and its mail reached the sink exactly once.
func (r *run) checkUsageAndMail(ctx context.Context, entries []entry) {
	acked := map[string]int{}     // address -> usage reports answered 2xx
	laterTry := map[string]bool{} // an unanswered report after the last answered one
	for _, e := range entries {
		if e.kind != "usage" {
			continue
		}
		for _, a := range strings.Split(e.target, ",") {
			if ok2xx(e.status) {
				acked[a]++
				laterTry[a] = false
			} else if e.status == 0 {
				laterTry[a] = true
			}
		}
	}
	used := map[string]int64{}
	crossings := map[string]int{}
	rows, err := r.pool.Query(ctx, `SELECT address, used_bytes, crossings FROM mailbox_usage WHERE domain = $1`, r.domain)
	if err != nil {
		r.problem("mailbox_usage: %v", err)
		return
	}
	for rows.Next() {
		var a string
		var u int64
		var c int
		if err := rows.Scan(&a, &u, &c); err != nil {
			r.problem("mailbox_usage: %v", err)
		}
		used[a], crossings[a] = u, c
	}
	rows.Close()
	for a, n := range acked {
		want := int64(usageLow)
		if n >= 2 {
			want = usageHi
		}
		if got := used[a]; got != want && !(laterTry[a] && got == usageHi) {
			r.problem("usage of %s: %d reports answered 2xx, so %d bytes, but mailbox_usage has %d", a, n, want, got)
		}
	}
	events := map[string]int{}
	rows, err = r.pool.Query(ctx, `SELECT stream_id, count(*) FROM events WHERE event_type = 'QuotaWarningSent' AND domain = $1 GROUP BY 1`, r.domain)
	if err != nil {
		r.problem("QuotaWarningSent: %v", err)
		return
	}
	for rows.Next() {
		var s string
		var n int
		_ = rows.Scan(&s, &n)
		events[strings.TrimPrefix(s, "account-")] = n
	}
	rows.Close()

	msgs, err := r.sinkMessages()
	if err != nil {
		r.problem("SMTP sink: %v", err)
		return
	}
	copies := map[string]int{}
	ids := map[string]map[string]bool{}
	for _, m := range msgs {
		if !strings.HasPrefix(m.Subject, "Mailbox ") {
			continue
		}
		mid := ""
		for k, v := range m.Headers {
			if strings.EqualFold(k, "Message-Id") {
				mid = v
			}
		}
		for _, to := range m.To {
			to = strings.ToLower(strings.Trim(to, "<>"))
			if !strings.HasSuffix(to, "@"+r.domain) {
				continue
			}
			copies[to]++
			if ids[to] == nil {
				ids[to] = map[string]bool{}
			}
			ids[to][mid] = true
		}
	}
	totalCross, totalMail, reported2, resent := 0, 0, 0, 0
	for a, n := range acked {
		if n >= 2 {
			reported2++
		}
		_ = a
	}
	for a, c := range crossings {
		totalCross += c
		if events[a] != c {
			r.problem("%s crossed its warning line %d time(s) but has %d QuotaWarningSent events", a, c, events[a])
		}
		switch {
		case len(ids[a]) != c:
			r.problem("%s crossed its warning line %d time(s): the sink has %d warning mail(s) with %d Message-ID(s)", a, c, copies[a], len(ids[a]))
		case copies[a] != c:
			// Sent, then the process was killed before the job recorded MailSent: the rescued
			// job sends it again under the same Message-ID (workers/send_email.go). SMTP gives
			// no way to ask the relay whether it has the message; recording before sending
			// would lose the mail instead. Still not "exactly once": a problem, named as such,
			// unless -allow-resent-mail accepts at-least-once delivery with a stable Message-ID.
			resent += copies[a] - c
			msg := fmt.Sprintf("%s crossed its warning line %d time(s): %d copies of its %d message(s) reached the sink under the same Message-ID (sent, then killed before MailSent was recorded)", a, c, copies[a], c)
			if r.o.allowResent {
				r.logf("WARNING: %s", msg)
			} else {
				r.problem("%s", msg)
			}
		}
	}
	for a, n := range copies {
		totalMail += n
		if crossings[a] == 0 {
			r.problem("%s got %d warning mail(s) but never crossed its line", a, n)
		}
	}
	if totalCross < reported2 {
		r.problem("%d accounts were reported over their warning line (2xx) but only %d crossings are stored", reported2, totalCross)
	}
	r.figure("warning_crossings", totalCross)
	r.figure("warning_mails", totalMail)
	r.figure("warning_mails_resent_same_message_id", resent)
}

// checkVersions: each read-model row's version equals its stream's event count (nothing skipped
// or applied twice), and every domain, account and list stream has its row.
func (r *run) checkVersions(ctx context.Context, removed string) {
	rows, err := r.pool.Query(ctx, `
		WITH heads AS (SELECT stream_id, stream_type, max(stream_version) AS v, count(*) AS n FROM events GROUP BY 1, 2),
		rm AS (
			SELECT 'domain-' || name AS stream_id, version FROM rm_domains
			UNION ALL SELECT 'account-' || address, version FROM rm_accounts
			UNION ALL SELECT 'list-' || address, version FROM rm_lists)
		SELECT h.stream_id, h.v, h.n, rm.version FROM heads h LEFT JOIN rm USING (stream_id)
		WHERE h.stream_type IN ('domain', 'account', 'list') AND (rm.version IS DISTINCT FROM h.v OR h.n <> h.v)`)
	if err != nil {
		r.problem("versions: %v", err)
		return
	}
	defer rows.Close()
	bad, gone := 0, 0
	for rows.Next() {
		var s string
		var v, n int
		var rv *int
		if err := rows.Scan(&s, &v, &n, &rv); err != nil {
			r.problem("versions: %v", err)
			return
		}
		if rv == nil && removed != "" && (strings.HasSuffix(s, "@"+removed) || s == "domain-"+removed) {
			gone++ // removed with its domain
			continue
		}
		bad++
		if bad <= 20 {
			rvs := "no row"
			if rv != nil {
				rvs = strconv.Itoa(*rv)
			}
			r.problem("stream %s: %d events (head version %d), read model version %s", s, n, v, rvs)
		}
	}
	if bad > 20 {
		r.problem("… %d streams in all whose read model version differs", bad)
	}
	var streams int
	_ = r.pool.QueryRow(ctx, `SELECT count(DISTINCT stream_id) FROM events WHERE stream_type IN ('domain', 'account', 'list')`).Scan(&streams)
	r.figure("streams_checked", streams)
	r.figure("streams_version_mismatch", bad)
}

// checkVerify runs mailplane verify, with --read-models when this build has the flag.
func (r *run) checkVerify(ctx context.Context) {
	help, _ := r.mailplane(ctx, "verify", "--help")
	args := []string{"verify"}
	if bytes.Contains(help, []byte("read-models")) {
		args = append(args, "--read-models")
	} else {
		r.logf("NOTE: this build's mailplane verify has no --read-models: only the hash chains and anchors are verified")
		r.figure("verify_read_models", "absent")
	}
	out, err := r.mailplane(ctx, args...)
	if err != nil {
		r.problem("mailplane %s: %v\n%s", strings.Join(args, " "), err, out)
		return
	}
	r.logf("mailplane %s:\n%s", strings.Join(args, " "), out)
	r.figure("verify", "ok")
}

// checkLDAP: a rebuild of the directory finds nothing to change.
func (r *run) checkLDAP(ctx context.Context) {
	out, err := r.mailplane(ctx, "rebuild", "ldap", "--json")
	if err != nil {
		r.problem("mailplane rebuild ldap: %v\n%s", err, out)
		return
	}
	i := bytes.IndexByte(out, '{')
	var s struct {
		Added, Changed, Deleted, Unchanged int
		AddedExamples                      []string `json:"added_examples"`
		ChangedExamples                    []string `json:"changed_examples"`
		DeletedExamples                    []string `json:"deleted_examples"`
	}
	if i < 0 || json.Unmarshal(out[i:], &s) != nil {
		r.problem("mailplane rebuild ldap --json: no summary in %s", out)
		return
	}
	if d := s.Added + s.Changed + s.Deleted; d != 0 {
		r.problem("rebuild ldap changed the directory: %d added %v, %d changed %v, %d deleted %v", s.Added, s.AddedExamples,
			s.Changed, s.ChangedExamples, s.Deleted, s.DeletedExamples)
	}
	r.figure("ldap_rebuild_changes", s.Added+s.Changed+s.Deleted)
	r.figure("ldap_entries", s.Unchanged)
}
