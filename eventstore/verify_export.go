package eventstore

import (
	"bufio"
	"bytes"
	"crypto/ed25519"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"io"
	"slices"
	"time"
)

// ExportCheck is what an offline check of an export needs besides the file.
type ExportCheck struct {
	// ChainKey recomputes the hash chains (ChainKey of the store's secret).
	ChainKey []byte
	// PublicKey is the installation's anchor key, obtained apart from the export: the anchors in
	// a file prove nothing when checked against the key they carry.
	PublicKey ed25519.PublicKey
	// Anchors is the auditor's own copy of the anchors (mailplane anchors export), kept apart
	// from the database. Nil: the export's own anchors are used (weaker: a file cut together
	// with its anchor lines still checks).
	Anchors []Anchor
	// InDomain reports whether a stream belongs to the exported domain (stream ids name their
	// domain; the domain package knows how). It finds, in the anchors, the domain's streams that
	// the export should hold.
	InDomain func(streamID, domainName string) bool
}

// ExportProblem is one way an export does not hold. Line is the 1-based line it was found on
// (0: the file as a whole).
type ExportProblem struct {
	Line int
	// Kind names the finding: syntax, header, domain, order, missing, reordered, prev-hash,
	// content, end, anchor-key, anchor-signature, anchor-unknown, anchor-differs, anchor-missing,
	// anchor-link, anchor-heads, anchored-event-missing, anchored-hash, anchor-window.
	Kind   string
	Detail string
}

func (p ExportProblem) String() string {
	if p.Line == 0 {
		return fmt.Sprintf("%s: %s", p.Kind, p.Detail)
	}
	return fmt.Sprintf("line %d: %s: %s", p.Line, p.Kind, p.Detail)
}

// ExportReport sums up an offline check.
type ExportReport struct {
	Domain  string
	Through Position
	Events  int
	Streams int
	// Anchors counts the anchors the events were matched against; Covered the events they pin.
	Anchors, Covered int
	// Unanchored counts events no anchor up to the export's head pins yet: only their chain
	// vouches for them.
	Unanchored int
	// OwnAnchors is true when no separate copy of the anchors was given.
	OwnAnchors bool
	// Unsigned is true when the end line carries no signature (a server without the key).
	Unsigned bool
	Problems []ExportProblem
}

// OK reports whether the export held.
func (r ExportReport) OK() bool { return len(r.Problems) == 0 }

type exportedStream struct {
	version int
	hash    []byte
	broken  bool
	// events by version: hash and line, for matching anchor heads.
	hashes map[int][]byte
	lines  map[int]int
	pos    map[int]Position
}

// VerifyExport checks an export without the database: the header, every event's place in its
// stream's chain and its hash recomputed with the chain key, the global order, the trailer's
// counts, every anchor's signature with the pinned key, its link and heads digest, and that
// every head of the domain's streams an anchor up to the export's head signed is in the export
// with the signed hash. It returns an error only when the file cannot be read.
func VerifyExport(r io.Reader, c ExportCheck) (ExportReport, error) {
	var rep ExportReport
	add := func(line int, kind, format string, args ...any) {
		rep.Problems = append(rep.Problems, ExportProblem{Line: line, Kind: kind, Detail: fmt.Sprintf(format, args...)})
	}
	ch := chain{key: c.ChainKey}
	streams := map[string]*exportedStream{}
	var own []Anchor
	ownLines := map[int64]int{}
	var header *ExportHeader
	var end *ExportEnd
	var last Position
	sc := bufio.NewScanner(r)
	sc.Buffer(make([]byte, 0, 1<<20), 1<<30)
	digest := sha256.New()
	n := 0
	for sc.Scan() {
		n++
		raw := sc.Bytes()
		var probe struct {
			Kind string `json:"kind"`
		}
		perr := json.Unmarshal(raw, &probe)
		if end == nil && probe.Kind != ExportKindEnd {
			// The server's digest is over the lines as written, each with its newline.
			digest.Write(raw)
			digest.Write([]byte{'\n'})
		}
		if perr != nil {
			add(n, "syntax", "not a JSON object: %v", perr)
			continue
		}
		if end != nil {
			add(n, "end", "a %q line after the end line", probe.Kind)
		}
		strict := func(v any) bool {
			d := json.NewDecoder(bytes.NewReader(raw))
			d.DisallowUnknownFields()
			if err := d.Decode(v); err != nil {
				add(n, "syntax", "%s line: %v", probe.Kind, err)
				return false
			}
			return true
		}
		switch probe.Kind {
		case ExportKindHeader:
			var h ExportHeader
			if !strict(&h) {
				continue
			}
			if n != 1 || header != nil {
				add(n, "header", "the header must be the first line, and the only one")
				continue
			}
			if h.Format != ExportFormat {
				add(n, "header", "format %d, this checker reads format %d", h.Format, ExportFormat)
			}
			header = &h
			rep.Domain, rep.Through = h.Domain, h.Through
		case ExportKindEvent:
			var e ExportEvent
			if !strict(&e) {
				continue
			}
			if header == nil {
				add(n, "header", "an event before the header")
				continue
			}
			rep.Events++
			pos := Position{TransactionID: e.TransactionID, Position: e.Position}
			if !last.Less(pos) {
				add(n, "order", "position %d.%d does not follow %d.%d: lines were moved", pos.TransactionID, pos.Position, last.TransactionID, last.Position)
			} else {
				last = pos
			}
			if header.Through.Less(pos) {
				add(n, "order", "position %d.%d is after the export's head %d.%d", pos.TransactionID, pos.Position, header.Through.TransactionID, header.Through.Position)
			}
			if e.Domain != header.Domain {
				add(n, "domain", "stream %s version %d belongs to %q, not to the exported %q", e.Stream, e.Version, e.Domain, header.Domain)
			}
			s := streams[e.Stream]
			if s == nil {
				rep.Streams++
				s = &exportedStream{hash: GenesisHash, hashes: map[int][]byte{}, lines: map[int]int{}, pos: map[int]Position{}}
				streams[e.Stream] = s
			}
			checkExportedEvent(ch, s, e, pos, n, add)
		case ExportKindAnchor:
			var a ExportAnchor
			if !strict(&a) {
				continue
			}
			ownLines[a.Seq] = n
			own = append(own, a.Anchor)
		case ExportKindEnd:
			var e ExportEnd
			if !strict(&e) {
				continue
			}
			end = &e
			checkEndSignature(e, digest.Sum(nil), c.PublicKey, n, &rep, add)
			if header != nil && e.Domain != header.Domain {
				add(n, "end", "the end line closes an export of %q, the header opens one of %q", e.Domain, header.Domain)
			}
			if e.Events != int64(rep.Events) {
				add(n, "end", "the end line counts %d events, the file holds %d: lines were removed or added", e.Events, rep.Events)
			}
			if e.Anchors != len(own) {
				add(n, "end", "the end line counts %d anchors, the file holds %d", e.Anchors, len(own))
			}
		default:
			add(n, "syntax", "unknown kind %q", probe.Kind)
		}
	}
	if err := sc.Err(); err != nil {
		return rep, fmt.Errorf("eventstore: read export: %w", err)
	}
	if header == nil {
		add(0, "header", "no export header: this is not an export")
		return rep, nil
	}
	if end == nil {
		add(0, "end", "no end line: the file was cut short")
	}

	anchors := own
	rep.OwnAnchors = c.Anchors == nil
	if !rep.OwnAnchors {
		anchors = checkOwnAgainstCopy(own, ownLines, c.Anchors, header.Through, add)
	}
	trusted := checkAnchorSet(anchors, c.PublicKey, add)
	inDomain := func(id string) bool { return c.InDomain != nil && c.InDomain(id, header.Domain) }
	matchAnchors(trusted, streams, inDomain, &rep, add)
	slices.SortStableFunc(rep.Problems, func(a, b ExportProblem) int { return a.Line - b.Line })
	return rep, nil
}

// checkEndSignature checks the end line's digest of the lines before it and its signature.
func checkEndSignature(e ExportEnd, digest []byte, pub ed25519.PublicKey, n int, rep *ExportReport, add func(int, string, string, ...any)) {
	if e.Signature == "" && e.Digest == "" {
		rep.Unsigned = true
		return
	}
	sig, err := hex.DecodeString(e.Signature)
	signed, ferr := e.signedForm()
	if err != nil || ferr != nil || !ed25519.Verify(pub, signed, sig) {
		add(n, "end-signature", "the end line's signature does not verify with the given key: the end line was altered, or the export is another installation's")
		return
	}
	if e.Digest != hex.EncodeToString(digest) {
		add(n, "end-digest", "the lines before the end line are not the ones the server signed: a line was changed, added, removed or moved")
	}
}

// checkExportedEvent follows one stream's chain through the export.
func checkExportedEvent(ch chain, s *exportedStream, e ExportEvent, pos Position, n int, add func(int, string, string, ...any)) {
	hash, herr := hex.DecodeString(e.Hash)
	prev, perr := hex.DecodeString(e.PrevHash)
	if herr != nil || perr != nil || len(hash) != len(GenesisHash) || len(prev) != len(GenesisHash) {
		add(n, "syntax", "stream %s version %d: hash and prev_hash must be hex SHA-256", e.Stream, e.Version)
		s.broken = true
		return
	}
	s.hashes[e.Version], s.lines[e.Version], s.pos[e.Version] = hash, n, pos
	if s.broken {
		return
	}
	fail := func(kind, format string, args ...any) {
		s.broken = true
		add(n, kind, "stream %s version %d: "+format, append([]any{e.Stream, e.Version}, args...)...)
	}
	switch {
	case e.Version > s.version+1:
		fail("missing", "expected version %d: versions %d to %d are not in the file (lines removed)", s.version+1, s.version+1, e.Version-1)
		return
	case e.Version <= s.version:
		fail("reordered", "comes after version %d of its stream: lines were moved or repeated", s.version)
		return
	case !bytes.Equal(prev, s.hash):
		fail("prev-hash", "its previous hash is not the hash of version %d", s.version)
		return
	}
	at, err := time.Parse(timeFormat, e.RecordedAt)
	if err != nil {
		fail("content", "recorded_at %q is not in the chain's form", e.RecordedAt)
		return
	}
	re := RecordedEvent{StreamID: e.Stream, StreamType: e.StreamType, Domain: e.Domain, Version: e.Version,
		Type: e.Type, SchemaVersion: e.SchemaVersion, Data: e.Data, rawMetadata: e.Metadata, RecordedAt: at, PrevHash: prev}
	want, err := ch.recompute(re)
	switch {
	case err != nil:
		fail("content", "cannot canonicalise: %v", err)
	case !bytes.Equal(want, hash):
		fail("content", "does not match its hash: the event was changed (or the chain key is not this installation's)")
	}
	s.version, s.hash = e.Version, hash
}

// checkOwnAgainstCopy matches the export's anchor lines with the auditor's copy and returns the
// copy's anchors up to the export's head: those are the ones the events are checked against.
func checkOwnAgainstCopy(own []Anchor, lines map[int64]int, copy []Anchor, through Position, add func(int, string, string, ...any)) []Anchor {
	bySeq := map[int64]Anchor{}
	for _, a := range copy {
		bySeq[a.Seq] = a
	}
	for _, a := range own {
		c, ok := bySeq[a.Seq]
		if !ok {
			add(lines[a.Seq], "anchor-unknown", "anchor %d is not in the given copy of the anchors", a.Seq)
			continue
		}
		ow, err1 := a.signedForm()
		cw, err2 := c.signedForm()
		if err1 != nil || err2 != nil || !bytes.Equal(ow, cw) || !bytes.Equal(a.Signature, c.Signature) {
			add(lines[a.Seq], "anchor-differs", "anchor %d differs from the copy's anchor %d", a.Seq, a.Seq)
			continue
		}
		// A copy shipped before a logical restore knows only the signed position; where the
		// anchor ends in the export's rewritten order is the export's to say (its end line,
		// signed by the server, covers it).
		c.Order = a.Order
		bySeq[a.Seq] = c
	}
	var out []Anchor
	for _, a := range copy {
		a = bySeq[a.Seq]
		if !through.Less(a.At()) {
			out = append(out, a)
		}
	}
	return out
}

// checkAnchorSet verifies each anchor's key and signature, each link and heads digest where the
// anchor before it is at hand, and returns the anchors whose heads can be relied on.
func checkAnchorSet(anchors []Anchor, pub ed25519.PublicKey, add func(int, string, string, ...any)) []trustedAnchor {
	sorted := slices.Clone(anchors)
	slices.SortFunc(sorted, func(a, b Anchor) int { return int(a.Seq - b.Seq) })
	valid := map[int64]Anchor{}
	for _, a := range sorted {
		if !bytes.Equal(a.PublicKey, pub) {
			add(0, "anchor-key", "anchor %d is signed with another key than the one given", a.Seq)
			continue
		}
		signed, err := a.signedForm()
		if err != nil || !ed25519.Verify(pub, signed, a.Signature) {
			add(0, "anchor-signature", "anchor %d: its signature does not verify: it was altered", a.Seq)
			continue
		}
		valid[a.Seq] = a
	}
	var trusted []trustedAnchor
	for _, a := range sorted {
		if _, ok := valid[a.Seq]; !ok {
			continue
		}
		prevDigest, prevHash := zeroHash, zeroHash
		var after Position
		if a.Seq > 1 {
			p, ok := valid[a.Seq-1]
			if !ok {
				if a.Heads != nil {
					add(0, "anchor-missing", "anchor %d is not at hand (or not valid), so anchor %d's link and heads cannot be checked", a.Seq-1, a.Seq)
				}
				continue
			}
			prevDigest, after = p.HeadsDigest, p.At()
			prevHash, _ = p.Hash()
		}
		if !bytes.Equal(a.PrevHash, prevHash) {
			add(0, "anchor-link", "anchor %d does not link to anchor %d", a.Seq, a.Seq-1)
			continue
		}
		if a.Heads == nil {
			continue // present for its successor's sake
		}
		heads := slices.Clone(a.Heads)
		sortHeads(heads)
		if !bytes.Equal(chainDigest(prevDigest, headsDelta(heads)), a.HeadsDigest) {
			add(0, "anchor-heads", "anchor %d: its list of heads is not the one it signed", a.Seq)
			continue
		}
		trusted = append(trusted, trustedAnchor{Anchor: a, after: after})
	}
	return trusted
}

// trustedAnchor is an anchor whose signature, link and heads held; after is the position of
// the anchor before it, where its window starts.
type trustedAnchor struct {
	Anchor
	after Position
}

// matchAnchors checks every signed head of the domain's streams against the export, and counts
// the events the anchors pin.
func matchAnchors(trusted []trustedAnchor, streams map[string]*exportedStream, inDomain func(string) bool, rep *ExportReport, add func(int, string, string, ...any)) {
	pinned := map[string]int{} // highest signed version per stream
	for _, a := range trusted {
		used := false
		for _, h := range a.Heads {
			s := streams[h.StreamID]
			if s == nil && !inDomain(h.StreamID) {
				continue
			}
			used = true
			// Signed, whether or not the export still holds it: the versions up to it are
			// pinned, and a missing one is reported here, once.
			pinned[h.StreamID] = max(pinned[h.StreamID], h.Version)
			if s == nil || s.hashes[h.Version] == nil {
				add(0, "anchored-event-missing", "anchor %d signed stream %s at version %d; the export does not hold that event: lines were removed", a.Seq, h.StreamID, h.Version)
				continue
			}
			if !bytes.Equal(s.hashes[h.Version], h.Hash) {
				add(s.lines[h.Version], "anchored-hash", "stream %s version %d: its hash is not the one anchor %d signed", h.StreamID, h.Version, a.Seq)
			}
			// The head must sit in the anchor's window: after the anchor before, up to this one.
			p := s.pos[h.Version]
			if a.At().Less(p) || !a.after.Less(p) {
				add(s.lines[h.Version], "anchor-window", "stream %s version %d: its position %d.%d is outside anchor %d's window", h.StreamID, h.Version, p.TransactionID, p.Position, a.Seq)
			}
		}
		if used {
			rep.Anchors++
		}
	}
	var last Position
	if len(trusted) > 0 {
		last = trusted[len(trusted)-1].At()
	}
	for id, s := range streams {
		covered := min(pinned[id], len(s.hashes))
		rep.Covered += covered
		rep.Unanchored += len(s.hashes) - covered
		// An event inside the anchored part of the order that no anchor pinned was not there
		// when the anchors were signed.
		for v, p := range s.pos {
			if v > pinned[id] && !last.Less(p) {
				add(s.lines[v], "unanchored-in-window", "stream %s version %d sits at %d.%d, before anchor-signed position %d.%d, yet no anchor signed it: it was inserted afterwards",
					id, v, p.TransactionID, p.Position, last.TransactionID, last.Position)
			}
		}
	}
}
