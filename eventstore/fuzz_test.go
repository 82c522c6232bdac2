package eventstore_test

import (
	"bytes"
	"encoding/json"
	"testing"

	"mailplane/eventstore"
	"mailplane/eventstore/eventstoretest"
)

// FuzzUpcast gives stored data of any shape and any schema version to the registry, as a
// damaged or hand-edited row would reach it: upcasting answers with an error or with data at
// the current version, never a panic; upcast data is left alone by a second upcast; and
// decoding it answers with an error or an event.
func FuzzUpcast(f *testing.F) {
	reg := eventstoretest.Registry(f)
	f.Fuzz(func(t *testing.T, data string, version int) {
		for _, typ := range []string{"ThingCreated", "ThingRenamed", "NoSuchEvent"} {
			cur, known := reg.Current(typ)
			out, v, err := reg.Upcast(typ, version, json.RawMessage(data))
			if err != nil {
				if !known || version >= cur {
					t.Fatalf("%s v%d: nothing to upcast, yet %v", typ, version, err)
				}
				continue
			}
			if !known || version >= cur {
				if v != version || string(out) != data {
					t.Fatalf("%s v%d: data at or above the current version was changed", typ, version)
				}
			} else if v != cur {
				t.Fatalf("%s v%d upcast to v%d, want v%d", typ, version, v, cur)
			}
			again, v2, err := reg.Upcast(typ, v, out)
			if err != nil || v2 != v || !bytes.Equal(again, out) {
				t.Fatalf("%s: a second upcast changed v%d %s to v%d %s (%v)", typ, v, out, v2, again, err)
			}
			_, _ = reg.Decode(eventstore.RecordedEvent{Type: typ, Data: out, SchemaVersion: v})
		}
	})
}
