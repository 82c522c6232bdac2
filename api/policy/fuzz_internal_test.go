package policy

import (
	"bufio"
	"bytes"
	"context"
	"io"
	"log/slog"
	"sort"
	"strings"
	"testing"

	"mailplane/domain"
	"mailplane/projections/postgres"
)

// recipients answers from a fixed table: the fuzz targets the protocol, not the read models.
type recipients map[string]postgres.Recipient

func (r recipients) Recipient(_ context.Context, address string) (postgres.Recipient, error) {
	return r[address], nil
}

func fuzzServer() *Server {
	list := &domain.MailingList{Address: domain.Address{Local: "list", Domain: "example.com"},
		AllowedSenders: []domain.Address{{Local: "a", Domain: "b.c"}}}
	return &Server{Logger: slog.New(slog.DiscardHandler), Recipients: recipients{
		"list@example.com": {DomainStatus: domain.StatusActive, List: list},
		"x@closed.example": {DomainStatus: domain.StatusClosed},
	}}
}

// FuzzReadRequest reads what a client sends on one connection, request after request, and
// answers each: no panic, no request beyond the bounds, no attribute value spanning lines, and
// every answer one line that Postfix reads as one action (a sender cannot smuggle a second
// attribute or an early end of the reply into it).
func FuzzReadRequest(f *testing.F) {
	s := fuzzServer()
	f.Fuzz(func(t *testing.T, data []byte) {
		r := bufio.NewReaderSize(bytes.NewReader(data), readerSize)
		for {
			attrs, err := readRequest(r)
			if err != nil {
				return
			}
			if len(attrs) > maxAttributes {
				t.Fatalf("a request of %d attributes passed", len(attrs))
			}
			names := make([]string, 0, len(attrs))
			for k, v := range attrs {
				if strings.ContainsAny(k, "=\n") || strings.Contains(v, "\n") || len(k)+len(v) > maxLine {
					t.Fatalf("attribute %q=%q", k, v)
				}
				names = append(names, k)
			}
			// Written back as Postfix would write it, the request reads the same.
			sort.Strings(names)
			var b strings.Builder
			for _, k := range names {
				b.WriteString(k + "=" + strings.TrimRight(attrs[k], "\r") + "\n")
			}
			b.WriteString("\n")
			again, err := readRequest(bufio.NewReaderSize(strings.NewReader(b.String()), readerSize))
			if err != nil || len(again) != len(attrs) {
				t.Fatalf("%q read back as %v (%v), want %v", b.String(), again, err, attrs)
			}
			action := s.Decide(context.Background(), attrs)
			if action == "" || strings.ContainsAny(action, "\r\n\x00") {
				t.Fatalf("action %q for %v", action, attrs)
			}
		}
	})
}

// countingReader counts what is read from it.
type countingReader struct {
	r io.Reader
	n int
}

func (c *countingReader) Read(p []byte) (int, error) {
	n, err := c.r.Read(p)
	c.n += n
	return n, err
}

// A client that sends one endless line is cut off after the bound of one line, not read into
// memory until it stops.
func TestReadRequestBoundsALine(t *testing.T) {
	t.Parallel()
	c := &countingReader{r: io.LimitReader(neverEnding('a'), 16<<20)}
	_, err := readRequest(bufio.NewReaderSize(c, readerSize))
	if err == nil {
		t.Fatal("an endless line was accepted")
	}
	if c.n > 64<<10 {
		t.Fatalf("read %d bytes of one line before refusing it", c.n)
	}
}

type neverEnding byte

func (b neverEnding) Read(p []byte) (int, error) {
	for i := range p {
		p[i] = byte(b)
	}
	return len(p), nil
}
