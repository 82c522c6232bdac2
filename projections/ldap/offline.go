package ldap

import (
	"bufio"
	"context"
	"encoding/base64"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"time"

	goldap "github.com/go-ldap/ldap/v3"

	"mailplane/eventstore"
	"mailplane/projections"
)

// OfflineSummary is what an offline rebuild wrote.
type OfflineSummary struct {
	// Head is the position the LDIF holds the directory at (its checkpoint entry).
	Head   eventstore.Position
	Events int
	// Entries counts the entries computed from the events; Kept, those copied from the
	// directory (its base, the units, ou=services, other projections' checkpoints).
	Entries, Kept int
	// Bytes is the LDIF's size.
	Bytes int64
	// Loaded says whether the load ran (and succeeded).
	Loaded bool
	// Stop: as for RebuildSummary.
	Stop *projections.Stop
	// Fold, Write and Load are the phases' durations.
	Fold, Write, Load time.Duration
}

// RebuildOffline writes the whole database the directory's base is the suffix of, computed
// from the events, as LDIF into path, for slapadd: the base entry and everything outside the
// owned subtrees as the directory holds it now (ou=services and its readers, other checkpoints),
// the owned units, the entries the events call for (passwords opened), and the checkpoint entry
// at the head. The directory must answer (what is outside the owned subtrees is read from it),
// and its base must be the database's suffix: slapadd replaces a database whole.
//
// Then, when load is set, it runs load(ctx, path) still holding the projection's lock, so that
// no process writes the directory between the computation and the swap of the database (load
// is what runs slapadd into a fresh database folder and swaps it in: scripts/ldap-load.sh).
// The file is written to path+".tmp" and renamed once complete.
func RebuildOffline(ctx context.Context, o RebuildOptions, path string, load func(ctx context.Context, path string) error) (*OfflineSummary, error) {
	if err := o.setDefaults(); err != nil {
		return nil, err
	}
	unlock, err := lockProjection(ctx, o.Pool)
	if err != nil {
		return nil, err
	}
	defer unlock()

	model, f, err := foldToHead(ctx, o)
	if err != nil {
		return nil, err
	}
	sum := &OfflineSummary{Head: f.head, Events: f.events, Stop: f.stop, Fold: f.took}
	t0 := time.Now()
	dir, err := Dial(ctx, o.Directory)
	if err != nil {
		return nil, fmt.Errorf("%w (the offline rebuild copies the entries outside the owned subtrees from the running directory)", err)
	}
	kept, err := dir.readKept()
	dir.Close()
	if err != nil {
		return nil, err
	}
	entries, err := openEntries(ctx, o, model.Entries())
	if err != nil {
		return nil, err
	}
	sum.Entries, sum.Kept = len(entries), len(kept)
	if sum.Bytes, err = writeLDIF(o, path, kept, entries, f.head); err != nil {
		return nil, err
	}
	sum.Write = time.Since(t0)
	o.Logger.Info("ldap rebuild: wrote the LDIF", "path", path, "entries", sum.Entries, "kept", sum.Kept, "bytes", sum.Bytes, "took", sum.Write)
	if load == nil {
		return sum, nil
	}
	t0 = time.Now()
	if err := load(ctx, path); err != nil {
		return sum, fmt.Errorf("ldap: loading %s: %w", path, err)
	}
	sum.Load, sum.Loaded = time.Since(t0), true
	if o.Progress != nil {
		o.Progress(Progress{Phase: PhaseLoad, Done: sum.Entries + sum.Kept, Total: sum.Entries + sum.Kept, Elapsed: sum.Load, Final: true})
	}
	if err := projections.MirrorCheckpoint(ctx, o.Pool, Name, f.head); err != nil {
		return sum, err
	}
	return sum, nil
}

// ldifEntry is an entry as the LDIF writes it: attributes in order, objectClass first.
type ldifEntry struct {
	dn    string
	attrs []ldifAttr
}

type ldifAttr struct {
	name   string
	values []string
}

// readKept reads what the offline rebuild copies: the base entry (the database's suffix), its
// children, and the subtrees of those that are not owned, but for this projection's checkpoint.
func (d *Directory) readKept() ([]ldifEntry, error) {
	base := d.cfg.DIT.Base
	res, err := d.conn.Search(goldap.NewSearchRequest("", goldap.ScopeBaseObject, goldap.NeverDerefAliases, 0, 0, false,
		"(objectClass=*)", []string{"namingContexts"}, nil))
	if err != nil {
		return nil, fmt.Errorf("ldap: read the root DSE: %w", err)
	}
	var contexts []string
	if len(res.Entries) == 1 {
		contexts = res.Entries[0].GetAttributeValues("namingContexts")
	}
	if !slices.ContainsFunc(contexts, func(nc string) bool { return dnKey(nc) == dnKey(base) }) {
		return nil, fmt.Errorf("ldap: the offline rebuild replaces a whole database, and %s is not a database's suffix (namingContexts: %s): rebuild online instead",
			base, strings.Join(contexts, "; "))
	}
	owned := map[string]bool{}
	for _, ou := range OwnedOUs {
		owned[dnKey(d.cfg.DIT.OU(ou))] = true
	}
	checkpoint := dnKey(d.cfg.DIT.Checkpoint(Name))
	var out []ldifEntry
	keep := func(e *goldap.Entry) {
		if dnKey(e.DN) == checkpoint {
			return
		}
		le := ldifEntry{dn: e.DN}
		var classes *goldap.EntryAttribute
		for _, a := range e.Attributes {
			if strings.EqualFold(a.Name, "objectClass") {
				classes = a
				continue
			}
			le.attrs = append(le.attrs, ldifAttr{a.Name, a.Values})
		}
		if classes != nil {
			le.attrs = append([]ldifAttr{{"objectClass", classes.Values}}, le.attrs...)
		}
		out = append(out, le)
	}
	if err := d.pagedSearch(base, goldap.ScopeBaseObject, []string{"*"}, keep); err != nil {
		return nil, err
	}
	if len(out) == 0 {
		return nil, fmt.Errorf("ldap: the directory has no entry %s (the base; scripts/stack.sh up makes it)", base)
	}
	var children []*goldap.Entry
	if err := d.pagedSearch(base, goldap.ScopeSingleLevel, []string{"*"}, func(e *goldap.Entry) { children = append(children, e) }); err != nil {
		return nil, err
	}
	seen := map[string]bool{}
	for _, c := range children {
		k := dnKey(c.DN)
		seen[k] = true
		if owned[k] {
			keep(c)
			continue
		}
		if err := d.pagedSearch(c.DN, goldap.ScopeWholeSubtree, []string{"*"}, keep); err != nil {
			return nil, err
		}
	}
	for _, ou := range append(slices.Clone(OwnedOUs), OUProjections) {
		if dn := d.cfg.DIT.OU(ou); !seen[dnKey(dn)] {
			out = append(out, ldifEntry{dn: dn, attrs: []ldifAttr{{"objectClass", []string{"organizationalUnit"}}, {"ou", []string{ou}}}})
		}
	}
	for _, ou := range OwnedOUs {
		if dn := d.cfg.DIT.Keeper(ou); !seen[dnKey(dn)] {
			out = append(out, ldifEntry{dn: dn, attrs: []ldifAttr{{"objectClass", []string{"organizationalRole"}},
				{"cn", keeperAttrs["cn"]}, {"description", keeperAttrs["description"]}}})
		}
	}
	// Parents before children, as slapadd needs them.
	slices.SortStableFunc(out, func(a, b ldifEntry) int { return depth(a.dn) - depth(b.dn) })
	return out, nil
}

// writeLDIF writes the kept entries, the checkpoint entry and the computed ones into path.
func writeLDIF(o RebuildOptions, path string, kept []ldifEntry, entries []wanted, head eventstore.Position) (int64, error) {
	t0 := time.Now()
	tmp := path + ".tmp"
	f, err := os.OpenFile(tmp, os.O_CREATE|os.O_TRUNC|os.O_WRONLY, 0o600) // it holds password hashes
	if err != nil {
		return 0, fmt.Errorf("ldap: %w", err)
	}
	defer func() {
		f.Close()
		_ = os.Remove(tmp)
	}()
	w := bufio.NewWriterSize(f, 1<<20)
	fmt.Fprintf(w, "# mailplane rebuild ldap --offline: the directory at position %s, %s\n", formatPosition(head), time.Now().UTC().Format(time.RFC3339))
	fmt.Fprintf(w, "# Load with slapadd -q into a fresh database folder (scripts/ldap-load.sh). It holds password hashes.\n\n")
	cp := ldifEntry{dn: o.Directory.DIT.Checkpoint(Name), attrs: []ldifAttr{{"objectClass", []string{"mailplaneProjection"}},
		{"cn", []string{Name}}, {"mailplaneCheckpoint", []string{formatPosition(head)}}}}
	total := len(kept) + 1 + len(entries)
	done := 0
	progress := func(final bool) {
		if o.Progress != nil {
			o.Progress(Progress{Phase: PhaseLDIF, Done: done, Total: total, Elapsed: time.Since(t0), Final: final})
		}
	}
	// The base and the units first, then what is below them.
	for _, e := range kept {
		if depth(e.dn) <= depth(o.Directory.DIT.Base)+1 {
			writeEntry(w, e)
			done++
		}
	}
	for _, e := range kept {
		if depth(e.dn) > depth(o.Directory.DIT.Base)+1 {
			writeEntry(w, e)
			done++
		}
	}
	writeEntry(w, cp)
	done++
	for i, e := range entries {
		le := ldifEntry{dn: e.DN, attrs: []ldifAttr{{"objectClass", e.Classes}}}
		names := make([]string, 0, len(e.Attrs))
		for n := range e.Attrs {
			names = append(names, n)
		}
		slices.Sort(names)
		for _, n := range names {
			le.attrs = append(le.attrs, ldifAttr{n, e.Attrs[n]})
		}
		if e.password != "" {
			le.attrs = append(le.attrs, ldifAttr{"userPassword", []string{e.password}})
		}
		writeEntry(w, le)
		done++
		if i%5000 == 4999 {
			progress(false)
		}
	}
	if err := w.Flush(); err != nil {
		return 0, fmt.Errorf("ldap: writing %s: %w", tmp, err)
	}
	if err := f.Sync(); err != nil {
		return 0, fmt.Errorf("ldap: %w", err)
	}
	size, err := f.Seek(0, 1)
	if err != nil {
		return 0, err
	}
	if err := f.Close(); err != nil {
		return 0, fmt.Errorf("ldap: %w", err)
	}
	if err := os.Rename(tmp, path); err != nil {
		return 0, fmt.Errorf("ldap: %w", err)
	}
	if d, err := os.Open(filepath.Dir(path)); err == nil {
		_ = d.Sync()
		d.Close()
	}
	progress(true)
	return size, nil
}

// writeEntry writes one LDIF record (RFC 2849), values that are not safe strings in base64.
func writeEntry(w *bufio.Writer, e ldifEntry) {
	writeLine(w, "dn", e.dn)
	for _, a := range e.attrs {
		for _, v := range a.values {
			writeLine(w, a.name, v)
		}
	}
	w.WriteByte('\n')
}

func writeLine(w *bufio.Writer, name, value string) {
	w.WriteString(name)
	if safeString(value) {
		w.WriteString(": ")
		w.WriteString(value)
	} else {
		w.WriteString(":: ")
		w.WriteString(base64.StdEncoding.EncodeToString([]byte(value)))
	}
	w.WriteByte('\n')
}

// safeString reports whether an LDIF value may be written as it is (RFC 2849 SAFE-STRING, and
// no trailing space, which readers may strip).
func safeString(v string) bool {
	if v == "" {
		return true
	}
	switch v[0] {
	case ' ', ':', '<':
		return false
	}
	if v[len(v)-1] == ' ' {
		return false
	}
	for i := 0; i < len(v); i++ {
		if c := v[i]; c == 0 || c == '\n' || c == '\r' || c >= 0x80 {
			return false
		}
	}
	return true
}
