package workers

import (
	"bytes"
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"mime"
	"mime/quotedprintable"
	"net"
	"net/smtp"
	"strings"
	"time"
)

// The mailer speaks SMTP through the standard library's net/smtp. Notification mail goes to a
// relay next to mailplane (the platform's own Postfix, or the dev stack's sink), which does the
// delivery: plain text, one message per connection, no authentication and no TLS on that hop.
// net/smtp is frozen, but it does exactly that and pulls in no dependency; a library such as
// wneessen/go-mail would bring multipart MIME, SMTP AUTH and STARTTLS policies that none of this
// mail needs yet (a remote authenticated relay would be the reason to switch).

// MailerConfig says where notification mail goes.
type MailerConfig struct {
	// Addr is the SMTP relay, host:port.
	Addr string
	// From is the envelope and header sender.
	From string
}

// Mailer sends plain-text mail through an SMTP relay.
type Mailer struct {
	cfg MailerConfig
}

// NewMailer checks the configuration.
func NewMailer(cfg MailerConfig) (*Mailer, error) {
	var errs []error
	if _, _, err := net.SplitHostPort(cfg.Addr); err != nil {
		errs = append(errs, fmt.Errorf("mailer: SMTP address %q: %w", cfg.Addr, err))
	}
	if !strings.Contains(cfg.From, "@") {
		errs = append(errs, fmt.Errorf("mailer: sender %q is not an address", cfg.From))
	}
	if err := errors.Join(errs...); err != nil {
		return nil, err
	}
	return &Mailer{cfg: cfg}, nil
}

// Message is one plain-text e-mail.
type Message struct {
	To      []string
	Subject string
	Body    string
	// MessageID, without angle brackets; "" makes one up. A job gives the same id on every
	// attempt, so that a copy delivered twice (the relay took it, the answer was lost) is one
	// message to mail clients.
	MessageID string
	// Date defaults to now.
	Date time.Time
}

// Send delivers one message to the relay (see SendMessage).
func (m *Mailer) Send(ctx context.Context, to []string, subject, body string) error {
	return m.SendMessage(ctx, Message{To: to, Subject: subject, Body: body})
}

// MessageID makes a Message-ID from key (say, a job's cause) at the sender's domain.
func (m *Mailer) MessageID(key string) string {
	_, host, _ := strings.Cut(m.cfg.From, "@")
	return key + "@" + host
}

// SendMessage delivers one message to the relay: From, To, Subject, Date, Message-ID and a
// quoted-printable UTF-8 body. Once the relay has accepted the data the message is its
// responsibility: a failure after that (QUIT) is not an error, or a retry would send it twice.
func (m *Mailer) SendMessage(ctx context.Context, msg Message) error {
	s, err := m.Begin(ctx, msg)
	if err != nil {
		return err
	}
	return s.End()
}

// Sending is a message the relay holds all of but the end of its data: End hands it over,
// Abort withdraws it (a relay discards a message whose connection ends inside DATA).
type Sending struct {
	conn net.Conn
	c    *smtp.Client
	data io.WriteCloser
}

// endOfDataTimeout bounds the wait for the relay's answer to the end of data. RFC 5321 allows
// a relay ten minutes; mailplane's relay is next to it, and RecordMailSentAtEnd holds a
// transaction open through this wait (which holds every projection back), so a relay that
// takes longer is treated as having refused: the job tries again later.
const endOfDataTimeout = 10 * time.Second

// Begin sends a message to the relay up to, not including, the end of its data (see
// SendMessage for what the message holds).
func (m *Mailer) Begin(ctx context.Context, msg Message) (*Sending, error) {
	if len(msg.To) == 0 {
		return nil, errors.New("mailer: no recipient")
	}
	for _, a := range append([]string{m.cfg.From}, msg.To...) {
		if strings.ContainsAny(a, "\r\n<>,") || !strings.Contains(a, "@") {
			return nil, fmt.Errorf("mailer: bad address %q", a)
		}
	}
	if msg.MessageID == "" {
		b := make([]byte, 16)
		_, _ = rand.Read(b)
		msg.MessageID = m.MessageID(hex.EncodeToString(b))
	}
	if strings.ContainsAny(msg.MessageID, "\r\n<> ") {
		return nil, fmt.Errorf("mailer: bad Message-ID %q", msg.MessageID)
	}
	if msg.Date.IsZero() {
		msg.Date = time.Now()
	}
	var data bytes.Buffer
	fmt.Fprintf(&data, "From: %s\r\n", m.cfg.From)
	fmt.Fprintf(&data, "To: %s\r\n", strings.Join(msg.To, ", "))
	fmt.Fprintf(&data, "Subject: %s\r\n", mime.QEncoding.Encode("utf-8", msg.Subject))
	fmt.Fprintf(&data, "Date: %s\r\n", msg.Date.Format(time.RFC1123Z))
	fmt.Fprintf(&data, "Message-ID: <%s>\r\n", msg.MessageID)
	data.WriteString("MIME-Version: 1.0\r\nContent-Type: text/plain; charset=utf-8\r\nContent-Transfer-Encoding: quoted-printable\r\n\r\n")
	qp := quotedprintable.NewWriter(&data)
	if _, err := qp.Write([]byte(strings.ReplaceAll(msg.Body, "\r\n", "\n"))); err != nil {
		return nil, fmt.Errorf("mailer: encode: %w", err)
	}
	if err := qp.Close(); err != nil {
		return nil, fmt.Errorf("mailer: encode: %w", err)
	}

	d := net.Dialer{Timeout: 10 * time.Second}
	conn, err := d.DialContext(ctx, "tcp", m.cfg.Addr)
	if err != nil {
		return nil, fmt.Errorf("mailer: dial %s: %w", m.cfg.Addr, err)
	}
	deadline := time.Now().Add(time.Minute)
	if dl, ok := ctx.Deadline(); ok && dl.Before(deadline) {
		deadline = dl
	}
	_ = conn.SetDeadline(deadline)
	host, _, _ := net.SplitHostPort(m.cfg.Addr)
	c, err := smtp.NewClient(conn, host)
	if err != nil {
		conn.Close()
		return nil, fmt.Errorf("mailer: %w", err)
	}
	s := &Sending{conn: conn, c: c}
	if err := c.Mail(m.cfg.From); err != nil {
		s.Abort()
		return nil, fmt.Errorf("mailer: MAIL FROM: %w", err)
	}
	for _, rcpt := range msg.To {
		if err := c.Rcpt(rcpt); err != nil {
			s.Abort()
			return nil, fmt.Errorf("mailer: RCPT TO %s: %w", rcpt, err)
		}
	}
	if s.data, err = c.Data(); err != nil {
		s.Abort()
		return nil, fmt.Errorf("mailer: DATA: %w", err)
	}
	// Flushed, so that End sends only the end of data: the relay has the rest already.
	if _, err := s.data.Write(data.Bytes()); err != nil {
		s.Abort()
		return nil, fmt.Errorf("mailer: write: %w", err)
	}
	if err := c.Text.W.Flush(); err != nil {
		s.Abort()
		return nil, fmt.Errorf("mailer: write: %w", err)
	}
	return s, nil
}

// End sends the end of data and reads the relay's answer: nil means the relay has the message.
func (s *Sending) End() error {
	defer s.c.Close()
	_ = s.conn.SetDeadline(time.Now().Add(endOfDataTimeout))
	if err := s.data.Close(); err != nil {
		return fmt.Errorf("mailer: end of data: %w", err)
	}
	_ = s.c.Quit() // accepted: the relay has it
	return nil
}

// Abort closes the connection without the end of data: the relay keeps nothing.
func (s *Sending) Abort() { _ = s.conn.Close() }
