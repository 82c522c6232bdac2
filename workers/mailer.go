package workers

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"mime"
	"net"
	"net/smtp"
	"strings"
	"time"
)

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

// Send delivers one message to the relay.
func (m *Mailer) Send(ctx context.Context, to []string, subject, body string) error {
	for _, a := range append([]string{m.cfg.From}, to...) {
		if strings.ContainsAny(a, "\r\n<>") {
			return fmt.Errorf("mailer: bad address %q", a)
		}
	}
	var msg bytes.Buffer
	fmt.Fprintf(&msg, "From: %s\r\n", m.cfg.From)
	fmt.Fprintf(&msg, "To: %s\r\n", strings.Join(to, ", "))
	fmt.Fprintf(&msg, "Subject: %s\r\n", mime.QEncoding.Encode("utf-8", subject))
	fmt.Fprintf(&msg, "Date: %s\r\n", time.Now().Format(time.RFC1123Z))
	msg.WriteString("MIME-Version: 1.0\r\nContent-Type: text/plain; charset=utf-8\r\nContent-Transfer-Encoding: 8bit\r\n\r\n")
	msg.WriteString(strings.ReplaceAll(body, "\n", "\r\n"))

	d := net.Dialer{Timeout: 10 * time.Second}
	conn, err := d.DialContext(ctx, "tcp", m.cfg.Addr)
	if err != nil {
		return fmt.Errorf("mailer: dial %s: %w", m.cfg.Addr, err)
	}
	if dl, ok := ctx.Deadline(); ok {
		_ = conn.SetDeadline(dl)
	}
	host, _, _ := net.SplitHostPort(m.cfg.Addr)
	c, err := smtp.NewClient(conn, host)
	if err != nil {
		conn.Close()
		return fmt.Errorf("mailer: %w", err)
	}
	defer c.Close()
	if err := c.Mail(m.cfg.From); err != nil {
		return fmt.Errorf("mailer: MAIL FROM: %w", err)
	}
	for _, rcpt := range to {
		if err := c.Rcpt(rcpt); err != nil {
			return fmt.Errorf("mailer: RCPT TO %s: %w", rcpt, err)
		}
	}
	w, err := c.Data()
	if err != nil {
		return fmt.Errorf("mailer: DATA: %w", err)
	}
	if _, err := w.Write(msg.Bytes()); err != nil {
		return fmt.Errorf("mailer: write: %w", err)
	}
	if err := w.Close(); err != nil {
		return fmt.Errorf("mailer: end of data: %w", err)
	}
	return c.Quit()
}
