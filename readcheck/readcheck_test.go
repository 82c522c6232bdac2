package readcheck_test

import (
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"math/big"
	"net/http"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/stretchr/testify/require"

	"mailplane/api"
	"mailplane/api/apitest"
	"mailplane/commands"
	"mailplane/domain"
	"mailplane/eventstore"
	"mailplane/readcheck"
)

// Mix is what mix made.
type Mix struct {
	Dom, Other, Gone            string
	Alice, Bob, Carol, Team     string
	AliceAlias, Room, Host, COS string
}

// mix drives a realistic mix through the API: global config, COS, domains, accounts with
// quotas, attributes and aliases (one in another domain, one removed), lists with members (one
// removed, one hidden from the GAL, one made dynamic), a closed account, a COS deleted and made
// again, a resource, virtual hosts with a custom certificate, a GAL, usage reports, a deleted
// account made again and a removed domain (with an alias of an outside account in it). It waits until both projections have reached the last event.
func mix(t *testing.T, e *apitest.Env) Mix {
	t.Helper()
	ok := func(r apitest.Response, what string) {
		t.Helper()
		require.Contains(t, []int{http.StatusOK, http.StatusCreated, http.StatusAccepted, http.StatusNoContent}, r.Status, "%s: %s", what, r.Body)
	}
	do := func(method, path string, body any) apitest.Response {
		t.Helper()
		r := e.Do(t, method, path, e.AdminToken, body)
		ok(r, method+" "+path)
		return r
	}
	m := Mix{COS: apitest.Unique("gold")}
	do(http.MethodPatch, "/api/v1/config", map[string]any{"time_zone": "Europe/Paris"})
	do(http.MethodPost, "/api/v1/cos", map[string]any{"name": m.COS, "mail_quota_bytes": 1 << 30, "quota_warn_percent": 80})
	do(http.MethodPatch, "/api/v1/cos/"+m.COS, map[string]any{"description": "the gold class"})
	m.Dom = e.CreateDomain(t, map[string]any{"default_cos": m.COS, "description": "main",
		"limits": map[string]any{"domain_quota_bytes": 2 << 30}})
	m.Other = e.CreateDomain(t, nil)
	m.Gone = e.CreateDomain(t, nil)
	do(http.MethodPatch, "/api/v1/domains/"+m.Dom, map[string]any{"description": "the main one"})

	m.Alice = e.CreateAccount(t, m.Dom, map[string]any{"local_part": "alice", "display_name": "Alice Älvsdóttir",
		"password": "alice-password-1", "mail_quota_bytes": 2 << 30, "attributes": map[string]any{"givenName": "Alice", "sn": "Älvsdóttir"}})
	m.Bob = e.CreateAccount(t, m.Dom, map[string]any{"local_part": "bob", "cos": m.COS})
	m.Carol = e.CreateAccount(t, m.Other, map[string]any{"local_part": "carol", "display_name": "Carol"})
	dave := e.CreateAccount(t, m.Gone, map[string]any{"local_part": "dave"})
	do(http.MethodPatch, "/api/v1/accounts/"+m.Alice, map[string]any{"display_name": "Alice Ä.", "status": "locked"})
	do(http.MethodPatch, "/api/v1/accounts/"+m.Bob, map[string]any{"mail_quota_bytes": 5 << 20})
	m.AliceAlias = "al@" + m.Dom
	do(http.MethodPost, "/api/v1/accounts/"+m.Alice+"/aliases", map[string]any{"alias": m.AliceAlias})
	do(http.MethodPost, "/api/v1/accounts/"+m.Alice+"/aliases", map[string]any{"alias": "alice@" + m.Other})
	do(http.MethodPost, "/api/v1/accounts/"+m.Alice+"/aliases", map[string]any{"alias": "tmp@" + m.Dom})
	do(http.MethodDelete, "/api/v1/accounts/"+m.Alice+"/aliases/tmp@"+m.Dom, nil)
	do(http.MethodPost, "/api/v1/accounts/"+m.Carol+"/aliases", map[string]any{"alias": "carol@" + m.Gone})

	m.Team = "team@" + m.Dom
	do(http.MethodPost, "/api/v1/domains/"+m.Dom+"/lists", map[string]any{"address": m.Team, "display_name": "The Team",
		"members": []string{m.Alice, m.Bob, m.Carol, "ext@partner.example"}})
	do(http.MethodDelete, "/api/v1/lists/"+m.Team+"/members", map[string]any{"members": []string{m.Bob}})
	do(http.MethodPost, "/api/v1/lists/"+m.Team+"/aliases", map[string]any{"aliases": []string{"team@" + m.Other}})
	do(http.MethodPost, "/api/v1/domains/"+m.Dom+"/lists", map[string]any{"address": "hidden@" + m.Dom, "hide_in_gal": true,
		"members": []string{m.Alice}})
	do(http.MethodPost, "/api/v1/domains/"+m.Gone+"/lists", map[string]any{"address": "old@" + m.Gone, "members": []string{dave}})

	dyn := "dyn@" + m.Dom
	do(http.MethodPost, "/api/v1/domains/"+m.Dom+"/lists", map[string]any{"address": dyn, "members": []string{m.Alice}})
	do(http.MethodPut, "/api/v1/lists/"+dyn+"/dynamic", map[string]any{"member_url": "ldap:///??sub?(mail=*)", "drop_members": true})
	e.CreateAccount(t, m.Dom, map[string]any{"local_part": "erin", "status": "closed", "display_name": "Erin"}) // not in the GAL
	tmp := apitest.Unique("tmp")
	do(http.MethodPost, "/api/v1/cos", map[string]any{"name": tmp})
	do(http.MethodDelete, "/api/v1/cos/"+tmp, nil)
	do(http.MethodPost, "/api/v1/cos", map[string]any{"name": tmp, "description": "second life"})

	m.Room = "room@" + m.Dom
	do(http.MethodPost, "/api/v1/domains/"+m.Dom+"/resources", map[string]any{"address": m.Room, "type": "location",
		"display_name": "Room 1", "capacity": 8})
	do(http.MethodPatch, "/api/v1/resources/"+m.Room, map[string]any{"display_name": "Room One"})
	do(http.MethodPost, "/api/v1/domains/"+m.Gone+"/resources", map[string]any{"address": "van@" + m.Gone, "type": "equipment"})

	m.Host = "webmail." + m.Dom
	do(http.MethodPost, "/api/v1/domains/"+m.Dom+"/virtual-hosts", map[string]any{"host": m.Host})
	do(http.MethodPut, "/api/v1/domains/"+m.Dom+"/virtual-hosts/"+m.Host+"/certificate", certFiles(t, m.Host))
	do(http.MethodPost, "/api/v1/domains/"+m.Gone+"/virtual-hosts", map[string]any{"host": "www." + m.Gone})
	do(http.MethodPut, "/api/v1/domains/"+m.Dom+"/gal", map[string]any{"mode": "internal"})

	// Usage as the mail store reports it. Judged against the effective limits: alice at 90 % of
	// her own quota (her COS, the domain's default, warns at 80 %), bob at 80 % of his; the domain
	// at 90 % of its quota (the global 90 %). The COS then warns at 85 %: alice stays over, bob
	// is not any more. Bob's usage is forgotten with him, dave's with his domain.
	tok := do(http.MethodPost, "/api/v1/service-tokens", map[string]any{"name": "mailstore", "role": "mailstore"}).JSON(t)["token"].(string)
	ok(e.Do(t, http.MethodPost, "/api/v1/usage", tok, map[string]any{"reports": []map[string]any{
		{"address": m.Alice, "used_bytes": 9*(2<<30)/10 + 1}, {"address": m.Bob, "used_bytes": 4 << 20},
		{"address": m.Carol, "used_bytes": 1}, {"address": dave, "used_bytes": 10}}}), "usage")
	do(http.MethodPatch, "/api/v1/cos/"+m.COS, map[string]any{"quota_warn_percent": 85})

	do(http.MethodDelete, "/api/v1/accounts/"+m.Bob, nil)
	e.CreateAccount(t, m.Dom, map[string]any{"local_part": "bob", "display_name": "Bob again"}) // the stream goes on
	r := do(http.MethodDelete, "/api/v1/domains/"+m.Gone, nil)
	jobPath := r.Header.Get("Location")
	require.Eventually(t, func() bool {
		state := e.Do(t, http.MethodGet, jobPath, e.AdminToken, nil).JSON(t)["state"]
		require.NotEqual(t, "failed", state)
		return state == "succeeded"
	}, 90*time.Second, 50*time.Millisecond)
	e.WaitCaughtUp(t)
	return m
}

func certFiles(t *testing.T, host string) map[string]any {
	t.Helper()
	key := func() *ecdsa.PrivateKey {
		k, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
		require.NoError(t, err)
		return k
	}
	sign := func(tmpl, parent *x509.Certificate, pub any, k *ecdsa.PrivateKey) *x509.Certificate {
		der, err := x509.CreateCertificate(rand.Reader, tmpl, parent, pub, k)
		require.NoError(t, err)
		c, err := x509.ParseCertificate(der)
		require.NoError(t, err)
		return c
	}
	from, to := time.Now().Add(-time.Hour), time.Now().AddDate(0, 3, 0)
	caKey, leafKey := key(), key()
	caTmpl := &x509.Certificate{SerialNumber: big.NewInt(1), Subject: pkix.Name{CommonName: "Readcheck CA"},
		NotBefore: from, NotAfter: to.AddDate(1, 0, 0), IsCA: true, BasicConstraintsValid: true, KeyUsage: x509.KeyUsageCertSign}
	ca := sign(caTmpl, caTmpl, caKey.Public(), caKey)
	leaf := sign(&x509.Certificate{SerialNumber: big.NewInt(2), Subject: pkix.Name{CommonName: host}, DNSNames: []string{host},
		NotBefore: from, NotAfter: to, KeyUsage: x509.KeyUsageDigitalSignature,
		ExtKeyUsage: []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth}}, ca, leafKey.Public(), caKey)
	der, err := x509.MarshalPKCS8PrivateKey(leafKey)
	require.NoError(t, err)
	p := func(typ string, b []byte) string { return string(pem.EncodeToMemory(&pem.Block{Type: typ, Bytes: b})) }
	return map[string]any{"certificate": p("CERTIFICATE", leaf.Raw), "ca_chain": p("CERTIFICATE", ca.Raw),
		"private_key": p("PRIVATE KEY", der)}
}

func table(t *testing.T, rep readcheck.Report, name string) readcheck.TableReport {
	t.Helper()
	for _, tr := range rep.Tables {
		if tr.Table == name {
			return tr
		}
	}
	t.Fatalf("no table %s in the report", name)
	return readcheck.TableReport{}
}

func newEnv(t *testing.T) *apitest.Env {
	// The machine the suite runs on is loaded: a write waits for its read models longer than the
	// default 5 s rather than answer 503.
	return apitest.NewWith(t, apitest.Options{Workers: &apitest.Workers{NoACME: true},
		Config: api.Config{ReadYourWritesTimeout: 4 * time.Minute, RequestTimeout: 5 * time.Minute}})
}

// After a realistic mix through the API the read models equal the events, table by table, and
// every table had rows to compare.
func TestCheckPassesAfterARealisticMix(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	m := mix(t, e)
	ctx := context.Background()

	rep, err := readcheck.Check(ctx, e.Pool, "public")
	require.NoError(t, err)
	for _, tr := range rep.Tables {
		require.Nil(t, tr.First, "%s: %v", tr.Table, tr.First)
		require.Positive(t, tr.Rows, "%s has rows to compare", tr.Table)
	}
	require.True(t, rep.OK())
	require.Len(t, rep.Tables, len(readcheck.Tables))
	var events int64
	require.NoError(t, e.Pool.QueryRow(ctx, `SELECT count(*) FROM events WHERE stream_type IN
		('config', 'cos', 'domain', 'account', 'list', 'resource', 'virtual_host', 'gal')`).Scan(&events))
	require.Equal(t, events, rep.Checkpoints[0].Events, "the admin projection's fold covers every event")

	// The removed domain left only tombstones; the outside account's alias in it is gone.
	var tombs int
	require.NoError(t, e.Pool.QueryRow(ctx, `SELECT count(*) FROM rm_tombstones WHERE stream_id LIKE '%' || $1`, m.Gone).Scan(&tombs))
	require.Equal(t, 5, tombs, "domain, account, list, resource, virtual host")
	require.Equal(t, int64(5), table(t, rep, "rm_tombstones").Rows)

	// The judgements the check recomputed are the ones described above (so that a check that
	// judged nothing, or everything over, could not pass).
	over := func(q string, args ...any) bool {
		var b bool
		require.NoError(t, e.Pool.QueryRow(ctx, q, args...).Scan(&b))
		return b
	}
	require.True(t, over(`SELECT over_warn FROM mailbox_usage WHERE address = $1`, m.Alice))
	require.False(t, over(`SELECT over_warn FROM mailbox_usage WHERE address = $1`, m.Bob))
	require.True(t, over(`SELECT over_warn AND limit_bytes = 2147483648 AND warn_percent = 90 FROM domain_usage WHERE domain = $1`, m.Dom))
	require.Equal(t, int64(4), table(t, rep, "mailbox_usage").Rows)
	require.Equal(t, int64(2), table(t, rep, "domain_usage").Rows, "the removed domain's row is not judged")
}

// A row changed, deleted or added behind the projections' back is named: table, key, column
// (a state's field by its path), expected and stored value; the other tables still pass.
func TestCheckNamesRowsChangedBehindTheProjection(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	m := mix(t, e)
	ctx := context.Background()
	e.StopProjections() // nothing rewrites the rows from here on
	for _, q := range []string{
		`UPDATE rm_accounts SET display_name = 'Mallory' WHERE address = '` + m.Alice + `'`,
		`UPDATE rm_resources SET state = jsonb_set(state, '{DisplayName}', '"Room Two"') WHERE address = '` + m.Room + `'`,
		`DELETE FROM rm_aliases WHERE alias = '` + m.AliceAlias + `'`,
		`INSERT INTO rm_list_members (list, member) VALUES ('` + m.Team + `', 'intruder@evil.example')`,
		`UPDATE rm_virtual_hosts SET not_after = not_after + interval '1 year' WHERE host = '` + m.Host + `'`,
		`UPDATE gal_entries SET display_name = 'Nobody' WHERE address = '` + m.Carol + `' AND source = 'internal'`,
		`DELETE FROM rm_tombstones WHERE stream_id = 'domain-` + m.Gone + `'`,
		`UPDATE mailbox_usage SET over_warn = false WHERE address = '` + m.Alice + `'`,
		`UPDATE domain_usage SET warn_percent = 95 WHERE domain = '` + m.Dom + `'`,
	} {
		_, err := e.Pool.Exec(ctx, q)
		require.NoError(t, err, q)
	}
	rep, err := readcheck.Check(ctx, e.Pool, "public")
	require.NoError(t, err)
	require.False(t, rep.OK())

	acc := table(t, rep, "rm_accounts")
	require.Equal(t, int64(1), acc.Differences)
	require.Equal(t, readcheck.Difference{Kind: readcheck.Differs, Key: m.Alice, Column: "display_name",
		Expected: `"Alice Ä."`, Got: `"Mallory"`}, *acc.First)
	require.Equal(t, readcheck.Difference{Kind: readcheck.Differs, Key: m.Room, Column: "state.DisplayName",
		Expected: `"Room One"`, Got: `"Room Two"`}, *table(t, rep, "rm_resources").First)
	require.Equal(t, readcheck.Difference{Kind: readcheck.Missing, Key: m.AliceAlias}, *table(t, rep, "rm_aliases").First)
	require.Equal(t, readcheck.Difference{Kind: readcheck.Extra, Key: m.Team + " / intruder@evil.example"},
		*table(t, rep, "rm_list_members").First)
	vh := table(t, rep, "rm_virtual_hosts").First
	require.Equal(t, m.Dom+" / "+m.Host, vh.Key)
	require.Equal(t, "not_after", vh.Column)
	gal := table(t, rep, "gal_entries").First
	require.Equal(t, readcheck.Difference{Kind: readcheck.Differs, Key: m.Other + " / " + m.Carol, Column: "display_name",
		Expected: `"Carol"`, Got: `"Nobody"`}, *gal)
	require.Equal(t, readcheck.Difference{Kind: readcheck.Missing, Key: "domain-" + m.Gone}, *table(t, rep, "rm_tombstones").First)
	require.Equal(t, readcheck.Difference{Kind: readcheck.Differs, Key: m.Alice, Column: "over_warn", Expected: "true", Got: "false"},
		*table(t, rep, "mailbox_usage").First)
	require.Equal(t, readcheck.Difference{Kind: readcheck.Differs, Key: m.Dom, Column: "warn_percent", Expected: "90", Got: "95"},
		*table(t, rep, "domain_usage").First)
	for _, name := range []string{"rm_config", "rm_cos", "rm_domains", "rm_lists", "rm_gal", "gal_tokens"} {
		require.Nil(t, table(t, rep, name).First, name)
	}
}

// A projection merely behind is no difference: the tables are compared with the events up to its
// checkpoint, which the report gives. The events after it are not folded.
func TestCheckComparesAtTheCheckpoint(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	ctx := context.Background()
	dom := e.CreateDomain(t, nil)
	e.CreateAccount(t, dom, map[string]any{"local_part": "first"})
	e.WaitCaughtUp(t)
	e.StopProjections()
	addr, err := domain.ParseAddress("later@" + dom)
	require.NoError(t, err)
	_, err = e.Commands.CreateAccount(ctx, commands.Request{Meta: eventstore.Metadata{Actor: "test"}},
		domain.CreateAccount{Address: addr}, commands.Credentials{})
	require.NoError(t, err)

	rep, err := readcheck.Check(ctx, e.Pool, "public")
	require.NoError(t, err)
	require.True(t, rep.OK(), "%+v", rep.Tables)
	var head int64
	require.NoError(t, e.Pool.QueryRow(ctx, `SELECT max(position) FROM events`).Scan(&head))
	for _, c := range rep.Checkpoints {
		require.Less(t, c.Position, head, "%s is behind", c.Projection)
	}
}

// The check reads another schema's tables (a rebuild's shadow copies) and that schema's own
// checkpoints: a change there is found there only.
func TestCheckReadsTheNamedSchema(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	m := mix(t, e)
	ctx := context.Background()
	e.StopProjections()
	tx, err := e.Pool.Begin(ctx)
	require.NoError(t, err)
	_, err = tx.Exec(ctx, `CREATE SCHEMA shadow`)
	require.NoError(t, err)
	for _, tbl := range append([]string{"projection_checkpoints"}, tableNames()...) {
		_, err = tx.Exec(ctx, `CREATE TABLE shadow.`+tbl+` (LIKE public.`+tbl+` INCLUDING ALL); INSERT INTO shadow.`+tbl+
			` SELECT * FROM public.`+tbl)
		require.NoError(t, err, tbl)
	}
	require.NoError(t, tx.Commit(ctx))
	rep, err := readcheck.Check(ctx, e.Pool, "shadow")
	require.NoError(t, err)
	require.True(t, rep.OK(), "%+v", rep.Tables)

	_, err = e.Pool.Exec(ctx, `UPDATE shadow.rm_lists SET member_count = 7 WHERE address = $1`, m.Team)
	require.NoError(t, err)
	rep, err = readcheck.Check(ctx, e.Pool, "shadow")
	require.NoError(t, err)
	require.Equal(t, readcheck.Difference{Kind: readcheck.Differs, Key: m.Team, Column: "member_count", Expected: `"3"`, Got: `"7"`},
		*table(t, rep, "rm_lists").First)
	rep, err = readcheck.Check(ctx, e.Pool, "public")
	require.NoError(t, err)
	require.True(t, rep.OK())

	// A table the shadow does not have is not checked, and said so; a schema that is not there,
	// or holds none of the tables, is an error, not a pass.
	_, err = e.Pool.Exec(ctx, `DROP TABLE shadow.gal_tokens`)
	require.NoError(t, err)
	rep, err = readcheck.Check(ctx, e.Pool, "shadow")
	require.NoError(t, err)
	require.True(t, table(t, rep, "gal_tokens").Absent)
	require.False(t, table(t, rep, "gal_entries").Absent)
	_, err = readcheck.Check(ctx, e.Pool, "nowhere")
	require.ErrorContains(t, err, `no schema "nowhere"`)
	_, err = e.Pool.Exec(ctx, `CREATE SCHEMA empty`)
	require.NoError(t, err)
	_, err = readcheck.Check(ctx, e.Pool, "empty")
	require.ErrorContains(t, err, "none of the read-model tables")

	// A shadow whose checkpoints say nothing was projected yet has nothing to hold.
	_, err = e.Pool.Exec(ctx, `DELETE FROM shadow.projection_checkpoints`)
	require.NoError(t, err)
	rep, err = readcheck.Check(ctx, e.Pool, "shadow")
	require.NoError(t, err)
	require.Equal(t, readcheck.Extra, table(t, rep, "rm_accounts").First.Kind)

	// In a caller's transaction: only one that keeps one snapshot.
	err = pgx.BeginTxFunc(ctx, e.Pool, pgx.TxOptions{IsoLevel: pgx.ReadCommitted}, func(tx pgx.Tx) error {
		_, err := readcheck.Check(ctx, tx, "public")
		return err
	})
	require.ErrorContains(t, err, "read committed")
	err = pgx.BeginTxFunc(ctx, e.Pool, pgx.TxOptions{IsoLevel: pgx.RepeatableRead}, func(tx pgx.Tx) error {
		rep, err := readcheck.Check(ctx, tx, "public")
		require.True(t, rep.OK())
		return err
	})
	require.NoError(t, err)
}

func tableNames() []string {
	var out []string
	for _, t := range readcheck.Tables {
		out = append(out, t.Table)
	}
	return out
}
