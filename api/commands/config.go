package commands

import (
	"context"

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
			if cmd.DefaultCOS != nil {
				var err error
				if cmd.COSExists, err = s.cosExists(ctx, tx, *cmd.DefaultCOS); err != nil {
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
