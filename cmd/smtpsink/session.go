package main

import (
	"fmt"
	"io"

	"github.com/emersion/go-smtp"
)

// session is one SMTP connection's transaction state.
type session struct {
	backend *Backend
	from    string
	to      []string
}

func (s *session) Mail(from string, _ *smtp.MailOptions) error {
	s.from = from
	s.to = nil
	return nil
}

func (s *session) Rcpt(to string, _ *smtp.RcptOptions) error {
	s.to = append(s.to, to)
	return nil
}

func (s *session) Data(r io.Reader) error {
	raw, err := io.ReadAll(r)
	if err != nil {
		return fmt.Errorf("read message: %w", err)
	}
	m, err := s.backend.store.Add(s.from, s.to, raw)
	if err != nil {
		s.backend.logger.Error("store message", "err", err)
		return &smtp.SMTPError{Code: 451, EnhancedCode: smtp.EnhancedCode{4, 3, 0}, Message: "cannot store message"}
	}
	s.backend.logger.Info("message accepted", "id", m.ID, "from", m.From, "to", m.To, "subject", m.Subject)
	return nil
}

func (s *session) Reset() {
	s.from = ""
	s.to = nil
}

func (s *session) Logout() error { return nil }
