package domain

import (
	"fmt"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
)

func TestParseUsageReports(t *testing.T) {
	t.Parallel()
	got, err := ParseUsageReports([]RawUsageReport{{"Alice@Example.TEST", 5}, {"bob@bücher.example", 0}})
	require.NoError(t, err)
	require.Equal(t, "alice@example.test", got[0].Address.String())
	require.Equal(t, "bob@xn--bcher-kva.example", got[1].Address.String())

	fields := func(in []RawUsageReport) []string {
		_, err := ParseUsageReports(in)
		var ve ValidationError
		require.ErrorAs(t, err, &ve)
		var out []string
		for _, f := range ve.Errors {
			out = append(out, f.Field)
		}
		return out
	}
	require.Equal(t, []string{"reports"}, fields(nil))
	require.Equal(t, []string{"reports"}, fields(make([]RawUsageReport, MaxUsageReports+1)))
	require.Equal(t, []string{"reports[1].address", "reports[2].used_bytes", "reports[3].used_bytes"},
		fields([]RawUsageReport{{"a@x.test", 1}, {"A@X.test", 2}, {"b@x.test", -1}, {"c@x.test", MaxNumber + 1}}))
	many := make([]RawUsageReport, 100)
	for i := range many {
		many[i] = RawUsageReport{fmt.Sprintf("bad%d", i), 1}
	}
	f := fields(many)
	require.Len(t, f, maxReportedPerField+1, "the first few, then a count")
	require.Equal(t, "reports", f[len(f)-1])
}

func TestOverWarnLine(t *testing.T) {
	t.Parallel()
	for _, c := range []struct {
		used, limit int64
		warn        int
		over        bool
	}{
		{799, 1000, 80, false}, {800, 1000, 80, true}, {5000, 0, 80, false}, {5000, 1000, 0, false},
		{1000, 1000, 100, true}, {999, 1000, 100, false}, {MaxNumber, MaxNumber, 100, true}, {MaxNumber - 1, MaxNumber, 100, false},
		{0, 1, 1, false},
	} {
		require.Equal(t, c.over, OverWarnLine(c.used, c.limit, c.warn), "%+v", c)
	}
}

func TestQuotaWarningsOncePerCrossing(t *testing.T) {
	t.Parallel()
	at := time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC)
	x := QuotaCrossing{Scope: QuotaScopeAccount, Name: "a@x.test", Domain: "x.test", Crossing: 1, UsedBytes: 900, LimitBytes: 1000, WarnPercent: 90}
	var q QuotaWarnings
	q = q.Evolve(AccountCreated{})
	evs, err := q.Decide(SendQuotaWarning{Crossing: x, To: []string{"a@x.test"}, Cause: "c1", At: at})
	require.NoError(t, err)
	require.Len(t, evs, 1)
	q = q.Evolve(evs[0])
	evs, _ = q.Decide(SendQuotaWarning{Crossing: x, To: []string{"a@x.test"}, At: at})
	require.Empty(t, evs, "the same crossing again: a retried job")
	x.Crossing = 2
	evs, _ = q.Decide(SendQuotaWarning{Crossing: x, To: nil, At: at})
	require.Empty(t, evs, "nobody to warn")
	evs, _ = q.Decide(SendQuotaWarning{Crossing: x, To: []string{"a@x.test"}, At: at})
	require.Len(t, evs, 1)
	q = q.Evolve(evs[0]).Evolve(AccountDeleted{}).Evolve(AccountCreated{})
	x.Crossing = 2
	evs, _ = q.Decide(SendQuotaWarning{Crossing: x, To: []string{"a@x.test"}, At: at})
	require.Empty(t, evs, "an account created again continues the count: crossing 2 was warned of")
	x.Crossing = 3
	evs, _ = q.Decide(SendQuotaWarning{Crossing: x, To: []string{"a@x.test"}, At: at})
	require.Len(t, evs, 1)
}

func TestServiceTokenDecisions(t *testing.T) {
	t.Parallel()
	var tok ServiceToken
	_, err := tok.DecideCreate(CreateServiceToken{ID: "1", Name: "", Role: "root"})
	var ve ValidationError
	require.ErrorAs(t, err, &ve)
	require.Len(t, ve.Errors, 2)
	evs, err := tok.DecideCreate(CreateServiceToken{ID: "1", Name: " store ", Role: RoleMailstore, By: "admin@x.test", At: time.Now()})
	require.NoError(t, err)
	tok = tok.Evolve(evs[0])
	require.Equal(t, "store", tok.Name)
	_, err = tok.DecideCreate(CreateServiceToken{ID: "1", Name: "x", Role: RoleMailstore})
	require.ErrorIs(t, err, ErrAlreadyExists)
	evs, err = tok.DecideRevoke(RevokeServiceToken{By: "admin@x.test", At: time.Now()})
	require.NoError(t, err)
	tok = tok.Evolve(evs[0])
	evs, err = tok.DecideRevoke(RevokeServiceToken{})
	require.NoError(t, err)
	require.Empty(t, evs)
	_, err = ServiceToken{}.DecideRevoke(RevokeServiceToken{})
	require.ErrorIs(t, err, ErrNotFound)
}
