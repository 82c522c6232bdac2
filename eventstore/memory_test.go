package eventstore_test

import (
	"testing"

	"mailplane/eventstore"
	"mailplane/eventstore/eventstoretest"
)

func TestMemoryConformance(t *testing.T) {
	eventstoretest.Run(t, func(t *testing.T, r *eventstore.Registry, opts ...eventstore.Option) eventstore.Store {
		return eventstore.NewMemory(r, opts...)
	})
}
