package workers

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"net"
	"net/url"
	"strings"
	"time"

	"github.com/go-ldap/ldap/v3"
	"github.com/riverqueue/river"

	"mailplane/commands"
	"mailplane/domain"
	"mailplane/eventstore"
)

// ResyncGALArgs resyncs a domain's GAL from its external directory. Unique per domain while
// queued or running (the `river:"unique"` field): a second request meanwhile gets that job.
type ResyncGALArgs struct {
	Domain  string `json:"domain" river:"unique"`
	Trigger string `json:"trigger"`
}

// Kind implements river.JobArgs.
func (ResyncGALArgs) Kind() string { return "resync_gal" }

// ResyncGALAttempts bounds the attempts of one resync. Each failed attempt is recorded in
// last_sync; River tries again after 1 s and 16 s, and then the schedule takes over.
const ResyncGALAttempts = 3

// GALPageSize is how many entries one page of the external directory's paged search holds.
const GALPageSize = 500

// galAttributes are what a resync reads of each external entry.
var galAttributes = []string{"mail", "displayName", "cn", "givenName", "sn"}

// ResyncGALWorker reads the whole external directory with simple paged results (RFC 2696),
// then lets RecordGALSync apply the difference and record the outcome. A directory that cannot
// be read is recorded as a failure; the entries of the last good resync stay.
type ResyncGALWorker struct {
	river.WorkerDefaults[ResyncGALArgs]
	Commands *commands.Service
	// Pool is where the job's progress is recorded.
	Pool eventstore.DBTX
	// TLS is the client configuration for ldaps:// and StartTLS (nil: the system's roots);
	// ServerName is set per source.
	TLS *tls.Config
	// PageSize overrides GALPageSize (tests use small pages to see several).
	PageSize uint32
}

// Timeout implements river.Worker: a directory of a million entries still reads in minutes.
func (w *ResyncGALWorker) Timeout(*river.Job[ResyncGALArgs]) time.Duration { return 15 * time.Minute }

// Work implements river.Worker.
func (w *ResyncGALWorker) Work(ctx context.Context, job *river.Job[ResyncGALArgs]) error {
	g, _, err := w.Commands.GAL(ctx, job.Args.Domain)
	if errors.Is(err, domain.ErrNotFound) {
		return nil // deleted meanwhile: nothing to sync
	}
	if err != nil {
		return err
	}
	if g.External == nil {
		return nil
	}
	trigger := job.Args.Trigger
	if trigger == "" {
		trigger = commands.GALTriggerSchedule
	}
	started := time.Now()
	entries, pages, fetchErr := w.fetch(ctx, g)
	if fetchErr == nil && w.Pool != nil {
		// Progress is for the operator's eyes only: a failure to record it is no failure of the resync.
		_ = SetProgress(ctx, w.Pool, job.ID, int64(len(entries)), int64(len(entries)))
	}
	_, _, err = w.Commands.RecordGALSync(ctx, job.Args.Domain, commands.GALSyncReport{Entries: entries, Pages: pages,
		Err: fetchErr, StartedAt: started, Trigger: trigger})
	if err != nil {
		return err
	}
	if fetchErr != nil {
		// Recorded; the job fails too, so that its errors show it and River tries again.
		return fmt.Errorf("GAL resync of %s: %w", job.Args.Domain, fetchErr)
	}
	return nil
}

// fetch reads every entry of the source below its search base that matches its filter, and
// says in how many pages.
func (w *ResyncGALWorker) fetch(ctx context.Context, g domain.GAL) ([]commands.ExternalEntry, int, error) {
	src := g.External
	timeout := time.Duration(src.TimeoutSeconds) * time.Second
	if timeout <= 0 {
		timeout = domain.DefaultGALTimeoutSeconds * time.Second
	}
	tc := &tls.Config{MinVersion: tls.VersionTLS12}
	if w.TLS != nil {
		tc = w.TLS.Clone()
	}
	if u, err := url.Parse(src.LDAPURL); err == nil {
		tc.ServerName = u.Hostname()
	}
	conn, err := ldap.DialURL(src.LDAPURL, ldap.DialWithDialer(&net.Dialer{Timeout: timeout}), ldap.DialWithTLSConfig(tc))
	if err != nil {
		return nil, 0, fmt.Errorf("connect to %s: %w", src.LDAPURL, err)
	}
	defer conn.Close()
	conn.SetTimeout(timeout)
	if src.StartTLS {
		if err := conn.StartTLS(tc); err != nil {
			return nil, 0, fmt.Errorf("StartTLS with %s: %w", src.LDAPURL, err)
		}
	}
	if src.BindDN != "" {
		pw, err := w.Commands.GALBindPassword(ctx, g)
		if err != nil {
			return nil, 0, err
		}
		if pw == "" {
			// An empty password would make it an anonymous bind that "succeeds".
			return nil, 0, fmt.Errorf("bind as %s: no bind password is set", src.BindDN)
		}
		if err := conn.Bind(src.BindDN, pw); err != nil {
			return nil, 0, fmt.Errorf("bind as %s: %w", src.BindDN, err)
		}
	}
	size := w.PageSize
	if size == 0 {
		size = GALPageSize
	}
	paging := ldap.NewControlPaging(size)
	req := ldap.NewSearchRequest(src.SearchBase, ldap.ScopeWholeSubtree, ldap.NeverDerefAliases, 0,
		int(timeout.Seconds()), false, src.SearchFilter, galAttributes, []ldap.Control{paging})
	var out []commands.ExternalEntry
	pages := 0
	for {
		if err := ctx.Err(); err != nil {
			return nil, 0, err
		}
		res, err := conn.Search(req)
		pages++
		if err != nil {
			return nil, 0, fmt.Errorf("search %s: %w", src.SearchBase, err)
		}
		for _, e := range res.Entries {
			if x, ok := externalEntry(e); ok {
				out = append(out, x)
			}
		}
		ctrl, ok := ldap.FindControl(res.Controls, ldap.ControlTypePaging).(*ldap.ControlPaging)
		if !ok || len(ctrl.Cookie) == 0 {
			return out, pages, nil
		}
		paging.SetCookie(ctrl.Cookie)
	}
}

// externalEntry reads an entry's address and names; an entry without mail is no address-book
// entry.
func externalEntry(e *ldap.Entry) (commands.ExternalEntry, bool) {
	mail := strings.TrimSpace(e.GetAttributeValue("mail"))
	if mail == "" {
		return commands.ExternalEntry{}, false
	}
	cn, given, sn := e.GetAttributeValue("cn"), e.GetAttributeValue("givenName"), e.GetAttributeValue("sn")
	display := strings.TrimSpace(e.GetAttributeValue("displayName"))
	if display == "" {
		display = strings.TrimSpace(cn)
	}
	if display == "" {
		display = strings.TrimSpace(given + " " + sn)
	}
	var names []string
	for _, n := range []string{cn, given, sn} {
		if n = strings.TrimSpace(n); n != "" {
			names = append(names, n)
		}
	}
	return commands.ExternalEntry{Address: mail, DisplayName: display, Names: names}, true
}
