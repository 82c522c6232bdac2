package ldap

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"fmt"
	"os"
	"strconv"
	"testing"
	"time"

	goldap "github.com/go-ldap/ldap/v3"

	"mailplane/eventstore"
)

// The benchmarks of scripts/bench.sh's ldap part (docs/benchmarks.md): raw write rates of slapd
// with the project's configuration, and the projection's batch write as one transaction against
// the same operations written plainly with a checkpoint after. They run against the directory in
// MAILPLANE_BENCH_LDAP_URL (bench.sh starts a private slapd of the dev stack's configuration and
// empties it before each raw run), as MAILPLANE_BENCH_LDAP_BIND_DN with
// MAILPLANE_BENCH_LDAP_PASSWORD, below MAILPLANE_BENCH_LDAP_BASE; without the URL they skip.

func benchConfig(b *testing.B) Config {
	b.Helper()
	url := os.Getenv("MAILPLANE_BENCH_LDAP_URL")
	if url == "" {
		b.Skip("MAILPLANE_BENCH_LDAP_URL is not set (scripts/bench.sh ldap sets it)")
	}
	return Config{URL: url, BindDN: os.Getenv("MAILPLANE_BENCH_LDAP_BIND_DN"), Password: os.Getenv("MAILPLANE_BENCH_LDAP_PASSWORD"),
		DIT: DIT{Base: os.Getenv("MAILPLANE_BENCH_LDAP_BASE")}, Timeout: time.Minute}
}

func benchInt(name string, def int) int {
	if n, err := strconv.Atoi(os.Getenv(name)); err == nil && n > 0 {
		return n
	}
	return def
}

// benchPassword has the shape and length of the hashes the projection writes (argon2id with the
// server's parameters); slapd stores it without checking it.
const benchPassword = "{ARGON2}$argon2id$v=19$m=19456,t=2,p=1$c2FsdHNhbHRzYWx0c2FsdA$aGFzaGhhc2hoYXNoaGFzaGhhc2hoYXNoaGFzaGhhc2g"

// benchAccount is an account entry as the projection writes one for an account with one alias
// and a password (the attributes of Model.accountEntry).
func benchAccount(dit DIT, prefix string, i int) Entry {
	addr := prefix + strconv.Itoa(i) + "@bench.load.test"
	e := Entry{DN: dit.Account(addr), Classes: accountKind.classes}
	name := "Load User " + strconv.Itoa(i)
	e.set("mail", addr)
	e.set("uid", addr)
	e.set("cn", name)
	e.set("sn", name)
	e.set("displayName", name)
	e.set("mailLocalAddress", prefix+strconv.Itoa(i)+"-a0@bench.load.test")
	e.set("mailplaneDomain", "bench.load.test")
	e.set("mailplaneStatus", "active")
	e.set("mailplaneCOS", "default")
	e.set("mailplaneQuota", "0")
	e.set("mailplaneLogin", "TRUE")
	e.set("mailplaneDelivery", "accept")
	e.Secret = "sealed"
	return e
}

func benchPrefix() string {
	b := make([]byte, 3)
	_, _ = rand.Read(b)
	return "r" + hex.EncodeToString(b) + "-"
}

// BenchmarkRawAdds: go-ldap single adds on one connection (each its own write, fsync included),
// MAILPLANE_BENCH_LDAP_ENTRIES accounts (default 5,000) per iteration.
func BenchmarkRawAdds(b *testing.B) {
	rawAdds(b, benchInt("MAILPLANE_BENCH_LDAP_ENTRIES", 5000), 0)
}

// BenchmarkRawTxnAdds: the same adds in RFC 5805 transactions of 1,000 (default 20,000 accounts).
func BenchmarkRawTxnAdds(b *testing.B) {
	rawAdds(b, benchInt("MAILPLANE_BENCH_LDAP_ENTRIES", 20000), 1000)
}

// BenchmarkRawTxnAddsPipelined: the same transactions with 16 adds in flight at once (what the
// projection and the rebuild do: pipeline).
func BenchmarkRawTxnAddsPipelined(b *testing.B) {
	rawAdds(b, benchInt("MAILPLANE_BENCH_LDAP_ENTRIES", 20000), -1000)
}

// rawAdds adds n accounts one by one (perTxn 0), in transactions of perTxn adds, or (perTxn
// negative) in transactions of -perTxn adds pipelined.
func rawAdds(b *testing.B, n, perTxn int) {
	piped := perTxn < 0
	perTxn = max(perTxn, -perTxn)
	cfg := benchConfig(b)
	dir, err := Dial(context.Background(), cfg)
	if err != nil {
		b.Fatal(err)
	}
	defer dir.Close()
	if err := dir.Ensure(Name); err != nil {
		b.Fatal(err)
	}
	var took time.Duration
	for i := 0; i < b.N; i++ {
		prefix := benchPrefix()
		entries := make([]Entry, n)
		for j := range entries {
			entries[j] = benchAccount(cfg.DIT, prefix, j)
		}
		t0 := time.Now()
		if perTxn == 0 {
			for _, e := range entries {
				if err := dir.conn.Add(e.addRequest(benchPassword, nil)); err != nil {
					b.Fatal(err)
				}
			}
		} else {
			for start := 0; start < n; start += perTxn {
				t, err := startTxn(dir.conn)
				if err != nil {
					b.Fatal(err)
				}
				batch := entries[start:min(n, start+perTxn)]
				if piped {
					if err := pipeline(len(batch), func(i int) error {
						return dir.conn.Add(batch[i].addRequest(benchPassword, t.controls))
					}); err != nil {
						b.Fatal(err)
					}
				} else {
					for _, e := range batch {
						if err := dir.conn.Add(e.addRequest(benchPassword, t.controls)); err != nil {
							b.Fatal(err)
						}
					}
				}
				if err := t.end(true); err != nil {
					b.Fatal(err)
				}
			}
		}
		took += time.Since(t0)
	}
	b.ReportMetric(float64(n*b.N)/took.Seconds(), "entries/s")
}

// BenchmarkBatchWrite compares the projection's batch write (Directory.Write: the batch's
// operations and the checkpoint's fenced modify in one RFC 5805 transaction) with the same
// operations written plainly, one by one, followed by the same checkpoint modify. Batches of the
// two kinds alternate, into bases of their own, so that both see the same machine and a
// directory of the same size; each reports entries/s.
func BenchmarkBatchWrite(b *testing.B) {
	for _, size := range []int{1000, 10} {
		b.Run("batch="+strconv.Itoa(size), func(b *testing.B) {
			batches := benchInt("MAILPLANE_BENCH_LDAP_BATCHES", 10)
			if size < 100 {
				batches *= 20
			}
			batchWrite(b, size, batches)
		})
	}
}

func batchWrite(b *testing.B, size, batches int) {
	cfg := benchConfig(b)
	ctx := context.Background()
	passwords := func(context.Context, string) (string, error) { return benchPassword, nil }
	type side struct {
		dir  *Directory
		dit  DIT
		at   eventstore.Position
		took time.Duration
		n    int
	}
	var sides [2]*side
	for i := range sides {
		c := cfg
		c.DIT = DIT{Base: "ou=bw-" + benchPrefix() + "," + cfg.DIT.Base}
		dir, err := Dial(ctx, c)
		if err != nil {
			b.Fatal(err)
		}
		defer dir.Close()
		if err := dir.Ensure(Name); err != nil {
			b.Fatal(err)
		}
		sides[i] = &side{dir: dir, dit: c.DIT}
	}
	txn, plain := sides[0], sides[1]
	for i := 0; i < b.N; i++ {
		for k := 0; k < 2*batches; k++ {
			s := sides[k%2]
			prefix := benchPrefix()
			changes := make([]Change, size)
			for j := range changes {
				e := benchAccount(s.dit, prefix, j)
				changes[j] = Change{DN: e.DN, New: &e, kind: accountKind}
			}
			next := eventstore.Position{TransactionID: 1, Position: s.at.Position + int64(size)}
			t0 := time.Now()
			var err error
			if s == txn {
				err = s.dir.Write(ctx, Name, changes, s.at, next, passwords)
			} else {
				err = s.dir.writePlain(ctx, changes, s.at, next, passwords)
			}
			if err != nil {
				b.Fatal(err)
			}
			s.took += time.Since(t0)
			s.n += size
			s.at = next
		}
	}
	b.ReportMetric(float64(txn.n)/txn.took.Seconds(), "txn-entries/s")
	b.ReportMetric(float64(plain.n)/plain.took.Seconds(), "plain-entries/s")
}

// writePlain is Write without the transaction: each operation on its own, then the checkpoint's
// fenced modify. A crash in between leaves entries ahead of the checkpoint (harmless for an
// idempotent projection: it writes them again), which is the alternative the benchmark weighs.
func (d *Directory) writePlain(ctx context.Context, changes []Change, from, pos eventstore.Position, passwords Passwords) error {
	// Pipelined as the transaction's operations are: the difference is the transaction alone.
	if err := d.send(ctx, &txn{}, changes, passwords); err != nil {
		return err
	}
	filter := "(!(mailplaneCheckpoint=*))"
	if from != (eventstore.Position{}) {
		filter = "(mailplaneCheckpoint=" + goldap.EscapeFilter(formatPosition(from)) + ")"
	}
	assert, err := newAssertion(filter)
	if err != nil {
		return err
	}
	cp := goldap.NewModifyRequest(d.cfg.DIT.Checkpoint(Name), []goldap.Control{assert})
	cp.Replace("mailplaneCheckpoint", []string{formatPosition(pos)})
	if err := d.conn.Modify(cp); err != nil {
		return fmt.Errorf("ldap: checkpoint: %w", err)
	}
	return nil
}
