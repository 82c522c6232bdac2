package domain

import "strings"

// Event is a fact recorded in a stream. Events are plain structs with JSON
// tags; EventType is the stable name stored with them, so it must never change
// once events of that type have been written.
type Event interface {
	EventType() string
}

// Versioned is implemented by events whose JSON shape has changed since they
// were first written. Events without it are at schema version 1.
type Versioned interface {
	SchemaVersion() int
}

// SchemaVersion returns the schema version to store with e.
func SchemaVersion(e Event) int {
	if v, ok := e.(Versioned); ok {
		return v.SchemaVersion()
	}
	return 1
}

// Events returns one zero value of every event type, for the event registry.
// Evolve expects events by value, the way they are listed here.
func Events() []Event {
	return []Event{
		GlobalConfigUpdated{},
		COSCreated{},
		COSUpdated{},
		COSDeleted{},
		DomainCreated{},
		DomainUpdated{},
		DomainClosed{},
		DomainRemovalStarted{},
		DomainRemoved{},
		AccountCreated{},
		AccountUpdated{},
		AccountPasswordChanged{},
		AccountDeleted{},
		AliasAdded{},
		AliasRemoved{},
		SessionStarted{},
		SessionEnded{},
		ListCreated{},
		ListUpdated{},
		ListDeleted{},
		ListMembersAdded{},
		ListMembersRemoved{},
		ListOwnersAdded{},
		ListOwnersRemoved{},
		ListAliasesAdded{},
		ListAliasesRemoved{},
		ListMadeDynamic{},
		ListMadeStatic{},
		ResourceCreated{},
		ResourceUpdated{},
		ResourceDeleted{},
		ResourceAliasAdded{},
		ResourceAliasRemoved{},
		VirtualHostAdded{},
		VirtualHostRemoved{},
		CertificateInstalled{},
		CertificateIssued{},
		CertificateRemoved{},
		CertificateRequested{},
		CertificateIssuanceFailed{},
		MailSent{},
		DKIMKeyAdded{},
		DKIMKeyRetiring{},
		DKIMKeyRetired{},
		DKIMKeyRemoved{},
		GALConfigured{},
		GALDeleted{},
		GALResyncRequested{},
		GALSynced{},
		QuotaWarningSent{},
		ServiceTokenCreated{},
		ServiceTokenRevoked{},
		APITokenCreated{},
		APITokenRevoked{},
		TOTPEnrolmentStarted{},
		TOTPEnrolmentConfirmed{},
		TOTPDisabled{},
		TOTPCodeUsed{},
		TOTPRecoveryCodeUsed{},
	}
}

// Upcaster rewrites the stored JSON of an event from schema version
// FromVersion to FromVersion+1. The event store chains them on read until the
// data matches the current struct, so old events never need rewriting.
type Upcaster struct {
	EventType   string
	FromVersion int
	Upcast      func(data map[string]any) (map[string]any, error)
}

// Upcasters returns every upcaster the package needs. None yet: every event is
// still at version 1.
func Upcasters() []Upcaster {
	return nil
}

// RedactedValue replaces a secret in history views.
const RedactedValue = "[redacted]"

// IsSecretField reports whether an event's JSON field holds a secret. Secrets
// are stored encrypted, but even ciphertext is kept out of history views and
// logs; naming them by suffix lets readers redact upcast JSON maps without
// knowing each event type.
func IsSecretField(jsonName string) bool {
	return strings.HasSuffix(jsonName, "_secret")
}

// EndsObject reports whether an event ends an account, list or resource: nothing follows it in
// its stream but a creation, so a stream whose last event is one of these holds no object. The
// domain removal reads only the streams' last events to know which objects it still deletes.
func EndsObject(eventType string) bool {
	switch eventType {
	case AccountDeleted{}.EventType(), ListDeleted{}.EventType(), ResourceDeleted{}.EventType():
		return true
	}
	return false
}
