package eventstore_test

import (
	"testing"

	"mailplane/eventstore"
	"mailplane/eventstore/eventstoretest"
	"mailplane/migrations/testdb"
)

func TestPostgresConformance(t *testing.T) {
	eventstoretest.Run(t, func(t *testing.T, r *eventstore.Registry) eventstore.Store {
		return eventstore.NewPostgres(testdb.New(t), r)
	})
}
