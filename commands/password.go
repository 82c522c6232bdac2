package commands

import (
	"context"
	"crypto/rand"
	"crypto/sha1"
	"crypto/sha512"
	"crypto/subtle"
	"encoding/base64"
	"errors"
	"fmt"
	"hash"
	"runtime"
	"strings"

	"golang.org/x/crypto/argon2"
	"golang.org/x/crypto/bcrypt"
)

// Argon2Params are the argon2id cost parameters for new hashes.
type Argon2Params struct {
	MemoryKiB   uint32
	Iterations  uint32
	Parallelism uint8
}

// DefaultArgon2 follows OWASP's first recommendation: 19 MiB, two passes, one lane (about
// 40 ms here). Slow on purpose.
var DefaultArgon2 = Argon2Params{MemoryKiB: 19 * 1024, Iterations: 2, Parallelism: 1}

// Hasher hashes and verifies passwords. At most `slots` hashes run at once, so that memory stays
// flat however many requests arrive: each argon2id hash holds MemoryKiB while it runs.
type Hasher struct {
	params Argon2Params
	slots  chan struct{}
}

// NewHasher returns a hasher running at most concurrency hashes at a time (0: one per CPU).
func NewHasher(p Argon2Params, concurrency int) *Hasher {
	if concurrency <= 0 {
		concurrency = runtime.GOMAXPROCS(0)
	}
	return &Hasher{params: p, slots: make(chan struct{}, concurrency)}
}

func (h *Hasher) acquire(ctx context.Context) error {
	select {
	case h.slots <- struct{}{}:
		return nil
	case <-ctx.Done():
		return ctx.Err()
	}
}

func (h *Hasher) release() { <-h.slots }

// Hash returns a PHC-format argon2id hash of password.
func (h *Hasher) Hash(ctx context.Context, password string) (string, error) {
	salt := make([]byte, 16)
	if _, err := rand.Read(salt); err != nil {
		return "", err
	}
	if err := h.acquire(ctx); err != nil {
		return "", err
	}
	defer h.release()
	p := h.params
	key := argon2.IDKey([]byte(password), salt, p.Iterations, p.MemoryKiB, p.Parallelism, 32)
	return fmt.Sprintf("$argon2id$v=%d$m=%d,t=%d,p=%d$%s$%s", argon2.Version, p.MemoryKiB, p.Iterations, p.Parallelism,
		base64.RawStdEncoding.EncodeToString(salt), base64.RawStdEncoding.EncodeToString(key)), nil
}

// ErrUnsupportedHash means a password hash is in no scheme mailplane can verify.
var ErrUnsupportedHash = errors.New("unsupported password hash: use argon2id (PHC), bcrypt, {SSHA} or {SSHA512}")

// CheckHashFormat accepts the hash forms a migration may bring: argon2id/argon2i in PHC form
// (optionally with OpenLDAP's {ARGON2} prefix), bcrypt, {SSHA} and {SSHA512}.
func CheckHashFormat(stored string) error {
	switch scheme(stored) {
	case "argon2":
		_, _, _, err := parseArgon2(strings.TrimPrefix(stored, "{ARGON2}"))
		return err
	case "bcrypt":
		_, err := bcrypt.Cost([]byte(stored))
		if err != nil {
			return fmt.Errorf("%w: %v", ErrUnsupportedHash, err)
		}
		return nil
	case "ssha", "ssha512":
		_, _, err := saltedDigest(stored)
		return err
	}
	return ErrUnsupportedHash
}

// Verify checks password against a stored hash. needsRehash is true when the hash is not an
// argon2id hash with the current parameters: the caller then stores a new one.
func (h *Hasher) Verify(ctx context.Context, stored, password string) (ok, needsRehash bool, err error) {
	switch scheme(stored) {
	case "argon2":
		variant, p, salt, key, err := parseArgon2Full(strings.TrimPrefix(stored, "{ARGON2}"))
		if err != nil {
			return false, false, err
		}
		if err := h.acquire(ctx); err != nil {
			return false, false, err
		}
		var got []byte
		if variant == "argon2id" {
			got = argon2.IDKey([]byte(password), salt, p.Iterations, p.MemoryKiB, p.Parallelism, uint32(len(key)))
		} else {
			got = argon2.Key([]byte(password), salt, p.Iterations, p.MemoryKiB, p.Parallelism, uint32(len(key)))
		}
		h.release()
		ok := subtle.ConstantTimeCompare(got, key) == 1
		return ok, ok && (variant != "argon2id" || p != h.params || strings.HasPrefix(stored, "{")), nil
	case "bcrypt":
		if err := h.acquire(ctx); err != nil {
			return false, false, err
		}
		err := bcrypt.CompareHashAndPassword([]byte(stored), []byte(password))
		h.release()
		if errors.Is(err, bcrypt.ErrMismatchedHashAndPassword) {
			return false, false, nil
		}
		return err == nil, err == nil, err
	case "ssha", "ssha512":
		digest, salt, err := saltedDigest(stored)
		if err != nil {
			return false, false, err
		}
		var hf hash.Hash = sha1.New()
		if scheme(stored) == "ssha512" {
			hf = sha512.New()
		}
		hf.Write([]byte(password))
		hf.Write(salt)
		ok := subtle.ConstantTimeCompare(hf.Sum(nil), digest) == 1
		return ok, ok, nil
	}
	return false, false, ErrUnsupportedHash
}

func scheme(stored string) string {
	upper := strings.ToUpper(stored)
	switch {
	case strings.HasPrefix(stored, "$argon2id$"), strings.HasPrefix(stored, "$argon2i$"), strings.HasPrefix(upper, "{ARGON2}$ARGON2"):
		return "argon2"
	case strings.HasPrefix(stored, "$2a$"), strings.HasPrefix(stored, "$2b$"), strings.HasPrefix(stored, "$2y$"):
		return "bcrypt"
	case strings.HasPrefix(upper, "{SSHA512}"):
		return "ssha512"
	case strings.HasPrefix(upper, "{SSHA}"):
		return "ssha"
	}
	return ""
}

func parseArgon2(s string) (string, Argon2Params, []byte, error) {
	v, p, salt, _, err := parseArgon2Full(s)
	return v, p, salt, err
}

// parseArgon2Full reads $argon2id$v=19$m=..,t=..,p=..$salt$key (base64 without padding).
func parseArgon2Full(s string) (variant string, p Argon2Params, salt, key []byte, err error) {
	parts := strings.Split(s, "$")
	if len(parts) != 6 || parts[0] != "" {
		return "", p, nil, nil, fmt.Errorf("%w: malformed argon2 hash", ErrUnsupportedHash)
	}
	variant = strings.ToLower(parts[1])
	if variant != "argon2id" && variant != "argon2i" {
		return "", p, nil, nil, fmt.Errorf("%w: %s", ErrUnsupportedHash, variant)
	}
	var version int
	if _, err := fmt.Sscanf(parts[2], "v=%d", &version); err != nil || version != argon2.Version {
		return "", p, nil, nil, fmt.Errorf("%w: argon2 version %q", ErrUnsupportedHash, parts[2])
	}
	if _, err := fmt.Sscanf(parts[3], "m=%d,t=%d,p=%d", &p.MemoryKiB, &p.Iterations, &p.Parallelism); err != nil {
		return "", p, nil, nil, fmt.Errorf("%w: argon2 parameters %q", ErrUnsupportedHash, parts[3])
	}
	if p.MemoryKiB < 8 || p.MemoryKiB > 4*1024*1024 || p.Iterations < 1 || p.Iterations > 64 || p.Parallelism < 1 {
		return "", p, nil, nil, fmt.Errorf("%w: argon2 parameters out of range", ErrUnsupportedHash)
	}
	if salt, err = base64.RawStdEncoding.DecodeString(parts[4]); err != nil || len(salt) < 8 {
		return "", p, nil, nil, fmt.Errorf("%w: argon2 salt", ErrUnsupportedHash)
	}
	if key, err = base64.RawStdEncoding.DecodeString(parts[5]); err != nil || len(key) < 16 || len(key) > 128 {
		return "", p, nil, nil, fmt.Errorf("%w: argon2 key", ErrUnsupportedHash)
	}
	return variant, p, salt, key, nil
}

// saltedDigest splits {SSHA}/{SSHA512} base64(digest ‖ salt).
func saltedDigest(stored string) (digest, salt []byte, err error) {
	size := sha1.Size
	body := stored[len("{SSHA}"):]
	if scheme(stored) == "ssha512" {
		size, body = sha512.Size, stored[len("{SSHA512}"):]
	}
	raw, err := base64.StdEncoding.DecodeString(body)
	if err != nil || len(raw) <= size {
		return nil, nil, fmt.Errorf("%w: malformed salted SHA hash", ErrUnsupportedHash)
	}
	return raw[:size], raw[size:], nil
}
