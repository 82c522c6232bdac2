// Package keyring keeps secrets out of events in clear: envelope encryption with one data key
// per scope (a mail domain), each wrapped by the master key, AES-256-GCM throughout. Destroying a
// scope's key makes every secret encrypted with it unreadable for good (crypto-shredding), while
// the events that carry them stay intact and their hash chains still verify.
package keyring

import (
	"context"
	"crypto/aes"
	"crypto/cipher"
	"crypto/hkdf"
	"crypto/rand"
	"crypto/sha256"
	"encoding/base64"
	"encoding/binary"
	"encoding/hex"
	"errors"
	"fmt"
	"os"
	"strconv"
	"strings"
	"sync"

	"github.com/jackc/pgx/v5"

	"mailplane/eventstore"
)

// prefix marks a sealed value; the key id that opens it follows.
const prefix = "mpenc:v1:"

var (
	// ErrShredded means the data key that sealed a value was destroyed.
	ErrShredded = errors.New("keyring: the key for this secret was destroyed")
	// ErrNotSealed means a value is not something this keyring produced.
	ErrNotSealed = errors.New("keyring: not a sealed value")
)

// Keyring seals and opens secrets.
type Keyring struct {
	db     eventstore.DBTX
	master cipher.AEAD

	mu    sync.Mutex
	cache map[string]cachedKey // scope → the key last found live, for Seal (checked each time)
}

type cachedKey struct {
	id   int64
	aead cipher.AEAD
}

// New returns a keyring over the data_keys table, wrapping data keys with the 32-byte master key.
func New(db eventstore.DBTX, masterKey []byte) (*Keyring, error) {
	if len(masterKey) != 32 {
		return nil, fmt.Errorf("keyring: master key must be 32 bytes, got %d", len(masterKey))
	}
	aead, err := newAEAD(masterKey)
	if err != nil {
		return nil, err
	}
	return &Keyring{db: db, master: aead, cache: make(map[string]cachedKey)}, nil
}

// LoadMasterKey reads a master key file: 32 raw bytes, or their base64 or hex spelling.
func LoadMasterKey(path string) ([]byte, error) {
	b, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("keyring: read master key: %w", err)
	}
	if len(b) == 32 {
		return b, nil
	}
	s := strings.TrimSpace(string(b))
	if k, err := base64.StdEncoding.DecodeString(s); err == nil && len(k) == 32 {
		return k, nil
	}
	if k, err := hex.DecodeString(s); err == nil && len(k) == 32 {
		return k, nil
	}
	return nil, fmt.Errorf("keyring: %s does not hold a 32-byte key (raw, base64 or hex)", path)
}

// Seal encrypts plaintext with the scope's live data key, creating one if the scope has none.
// Every call asks the database which key is live: a key destroyed by another process (a domain
// removed) is never used again, not even by a process that has it cached. The cache only saves
// unwrapping the key again; the check costs one indexed read.
func (k *Keyring) Seal(ctx context.Context, scope string, plaintext []byte) (string, error) {
	var liveID int64
	err := k.db.QueryRow(ctx, `SELECT id FROM data_keys WHERE scope = $1 AND destroyed_at IS NULL`, scope).Scan(&liveID)
	if err != nil && !errors.Is(err, pgx.ErrNoRows) {
		return "", fmt.Errorf("keyring: load key for %s: %w", scope, err)
	}
	k.mu.Lock()
	c, ok := k.cache[scope]
	k.mu.Unlock()
	if !ok || liveID == 0 || c.id != liveID {
		id, key, err := k.liveKey(ctx, scope)
		if err != nil {
			return "", err
		}
		aead, err := newAEAD(key)
		if err != nil {
			return "", err
		}
		c = cachedKey{id: id, aead: aead}
		k.mu.Lock()
		k.cache[scope] = c
		k.mu.Unlock()
	}
	id, aead := c.id, c.aead
	idStr := strconv.FormatInt(id, 10)
	sealed, err := seal(aead, plaintext, []byte(idStr))
	if err != nil {
		return "", err
	}
	return prefix + idStr + ":" + base64.RawStdEncoding.EncodeToString(sealed), nil
}

// Open decrypts a sealed value. It returns ErrShredded when its key was destroyed.
func (k *Keyring) Open(ctx context.Context, value string) ([]byte, error) {
	return k.open(ctx, value, nil)
}

// Opener opens many values with one read of each data key: for a batch of work (a projection
// writing a thousand entries), not for longer — a key destroyed meanwhile still opens what the
// opener has already read it for, until the opener is dropped.
type Opener struct {
	k    *Keyring
	keys map[int64]cipher.AEAD
}

// Opener returns an opener with an empty cache.
func (k *Keyring) Opener() *Opener { return &Opener{k: k, keys: map[int64]cipher.AEAD{}} }

// Open decrypts a sealed value, as Keyring.Open does.
func (o *Opener) Open(ctx context.Context, value string) ([]byte, error) {
	return o.k.open(ctx, value, o.keys)
}

func (k *Keyring) open(ctx context.Context, value string, cache map[int64]cipher.AEAD) ([]byte, error) {
	rest, ok := strings.CutPrefix(value, prefix)
	if !ok {
		return nil, ErrNotSealed
	}
	idStr, body, ok := strings.Cut(rest, ":")
	id, err := strconv.ParseInt(idStr, 10, 64)
	if !ok || err != nil {
		return nil, ErrNotSealed
	}
	sealed, err := base64.RawStdEncoding.DecodeString(body)
	if err != nil {
		return nil, ErrNotSealed
	}
	aead := cache[id]
	if aead == nil {
		var wrapped []byte
		err = k.db.QueryRow(ctx, `SELECT wrapped_key FROM data_keys WHERE id = $1`, id).Scan(&wrapped)
		if errors.Is(err, pgx.ErrNoRows) {
			return nil, ErrShredded
		}
		if err != nil {
			return nil, fmt.Errorf("keyring: load key %d: %w", id, err)
		}
		if wrapped == nil {
			return nil, ErrShredded
		}
		key, err := open(k.master, wrapped, []byte(idStr))
		if err != nil {
			return nil, fmt.Errorf("keyring: unwrap key %d: %w", id, err)
		}
		if aead, err = newAEAD(key); err != nil {
			return nil, err
		}
		if cache != nil {
			cache[id] = aead
		}
	}
	plain, err := open(aead, sealed, []byte(idStr))
	if err != nil {
		return nil, fmt.Errorf("keyring: open: %w", err)
	}
	return plain, nil
}

// Destroy shreds the scope's live data key through q (e.g. in the transaction that removes the
// domain). Values sealed with it can never be opened again; a later Seal makes a new key.
func (k *Keyring) Destroy(ctx context.Context, q eventstore.DBTX, scope string) error {
	k.mu.Lock()
	delete(k.cache, scope)
	k.mu.Unlock()
	_, err := q.Exec(ctx, `UPDATE data_keys SET wrapped_key = NULL, destroyed_at = now()
		WHERE scope = $1 AND destroyed_at IS NULL`, scope)
	if err != nil {
		return fmt.Errorf("keyring: destroy %s: %w", scope, err)
	}
	return nil
}

// liveKey returns the scope's live key, creating it on first use. Creation commits on its own
// (not in the caller's command transaction), so that a command's append stays its first write.
func (k *Keyring) liveKey(ctx context.Context, scope string) (int64, []byte, error) {
	for attempt := 0; attempt < 3; attempt++ {
		var id int64
		var wrapped []byte
		err := k.db.QueryRow(ctx, `SELECT id, wrapped_key FROM data_keys WHERE scope = $1 AND destroyed_at IS NULL`, scope).Scan(&id, &wrapped)
		if err == nil {
			key, err := open(k.master, wrapped, []byte(strconv.FormatInt(id, 10)))
			if err != nil {
				return 0, nil, fmt.Errorf("keyring: unwrap key %d (wrong master key?): %w", id, err)
			}
			return id, key, nil
		}
		if !errors.Is(err, pgx.ErrNoRows) {
			return 0, nil, fmt.Errorf("keyring: load key for %s: %w", scope, err)
		}
		key := make([]byte, 32)
		if _, err := rand.Read(key); err != nil {
			return 0, nil, err
		}
		var idBytes [8]byte
		if _, err := rand.Read(idBytes[:]); err != nil {
			return 0, nil, err
		}
		id = int64(binary.BigEndian.Uint64(idBytes[:]) >> 1)
		wrapped, err = seal(k.master, key, []byte(strconv.FormatInt(id, 10)))
		if err != nil {
			return 0, nil, err
		}
		tag, err := k.db.Exec(ctx, `INSERT INTO data_keys (id, scope, wrapped_key) VALUES ($1, $2, $3)
			ON CONFLICT (scope) WHERE destroyed_at IS NULL DO NOTHING`, id, scope, wrapped)
		if err != nil {
			return 0, nil, fmt.Errorf("keyring: create key for %s: %w", scope, err)
		}
		if tag.RowsAffected() == 0 {
			continue // another process created it first: use that one
		}
		return id, key, nil
	}
	return 0, nil, fmt.Errorf("keyring: could not obtain a key for %s", scope)
}

func newAEAD(key []byte) (cipher.AEAD, error) {
	block, err := aes.NewCipher(key)
	if err != nil {
		return nil, fmt.Errorf("keyring: %w", err)
	}
	return cipher.NewGCM(block)
}

// seal returns nonce ‖ ciphertext.
func seal(aead cipher.AEAD, plaintext, ad []byte) ([]byte, error) {
	nonce := make([]byte, aead.NonceSize(), aead.NonceSize()+len(plaintext)+aead.Overhead())
	if _, err := rand.Read(nonce); err != nil {
		return nil, err
	}
	return aead.Seal(nonce, nonce, plaintext, ad), nil
}

func open(aead cipher.AEAD, sealed, ad []byte) ([]byte, error) {
	if len(sealed) < aead.NonceSize() {
		return nil, errors.New("sealed value too short")
	}
	return aead.Open(nil, sealed[:aead.NonceSize()], sealed[aead.NonceSize():], ad)
}

// Derive returns a 32-byte key for one purpose (HKDF-SHA-256 of the master key), so that the
// event store's chain key, the request-hash key and the anchor signing key are all bound to the
// master key, which never enters the database, and none of them reveals another.
func Derive(masterKey []byte, purpose string) ([]byte, error) {
	if len(masterKey) != 32 {
		return nil, fmt.Errorf("keyring: master key must be 32 bytes, got %d", len(masterKey))
	}
	k, err := hkdf.Key(sha256.New, masterKey, nil, "mailplane "+purpose, 32)
	if err != nil {
		return nil, fmt.Errorf("keyring: derive %s: %w", purpose, err)
	}
	return k, nil
}
