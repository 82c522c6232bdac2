package projections

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/jackc/pgx/v5"

	"mailplane/eventstore"
)

// Sentinels a projection wraps to ask for a stop rather than a retry or a park.
var (
	// ErrOutOfOrder means an event does not follow what the read model holds of its stream: a
	// version is missing or came late. Parking it would apply the stream's later events on top
	// of a hole.
	ErrOutOfOrder = errors.New("projections: stream versions out of order")
	// ErrUnknownMeaning means the event cannot be understood (a newer release wrote it).
	ErrUnknownMeaning = errors.New("projections: event of unknown meaning")
)

// refuses reports whether a projection's error asks for a stop.
func refuses(err error) bool {
	return errors.Is(err, ErrOutOfOrder) || errors.Is(err, ErrUnknownMeaning) || errors.Is(err, eventstore.ErrUnknownEvent)
}

// StopKind says why a projection stopped.
type StopKind string

// The kinds of stop.
const (
	// StopVersionGap: the event's previous version is not in the events table.
	StopVersionGap StopKind = "version_gap"
	// StopVersionBackwards: the event's previous version sorts after it in the global order, so
	// the stream would arrive going backwards (a transaction wrote before it appended).
	StopVersionBackwards StopKind = "version_backwards"
	// StopUnknownEventType: this process's registry does not know the event type.
	StopUnknownEventType StopKind = "unknown_event_type"
	// StopNewerSchemaVersion: the event's schema version is newer than the registry's.
	StopNewerSchemaVersion StopKind = "newer_schema_version"
	// StopProjectionRefused: the projection returned ErrOutOfOrder or ErrUnknownMeaning.
	StopProjectionRefused StopKind = "projection_refused"
	// StopConsecutiveParks: Config.MaxConsecutiveParks events in a row were parked and this one
	// failed too.
	StopConsecutiveParks StopKind = "consecutive_parks"
)

var stopTitles = map[StopKind]string{
	StopVersionGap:         "version gap",
	StopVersionBackwards:   "version going backwards",
	StopUnknownEventType:   "unknown event type",
	StopNewerSchemaVersion: "newer schema version",
	StopProjectionRefused:  "refused by the projection",
	StopConsecutiveParks:   "too many events parked in a row",
}

// Stop is a projection's durable stop: the event it stopped at (its checkpoint stays before
// it) and why. The JSON form is what the HTTP API shows.
type Stop struct {
	Projection    string `json:"-"`
	Position      int64  `json:"position"`
	TransactionID uint64 `json:"-"`
	StreamID      string `json:"stream"`
	StreamType    string `json:"-"`
	Version       int    `json:"-"`
	// ExpectedVersion is, for lost order, the version that should have come next (else 0).
	ExpectedVersion int      `json:"-"`
	EventType       string   `json:"-"`
	SchemaVersion   int      `json:"-"`
	Kind            StopKind `json:"-"`
	// Error is the detail; Reason is the kind and the detail on one line.
	Error  string    `json:"-"`
	Reason string    `json:"reason"`
	By     string    `json:"-"`
	At     time.Time `json:"at"`
}

func (s *Stop) setReason() {
	s.Reason = stopTitles[s.Kind] + ": " + s.Error
}

// stoppedError ends a run on a stop.
type stoppedError struct{ stop Stop }

func (e *stoppedError) Error() string {
	return fmt.Sprintf("projection %s stopped at position %d: %s", e.stop.Projection, e.stop.Position, e.stop.Reason)
}

type queryer interface {
	Query(ctx context.Context, sql string, args ...any) (pgx.Rows, error)
	QueryRow(ctx context.Context, sql string, args ...any) pgx.Row
}

const stopColumns = `projection, position, transaction_id::text::bigint, stream_id, stream_type, stream_version,
	coalesce(expected_version, 0), event_type, schema_version, kind, error, stopped_by, stopped_at`

func scanStop(row pgx.Row) (Stop, error) {
	var s Stop
	var txid int64
	err := row.Scan(&s.Projection, &s.Position, &txid, &s.StreamID, &s.StreamType, &s.Version,
		&s.ExpectedVersion, &s.EventType, &s.SchemaVersion, &s.Kind, &s.Error, &s.By, &s.At)
	s.TransactionID = uint64(txid)
	s.setReason()
	return s, err
}

// LoadStop returns the projection's stop, or nil while it has none.
func LoadStop(ctx context.Context, q queryer, name string) (*Stop, error) {
	s, err := scanStop(q.QueryRow(ctx, `SELECT `+stopColumns+` FROM projection_stops WHERE projection = $1`, name))
	if errors.Is(err, pgx.ErrNoRows) {
		return nil, nil
	}
	if err != nil {
		return nil, fmt.Errorf("projections: stop of %s: %w", name, err)
	}
	return &s, nil
}

// recordStop writes the stop in the batch transaction, so that it commits with the batch's good
// prefix and its checkpoint, or not at all. For lost order it first works out which version
// should have come: the stream's highest version before the event in the global order, plus one.
func recordStop(ctx context.Context, tx pgx.Tx, s *Stop) error {
	if s.Kind == StopVersionGap || s.Kind == StopVersionBackwards {
		if err := tx.QueryRow(ctx, `SELECT coalesce(max(stream_version), 0) + 1 FROM events
			WHERE stream_id = $1 AND (transaction_id, position) < ($2::bigint::text::xid8, $3::bigint)`,
			s.StreamID, int64(s.TransactionID), s.Position).Scan(&s.ExpectedVersion); err != nil {
			return err
		}
		what := "is not in the events table"
		if s.Kind == StopVersionBackwards {
			what = "comes after it in the global order"
		}
		s.Error = fmt.Sprintf("stream %s expected version %d, got %d (%s at position %d); version %d %s",
			s.StreamID, s.ExpectedVersion, s.Version, s.EventType, s.Position, s.Version-1, what)
	}
	s.setReason()
	var expected *int
	if s.ExpectedVersion > 0 {
		expected = &s.ExpectedVersion
	}
	err := tx.QueryRow(ctx, `INSERT INTO projection_stops (projection, position, transaction_id, stream_id,
			stream_type, stream_version, expected_version, event_type, schema_version, kind, error, stopped_by)
		VALUES ($1, $2, $3::bigint::text::xid8, $4, $5, $6, $7, $8, $9, $10, $11, $12)
		RETURNING stopped_at`,
		s.Projection, s.Position, int64(s.TransactionID), s.StreamID, s.StreamType, s.Version, expected,
		s.EventType, s.SchemaVersion, string(s.Kind), s.Error, s.By).Scan(&s.At)
	if err != nil {
		return fmt.Errorf("projections: record the stop of %s: %w", s.Projection, err)
	}
	return nil
}
