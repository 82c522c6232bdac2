package opendkim

import (
	"os"
	"path/filepath"
	"testing"

	"github.com/stretchr/testify/require"
)

// A render writes the tables and key files, reports an unchanged set as unchanged, and drops
// the files of keys no longer active (and their domains' directories).
func TestRender(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	keys := []Key{{Domain: "b.example", Selector: "s1", PrivateKey: []byte("B1")}, {Domain: "a.example", Selector: "x", PrivateKey: []byte("A")}}
	res, err := Render(dir, keys)
	require.NoError(t, err)
	require.True(t, res.Changed)
	kt, err := os.ReadFile(filepath.Join(dir, KeyTableFile))
	require.NoError(t, err)
	aPath, b1Path := filepath.Join(dir, KeysDir, "a.example", "x.private"), filepath.Join(dir, KeysDir, "b.example", "s1.private")
	require.Equal(t, "x._domainkey.a.example a.example:x:"+aPath+"\ns1._domainkey.b.example b.example:s1:"+b1Path+"\n", string(kt))
	st, err := os.ReadFile(filepath.Join(dir, SigningTableFile))
	require.NoError(t, err)
	require.Equal(t, "*@a.example x._domainkey.a.example\n*@b.example s1._domainkey.b.example\n", string(st))
	table, err := ReadKeyTable(filepath.Join(dir, KeyTableFile))
	require.NoError(t, err)
	require.Equal(t, [3]string{"b.example", "s1", b1Path}, table["s1._domainkey.b.example"])

	res, err = Render(dir, keys)
	require.NoError(t, err)
	require.False(t, res.Changed)

	// b rotated to s2, a lost its key.
	res, err = Render(dir, []Key{{Domain: "b.example", Selector: "s2", PrivateKey: []byte("B2")}})
	require.NoError(t, err)
	require.True(t, res.Changed)
	for _, gone := range []string{aPath, b1Path, filepath.Dir(aPath)} {
		_, err := os.Stat(gone)
		require.ErrorIs(t, err, os.ErrNotExist, gone)
	}
	b2, err := os.ReadFile(filepath.Join(dir, KeysDir, "b.example", "s2.private"))
	require.NoError(t, err)
	require.Equal(t, "B2", string(b2))

	_, err = Render(dir, []Key{{Domain: "../etc", Selector: "x", PrivateKey: []byte("k")}})
	require.Error(t, err)
}
