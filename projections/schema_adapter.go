package projections

import (
	stdsql "database/sql"
	"encoding/json"
	"errors"
	"fmt"
	"strconv"
	"sync"

	wsql "github.com/ThreeDotsLabs/watermill-sql/v4/pkg/sql"
	"github.com/ThreeDotsLabs/watermill/message"

	"mailplane/eventstore"
)

// topic is the one watermill topic: the events table.
const topic = "events"

// eventsSchema lets watermill-sql's subscriber read the events table directly (nothing is
// copied into watermill's own tables, so there is no second write outside the append's
// transaction). It reads in the gap-safe order with the row comparison, which uses the
// (transaction_id, position) index instead of sorting the backlog on every batch.
//
// Each row also carries the place in the global order of its stream's previous version (a
// lookup on the stream's unique key), so that the runner can tell, with no state of its own,
// that a stream's versions arrive one after another: an event whose predecessor is missing or
// sorts after it means the order is lost.
//
// One is made per run: lease fences a process that lost its lock (see the lease column), and
// selecting is the moment between two batches, which the delivery needs to know. Each row is
// decoded once, as it is read, and handed to the delivery in rows beside its message: carrying
// the envelope as message metadata meant formatting every column as a string and parsing it
// back, which cost more than the order check itself.
type eventsSchema struct {
	batchSize int
	lease     int64
	rows      *inFlight
	onSelect  func()
}

func (s eventsSchema) SchemaInitializingQueries(wsql.SchemaInitializingQueriesParams) ([]wsql.Query, error) {
	return nil, nil // the events table belongs to migrations
}

func (s eventsSchema) InsertQuery(wsql.InsertQueryParams) (wsql.Query, error) {
	return wsql.Query{}, errors.New("projections: events are appended through the event store, not published")
}

// SelectQuery reads the next batch. The checkpoint subquery yields no row, and so the batch no
// event, once the projection is stopped or another process holds a newer lease, or while a
// rebuild swaps the projection's tables: the batch holds the projection's swap lock shared until
// it ends (a transaction-level advisory lock, which takes no transaction id, so an idle poll
// still burns none), and the swap takes it exclusive (see SwapLockKey).
func (s eventsSchema) SelectQuery(p wsql.SelectQueryParams) (wsql.Query, error) {
	if s.onSelect != nil {
		s.onSelect()
	}
	s.rows.reset()
	return wsql.Query{
		Query: `SELECT e.position, e.transaction_id::text::bigint, e.stream_id, e.stream_type, coalesce(e.domain, ''),
			e.stream_version, e.event_type, e.schema_version, e.data, e.metadata, e.recorded_at,
			p.transaction_id::text::bigint, p.position,
			(SELECT consecutive_parks FROM projection_checkpoints WHERE name = $1)
		FROM events e
		LEFT JOIN events p ON p.stream_id = e.stream_id AND p.stream_version = e.stream_version - 1
		WHERE (e.transaction_id, e.position) > (SELECT c.transaction_id, c.position FROM projection_checkpoints c
				WHERE c.name = $1 AND c.lease = $2
				  AND NOT EXISTS (SELECT 1 FROM projection_stops s WHERE s.projection = c.name)
				  AND pg_try_advisory_xact_lock_shared($3))
		  AND e.transaction_id < pg_snapshot_xmin(pg_current_snapshot())
		ORDER BY e.transaction_id, e.position
		LIMIT ` + strconv.Itoa(s.batchSize),
		Args: []any{p.ConsumerGroup, s.lease, SwapLockKey(p.ConsumerGroup)},
	}, nil
}

func (s eventsSchema) UnmarshalMessage(p wsql.UnmarshalMessageParams) (wsql.Row, error) {
	var (
		env                    envelope
		e                      = &env.event
		txid                   int64
		data, meta             []byte
		prevTxid, prevPosition *int64
	)
	if err := p.Row.Scan(&e.Position, &txid, &e.StreamID, &e.StreamType, &e.Domain, &e.Version, &e.Type,
		&e.SchemaVersion, &data, &meta, &e.RecordedAt, &prevTxid, &prevPosition, &env.parks); err != nil {
		return wsql.Row{}, fmt.Errorf("projections: scan event: %w", err)
	}
	e.TransactionID, e.Data, e.RecordedAt = uint64(txid), json.RawMessage(data), e.RecordedAt.UTC()
	if prevTxid != nil && prevPosition != nil {
		env.previous = eventstore.Position{TransactionID: uint64(*prevTxid), Position: *prevPosition}
		env.hasPrevious = true
	}
	// An error here would make the subscriber retry the batch forever; the delivery parks the
	// event instead.
	if err := json.Unmarshal(meta, &e.Metadata); err != nil {
		env.err = fmt.Errorf("projections: bad metadata at position %d: %w", e.Position, err)
	}
	msg := message.NewMessage(strconv.FormatInt(e.Position, 10), data)
	s.rows.put(msg.UUID, env)
	return wsql.Row{
		Offset:    e.Position,
		Payload:   data,
		Msg:       msg,
		ExtraData: map[string]any{"transaction_id": txid},
	}, nil
}

func (s eventsSchema) SubscribeIsolationLevel() stdsql.IsolationLevel {
	// One snapshot for the whole batch: the xmin filter and the rows agree.
	return stdsql.LevelRepeatableRead
}

// envelope is a row as the runner reads it: the event (data not yet upcast) and what comes
// with it.
type envelope struct {
	event eventstore.RecordedEvent
	// previous is the place of the stream's previous version; hasPrevious is false when the
	// events table has none.
	previous    eventstore.Position
	hasPrevious bool
	// parks is the projection's count of events parked in a row when the batch began.
	parks int
	// err is set when the row could not be read.
	err error
}

// inFlight holds the decoded rows of the batch being delivered, by message UUID.
type inFlight struct {
	mu   sync.Mutex
	rows map[string]envelope
}

func (f *inFlight) put(id string, env envelope) {
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.rows == nil {
		f.rows = make(map[string]envelope)
	}
	f.rows[id] = env
}

func (f *inFlight) get(id string) (envelope, bool) {
	f.mu.Lock()
	defer f.mu.Unlock()
	env, ok := f.rows[id]
	return env, ok
}

// reset forgets the last batch's rows, as the next is read.
func (f *inFlight) reset() {
	f.mu.Lock()
	defer f.mu.Unlock()
	clear(f.rows)
}
