package domain

import (
	"strings"
	"testing"

	"github.com/stretchr/testify/require"
)

func TestCreateResource(t *testing.T) {
	t.Parallel()
	d := activeDomain(t)
	events, err := Resource{}.Decide(CreateResource{
		Address: "Room1@Example.com", DisplayName: "Room 1", Type: ResourceLocation, Capacity: ptr(12),
		Location: "2nd floor", MaxConflicts: ptr(1), NotifyAddresses: []string{"fm@example.com", "FM@example.com"},
		At: t0, Domain: d,
	})
	require.NoError(t, err)
	room := mustAddr(t, "room1@example.com")
	require.Equal(t, []Event{ResourceCreated{Address: room, DisplayName: "Room 1", Type: "location", Capacity: 12,
		Location: "2nd floor", BookingPolicy: DefaultBookingPolicy, MaxConflicts: 1,
		NotifyAddresses: []Address{mustAddr(t, "fm@example.com")}, CreatedAt: t0}}, events)
	r := Resource{}.Evolve(events[0])
	require.True(t, r.Exists())

	_, err = r.Decide(CreateResource{Address: "room1@example.com", Type: "location", At: t0, Domain: d})
	require.ErrorIs(t, err, ErrAlreadyExists)
	closed := d
	closed.Status = StatusClosed
	_, err = Resource{}.Decide(CreateResource{Address: "r@example.com", Type: "location", At: t0, Domain: closed})
	require.ErrorIs(t, err, ErrDomainUnavailable)

	_, err = Resource{}.Decide(CreateResource{Address: "r@other.example", Type: "room", Capacity: ptr(-1),
		BookingPolicy: "sometimes", MaxConflicts: ptr(1 << 20), NotifyAddresses: []string{"x"},
		Location: strings.Repeat("x", 300), Signature: ptr("-- \nRoom 1"), Domain: d})
	requireFields(t, err, "address", "type", "capacity", "booking_policy", "max_conflicts", "notify_addresses[0]",
		"location", "signature", "at")
	_, err = Resource{}.Decide(CreateResource{Address: "r@example.com", Signature: ptr(""), At: t0, Domain: d})
	var ve ValidationError
	require.ErrorAs(t, err, &ve)
	require.Contains(t, ve.Errors, FieldError{Field: "signature", Message: "resources have no signature"})
	require.Contains(t, ve.Errors, FieldError{Field: "type", Message: "required: location or equipment"})
}

func TestUpdateResourceAndAliases(t *testing.T) {
	t.Parallel()
	d := activeDomain(t)
	events, err := Resource{}.Decide(CreateResource{Address: "room@example.com", Type: "location", At: t0, Domain: d})
	require.NoError(t, err)
	r := Resource{}.Evolve(events[0])

	events, err = r.Decide(UpdateResource{Type: ptr("location"), Capacity: ptr(0), NotifyAddresses: []string{}})
	require.NoError(t, err)
	require.Empty(t, events)
	events, err = r.Decide(UpdateResource{Type: ptr("equipment"), Capacity: ptr(4), BookingPolicy: ptr(BookingManual),
		NotifyAddresses: []string{"b@example.com", "a@example.com"}})
	require.NoError(t, err)
	require.Len(t, events, 1)
	r = r.Evolve(events[0])
	require.Equal(t, "equipment", r.Type)
	require.Equal(t, 4, r.Capacity)
	require.Equal(t, []Address{mustAddr(t, "a@example.com"), mustAddr(t, "b@example.com")}, r.NotifyAddresses)
	_, err = r.Decide(UpdateResource{Signature: ptr("x"), Type: ptr("car"), Capacity: ptr(-2)})
	requireFields(t, err, "signature", "type", "capacity")

	events, err = r.Decide(AddResourceAlias{Alias: "Beamer@example.com", AliasDomain: d})
	require.NoError(t, err)
	r = r.Evolve(events[0])
	require.True(t, r.HasAlias(mustAddr(t, "beamer@example.com")))
	_, err = r.Decide(AddResourceAlias{Alias: "beamer@example.com", AliasDomain: d})
	require.ErrorIs(t, err, ErrAlreadyExists)
	_, err = r.Decide(AddResourceAlias{Alias: "x@missing.example"})
	requireFields(t, err, "alias")
	_, err = r.Decide(AddResourceAlias{Alias: "room@example.com", AliasDomain: d})
	requireFields(t, err, "alias")
	events, err = r.Decide(RemoveResourceAlias{Alias: mustAddr(t, "beamer@example.com")})
	require.NoError(t, err)
	r = r.Evolve(events[0])
	require.Empty(t, r.Aliases)
	_, err = r.Decide(RemoveResourceAlias{Alias: mustAddr(t, "beamer@example.com")})
	require.ErrorIs(t, err, ErrNotFound)

	events, err = r.Decide(DeleteResource{})
	require.NoError(t, err)
	r = r.Evolve(events[0])
	require.False(t, r.Exists())
	_, err = r.Decide(DeleteResource{})
	require.ErrorIs(t, err, ErrNotFound)
}
