package main

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"time"
)

var domainCommand = group("domain", []action{
	{"create", "NAME [--description D] [--time-zone TZ] [--public-protocol http|https] [--spam-relay-host H] " +
		"[--default-cos C] [--status S] [--max-accounts N] [--account-quota BYTES] [--domain-quota BYTES] [--warn-percent P]", domainCreate},
	{"list", "[--q Q] [--status S] [--limit N] [--cursor C] [--all] [--json]", domainList},
	{"show", "NAME [--as-of TIME] [--json]", objectShow("domains", "domain")},
	{"history", "NAME " + historySynopsis, domainHistory},
	{"close", "NAME  (objects kept; logins, binds and delivery refused; reopen with the status)", domainClose},
	{"delete", "NAME --yes [--no-wait] [--json]  (removes the domain and everything in it; without --yes, shows what it would take)", domainDelete},
	{"quota", "NAME [--limit N] [--cursor C] [--all] [--json]  (accounts by percent of quota used)", domainQuota},
})

func domainClose(ctx context.Context, o *cmdline, args []string) error {
	pos, err := o.parse(args, 1, 1)
	if err != nil {
		return err
	}
	return o.send(ctx, http.MethodPost, "/domains/"+seg(pos[0])+"/close", nil)
}

// domainDelete removes a domain: it asks for --yes after showing what would go, then starts the
// removal job and follows it with a progress bar until it ends.
func domainDelete(ctx context.Context, o *cmdline, args []string) error {
	yes := o.fs.Bool("yes", false, "really remove the domain and everything in it")
	noWait := o.fs.Bool("no-wait", false, "print the job and return at once instead of following it")
	pos, err := o.parse(args, 1, 1)
	if err != nil {
		return err
	}
	c, err := o.client()
	if err != nil {
		return err
	}
	name := pos[0]
	if !*yes {
		r, err := c.do(ctx, http.MethodGet, "/domains/"+seg(name)+"/deletion-preview", url.Values{"limit": {"1"}}, nil)
		if err != nil {
			return err
		}
		var pv struct {
			Counts map[string]int `json:"counts"`
		}
		if err := json.Unmarshal(r.body, &pv); err != nil {
			return fmt.Errorf("deletion preview: %w", err)
		}
		fmt.Fprintf(o.e.stderr, "removing %s would take %d accounts, %d lists, %d resources, %d aliases, %d virtual hosts and %d certificates\n"+
			"(mailplane domain delete %s --yes to remove it; 'GET /api/v1/domains/%s/deletion-preview' lists them)\n",
			name, pv.Counts["accounts"], pv.Counts["lists"], pv.Counts["resources"], pv.Counts["aliases"],
			pv.Counts["virtual_hosts"], pv.Counts["certificates"], name, name)
		return exitCode(1)
	}
	r, err := c.do(ctx, http.MethodDelete, "/domains/"+seg(name), nil, nil)
	if err != nil {
		return err
	}
	var accepted struct {
		Job jobView `json:"job"`
	}
	if err := json.Unmarshal(r.body, &accepted); err != nil {
		return fmt.Errorf("delete %s: %w", name, err)
	}
	if *noWait {
		if o.json {
			return printJSON(o.e.stdout, r.body)
		}
		_, err := fmt.Fprintf(o.e.stdout, "removing %s: job %d (follow it at /api/v1/jobs/%d)\n", name, accepted.Job.ID, accepted.Job.ID)
		return err
	}
	job, body, err := followJob(ctx, c, accepted.Job.ID, "removing "+name+":", newProgressBar(o.e.stderr))
	if err != nil {
		return err
	}
	if o.json {
		return printJSON(o.e.stdout, body)
	}
	if job.State != "succeeded" {
		return fmt.Errorf("removing %s: job %d %s: %s", name, job.ID, job.State, strings.Join(job.Errors, "; "))
	}
	_, err = fmt.Fprintf(o.e.stdout, "removed domain %s (%d objects)\n", name, job.Progress.Total)
	return err
}

// jobView is a job as GET /api/v1/jobs/{id} shows it.
type jobView struct {
	ID       int64  `json:"id"`
	Kind     string `json:"kind"`
	State    string `json:"state"`
	Progress struct {
		Done  int `json:"done"`
		Total int `json:"total"`
	} `json:"progress"`
	Errors []string `json:"errors"`
}

// jobPoll is how often followJob asks.
var jobPoll = 250 * time.Millisecond

// followJob asks for the job until it ends, drawing its progress; it returns the last answer.
func followJob(ctx context.Context, c *client, id int64, label string, bar *progressBar) (jobView, []byte, error) {
	start := time.Now()
	for {
		r, err := c.do(ctx, http.MethodGet, "/jobs/"+strconv.FormatInt(id, 10), nil, nil)
		if err != nil {
			bar.clear()
			return jobView{}, nil, err
		}
		var j jobView
		if err := json.Unmarshal(r.body, &j); err != nil {
			bar.clear()
			return j, nil, fmt.Errorf("job %d: %w", id, err)
		}
		final := j.State == "succeeded" || j.State == "failed" || j.State == "cancelled"
		bar.draw(label, "objects", j.Progress.Done, j.Progress.Total, time.Since(start), final)
		if final {
			return j, r.body, nil
		}
		select {
		case <-ctx.Done():
			bar.clear()
			return j, nil, ctx.Err()
		case <-time.After(jobPoll):
		}
	}
}

func domainCreate(ctx context.Context, o *cmdline, args []string) error {
	o.field("description", "description", text, "what the domain is for")
	o.field("time-zone", "time_zone", text, "IANA time zone (default: the global one)")
	o.field("public-protocol", "public_protocol", text, "http or https (default: the global one)")
	o.field("spam-relay-host", "spam_relay_host", text, "spam relay host (default: the global one)")
	o.field("default-cos", "default_cos", text, "COS of accounts without their own (default: the global one)")
	o.field("status", "status", text, "active, maintenance, locked, closed or suspended")
	o.field("max-accounts", "limits.max_accounts", integer, "most accounts the domain may hold (0: no limit)")
	o.field("account-quota", "limits.account_quota_bytes", integer, "mailbox limit of new accounts in bytes (0: no limit)")
	o.field("domain-quota", "limits.domain_quota_bytes", integer, "limit of the whole domain in bytes (0: no limit)")
	o.field("warn-percent", "limits.warn_percent", integer, "usage percent that sends a warning")
	pos, err := o.parse(args, 1, 1)
	if err != nil {
		return err
	}
	o.body["name"] = pos[0]
	return o.send(ctx, http.MethodPost, "/domains", o.body)
}

func domainList(ctx context.Context, o *cmdline, args []string) error {
	l := o.listFlags(true)
	if _, err := o.parse(args, 0, 0); err != nil {
		return err
	}
	return o.list(ctx, "/domains", l, []column{
		{"NAME", "name"}, {"STATUS", "status"}, {"ACCOUNTS", "counts.accounts"},
		{"DEFAULT COS", "effective.default_cos"}, {"DESCRIPTION", "description"},
	})
}

// historySynopsis is the flags every history command takes.
const historySynopsis = "[--type T,...] [--after TIME] [--before TIME] [--actor A] [--ip IP] [--request-id ID] " +
	"[--correlation-id ID] [--session-id ID] [--limit N] [--cursor C] [--all] [--json]"

// domainHistory prints the events of the domain and its objects, oldest first.
func domainHistory(ctx context.Context, o *cmdline, args []string) error {
	return history(ctx, o, args, func(name string) string { return "/domains/" + seg(name) + "/history" })
}

// objectHistory prints one account's, list's or resource's events (kind: accounts, lists,
// resources).
func objectHistory(kind string) func(ctx context.Context, o *cmdline, args []string) error {
	return func(ctx context.Context, o *cmdline, args []string) error {
		return history(ctx, o, args, func(addr string) string { return "/" + kind + "/" + seg(addr) + "/history" })
	}
}

// history lists a history (GET .../history) with its filters.
func history(ctx context.Context, o *cmdline, args []string, path func(string) string) error {
	l := &listOptions{extra: url.Values{}}
	filters := []struct{ flag, param, usage string }{
		{"type", "type", "only these event types (comma-separated)"},
		{"after", "after", "only events recorded after this RFC 3339 time"},
		{"before", "before", "only events recorded before this RFC 3339 time"},
		{"actor", "actor", "only events caused by this actor (an address, or system:...)"},
		{"ip", "ip", "only events of requests from this IP address"},
		{"request-id", "request_id", "only events of the request with this X-Request-Id"},
		{"correlation-id", "correlation_id", "only events of requests with this X-Correlation-Id"},
		{"session-id", "session_id", "only events of requests made with this session's token"},
	}
	values := make([]*string, len(filters))
	for i, f := range filters {
		values[i] = o.fs.String(f.flag, "", f.usage)
	}
	o.fs.IntVar(&l.limit, "limit", 0, "events per page (the API's default is 50, at most 500)")
	o.fs.StringVar(&l.cursor, "cursor", "", "start at this cursor (printed when there are more events)")
	o.fs.BoolVar(&l.all, "all", false, "follow next_cursor and list every page")
	pos, err := o.parse(args, 1, 1)
	if err != nil {
		return err
	}
	for i, f := range filters {
		l.extra.Set(f.param, *values[i])
	}
	return o.list(ctx, path(pos[0]), l, []column{
		{"POSITION", "position"}, {"RECORDED", "recorded_at"}, {"STREAM", "stream"}, {"VERSION", "version"},
		{"TYPE", "type"}, {"ACTOR", "actor"}, {"SESSION", "session_id"},
	})
}
