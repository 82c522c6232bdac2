package main

import (
	"crypto/rand"
	"testing"

	"golang.org/x/crypto/argon2"

	"mailplane/commands"
)

// BenchmarkArgon2id is the raw baseline of -mode password: argon2id with the server's parameters
// (m=19456 KiB, t=2, p=1) on as many goroutines as GOMAXPROCS (the server hashes at most one
// password per CPU at a time). It reports hashes/s.
func BenchmarkArgon2id(b *testing.B) {
	salt := make([]byte, 16)
	_, _ = rand.Read(salt)
	password := []byte("load-password-0001")
	b.RunParallel(func(pb *testing.PB) {
		for pb.Next() {
			argon2.IDKey(password, salt, argonTime, argonMemoryKiB, argonThreads, 32)
		}
	})
	b.ReportMetric(float64(b.N)/b.Elapsed().Seconds(), "hashes/s")
}

// The precomputed hash must be one the server accepts and would not rehash: its own parameters.
func TestArgon2PHCIsWhatTheServerMakes(t *testing.T) {
	p := commands.DefaultArgon2
	if p.MemoryKiB != argonMemoryKiB || p.Iterations != argonTime || p.Parallelism != argonThreads {
		t.Fatalf("server hashes with %+v, the load driver with m=%d t=%d p=%d", p, argonMemoryKiB, argonTime, argonThreads)
	}
	if err := commands.CheckHashFormat(argon2PHC("x")); err != nil {
		t.Fatal(err)
	}
}
