package main

import (
	"testing"
	"time"
)

func TestParseMessage(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name, raw, subject, body string
	}{
		{"plain", "Subject: hi\r\n\r\nline 1\r\nline 2\r\n", "hi", "line 1\nline 2\n"},
		{"base64", "Subject: b\r\nContent-Transfer-Encoding: base64\r\n\r\naGVsbG8g\r\nd29ybGQ=\r\n", "b", "hello world"},
		{"bad base64 kept", "Subject: c\r\nContent-Transfer-Encoding: base64\r\n\r\n!!!\r\n", "c", "!!!\n"},
		{"no header", "just text", "", "just text"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			m := parseMessage("id", "a@x.test", []string{"b@x.test"}, time.Now(), []byte(tt.raw))
			if m.Subject != tt.subject || m.Body != tt.body {
				t.Errorf("subject %q body %q; want %q %q", m.Subject, m.Body, tt.subject, tt.body)
			}
		})
	}
}
