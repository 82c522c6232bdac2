package commands

import (
	"context"
	"slices"

	"github.com/jackc/pgx/v5"

	"mailplane/domain"
	"mailplane/eventstore"
)

var configStream = eventstore.Stream{ID: domain.GlobalConfigStreamID, Type: domain.StreamTypeConfig}

// UpdateGlobalConfig patches the global configuration.
func (s *Service) UpdateGlobalConfig(ctx context.Context, req Request, cmd domain.UpdateGlobalConfig) (Outcome, error) {
	return run(ctx, s, req, step[domain.GlobalConfig]{
		stream: configStream,
		decide: func(ctx context.Context, tx pgx.Tx, g domain.GlobalConfig, _ int) ([]domain.Event, error) {
			// Clearing default_cos goes back to the built-in default, which must exist too.
			target := cmd.DefaultCOS
			if target == nil && slices.Contains(cmd.Clear, "default_cos") {
				name := domain.DefaultCOSName
				target = &name
			}
			if target != nil {
				var err error
				if cmd.COSExists, err = s.cosExists(ctx, tx, *target); err != nil {
					return nil, err
				}
			}
			return g.Decide(cmd)
		},
	})
}

// cosExists reads the COS's own stream, the write side's truth.
func (s *Service) cosExists(ctx context.Context, q eventstore.DBTX, name string) (bool, error) {
	n, err := domain.NormalizeCOSName(name)
	if err != nil {
		return false, nil // the decision reports the bad name
	}
	c, _, err := load[domain.COS](ctx, s, q, domain.COSStreamID(n))
	return c.Exists(), err
}
