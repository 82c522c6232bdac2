package api

import (
	"time"

	"mailplane/commands"
	"mailplane/projections/postgres"
)

// writtenRow is the version and times of an object (account, list, resource) as the command
// in out left it, without waiting for the read model. A command that changed nothing records
// no time: the object's update time is then the read model's, which current reads, or its
// creation time when the read model does not have it.
func writtenRow(out commands.Outcome, version int, created time.Time, current func() (postgres.Row, error)) postgres.Row {
	row := postgres.Row{Version: version, CreatedAt: created, UpdatedAt: out.At}
	if out.At.IsZero() {
		row.UpdatedAt = created
		if cur, err := current(); err == nil {
			row.UpdatedAt = cur.UpdatedAt
		}
	}
	return row
}
