package eventstore

import (
	"encoding/json"
	"math/rand/v2"
	"testing"

	"github.com/gowebpki/jcs"
	"github.com/stretchr/testify/require"
)

// The link's hand-written RFC 8785 form is exactly what canonicalising its JSON gives, for
// strings with every kind of character JCS treats specially.
func TestLinkCanonicalFormIsJCS(t *testing.T) {
	alphabet := []string{"a", "Z", "0", "\"", "\\", "/", "\b", "\f", "\n", "\r", "\t", "\x00", "\x01", "\x1f", "\x7f",
		"é", "€", "😂", "\u2028", "<", ">", "&", " ", "'", "\ufb33"}
	r := rand.New(rand.NewPCG(1, 2))
	str := func() string {
		s := ""
		for i := r.IntN(12); i > 0; i-- {
			s += alphabet[r.IntN(len(alphabet))]
		}
		return s
	}
	for i := 0; i < 2000; i++ {
		data, err := canonicalJSON([]byte(`{"name":` + mustJSON(t, str()) + `,"n":` + mustJSON(t, r.IntN(1<<40)) + `}`))
		require.NoError(t, err)
		meta, err := canonicalJSON([]byte(`{"actor":` + mustJSON(t, str()) + `}`))
		require.NoError(t, err)
		l := chainLink{StreamID: str(), StreamType: str(), Domain: str(), Version: r.IntN(1 << 30), Type: str(),
			SchemaVersion: r.IntN(9), Data: data, Metadata: meta, RecordedAt: str()}
		got, err := l.canonical()
		require.NoError(t, err)
		b, err := json.Marshal(l)
		require.NoError(t, err)
		want, err := jcs.Transform(b)
		require.NoError(t, err)
		require.Equal(t, string(want), string(got))
	}
}

func mustJSON(t *testing.T, v any) string {
	b, err := json.Marshal(v)
	require.NoError(t, err)
	return string(b)
}

func TestCheckIJSON(t *testing.T) {
	for _, ok := range []string{`{"a":9007199254740991}`, `{"a":-9007199254740991}`, `{"a":1e300}`, `{"a":123456789012345678.5}`,
		`{"s":"12345678901234567890"}`, `{"s":"a\"12345678901234567890"}`, `[0,-0,1.5e-7]`, `{"a":"\\","b":99999999999999999e0}`} {
		require.NoError(t, checkIJSON([]byte(ok)), ok)
	}
	for _, bad := range []string{`{"a":9007199254740992}`, `{"a":-9007199254740992}`, `[1,2,123456789012345678901234]`,
		`{"s":"\\","n":9007199254740993}`} {
		require.ErrorIs(t, checkIJSON([]byte(bad)), ErrNotIJSON, bad)
	}
}

// BenchmarkEncodeAndChain is the CPU an append spends per event before the database: the event's
// JSON, its I-JSON check and canonical form, and its link in the keyed chain.
func BenchmarkEncodeAndChain(b *testing.B) {
	type ev struct {
		Address     string            `json:"address"`
		DisplayName string            `json:"display_name"`
		Status      string            `json:"status"`
		Quota       int64             `json:"mail_quota_bytes"`
		Attributes  map[string]string `json:"attributes"`
	}
	e := ev{Address: "someone-with-a-long-name@example.test", DisplayName: "Some One", Status: "active", Quota: 1 << 30,
		Attributes: map[string]string{"department": "sales", "phone": "+1 555 0100"}}
	c := chain{key: []byte("k")}
	meta := []byte(`{"actor":"admin@example.test","request_id":"0123456789abcdef"}`)
	prev := GenesisHash
	for b.Loop() {
		data, _ := json.Marshal(e)
		if err := checkIJSON(data); err != nil {
			b.Fatal(err)
		}
		canon, err := canonicalJSON(data)
		if err != nil {
			b.Fatal(err)
		}
		if prev, err = c.link(prev, chainLink{StreamID: "account-someone@example.test", StreamType: "account", Domain: "example.test",
			Version: 1, Type: "AccountCreated", SchemaVersion: 1, Data: canon, Metadata: meta, RecordedAt: "2026-12-01T08:00:00.000000Z"}); err != nil {
			b.Fatal(err)
		}
	}
}

func BenchmarkLegacyEncodeAndChain(b *testing.B) {
	type ev struct {
		Address     string            `json:"address"`
		DisplayName string            `json:"display_name"`
		Status      string            `json:"status"`
		Quota       int64             `json:"mail_quota_bytes"`
		Attributes  map[string]string `json:"attributes"`
	}
	e := ev{Address: "someone-with-a-long-name@example.test", DisplayName: "Some One", Status: "active", Quota: 1 << 30,
		Attributes: map[string]string{"department": "sales", "phone": "+1 555 0100"}}
	meta := []byte(`{"actor":"admin@example.test","request_id":"0123456789abcdef"}`)
	for b.Loop() {
		data, _ := json.Marshal(e)
		canon, _ := legacyCanonicalJSON(data)
		_, _ = legacyHash(RecordedEvent{StreamID: "account-someone@example.test", StreamType: "account", Domain: "example.test",
			Version: 1, Type: "AccountCreated", SchemaVersion: 1, Data: canon, rawMetadata: meta, PrevHash: GenesisHash})
	}
}
