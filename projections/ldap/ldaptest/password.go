package ldaptest

import (
	"crypto/rand"
	"encoding/base64"
	"fmt"

	"golang.org/x/crypto/argon2"
)

// Argon2Password returns an {ARGON2} userPassword value for password, as the projection
// writes them (slapd's argon2 module verifies it; a bind as the entry checks it), with
// low costs (8 MiB, one pass) so that tests bind fast.
func Argon2Password(password string) string {
	const memoryKiB, passes, threads = 8 * 1024, 1, 1
	salt := make([]byte, 16)
	_, _ = rand.Read(salt)
	key := argon2.IDKey([]byte(password), salt, passes, memoryKiB, threads, 32)
	return fmt.Sprintf("{ARGON2}$argon2id$v=%d$m=%d,t=%d,p=%d$%s$%s", argon2.Version, memoryKiB, passes, threads,
		base64.RawStdEncoding.EncodeToString(salt), base64.RawStdEncoding.EncodeToString(key))
}
