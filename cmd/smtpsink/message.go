package main

import (
	"bytes"
	"encoding/base64"
	"io"
	"mime"
	"mime/quotedprintable"
	"net/mail"
	"strings"
	"time"
)

// Message is one accepted message as the HTTP API returns it.
type Message struct {
	ID   string `json:"id"`
	From string `json:"from"` // envelope sender (MAIL FROM)
	// To holds the envelope recipients (RCPT TO), which include Bcc.
	To      []string  `json:"to"`
	Subject string    `json:"subject"`
	Date    time.Time `json:"date"` // when the sink received the message
	// Headers maps canonical header names to their values, RFC 2047 words
	// decoded; a repeated header's values are joined with ", ".
	Headers map[string]string `json:"headers"`
	// Body is the text after the header, decoded when the message's
	// Content-Transfer-Encoding is quoted-printable or base64, with CRLF
	// line ends turned into LF. Multipart bodies are left as they came.
	Body string `json:"body"`
}

// parseMessage builds a Message from a raw message as received over SMTP. A
// message that does not parse is kept whole as its body.
func parseMessage(id, from string, to []string, received time.Time, raw []byte) Message {
	m := Message{ID: id, From: from, To: to, Date: received, Headers: map[string]string{}}
	parsed, err := mail.ReadMessage(bytes.NewReader(raw))
	if err != nil {
		m.Body = normalizeNewlines(string(raw))
		return m
	}
	var dec mime.WordDecoder
	for name, values := range parsed.Header {
		decoded := make([]string, len(values))
		for i, v := range values {
			if d, err := dec.DecodeHeader(v); err == nil {
				v = d
			}
			decoded[i] = v
		}
		m.Headers[name] = strings.Join(decoded, ", ")
	}
	m.Subject = m.Headers["Subject"]

	body, err := io.ReadAll(parsed.Body)
	if err != nil {
		body = raw
	}
	m.Body = normalizeNewlines(string(decodeBody(parsed.Header.Get("Content-Transfer-Encoding"), body)))
	return m
}

// decodeBody undoes a quoted-printable or base64 transfer encoding, and
// returns body unchanged for any other encoding or when decoding fails.
func decodeBody(encoding string, body []byte) []byte {
	var r io.Reader
	switch strings.ToLower(strings.TrimSpace(encoding)) {
	case "quoted-printable":
		r = quotedprintable.NewReader(bytes.NewReader(body))
	case "base64":
		compact := strings.Join(strings.Fields(string(body)), "")
		r = base64.NewDecoder(base64.StdEncoding, strings.NewReader(compact))
	default:
		return body
	}
	decoded, err := io.ReadAll(r)
	if err != nil {
		return body
	}
	return decoded
}

func normalizeNewlines(s string) string {
	return strings.ReplaceAll(s, "\r\n", "\n")
}
