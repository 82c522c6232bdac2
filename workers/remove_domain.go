package workers

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/riverqueue/river"

	"mailplane/commands"
)

// RemoveDomainArgs removes a domain and everything in it: inserted by the command that records
// DomainRemovalStarted, unique per removal (Removal is that event's version in the domain's
// stream, so a name removed, created again and removed again gets a job of its own).
type RemoveDomainArgs struct {
	Domain  string `json:"domain"`
	Removal int    `json:"removal"`
}

// Kind implements river.JobArgs.
func (RemoveDomainArgs) Kind() string { return "remove_domain" }

// Defaults of RemoveDomainWorker.
const (
	DefaultRemovalBatch = 500
	DefaultRemovalSlice = 20 * time.Second
	DefaultRemovalGrace = 10 * time.Second
)

// RemoveDomainWorker runs removal steps (commands.RemoveDomainStep: a batch of objects, one
// event each, in one transaction) until the domain is gone. An attempt works for at most Slice
// and then snoozes to go on at once: attempts stay short, so that River's rescuer can give a
// removal whose process died back to another one soon (RescueStuckJobsAfter), and every step
// re-derives what is left, so running again after a crash anywhere redoes nothing.
type RemoveDomainWorker struct {
	river.WorkerDefaults[RemoveDomainArgs]
	Commands *commands.Service
	// Batch is how many objects one step removes (default DefaultRemovalBatch).
	Batch int
	// Slice is how long one attempt works before it snoozes (default DefaultRemovalSlice).
	Slice time.Duration
	// Grace is how much longer than two slices an attempt may take before River's rescuer
	// deems its process dead (default DefaultRemovalGrace): room for the step a slice ends in.
	Grace time.Duration
}

func (w *RemoveDomainWorker) slice() time.Duration {
	if w.Slice > 0 {
		return w.Slice
	}
	return DefaultRemovalSlice
}

// Timeout implements river.Worker: a slice and the step it ends in, with room to spare. It is
// also how soon after a crash River's rescuer may hand the job on.
func (w *RemoveDomainWorker) Timeout(*river.Job[RemoveDomainArgs]) time.Duration {
	grace := w.Grace
	if grace <= 0 {
		grace = DefaultRemovalGrace
	}
	return 2*w.slice() + grace
}

// Work implements river.Worker.
func (w *RemoveDomainWorker) Work(ctx context.Context, job *river.Job[RemoveDomainArgs]) error {
	start := time.Now()
	for {
		p, err := w.Commands.RemoveDomainStep(ctx, job.Args.Domain, job.ID, w.Batch)
		if errors.Is(err, commands.ErrRemovalNotStarted) {
			// Trying again cannot help: nothing asked for this domain's removal.
			return river.JobCancel(fmt.Errorf("remove domain %s: %w", job.Args.Domain, err))
		}
		if err != nil {
			return fmt.Errorf("remove domain %s: %w", job.Args.Domain, err)
		}
		if p.Finished {
			return nil
		}
		if time.Since(start) >= w.slice() {
			return river.JobSnooze(0)
		}
	}
}
