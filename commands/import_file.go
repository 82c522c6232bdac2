package commands

import (
	"bufio"
	"bytes"
	"crypto/sha256"
	"encoding/csv"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"strconv"
	"strings"

	"mailplane/domain"
)

// Import file formats.
const (
	ImportCSV   = "csv"
	ImportJSONL = "jsonl"
)

// ImportColumns are the CSV columns (and JSON lines members) an import row may have, besides
// attr.NAME columns in CSV (attributes in JSON lines). Aliases and admin flags are not imported:
// they are added one by one, with the checks their own requests make.
var ImportColumns = []string{"address", "local_part", "display_name", "password", "password_hash", "cos", "status", "mail_quota_bytes"}

// ImportRow is one account of an import file as read: Problem says what made it unreadable.
type ImportRow struct {
	// Line is where the row starts in the file (1 is the first line; in CSV, the header).
	Line           int               `json:"-"`
	Address        string            `json:"address,omitempty"`
	LocalPart      string            `json:"local_part,omitempty"`
	DisplayName    string            `json:"display_name,omitempty"`
	Password       *string           `json:"password,omitempty"`
	PasswordHash   *string           `json:"password_hash,omitempty"`
	COS            *string           `json:"cos,omitempty"`
	Status         string            `json:"status,omitempty"`
	MailQuotaBytes *int64            `json:"mail_quota_bytes,omitempty"`
	Attributes     map[string]string `json:"attributes,omitempty"`
	Problem        string            `json:"-"`
}

// ImportFileError refuses a whole file: it cannot be read as its format at all.
type ImportFileError struct{ Reason string }

func (e *ImportFileError) Error() string { return "the import file cannot be read: " + e.Reason }

// Unwrap makes it a validation failure of the file as a whole.
func (e *ImportFileError) Unwrap() error { return domain.Invalid("file", e.Reason) }

// MaxImportLine bounds one line of a JSON lines file (and so one row's size).
const MaxImportLine = 64 << 10

// readImport reads the rows of a file in order, one at a time, and returns the SHA-256 of
// all it read: the import's identity. It never holds more than a row in memory.
func readImport(r io.Reader, format string, each func(ImportRow) error) (string, error) {
	h := sha256.New()
	tee := io.TeeReader(r, h)
	var err error
	switch format {
	case ImportCSV:
		err = readCSV(tee, each)
	case ImportJSONL:
		err = readJSONL(tee, each)
	default:
		return "", &ImportFileError{Reason: fmt.Sprintf("unknown format %q (csv or jsonl)", format)}
	}
	if err != nil {
		return "", err
	}
	if _, err := io.Copy(io.Discard, tee); err != nil {
		return "", err
	}
	return hex.EncodeToString(h.Sum(nil)), nil
}

func readCSV(r io.Reader, each func(ImportRow) error) error {
	cr := csv.NewReader(bufio.NewReader(r))
	cr.ReuseRecord = true
	header, err := cr.Read()
	var pe *csv.ParseError
	switch {
	case errors.Is(err, io.EOF):
		return &ImportFileError{Reason: "the file is empty: a header line naming the columns is required"}
	case errors.As(err, &pe):
		return &ImportFileError{Reason: err.Error()}
	case err != nil:
		return err
	}
	cols := make([]string, len(header))
	seen := map[string]bool{}
	for i, h := range header {
		h = strings.ToLower(strings.TrimSpace(strings.TrimPrefix(h, "\ufeff")))
		known := strings.HasPrefix(h, "attr.") && len(h) > len("attr.")
		for _, c := range ImportColumns {
			known = known || h == c
		}
		if !known {
			return &ImportFileError{Reason: fmt.Sprintf("unknown column %q (columns: %s, attr.NAME)", header[i], strings.Join(ImportColumns, ", "))}
		}
		if seen[h] {
			return &ImportFileError{Reason: fmt.Sprintf("column %q appears twice", h)}
		}
		seen[h] = true
		cols[i] = h
	}
	if !seen["address"] && !seen["local_part"] {
		return &ImportFileError{Reason: "an address or local_part column is required"}
	}
	for {
		rec, err := cr.Read()
		if errors.Is(err, io.EOF) {
			return nil
		}
		var row ImportRow
		var pe *csv.ParseError
		switch {
		case errors.As(err, &pe) && errors.Is(pe.Err, csv.ErrFieldCount):
			row = ImportRow{Line: pe.StartLine, Problem: fmt.Sprintf("has %d fields, the header %d", len(rec), len(cols))}
		case errors.As(err, &pe):
			// A broken quote leaves the reader unsure where the next row starts.
			return &ImportFileError{Reason: err.Error()}
		case err != nil:
			return err // reading failed (the body too large, the client gone)
		default:
			// FieldPos only after a record was read: after an error it panics (the reader
			// keeps no positions then); a ParseError carries its own line.
			row = csvRow(cols, rec)
			row.Line, _ = cr.FieldPos(0)
		}
		if err := each(row); err != nil {
			return err
		}
	}
}

func csvRow(cols, rec []string) ImportRow {
	row := ImportRow{}
	var problems []string
	for i, c := range cols {
		v := rec[i]
		if v == "" {
			continue // an empty cell gives nothing
		}
		switch {
		case c == "address":
			row.Address = v
		case c == "local_part":
			row.LocalPart = v
		case c == "display_name":
			row.DisplayName = v
		case c == "password":
			row.Password = &v
		case c == "password_hash":
			row.PasswordHash = &v
		case c == "cos":
			row.COS = &v
		case c == "status":
			row.Status = v
		case c == "mail_quota_bytes":
			n, err := strconv.ParseInt(strings.TrimSpace(v), 10, 64)
			if err != nil {
				problems = append(problems, "mail_quota_bytes: must be an integer")
				continue
			}
			row.MailQuotaBytes = &n
		default:
			if row.Attributes == nil {
				row.Attributes = map[string]string{}
			}
			row.Attributes[strings.TrimPrefix(c, "attr.")] = v
		}
	}
	row.Problem = strings.Join(problems, "; ")
	return row
}

func readJSONL(r io.Reader, each func(ImportRow) error) error {
	sc := bufio.NewScanner(r)
	sc.Buffer(make([]byte, 0, 4096), MaxImportLine)
	line := 0
	for sc.Scan() {
		line++
		b := bytes.TrimSpace(sc.Bytes())
		if len(b) == 0 {
			continue
		}
		var row ImportRow
		dec := json.NewDecoder(bytes.NewReader(b))
		dec.DisallowUnknownFields()
		if err := dec.Decode(&row); err != nil {
			row = ImportRow{Problem: jsonProblem(err)}
		} else if dec.More() {
			row = ImportRow{Problem: "one JSON object per line"}
		}
		row.Line = line
		if err := each(row); err != nil {
			return err
		}
	}
	if errors.Is(sc.Err(), bufio.ErrTooLong) {
		return &ImportFileError{Reason: fmt.Sprintf("line %d is longer than %d bytes", line+1, MaxImportLine)}
	}
	return sc.Err()
}

func jsonProblem(err error) string {
	var typ *json.UnmarshalTypeError
	switch {
	case errors.As(err, &typ):
		return fmt.Sprintf("%s: must be %s", typ.Field, typ.Type)
	case strings.HasPrefix(err.Error(), "json: unknown field "):
		return strings.Trim(strings.TrimPrefix(err.Error(), "json: unknown field "), `"`) + ": unknown field"
	}
	return "not a JSON object: " + err.Error()
}
