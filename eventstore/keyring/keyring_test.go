package keyring_test

import (
	"context"
	"crypto/rand"
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/stretchr/testify/require"

	"mailplane/eventstore"
	"mailplane/eventstore/keyring"
	"mailplane/migrations/testdb"
)

type passwordSet struct {
	Account string `json:"account"`
	Secret  string `json:"secret"`
}

func (passwordSet) EventType() string { return "PasswordSet" }

func masterKey(t *testing.T) []byte {
	k := make([]byte, 32)
	_, err := rand.Read(k)
	require.NoError(t, err)
	return k
}

func TestSealOpenAndShred(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	pool := testdb.New(t)
	kr, err := keyring.New(pool, masterKey(t))
	require.NoError(t, err)
	reg, err := eventstore.NewRegistry([]eventstore.Event{passwordSet{}}, nil)
	require.NoError(t, err)
	store := eventstore.NewPostgres(pool, reg)

	secretA, err := kr.Seal(ctx, "a.example", []byte("$argon2id$hash-of-alice"))
	require.NoError(t, err)
	require.NotContains(t, secretA, "argon2id", "sealed, not clear")
	secretB, err := kr.Seal(ctx, "b.example", []byte("hash-of-bob"))
	require.NoError(t, err)

	stream := func(id, domain string) eventstore.Stream {
		return eventstore.Stream{ID: id, Type: "account", Domain: domain}
	}
	_, err = store.Append(ctx, stream("account-alice@a.example", "a.example"), eventstore.NoStream, eventstore.Metadata{},
		passwordSet{Account: "alice@a.example", Secret: secretA})
	require.NoError(t, err)
	_, err = store.Append(ctx, stream("account-bob@b.example", "b.example"), eventstore.NoStream, eventstore.Metadata{},
		passwordSet{Account: "bob@b.example", Secret: secretB})
	require.NoError(t, err)

	plain, err := kr.Open(ctx, secretA)
	require.NoError(t, err)
	require.Equal(t, "$argon2id$hash-of-alice", string(plain))

	require.NoError(t, kr.Destroy(ctx, pool, "a.example"))

	// Everything still replays; only the shredded secret is gone.
	evs, err := store.Load(ctx, "account-alice@a.example", eventstore.LoadOptions{})
	require.NoError(t, err)
	require.Len(t, evs, 1)
	ev, err := reg.Decode(evs[0])
	require.NoError(t, err)
	require.Equal(t, "alice@a.example", ev.(passwordSet).Account)
	_, err = kr.Open(ctx, ev.(passwordSet).Secret)
	require.ErrorIs(t, err, keyring.ErrShredded)

	plain, err = kr.Open(ctx, secretB)
	require.NoError(t, err, "other domains' keys are untouched")
	require.Equal(t, "hash-of-bob", string(plain))

	rep, err := store.Verify(ctx)
	require.NoError(t, err)
	require.True(t, rep.OK(), "shredding does not touch the chain")

	// A re-created domain gets a new key; the old secret stays unreadable.
	secretA2, err := kr.Seal(ctx, "a.example", []byte("new"))
	require.NoError(t, err)
	plain, err = kr.Open(ctx, secretA2)
	require.NoError(t, err)
	require.Equal(t, "new", string(plain))
	_, err = kr.Open(ctx, secretA)
	require.ErrorIs(t, err, keyring.ErrShredded)

	// Without the master key nothing opens.
	other, err := keyring.New(pool, masterKey(t))
	require.NoError(t, err)
	_, err = other.Open(ctx, secretB)
	require.Error(t, err)

	_, err = kr.Open(ctx, "plain text")
	require.ErrorIs(t, err, keyring.ErrNotSealed)
	var js map[string]any
	require.Error(t, json.Unmarshal([]byte(secretA), &js))
}

func TestConcurrentFirstSealsShareOneKey(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	pool := testdb.New(t)
	kr, err := keyring.New(pool, masterKey(t))
	require.NoError(t, err)
	errs := make(chan error, 16)
	for i := 0; i < 16; i++ {
		go func() {
			s, err := kr.Seal(ctx, "c.example", []byte("x"))
			if err == nil {
				_, err = kr.Open(ctx, s)
			}
			errs <- err
		}()
	}
	for i := 0; i < 16; i++ {
		require.NoError(t, <-errs)
	}
	var n int
	require.NoError(t, pool.QueryRow(ctx, `SELECT count(*) FROM data_keys WHERE scope = 'c.example'`).Scan(&n))
	require.Equal(t, 1, n)
}

func TestLoadMasterKey(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	raw := masterKey(t)
	p := filepath.Join(dir, "raw")
	require.NoError(t, os.WriteFile(p, raw, 0o600))
	k, err := keyring.LoadMasterKey(p)
	require.NoError(t, err)
	require.Equal(t, raw, k)
	p = filepath.Join(dir, "short")
	require.NoError(t, os.WriteFile(p, []byte("too short\n"), 0o600))
	_, err = keyring.LoadMasterKey(p)
	require.Error(t, err)
}

// Two processes share the data keys; one destroys a domain's key (the domain was removed). The
// other, which has just sealed with that key and so has it cached, must not seal with it again:
// its next Seal finds the key destroyed and makes a new one, and nothing it seals afterwards is
// lost to the shredding.
func TestSealNeverUsesADestroyedCachedKey(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	pool := testdb.New(t)
	master := masterKey(t)
	cached, err := keyring.New(pool, master)
	require.NoError(t, err)
	remover, err := keyring.New(pool, master)
	require.NoError(t, err)

	before, err := cached.Seal(ctx, "gone.example", []byte("old secret"))
	require.NoError(t, err)
	require.NoError(t, remover.Destroy(ctx, pool, "gone.example"))
	_, err = cached.Open(ctx, before)
	require.ErrorIs(t, err, keyring.ErrShredded)

	after, err := cached.Seal(ctx, "gone.example", []byte("new secret"))
	require.NoError(t, err)
	keyID := func(v string) string {
		rest := v[len("mpenc:v1:"):]
		return rest[:strings.IndexByte(rest, ':')]
	}
	require.NotEqual(t, keyID(before), keyID(after), "sealed with a new key, not the destroyed one in the cache")
	plain, err := remover.Open(ctx, after)
	require.NoError(t, err, "what was sealed after the destroy opens")
	require.Equal(t, "new secret", string(plain))
	var live int
	require.NoError(t, pool.QueryRow(ctx, `SELECT count(*) FROM data_keys WHERE scope = 'gone.example' AND destroyed_at IS NULL`).Scan(&live))
	require.Equal(t, 1, live)
}
