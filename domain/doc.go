// Package domain holds mailplane's aggregates (GlobalConfig, COS, Domain,
// Account, MailingList, Resource, VirtualHost), their commands, events and invariants,
// name normalisation and the inheritance rules.
//
// The package is pure: it does no I/O, reads no clock and keeps no secrets in
// clear. Time reaches it through commands, facts that live in other streams
// (does a COS exist, how many accounts a domain has) are filled into a
// command's context fields by the caller, and secrets arrive already
// encrypted. That keeps Decide and Evolve deterministic, so replaying a stream
// always rebuilds the same state.
//
// Each aggregate has a state struct whose zero value is "no events yet", and
// two methods:
//
//	func (s X) Decide(cmd XCommand) ([]Event, error) // validates, never mutates
//	func (s X) Evolve(e Event) X                     // applies one event, ignores unknown ones
//
// # Patches
//
// Update commands use pointer fields: nil leaves a setting unchanged. A
// setting that can inherit (from the COS, the domain or the global
// configuration) is reset to "inherit" by naming it, with its API field name,
// in the command's Clear list ("time_zone", "limits.warn_percent", ...).
// Naming a field both in Clear and as a value is a validation error. Maps
// (features, attributes) are replaced whole when non-nil; an empty non-nil
// map empties them. Update events carry only what changed, in the same shape,
// with the reset settings listed in "cleared".
//
// # Secrets
//
// Every event field that holds a secret has a JSON name ending in "_secret"
// (see IsSecretField); its value is ciphertext produced by the caller, and
// history views show it as "[redacted]".
package domain
