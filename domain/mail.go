package domain

import "time"

// MailSent records that a notification e-mail was handed to the SMTP relay: the outcome of the
// send_email job, appended to the stream whose event caused the mail (a virtual host's, for the
// certificate mail). Cause names that event; a mail is recorded once per cause. Aggregates'
// Evolve ignore it; MailLog folds it.
type MailSent struct {
	Cause     string    `json:"cause"`
	To        []string  `json:"to"`
	Subject   string    `json:"subject"`
	MessageID string    `json:"message_id"`
	At        time.Time `json:"at"`
}

// EventType implements Event.
func (MailSent) EventType() string { return "MailSent" }

// MailLog is what a stream says about its mail: the causes whose mail was sent.
type MailLog struct {
	Sent map[string]bool
}

// Evolve applies one event; others leave m unchanged.
func (m MailLog) Evolve(e Event) MailLog {
	if ev, ok := e.(MailSent); ok {
		sent := make(map[string]bool, len(m.Sent)+1)
		for k := range m.Sent {
			sent[k] = true
		}
		sent[ev.Cause] = true
		m.Sent = sent
	}
	return m
}

// RecordMailSent records a sent mail unless its cause was recorded already.
type RecordMailSent struct {
	Mail MailSent
}

// Decide returns the event to append, or none.
func (m MailLog) Decide(c RecordMailSent) ([]Event, error) {
	if c.Mail.Cause == "" || m.Sent[c.Mail.Cause] {
		return nil, nil
	}
	return []Event{c.Mail}, nil
}
