package api

import (
	"bytes"
	"encoding/json"
	"errors"
	"net/http"
	"reflect"
	"slices"
	"testing"
)

// Fuzz targets of the request decoding every command goes through: the JSON bodies
// (decodeBytes), the merge patches (parsePatch and its readers) and the request fingerprint
// (withoutSecrets). Seed corpora under testdata/fuzz/FuzzX; scripts/fuzz.sh runs them.

// requestTypes are the JSON bodies the handlers decode into whole (the others are read
// member by member through parsePatch, below).
func requestTypes() []any {
	return []any{
		&loginRequest{}, &certificateFilesRequest{}, &acmeRequest{}, &dkimKeyRequest{}, &createDomainRequest{},
		&galRequest{}, &resumeRequest{}, &usageRequest{}, &serviceTokenRequest{}, &virtualHostRequest{}, &aliasRequest{},
	}
}

// patchFieldSets are the members each PATCH (and member-by-member create) allows.
func patchFieldSets() [][]string {
	listPatch := append(slices.Clone(listPatchFields), "members", "owners", "aliases", "dynamic", "address")
	return [][]string{accountFields, accountPatchFields, configFields, cosFields, listCreateFields, listPatch,
		resourceFields, domainPatchFields, {"member_url", "drop_members"}, {"alias"}}
}

// requireBadRequest fails unless err is a problem the API answers with a 4xx.
func requireBadRequest(t *testing.T, err error) {
	t.Helper()
	var e *Error
	if !errors.As(err, &e) || e.Status < 400 || e.Status > 499 || e.Type == "" {
		t.Fatalf("error %v (%T) is not a 4xx problem", err, err)
	}
}

func FuzzDecodeRequest(f *testing.F) {
	f.Fuzz(func(t *testing.T, body []byte) {
		for _, proto := range requestTypes() {
			v := reflect.New(reflect.TypeOf(proto).Elem()).Interface()
			if err := decodeBytes(body, v); err != nil {
				requireBadRequest(t, err)
				continue
			}
			// What was decoded, written back, decodes to the very same request: nothing read
			// depends on the spelling (unknown members and trailing data were refused).
			b, err := json.Marshal(v)
			if err != nil {
				t.Fatalf("%T decoded from %q does not encode: %v", v, body, err)
			}
			w := reflect.New(reflect.TypeOf(proto).Elem()).Interface()
			if err := decodeBytes(b, w); err != nil {
				t.Fatalf("%T: %q → %s does not decode again: %v", v, body, b, err)
			}
			if !reflect.DeepEqual(v, w) {
				t.Fatalf("%T: %q → %+v, but its encoding %s → %+v", v, body, v, b, w)
			}
		}
	})
}

// readAll reads every member of doc with every type a handler reads members as, and
// descends into object members as sub-patches.
func readAll(t *testing.T, doc *patchDoc, depth int) {
	for name, raw := range doc.fields {
		null := string(raw) == "null"
		before := len(*doc.cleared)
		if s := patchField[string](doc, name); s != nil {
			var want string
			if err := json.Unmarshal(raw, &want); err != nil || want != *s {
				t.Fatalf("member %s: %q read as %q", name, raw, *s)
			}
		}
		if null && (len(*doc.cleared) != before+1 || (*doc.cleared)[before] != doc.prefix+name) {
			t.Fatalf("member %s sent as null is not recorded as cleared: %v", name, *doc.cleared)
		}
		_ = patchField[int64](doc, name)
		_ = patchField[int](doc, name)
		_ = patchValue[bool](doc, name)
		_ = patchValue[string](doc, name)
		_ = patchValue[int](doc, name)
		_ = patchField[map[string]string](doc, name)
		_ = patchField[map[string]bool](doc, name)
		_ = patchField[[]string](doc, name)
		if depth < 2 {
			if sub, ok := doc.sub(name, "a", "mechanism", "ldap_url", "warn_percent", "member_url"); ok && sub != nil {
				readAll(t, sub, depth+1)
			}
		}
	}
}

func FuzzMergePatch(f *testing.F) {
	f.Fuzz(func(t *testing.T, body []byte) {
		for _, allowed := range patchFieldSets() {
			doc, err := parsePatch(body, allowed...)
			if err != nil {
				requireBadRequest(t, err)
				continue
			}
			for k := range doc.fields {
				if !slices.Contains(allowed, k) {
					t.Fatalf("member %q passed, not among %v", k, allowed)
				}
			}
			readAll(t, &doc, 0)
			if err := doc.err(); err != nil {
				requireBadRequest(t, err)
				var e *Error
				errors.As(err, &e)
				if e.Status != http.StatusBadRequest || len(e.Fields) == 0 {
					t.Fatalf("field errors answered as %+v", e)
				}
			}
			for _, c := range doc.clearedNames() {
				if c == "" {
					t.Fatal("a cleared member without a name")
				}
			}
		}
	})
}

// FuzzWithoutSecrets: the fingerprint of an idempotent request never holds a secret member,
// and two spellings of one request fingerprint alike (the fingerprint of a fingerprint is
// itself).
func FuzzWithoutSecrets(f *testing.F) {
	f.Fuzz(func(t *testing.T, body []byte) {
		out := withoutSecrets(body)
		var v any
		dec := json.NewDecoder(bytes.NewReader(body))
		dec.UseNumber()
		if dec.Decode(&v) != nil {
			return // not JSON: refused by the decoder later, fingerprinted as is
		}
		var check func(any)
		check = func(x any) {
			switch x := x.(type) {
			case map[string]any:
				for k, e := range x {
					if isSecretField(k) {
						t.Fatalf("%q: the fingerprint %s keeps the secret member %q", body, out, k)
					}
					check(e)
				}
			case []any:
				for _, e := range x {
					check(e)
				}
			}
		}
		var w any
		d := json.NewDecoder(bytes.NewReader(out))
		d.UseNumber()
		if err := d.Decode(&w); err != nil {
			t.Fatalf("%q: the fingerprint %q is not JSON: %v", body, out, err)
		}
		check(w)
		if again := withoutSecrets(out); !bytes.Equal(again, out) {
			t.Fatalf("%q: fingerprint %s, but that fingerprints as %s", body, out, again)
		}
	})
}
