package api_test

import (
	"crypto/sha1"
	"net/http"
	"os"
	"testing"

	"github.com/go-ldap/ldap/v3"
	"github.com/stretchr/testify/require"

	"mailplane/api/apitest"
)

// directory connects to the dev stack's slapd as its admin and gives the test a subtree of its
// own, removed at the end.
func directory(t *testing.T) (url, bindDN, password, base string, conn *ldap.Conn) {
	t.Helper()
	url, bindDN, password = os.Getenv("MAILPLANE_LDAP_URL"), os.Getenv("MAILPLANE_LDAP_BIND_DN"), os.Getenv("MAILPLANE_LDAP_PASSWORD")
	if url == "" || bindDN == "" {
		t.Fatal("MAILPLANE_LDAP_URL and MAILPLANE_LDAP_BIND_DN are not set: run the tests with `go tool task test`, which starts slapd")
	}
	conn, err := ldap.DialURL(url)
	require.NoError(t, err)
	t.Cleanup(func() { conn.Close() })
	require.NoError(t, conn.Bind(bindDN, password))
	ou := apitest.Unique("t")
	base = "ou=" + ou + "," + os.Getenv("MAILPLANE_LDAP_BASE_DN")
	add := ldap.NewAddRequest(base, nil)
	add.Attribute("objectClass", []string{"organizationalUnit"})
	add.Attribute("ou", []string{ou})
	require.NoError(t, conn.Add(add))
	t.Cleanup(func() {
		res, err := conn.Search(ldap.NewSearchRequest(base, ldap.ScopeSingleLevel, ldap.NeverDerefAliases, 0, 0, false,
			"(objectClass=*)", []string{"1.1"}, nil))
		if err == nil {
			for _, e := range res.Entries {
				_ = conn.Del(ldap.NewDelRequest(e.DN, nil))
			}
		}
		_ = conn.Del(ldap.NewDelRequest(base, nil))
	})
	return url, bindDN, password, base, conn
}

// A domain with external authentication checks passwords by binding to its directory.
func TestLoginThroughTheDomainsDirectory(t *testing.T) {
	t.Parallel()
	e := apitest.New(t)
	url, bindDN, bindPW, base, conn := directory(t)
	dom := e.CreateDomain(t, map[string]any{"auth": map[string]any{"mechanism": "ldap", "ldap_url": url,
		"bind_dn": bindDN, "bind_password": bindPW, "search_base": base, "search_filter": "(mail=%s)"}})

	person := func(uid, mail, password string) {
		add := ldap.NewAddRequest("uid="+uid+","+base, nil)
		add.Attribute("objectClass", []string{"inetOrgPerson"})
		add.Attribute("uid", []string{uid})
		add.Attribute("cn", []string{uid})
		add.Attribute("sn", []string{uid})
		add.Attribute("mail", []string{mail})
		add.Attribute("userPassword", []string{ssha(sha1.New, "{SSHA}", password)})
		require.NoError(t, conn.Add(add))
	}
	ann := "ann@" + dom
	person("ann", ann, "directory-pw-1")
	// An account of the domain needs no local password: the directory has it.
	e.CreateAccount(t, dom, map[string]any{"address": ann})
	r := e.Do(t, http.MethodPost, "/api/v1/auth/login", "", map[string]string{"email": ann, "password": "directory-pw-1"})
	require.Equal(t, http.StatusOK, r.Status, "%s", r.Body)
	token := r.JSON(t)["token"].(string)
	require.Equal(t, http.StatusOK, e.Do(t, http.MethodGet, "/api/v1/accounts/"+ann, token, nil).Status)

	e.Do(t, http.MethodPost, "/api/v1/auth/login", "", map[string]string{"email": ann, "password": "wrong-pw-123"}).
		Problem(t, http.StatusUnauthorized)
	e.Do(t, http.MethodPost, "/api/v1/auth/login", "", map[string]string{"email": ann, "password": " "}).
		Problem(t, http.StatusUnauthorized)

	// A local password does not get around the directory.
	bob := e.CreateAccount(t, dom, map[string]any{"local_part": "bob", "password": "local-pw-123"})
	e.Do(t, http.MethodPost, "/api/v1/auth/login", "", map[string]string{"email": bob, "password": "local-pw-123"}).
		Problem(t, http.StatusUnauthorized)

	// A directory entry without a mailplane account logs nobody in.
	person("carl", "carl@"+dom, "directory-pw-2")
	e.Do(t, http.MethodPost, "/api/v1/auth/login", "", map[string]string{"email": "carl@" + dom, "password": "directory-pw-2"}).
		Problem(t, http.StatusUnauthorized)

	// The address is escaped into the filter: a * cannot match everyone.
	star := e.CreateAccount(t, dom, map[string]any{"address": "*@" + dom})
	e.Do(t, http.MethodPost, "/api/v1/auth/login", "", map[string]string{"email": star, "password": "directory-pw-1"}).
		Problem(t, http.StatusUnauthorized)

	// A directory that cannot be reached is the directory's fault, not the user's: 503.
	down := e.CreateDomain(t, map[string]any{"auth": map[string]any{"mechanism": "ldap", "ldap_url": "ldap://127.0.0.1:1",
		"search_base": base}})
	dave := e.CreateAccount(t, down, map[string]any{"local_part": "dave"})
	p := e.Do(t, http.MethodPost, "/api/v1/auth/login", "", map[string]string{"email": dave, "password": "whatever-123"}).
		Problem(t, http.StatusServiceUnavailable)
	require.Equal(t, "/problems/directory-unavailable", p["type"])
}
