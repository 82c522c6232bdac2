package readcheck

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"reflect"
	"slices"
	"strconv"
	"strings"

	"github.com/jackc/pgx/v5"

	"mailplane/projections/postgres"
)

// keySep joins the columns of a composite key, in Go and in SQL (chr(31)): a control character
// no address, host or token holds, and one that sorts the same bytewise on both sides.
const keySep = "\x1f"

// tsSQL renders a timestamptz as tsLayout does (UTC, microseconds: PostgreSQL's precision).
func tsSQL(col string) string {
	return `to_char(` + col + ` AT TIME ZONE 'UTC', 'YYYY-MM-DD"T"HH24:MI:SS.US')`
}

// spec says how to read a table: query selects the key and then the columns as text, {s} being
// the schema; the key is ordered bytewise (COLLATE "C"), as Go sorts the expected rows.
type spec struct {
	projection string
	columns    []string
	// json is the index of the jsonb column compared as JSON (by value, field by field), or -1.
	json  int
	query string
}

type row struct {
	key  string
	cols []value
}

type table struct {
	name     string
	spec     spec
	expected []row
}

func tableSpec(name string) table { return table{name: name, spec: specs[name]} }

// selectSQL builds a spec's query over one table: key is an SQL expression, cols are the
// columns (a timestamptz column's name ends with _at or is not_after; jsonb ones are cast).
func selectSQL(tbl, key, where string, cols []string) string {
	exprs := make([]string, len(cols))
	for i, c := range cols {
		switch {
		case strings.HasSuffix(c, "_at") || strings.HasSuffix(c, "_since") || c == "not_after":
			exprs[i] = tsSQL(c)
		default:
			exprs[i] = c + "::text"
		}
	}
	q := `SELECT (` + key + `) AS k`
	for _, x := range exprs {
		q += ", " + x
	}
	q += ` FROM {s}.` + tbl
	if where != "" {
		q += ` WHERE ` + where
	}
	return q
}

func mkSpec(projection, tbl, key, where string, cols ...string) spec {
	return spec{projection: projection, columns: cols, json: slices.Index(cols, "state"), query: selectSQL(tbl, key, where, cols)}
}

var specs = map[string]spec{
	"rm_config": mkSpec(postgres.AdminName, "rm_config", "id::text", "", "version", "state"),
	"rm_cos":    mkSpec(postgres.AdminName, "rm_cos", "name", "", "version", "deleted", "state", "created_at", "updated_at"),
	"rm_domains": mkSpec(postgres.AdminName, "rm_domains", "name", "", "unicode_name", "description", "status", "default_cos",
		"version", "state", "created_at", "updated_at"),
	"rm_accounts": mkSpec(postgres.AdminName, "rm_accounts", "address", "", "domain", "display_name", "status", "cos",
		"version", "deleted", "state", "created_at", "updated_at"),
	"rm_aliases": mkSpec(postgres.AdminName, "rm_aliases", "alias", "", "target", "kind", "domain"),
	"rm_lists": mkSpec(postgres.AdminName, "rm_lists", "address", "", "domain", "display_name", "dynamic", "hide_in_gal",
		"member_count", "version", "deleted", "state", "created_at", "updated_at"),
	"rm_list_members": mkSpec(postgres.AdminName, "rm_list_members", "list || chr(31) || member", ""),
	"rm_resources": mkSpec(postgres.AdminName, "rm_resources", "address", "", "domain", "display_name", "type",
		"booking_policy", "version", "deleted", "state", "created_at", "updated_at"),
	"rm_virtual_hosts": mkSpec(postgres.AdminName, "rm_virtual_hosts", "domain || chr(31) || host", "", "version", "deleted",
		"state", "source", "not_after", "renewal_due_at", "next_attempt_at", "issuing_since", "created_at", "updated_at"),
	"rm_gal": mkSpec(postgres.AdminName, "rm_gal", "domain", "", "version", "deleted", "state", "has_external",
		"polling_interval_seconds", "last_sync_at", "source_changed_at", "created_at", "updated_at"),
	"rm_tombstones": mkSpec(postgres.AdminName, "rm_tombstones", "stream_id", "", "version"),
	// id is left out: a sequence numbers the entries as they are inserted.
	"gal_entries": mkSpec(postgres.GALEntriesName, "gal_entries", "domain || chr(31) || address", "source = 'internal'",
		"display_name", "kind", "digest"),
	// A token is known by its entry's key (entry_id, the entry's surrogate key, is left out); one
	// whose entry is gone is extra under a key naming the missing entry. Its own domain and
	// address columns must repeat the entry's.
	"gal_tokens": {projection: postgres.GALEntriesName, columns: []string{"domain", "address"}, json: -1,
		query: `SELECT coalesce(e.domain || chr(31) || e.address, '(no entry ' || t.entry_id || ')')
				|| chr(31) || t.weight || chr(31) || t.token AS k, t.domain::text, t.address::text
			FROM {s}.gal_tokens t LEFT JOIN {s}.gal_entries e ON e.id = t.entry_id
			WHERE t.source = 'internal'`},
}

// inSchema puts the schema into a query's {s}.
func inSchema(q, schema string) string {
	return strings.ReplaceAll(q, "{s}", pgx.Identifier{schema}.Sanitize())
}

// compare merges the table, streamed in key order, with the expected rows.
func compare(ctx context.Context, db Querier, schema string, t table) (TableReport, error) {
	tr := TableReport{Table: t.name, Projection: t.spec.projection}
	exists, err := tableExists(ctx, db, schema, t.name)
	if err != nil {
		return tr, err
	}
	if !exists {
		if schema == "public" {
			return tr, fmt.Errorf("readcheck: no table public.%s (are the migrations applied?)", t.name)
		}
		// A shadow schema holds the tables its rebuild makes: one it does not have is not checked.
		tr.Absent = true
		return tr, nil
	}
	// An output column's name cannot take a COLLATE in ORDER BY: order the subquery's.
	q := `SELECT * FROM (` + inSchema(t.spec.query, schema) + `) s ORDER BY k COLLATE "C"`
	rows, err := db.Query(ctx, q)
	if err != nil {
		return tr, fmt.Errorf("readcheck: read %s.%s: %w", schema, t.name, err)
	}
	defer rows.Close()
	found := func(d Difference) {
		tr.Differences++
		if tr.First == nil {
			d.Key = displayKey(d.Key)
			tr.First = &d
		}
	}
	got := make([]value, len(t.spec.columns))
	dest := make([]any, 1+len(got))
	var key string
	dest[0] = &key
	for i := range got {
		dest[1+i] = &got[i]
	}
	i, prev, first := 0, "", true
	for rows.Next() {
		if err := rows.Scan(dest...); err != nil {
			return tr, fmt.Errorf("readcheck: read %s.%s: %w", schema, t.name, err)
		}
		if !first && key == prev {
			found(Difference{Kind: Extra, Key: key, Column: "(key stored twice)"})
			continue
		}
		first, prev = false, key
		for i < len(t.expected) && t.expected[i].key < key {
			tr.Rows++
			found(Difference{Kind: Missing, Key: t.expected[i].key})
			i++
		}
		tr.Rows++
		if i < len(t.expected) && t.expected[i].key == key {
			if d, ok := diffRow(t, t.expected[i].cols, got); !ok {
				d.Key = key
				found(d)
			}
			i++
			continue
		}
		found(Difference{Kind: Extra, Key: key})
	}
	if err := rows.Err(); err != nil {
		return tr, fmt.Errorf("readcheck: read %s.%s: %w", schema, t.name, err)
	}
	for ; i < len(t.expected); i++ {
		tr.Rows++
		found(Difference{Kind: Missing, Key: t.expected[i].key})
	}
	return tr, nil
}

// diffRow returns the first differing column of a row.
func diffRow(t table, want, got []value) (Difference, bool) {
	for j, col := range t.spec.columns {
		if j == t.spec.json && want[j] != nil && got[j] != nil {
			if path, w, g, same := diffJSON(*want[j], *got[j]); !same {
				return Difference{Kind: Differs, Column: col + path, Expected: w, Got: g}, false
			}
			continue
		}
		if !equal(want[j], got[j]) {
			return Difference{Kind: Differs, Column: col, Expected: show(want[j]), Got: show(got[j])}, false
		}
	}
	return Difference{}, true
}

func equal(a, b value) bool {
	if a == nil || b == nil {
		return a == b
	}
	return *a == *b
}

func show(v value) string {
	if v == nil {
		return "NULL"
	}
	return strconv.Quote(*v)
}

// diffJSON compares two JSON documents by value and returns the path of the first difference
// (".Field", "[2]") with both sides there.
func diffJSON(want, got string) (path, w, g string, same bool) {
	wv, err1 := decodeJSON(want)
	gv, err2 := decodeJSON(got)
	if err1 != nil || err2 != nil {
		return "", want, got, want == got
	}
	return walk("", wv, gv)
}

func decodeJSON(s string) (any, error) {
	d := json.NewDecoder(bytes.NewReader([]byte(s)))
	d.UseNumber() // 64-bit quotas stay exact
	var v any
	err := d.Decode(&v)
	return v, err
}

func walk(path string, w, g any) (string, string, string, bool) {
	switch wv := w.(type) {
	case map[string]any:
		gv, ok := g.(map[string]any)
		if !ok {
			break
		}
		keys := map[string]bool{}
		for k := range wv {
			keys[k] = true
		}
		for k := range gv {
			keys[k] = true
		}
		for _, k := range sortedKeys(keys) {
			if p, a, b, same := walk(path+"."+k, wv[k], gv[k]); !same {
				return p, a, b, false
			}
		}
		return "", "", "", true
	case []any:
		gv, ok := g.([]any)
		if !ok || len(gv) != len(wv) {
			break
		}
		for i := range wv {
			if p, a, b, same := walk(path+"["+strconv.Itoa(i)+"]", wv[i], gv[i]); !same {
				return p, a, b, false
			}
		}
		return "", "", "", true
	}
	if reflect.DeepEqual(w, g) {
		return "", "", "", true
	}
	return path, compact(w), compact(g), false
}

func sortedKeys(m map[string]bool) []string {
	out := make([]string, 0, len(m))
	for k := range m {
		out = append(out, k)
	}
	slices.Sort(out)
	return out
}

func compact(v any) string {
	if v == nil {
		return "absent or null"
	}
	b, err := json.Marshal(v)
	if err != nil {
		return fmt.Sprint(v)
	}
	return string(b)
}
