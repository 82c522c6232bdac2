package main

import (
	"io"
	"net"
	"net/http"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
)

// The API server's every phase has a bound: serve's own values are set, and with short ones a
// slowloris client (headers a line at a time, or a body a byte at a time) is cut off instead of
// holding its connection for as long as it keeps trickling.
func TestAPIServerCutsOffSlowClients(t *testing.T) {
	t.Parallel()
	s := apiHTTPServer("", nil, apiTimeouts)
	require.Positive(t, s.ReadHeaderTimeout)
	require.Positive(t, s.ReadTimeout)
	require.Positive(t, s.IdleTimeout)

	h := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		_, _ = io.Copy(io.Discard, r.Body)
		w.WriteHeader(http.StatusNoContent)
	})
	srv := apiHTTPServer("", h, httpTimeouts{Header: 500 * time.Millisecond, Read: time.Second, Idle: time.Second})
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	require.NoError(t, err)
	go func() { _ = srv.Serve(ln) }()
	t.Cleanup(func() { _ = srv.Close() })

	for name, c := range map[string]struct{ start, trickle string }{
		"headers": {"GET / HTTP/1.1\r\nHost: x\r\n", "X-Slow: 1\r\n"},
		"body":    {"POST / HTTP/1.1\r\nHost: x\r\nContent-Length: 1000000\r\n\r\n", "a"},
	} {
		t.Run(name, func(t *testing.T) {
			t.Parallel()
			conn, err := net.Dial("tcp", ln.Addr().String())
			require.NoError(t, err)
			defer conn.Close()
			_, err = io.WriteString(conn, c.start)
			require.NoError(t, err)
			// Keep trickling; the server must end the connection within a generous bound (the
			// client would otherwise go on for ever).
			cut := false
			for range 600 {
				time.Sleep(100 * time.Millisecond)
				if _, err := io.WriteString(conn, c.trickle); err != nil {
					cut = true
					break
				}
				_ = conn.SetReadDeadline(time.Now().Add(time.Millisecond))
				if _, err := conn.Read(make([]byte, 512)); err == io.EOF {
					cut = true
					break
				}
			}
			require.True(t, cut, "the server kept a trickling client for a minute")
		})
	}
}
