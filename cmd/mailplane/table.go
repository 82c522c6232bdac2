package main

import (
	"bytes"
	"encoding/json"
	"fmt"
	"io"
	"strconv"
	"strings"
	"text/tabwriter"
	"unicode"
)

// table writes aligned columns. Cells are cleaned of control characters, so a value from the
// server can neither break the alignment nor send escape sequences to the terminal.
type table struct{ tw *tabwriter.Writer }

func newTable(w io.Writer, header ...string) *table {
	t := &table{tw: tabwriter.NewWriter(w, 0, 0, 2, ' ', 0)}
	if len(header) > 0 {
		t.row(header...)
	}
	return t
}

func (t *table) row(cells ...string) {
	for i, c := range cells {
		cells[i] = cleanCell(c)
	}
	fmt.Fprintln(t.tw, strings.Join(cells, "\t"))
}

func (t *table) flush() error { return t.tw.Flush() }

func cleanCell(s string) string {
	if s == "" {
		return "-"
	}
	return strings.Map(func(r rune) rune {
		if unicode.IsControl(r) {
			return ' '
		}
		return r
	}, s)
}

// field is one leaf of a JSON document: its dotted path (limits.max_accounts, aliases) and its
// value as text ("" for null; arrays of scalars joined with ", ").
type field struct {
	path  string
	value string
}

// flatten lists the leaves of a JSON document in the order the server sent them.
func flatten(doc []byte) ([]field, error) {
	dec := json.NewDecoder(bytes.NewReader(doc))
	dec.UseNumber()
	var out []field
	if err := flattenValue(dec, "", &out); err != nil {
		return nil, fmt.Errorf("unexpected answer from the API: %w", err)
	}
	return out, nil
}

func flattenValue(dec *json.Decoder, path string, out *[]field) error {
	tok, err := dec.Token()
	if err != nil {
		return err
	}
	switch tok {
	case json.Delim('{'):
		n := 0
		for ; dec.More(); n++ {
			k, err := dec.Token()
			if err != nil {
				return err
			}
			key := k.(string)
			if path != "" {
				key = path + "." + key
			}
			if err := flattenValue(dec, key, out); err != nil {
				return err
			}
		}
		if n == 0 && path != "" {
			*out = append(*out, field{path, ""})
		}
		_, err = dec.Token()
		return err
	case json.Delim('['):
		var elems []field
		for i := 0; dec.More(); i++ {
			if err := flattenValue(dec, path+"["+strconv.Itoa(i)+"]", &elems); err != nil {
				return err
			}
		}
		if _, err := dec.Token(); err != nil {
			return err
		}
		scalars := true
		vals := make([]string, len(elems))
		for i, e := range elems {
			scalars = scalars && e.path == path+"["+strconv.Itoa(i)+"]"
			vals[i] = e.value
		}
		if scalars {
			*out = append(*out, field{path, strings.Join(vals, ", ")})
		} else {
			*out = append(*out, elems...)
		}
		return nil
	}
	*out = append(*out, field{path, scalarText(tok)})
	return nil
}

func scalarText(tok json.Token) string {
	switch v := tok.(type) {
	case nil:
		return ""
	case string:
		return v
	case json.Number:
		return v.String()
	case bool:
		return strconv.FormatBool(v)
	}
	return fmt.Sprint(tok)
}

// printObject shows one object as FIELD/VALUE rows, then its effective settings with the level
// each comes from (the "effective" and "sources" members of domains and accounts).
func printObject(w io.Writer, doc []byte) error {
	fields, err := flatten(doc)
	if err != nil {
		return err
	}
	sources := map[string]string{}
	for _, f := range fields {
		if k, ok := strings.CutPrefix(f.path, "sources."); ok {
			sources[k] = f.value
		}
	}
	own := newTable(w, "FIELD", "VALUE")
	var eff []field
	for _, f := range fields {
		switch {
		case strings.HasPrefix(f.path, "sources."):
		case strings.HasPrefix(f.path, "effective."):
			eff = append(eff, f)
		default:
			own.row(f.path, f.value)
		}
	}
	if err := own.flush(); err != nil {
		return err
	}
	if len(eff) == 0 {
		return nil
	}
	fmt.Fprintln(w)
	t := newTable(w, "EFFECTIVE", "VALUE", "SOURCE")
	for _, f := range eff {
		key := strings.TrimPrefix(f.path, "effective.")
		t.row(key, f.value, sourceOf(sources, key))
	}
	return t.flush()
}

// sourceOf finds the source of an effective value; features.imap is covered by "features".
func sourceOf(sources map[string]string, key string) string {
	for {
		if s, ok := sources[key]; ok {
			return s
		}
		i := strings.LastIndexByte(key, '.')
		if i < 0 {
			return ""
		}
		key = key[:i]
	}
}

// column is a list column: its header and the dotted path of the value in each item.
type column struct {
	header string
	path   string
}

// printList shows one row per item.
func printList(w io.Writer, cols []column, items []json.RawMessage) error {
	headers := make([]string, len(cols))
	for i, c := range cols {
		headers[i] = c.header
	}
	t := newTable(w, headers...)
	for _, item := range items {
		fields, err := flatten(item)
		if err != nil {
			return err
		}
		byPath := make(map[string]string, len(fields))
		for _, f := range fields {
			byPath[f.path] = f.value
		}
		cells := make([]string, len(cols))
		for i, c := range cols {
			cells[i] = byPath[c.path]
		}
		t.row(cells...)
	}
	return t.flush()
}

// printJSON writes a JSON document indented.
func printJSON(w io.Writer, doc []byte) error {
	var buf bytes.Buffer
	if err := json.Indent(&buf, doc, "", "  "); err != nil {
		return fmt.Errorf("unexpected answer from the API: %w", err)
	}
	buf.WriteByte('\n')
	_, err := w.Write(buf.Bytes())
	return err
}
