// Package mailtest reads the mail that the dev stack's SMTP sink (cmd/smtpsink) received, so
// tests can assert on real delivered messages.
package mailtest

import (
	"encoding/json"
	"net/http"
	"net/url"
	"os"
	"testing"
	"time"
)

// Message is one received message as the sink reports it.
type Message struct {
	ID      string            `json:"id"`
	From    string            `json:"from"`
	To      []string          `json:"to"`
	Subject string            `json:"subject"`
	Date    time.Time         `json:"date"`
	Headers map[string]string `json:"headers"`
	Body    string            `json:"body"`
}

// client keeps no idle connections, so tests leave no goroutines behind.
var client = &http.Client{Transport: &http.Transport{DisableKeepAlives: true}, Timeout: 10 * time.Second}

// SMTPAddr returns the sink's SMTP address (MAILPLANE_SMTP_ADDR); the test fails without it.
func SMTPAddr(t testing.TB) string {
	t.Helper()
	return env(t, "MAILPLANE_SMTP_ADDR")
}

func env(t testing.TB, k string) string {
	t.Helper()
	v := os.Getenv(k)
	if v == "" {
		t.Fatalf("%s is not set: run the tests with `go tool task test`, which starts the SMTP sink", k)
	}
	return v
}

// To returns the messages received for the address.
func To(t testing.TB, addr string) []Message {
	t.Helper()
	resp, err := client.Get(env(t, "MAILPLANE_SMTP_API") + "/messages?to=" + url.QueryEscape(addr))
	if err != nil {
		t.Fatalf("mailtest: %v", err)
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("mailtest: sink answered %s", resp.Status)
	}
	var msgs []Message
	if err := json.NewDecoder(resp.Body).Decode(&msgs); err != nil {
		t.Fatalf("mailtest: %v", err)
	}
	return msgs
}

// WaitFor waits until at least n messages reached addr and returns them.
func WaitFor(t testing.TB, addr string, n int, timeout time.Duration) []Message {
	t.Helper()
	deadline := time.Now().Add(timeout)
	for {
		msgs := To(t, addr)
		if len(msgs) >= n || time.Now().After(deadline) {
			if len(msgs) < n {
				t.Fatalf("mailtest: %d of %d messages to %s after %s", len(msgs), n, addr, timeout)
			}
			return msgs
		}
		time.Sleep(50 * time.Millisecond)
	}
}
