package main

import (
	"bytes"
	"testing"

	"github.com/stretchr/testify/require"
)

func TestFlattenKeepsOrderAndNests(t *testing.T) {
	fields, err := flatten([]byte(`{"z":1,"a":{"y":null,"b":[1,2]},"list":[{"k":"v"}],"empty":{},"none":[],"big":12345678901234567890}`))
	require.NoError(t, err)
	require.Equal(t, []field{
		{"z", "1"}, {"a.y", ""}, {"a.b", "1, 2"}, {"list[0].k", "v"}, {"empty", ""}, {"none", ""},
		{"big", "12345678901234567890"},
	}, fields)
	_, err = flatten([]byte(`{"a":`))
	require.Error(t, err)
}

func TestPrintObjectShowsSources(t *testing.T) {
	var out bytes.Buffer
	require.NoError(t, printObject(&out, []byte(`{"name":"x\u001b[31m\ty","time_zone":null,
		"effective":{"time_zone":"UTC","features":{"imap":true}},"sources":{"time_zone":"global","features":"cos:gold"}}`)))
	require.Equal(t, "FIELD      VALUE\n"+
		"name       x [31m y\n"+
		"time_zone  -\n"+
		"\n"+
		"EFFECTIVE      VALUE  SOURCE\n"+
		"time_zone      UTC    global\n"+
		"features.imap  true   cos:gold\n", out.String())
}

func TestKeyValuePatch(t *testing.T) {
	var errOut bytes.Buffer
	o := newCmdline(&env{stderr: &errOut}, "x set", "")
	body, err := o.patch([]string{"n=5", "b=true", "s=a=b", "c=", "m.k=v"},
		map[string]kind{"n": integer, "b": boolean, "s": text, "c": text, "m.k": text})
	require.NoError(t, err)
	require.Equal(t, map[string]any{"n": int64(5), "b": true, "s": "a=b", "c": nil, "m": map[string]any{"k": "v"}}, body)
}
