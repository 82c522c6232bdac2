package commands

import (
	"context"
	"hash/fnv"
	"slices"

	"github.com/jackc/pgx/v5"

	"mailplane/domain"
	"mailplane/eventstore"
)

var configStream = eventstore.Stream{ID: domain.GlobalConfigStreamID, Type: domain.StreamTypeConfig}

// UpdateGlobalConfig patches the global configuration.
func (s *Service) UpdateGlobalConfig(ctx context.Context, req Request, cmd domain.UpdateGlobalConfig) (Outcome, error) {
	var before string
	return run(ctx, s, req, step[domain.GlobalConfig]{
		stream: configStream,
		decide: func(ctx context.Context, tx pgx.Tx, g domain.GlobalConfig, _ int) ([]domain.Event, error) {
			before = g.WithDefaults().DefaultCOS
			// Clearing default_cos goes back to the built-in default, which must exist too.
			target := cmd.DefaultCOS
			if target == nil && slices.Contains(cmd.Clear, "default_cos") {
				name := domain.DefaultCOSName
				target = &name
			}
			if target != nil {
				var err error
				if cmd.COSExists, err = s.assignCOS(ctx, tx, *target); err != nil {
					return nil, err
				}
			}
			return g.Decide(cmd)
		},
		queue: func(b *pgx.Batch, g domain.GlobalConfig) func(context.Context, pgx.Tx) error {
			// The global default always names a COS (the built-in one until set).
			after := g.WithDefaults().DefaultCOS
			queueCOSReference(b, globalCOSReferrer, &before, &after)
			return nil
		},
	})
}

// assignCOS is called by every command that makes something use a COS (an account's cos, a
// domain's or the global default_cos). It takes the COS's lock in shared mode, so that a
// concurrent DeleteCOS (which takes it exclusively) sees this use once it runs; then it reads
// the COS's own stream, the write side's truth, and says whether the COS exists. Advisory locks
// take no transaction id: the command's append is still its first write.
func (s *Service) assignCOS(ctx context.Context, q eventstore.DBTX, name string) (bool, error) {
	n, err := domain.NormalizeCOSName(name)
	if err != nil {
		return false, nil // the decision reports the bad name
	}
	if _, err := q.Exec(ctx, `SELECT pg_advisory_xact_lock_shared($1)`, cosLockKey(n)); err != nil {
		return false, err
	}
	// Read it again now that the lock is held, even if the command read it already: a delete
	// may have committed in between.
	if l, ok := q.(*loadedTx); ok {
		delete(l.streams, domain.COSStreamID(n))
	}
	c, _, err := load[domain.COS](ctx, s, q, domain.COSStreamID(n))
	return c.Exists(), err
}

func cosLockKey(name string) int64 {
	h := fnv.New64a()
	h.Write([]byte("mailplane cos " + name))
	return int64(h.Sum64())
}
