package eventstore

import (
	"encoding/json"
	"fmt"
	"reflect"
)

// Upcaster turns the data of one event type from schema version From into From+1.
type Upcaster struct {
	EventType string
	From      int
	Up        func(data map[string]any) (map[string]any, error)
}

// Registry knows every event type by name, its current schema version, and how to bring old
// versions up to date. It is built once at start-up and read-only afterwards.
type Registry struct {
	types     map[string]reflect.Type
	current   map[string]int
	upcasters map[string]map[int]Upcaster
}

// NewRegistry registers the given event types (zero values) and upcasters. It fails on a
// duplicate name or on an upcaster chain with a hole.
func NewRegistry(events []Event, upcasters []Upcaster) (*Registry, error) {
	r := &Registry{
		types:     make(map[string]reflect.Type),
		current:   make(map[string]int),
		upcasters: make(map[string]map[int]Upcaster),
	}
	for _, ev := range events {
		name := ev.EventType()
		if _, dup := r.types[name]; dup {
			return nil, fmt.Errorf("eventstore: event type %q registered twice", name)
		}
		t := reflect.TypeOf(ev)
		if t.Kind() == reflect.Pointer {
			t = t.Elem()
		}
		r.types[name] = t
		r.current[name] = 1
		if v, ok := ev.(Versioned); ok {
			r.current[name] = v.SchemaVersion()
		}
	}
	for _, u := range upcasters {
		if _, ok := r.types[u.EventType]; !ok {
			return nil, fmt.Errorf("eventstore: upcaster for unknown event type %q", u.EventType)
		}
		if r.upcasters[u.EventType] == nil {
			r.upcasters[u.EventType] = make(map[int]Upcaster)
		}
		r.upcasters[u.EventType][u.From] = u
	}
	for name, cur := range r.current {
		// Versions 1..cur-1 each need a step; a missing one would leave old events unreadable.
		for v := 1; v < cur; v++ {
			if _, ok := r.upcasters[name][v]; !ok {
				return nil, fmt.Errorf("eventstore: %s is at schema version %d but has no upcaster from %d", name, cur, v)
			}
		}
	}
	return r, nil
}

// Current returns the schema version the registry reads eventType at, and whether it knows the
// type at all. A reader meeting an unknown type or a newer version than this was written by a
// newer release and cannot be interpreted faithfully.
func (r *Registry) Current(eventType string) (version int, known bool) {
	version, known = r.current[eventType]
	return version, known
}

// Upcast brings stored data of the given type and version to the current version. Unknown
// types pass through unchanged (a reader may not care about them).
func (r *Registry) Upcast(eventType string, version int, data json.RawMessage) (json.RawMessage, int, error) {
	cur, known := r.current[eventType]
	if !known || version >= cur {
		return data, version, nil
	}
	if version < 1 {
		// Versions start at 1: there is no step from below it (a damaged row, not old data).
		return nil, 0, fmt.Errorf("eventstore: upcast %s: no schema version %d", eventType, version)
	}
	var m map[string]any
	if err := json.Unmarshal(data, &m); err != nil {
		return nil, 0, fmt.Errorf("eventstore: upcast %s v%d: %w", eventType, version, err)
	}
	if m == nil {
		// JSON null: an upcaster writing into it would panic.
		return nil, 0, fmt.Errorf("eventstore: upcast %s v%d: the data is null, not an object", eventType, version)
	}
	for v := version; v < cur; v++ {
		var err error
		if m, err = r.upcasters[eventType][v].Up(m); err != nil {
			return nil, 0, fmt.Errorf("eventstore: upcast %s v%d: %w", eventType, v, err)
		}
	}
	out, err := json.Marshal(m)
	if err != nil {
		return nil, 0, err
	}
	return out, cur, nil
}

// Decode returns the typed event (a value, not a pointer) for a recorded event.
func (r *Registry) Decode(e RecordedEvent) (Event, error) {
	t, ok := r.types[e.Type]
	if !ok {
		return nil, fmt.Errorf("%w: %s", ErrUnknownEvent, e.Type)
	}
	p := reflect.New(t)
	if err := json.Unmarshal(e.Data, p.Interface()); err != nil {
		return nil, fmt.Errorf("eventstore: decode %s at %s v%d: %w", e.Type, e.StreamID, e.Version, err)
	}
	ev, ok := p.Elem().Interface().(Event)
	if !ok {
		return nil, fmt.Errorf("eventstore: %s does not implement Event as a value", e.Type)
	}
	return ev, nil
}
