package ldap

import (
	"context"
	"errors"
	"fmt"
	"net"
	"slices"
	"strconv"
	"strings"
	"time"

	goldap "github.com/go-ldap/ldap/v3"

	"mailplane/eventstore"
)

// Config says which directory the projection writes, as whom, and under which base.
type Config struct {
	URL      string
	BindDN   string
	Password string
	DIT      DIT
	// Timeout bounds each directory operation (default 10s).
	Timeout time.Duration
}

// Directory is a connection to the directory the projection writes.
type Directory struct {
	cfg  Config
	conn *goldap.Conn
}

// errConflict means a transaction failed because the directory did not hold what the projection
// remembered; see dataConflict.
var errConflict = errors.New("ldap: the directory differs from what the projection wrote")

// Dial connects and binds.
func Dial(ctx context.Context, cfg Config) (*Directory, error) {
	if cfg.Timeout <= 0 {
		cfg.Timeout = 10 * time.Second
	}
	dialer := goldap.DialWithDialer(&net.Dialer{Timeout: cfg.Timeout})
	conn, err := goldap.DialURL(cfg.URL, dialer)
	if err != nil {
		return nil, fmt.Errorf("ldap: dial %s: %w", cfg.URL, err)
	}
	conn.SetTimeout(cfg.Timeout)
	if err := conn.Bind(cfg.BindDN, cfg.Password); err != nil {
		conn.Close()
		return nil, fmt.Errorf("ldap: bind as %s: %w", cfg.BindDN, err)
	}
	return &Directory{cfg: cfg, conn: conn}, nil
}

// Close ends the connection.
func (d *Directory) Close() { _ = d.conn.Close() }

// Ensure creates the base (when it is an organisational unit that is missing), the subtrees
// the projection owns and the checkpoint entry, so that the projection can start on an empty
// directory or an empty test subtree.
func (d *Directory) Ensure(projection string) error {
	dit := d.cfg.DIT
	if rdn, _, ok := strings.Cut(dit.Base, ","); ok && strings.HasPrefix(strings.ToLower(rdn), "ou=") {
		if err := d.addIfMissing(dit.Base, []string{"organizationalUnit"}, map[string][]string{"ou": {rdn[3:]}}); err != nil {
			return err
		}
	}
	for _, ou := range append(append([]string{}, OwnedOUs...), OUProjections) {
		if err := d.addIfMissing(dit.OU(ou), []string{"organizationalUnit"}, map[string][]string{"ou": {ou}}); err != nil {
			return err
		}
	}
	for _, ou := range OwnedOUs {
		if err := d.addIfMissing(dit.Keeper(ou), []string{"organizationalRole"}, keeperAttrs); err != nil {
			return err
		}
	}
	return d.addIfMissing(dit.Checkpoint(projection), []string{"mailplaneProjection"}, map[string][]string{"cn": {projection}})
}

func (d *Directory) addIfMissing(dn string, classes []string, attrs map[string][]string) error {
	r := goldap.NewAddRequest(dn, nil)
	r.Attribute("objectClass", classes)
	for k, v := range attrs {
		r.Attribute(k, v)
	}
	if err := d.conn.Add(r); err != nil && !goldap.IsErrorWithCode(err, goldap.LDAPResultEntryAlreadyExists) {
		return fmt.Errorf("ldap: add %s: %w", dn, err)
	}
	return nil
}

// Checkpoint reads the position stored in the projection's checkpoint entry (zero: none yet).
func (d *Directory) Checkpoint(projection string) (eventstore.Position, error) {
	res, err := d.conn.Search(goldap.NewSearchRequest(d.cfg.DIT.Checkpoint(projection), goldap.ScopeBaseObject,
		goldap.NeverDerefAliases, 1, 0, false, "(objectClass=*)", []string{"mailplaneCheckpoint"}, nil))
	if goldap.IsErrorWithCode(err, goldap.LDAPResultNoSuchObject) {
		return eventstore.Position{}, nil
	}
	if err != nil {
		return eventstore.Position{}, fmt.Errorf("ldap: read checkpoint: %w", err)
	}
	if len(res.Entries) == 0 {
		return eventstore.Position{}, nil
	}
	return parsePosition(res.Entries[0].GetAttributeValue("mailplaneCheckpoint"))
}

func formatPosition(p eventstore.Position) string {
	return strconv.FormatUint(p.TransactionID, 10) + ":" + strconv.FormatInt(p.Position, 10)
}

func parsePosition(s string) (eventstore.Position, error) {
	if s == "" {
		return eventstore.Position{}, nil
	}
	tx, pos, ok := strings.Cut(s, ":")
	t, err1 := strconv.ParseUint(tx, 10, 64)
	p, err2 := strconv.ParseInt(pos, 10, 64)
	if !ok || err1 != nil || err2 != nil {
		return eventstore.Position{}, fmt.Errorf("ldap: checkpoint %q is not transaction:position", s)
	}
	return eventstore.Position{TransactionID: t, Position: p}, nil
}

// Passwords turns an entry's sealed secret into the userPassword value slapd verifies binds
// with ("" leaves the attribute out).
type Passwords func(ctx context.Context, sealed string) (string, error)

// errFenced means the checkpoint was not where the writer read it: another process moved it (this
// one lost the projection's lock without noticing yet). Nothing of the transaction applied.
var errFenced = errors.New("ldap: the checkpoint moved under this writer: another process runs the projection")

// Write applies the changes and moves the checkpoint from "from" to pos, in one RFC 5805
// transaction: the directory and its position never disagree, whatever fails in between. The
// checkpoint's change asserts that it still holds "from" (errFenced otherwise). A transaction
// the directory refused because it did not hold what the projection remembered returns
// errConflict (see Reconcile).
func (d *Directory) Write(ctx context.Context, projection string, changes []Change, from, pos eventstore.Position, passwords Passwords) error {
	// An entry whose structural class changes (a list turned dynamic) is deleted first, on its
	// own: slapd refuses the delete and the add of one entry in one transaction. Should the
	// transaction then fail, the entry is missing until the batch is written again, which adds it.
	changes = slices.Clone(changes)
	for i, c := range changes {
		if !c.Reclass {
			continue
		}
		if err := d.conn.Del(goldap.NewDelRequest(c.DN, nil)); err != nil && !goldap.IsErrorWithCode(err, goldap.LDAPResultNoSuchObject) {
			return fmt.Errorf("ldap: %s: %w", c.DN, err)
		}
		changes[i].Existed, changes[i].Reclass = false, false
	}
	t, err := startTxn(d.conn)
	if err != nil {
		return err
	}
	abort := func(err error) error {
		_ = t.end(false)
		return err
	}
	if err := d.send(ctx, t, changes, passwords); err != nil {
		return abort(err)
	}
	filter := "(!(mailplaneCheckpoint=*))"
	if from != (eventstore.Position{}) {
		filter = "(mailplaneCheckpoint=" + goldap.EscapeFilter(formatPosition(from)) + ")"
	}
	assert, err := newAssertion(filter)
	if err != nil {
		return abort(err)
	}
	cp := goldap.NewModifyRequest(d.cfg.DIT.Checkpoint(projection), append([]goldap.Control{assert}, t.controls...))
	cp.Replace("mailplaneCheckpoint", []string{formatPosition(pos)})
	if err := d.conn.Modify(cp); err != nil {
		return abort(fmt.Errorf("ldap: checkpoint: %w", err))
	}
	// slapd 2.5.13 crashes (a segfault, about one transaction in a few hundred) when the end
	// arrives while the worker thread of the transaction's last operation is still finishing
	// it, which it does after answering. Back to back, transactions crashed it within 1,000
	// here; with 1 ms before each end, 3,000 went through with both cores busy (0.2 ms: not).
	// slapd applies the whole transaction at its end, some 0.3 ms a change (3 s for the 10,000
	// entries a COS change rewrites): far longer than one operation. Cut off at the operation's
	// timeout, the outcome is unknown and the projection reconnects, meets its own writes,
	// reconciles and is fenced by its own checkpoint, every step one more transaction; so the end
	// is given a minute and more per change.
	d.conn.SetTimeout(max(d.cfg.Timeout, time.Minute) + time.Duration(len(changes))*10*time.Millisecond)
	err = t.end(true)
	d.conn.SetTimeout(d.cfg.Timeout)
	if err != nil {
		switch {
		case goldap.IsErrorWithCode(err, goldap.LDAPResultAssertionFailed):
			return fmt.Errorf("%w: %w", errFenced, err)
		case dataConflict(err):
			return fmt.Errorf("%w: %w", errConflict, err)
		}
		return err
	}
	return nil
}

// send queues the changes in the transaction, pipelined (a batch's changes are of distinct
// entries, none below another). The passwords are opened first, one by one.
func (d *Directory) send(ctx context.Context, t *txn, changes []Change, passwords Passwords) error {
	ops := make([]func() error, len(changes))
	for i, c := range changes {
		switch {
		case c.New == nil:
			r := goldap.NewDelRequest(c.DN, t.controls)
			ops[i] = func() error { return d.conn.Del(r) }
		default:
			var pw string
			if c.New.Secret != "" && passwords != nil {
				var err error
				if pw, err = passwords(ctx, c.New.Secret); err != nil {
					return err
				}
			}
			if c.Existed {
				r := c.New.modifyRequest(c.kind, pw, t.controls)
				ops[i] = func() error { return d.conn.Modify(r) }
			} else {
				r := c.New.addRequest(pw, t.controls)
				ops[i] = func() error { return d.conn.Add(r) }
			}
		}
	}
	return pipeline(len(ops), func(i int) error {
		if err := ops[i](); err != nil {
			return fmt.Errorf("ldap: %s: %w", changes[i].DN, err)
		}
		return nil
	})
}

// Reconcile sets each change's Existed from what the directory really holds, and drops deletes
// of entries that are not there, so that a Write of the result succeeds whatever the directory
// held before.
func (d *Directory) Reconcile(changes []Change) ([]Change, error) {
	out := changes[:0:0]
	for _, c := range changes {
		exists, err := d.exists(c.DN)
		if err != nil {
			return nil, err
		}
		if c.New == nil && !exists {
			continue
		}
		c.Existed = exists
		out = append(out, c)
	}
	return out, nil
}

func (d *Directory) exists(dn string) (bool, error) {
	_, err := d.conn.Search(goldap.NewSearchRequest(dn, goldap.ScopeBaseObject, goldap.NeverDerefAliases, 1, 0, false,
		"(objectClass=*)", []string{"1.1"}, nil))
	switch {
	case goldap.IsErrorWithCode(err, goldap.LDAPResultNoSuchObject):
		return false, nil
	case err != nil:
		return false, fmt.Errorf("ldap: read %s: %w", dn, err)
	}
	return true, nil
}
