package workers

import (
	"context"
	"encoding/json"
	"fmt"
	"log/slog"
	"os"
	"time"

	"github.com/riverqueue/river"

	"mailplane/eventstore"
)

// RecordAnchorArgs asks for a signed anchor of the event store's global head. It is a periodic
// job (every AnchorInterval); it records nothing when no event was appended since the last one.
type RecordAnchorArgs struct{}

// Kind implements river.JobArgs.
func (RecordAnchorArgs) Kind() string { return "record_anchor" }

// AnchorInterval is how often the head is anchored.
const AnchorInterval = time.Minute

// RecordAnchorWorker records anchors. Each new anchor is also written as one JSON line to the
// log and, when File is set, appended to that file (opened with O_APPEND and synced), so that an
// operator can ship it somewhere the database's owner cannot rewrite.
type RecordAnchorWorker struct {
	river.WorkerDefaults[RecordAnchorArgs]
	Anchors *eventstore.Anchors
	File    string
	Logger  *slog.Logger
}

// Work implements river.Worker.
func (w *RecordAnchorWorker) Work(ctx context.Context, _ *river.Job[RecordAnchorArgs]) error {
	a, ok, err := w.Anchors.Record(ctx)
	if err != nil || !ok {
		return err
	}
	line, err := json.Marshal(a)
	if err != nil {
		return err
	}
	w.Logger.Info("anchor recorded", "seq", a.Seq, "position", a.Position.Position, "events", a.Events,
		"anchor", string(line))
	if w.File == "" {
		return nil
	}
	// The anchor is in the database already; a failed copy is retried by River, and a copy
	// written twice is harmless (verify --anchors compares by sequence number).
	return appendLine(w.File, line)
}

func appendLine(path string, line []byte) error {
	f, err := os.OpenFile(path, os.O_APPEND|os.O_CREATE|os.O_WRONLY, 0o640)
	if err != nil {
		return fmt.Errorf("anchor file: %w", err)
	}
	if _, err := f.Write(append(line, '\n')); err != nil {
		f.Close()
		return fmt.Errorf("anchor file: %w", err)
	}
	if err := f.Sync(); err != nil {
		f.Close()
		return fmt.Errorf("anchor file: %w", err)
	}
	return f.Close()
}
