package projections

import (
	stdsql "database/sql"
	"encoding/json"
	"errors"
	"fmt"
	"strconv"
	"time"

	wsql "github.com/ThreeDotsLabs/watermill-sql/v4/pkg/sql"
	"github.com/ThreeDotsLabs/watermill/message"

	"mailplane/eventstore"
)

// topic is the one watermill topic: the events table.
const topic = "events"

// Message metadata keys carrying the event's envelope.
const (
	mdTransactionID = "transaction_id"
	mdStreamID      = "stream_id"
	mdStreamType    = "stream_type"
	mdDomain        = "domain"
	mdVersion       = "version"
	mdType          = "type"
	mdSchemaVersion = "schema_version"
	mdRecordedAt    = "recorded_at"
	mdMetadata      = "metadata"
)

// eventsSchema lets watermill-sql's subscriber read the events table directly (nothing is
// copied into watermill's own tables, so there is no second write outside the append's
// transaction). It reads in the gap-safe order with the row comparison, which uses the
// (transaction_id, position) index instead of sorting the backlog on every batch.
type eventsSchema struct {
	batchSize int
}

func (s eventsSchema) SchemaInitializingQueries(wsql.SchemaInitializingQueriesParams) ([]wsql.Query, error) {
	return nil, nil // the events table belongs to migrations
}

func (s eventsSchema) InsertQuery(wsql.InsertQueryParams) (wsql.Query, error) {
	return wsql.Query{}, errors.New("projections: events are appended through the event store, not published")
}

func (s eventsSchema) SelectQuery(p wsql.SelectQueryParams) (wsql.Query, error) {
	return wsql.Query{
		Query: `SELECT position, transaction_id::text::bigint, stream_id, stream_type, coalesce(domain, ''),
			stream_version, event_type, schema_version, data, metadata, recorded_at
		FROM events
		WHERE (transaction_id, position) > (SELECT transaction_id, position FROM projection_checkpoints WHERE name = $1)
		  AND transaction_id < pg_snapshot_xmin(pg_current_snapshot())
		ORDER BY events.transaction_id, events.position -- not the bigint output column of that name
		LIMIT ` + strconv.Itoa(s.batchSize),
		Args: []any{p.ConsumerGroup},
	}, nil
}

func (s eventsSchema) UnmarshalMessage(p wsql.UnmarshalMessageParams) (wsql.Row, error) {
	var (
		position, txid, version, schemaVersion int64
		streamID, streamType, domain, typ      string
		data, meta                             []byte
		recordedAt                             time.Time
	)
	if err := p.Row.Scan(&position, &txid, &streamID, &streamType, &domain, &version, &typ,
		&schemaVersion, &data, &meta, &recordedAt); err != nil {
		return wsql.Row{}, fmt.Errorf("projections: scan event: %w", err)
	}
	msg := message.NewMessage(strconv.FormatInt(position, 10), data)
	msg.Metadata = message.Metadata{
		mdTransactionID: strconv.FormatInt(txid, 10),
		mdStreamID:      streamID,
		mdStreamType:    streamType,
		mdDomain:        domain,
		mdVersion:       strconv.FormatInt(version, 10),
		mdType:          typ,
		mdSchemaVersion: strconv.FormatInt(schemaVersion, 10),
		mdRecordedAt:    recordedAt.UTC().Format(time.RFC3339Nano),
		mdMetadata:      string(meta),
	}
	return wsql.Row{
		Offset:    position,
		Payload:   data,
		Msg:       msg,
		ExtraData: map[string]any{"transaction_id": txid},
	}, nil
}

func (s eventsSchema) SubscribeIsolationLevel() stdsql.IsolationLevel {
	// One snapshot for the whole batch: the xmin filter and the rows agree.
	return stdsql.LevelRepeatableRead
}

// decodeMessage rebuilds the recorded event from a message (data not yet upcast).
func decodeMessage(msg *message.Message) (eventstore.RecordedEvent, error) {
	md := msg.Metadata
	var e eventstore.RecordedEvent
	var err error
	atoi := func(k string) int64 {
		if err != nil {
			return 0
		}
		var v int64
		v, err = strconv.ParseInt(md.Get(k), 10, 64)
		return v
	}
	e.Position, err = strconv.ParseInt(msg.UUID, 10, 64)
	e.TransactionID = uint64(atoi(mdTransactionID))
	e.Version = int(atoi(mdVersion))
	e.SchemaVersion = int(atoi(mdSchemaVersion))
	if err != nil {
		return e, fmt.Errorf("projections: bad message envelope: %w", err)
	}
	if e.RecordedAt, err = time.Parse(time.RFC3339Nano, md.Get(mdRecordedAt)); err != nil {
		return e, fmt.Errorf("projections: bad recorded_at: %w", err)
	}
	if err := json.Unmarshal([]byte(md.Get(mdMetadata)), &e.Metadata); err != nil {
		return e, fmt.Errorf("projections: bad metadata: %w", err)
	}
	e.StreamID, e.StreamType, e.Domain, e.Type = md.Get(mdStreamID), md.Get(mdStreamType), md.Get(mdDomain), md.Get(mdType)
	e.Data = json.RawMessage(msg.Payload)
	return e, nil
}
