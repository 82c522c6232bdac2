package domain

import (
	"fmt"
	"maps"
	"regexp"
	"slices"
)

// COS is a Class of Service: settings shared by the accounts that use it.
// Optional settings are pointers; nil means "inherit from the global
// configuration" (or the domain, for the warning percentage).
type COS struct {
	Name                   string
	Description            string
	MailQuotaBytes         *int64 // 0 = unlimited
	QuotaWarnPercent       *int
	Features               map[string]bool
	PasswordMinLength      *int
	SessionLifetimeSeconds *int // 0 = the global lifetime
}

// Exists reports whether the COS is defined (created and not deleted).
func (c COS) Exists() bool { return c.Name != "" }

// COSCommand is a command on a COS.
type COSCommand interface{ isCOSCommand() }

// CreateCOS defines a COS. Name may be in any case; it is stored lower-case.
type CreateCOS struct {
	Name                   string
	Description            string
	MailQuotaBytes         *int64
	QuotaWarnPercent       *int
	Features               map[string]bool
	PasswordMinLength      *int
	SessionLifetimeSeconds *int
}

// UpdateCOS patches a COS. Clear may name mail_quota_bytes,
// quota_warn_percent, password_min_length and session_lifetime_seconds.
// Features, when non-nil, replaces the whole map.
type UpdateCOS struct {
	Description            *string
	MailQuotaBytes         *int64
	QuotaWarnPercent       *int
	Features               map[string]bool
	PasswordMinLength      *int
	SessionLifetimeSeconds *int
	Clear                  []string
}

// DeleteCOS removes a COS. InUseBy is filled by the caller with everything
// that still references it (accounts, domains whose default it is, the
// global default); a non-empty list refuses the delete.
type DeleteCOS struct {
	InUseBy []string
}

func (CreateCOS) isCOSCommand() {}
func (UpdateCOS) isCOSCommand() {}
func (DeleteCOS) isCOSCommand() {}

// COSCreated records a new COS with all its settings.
type COSCreated struct {
	Name                   string          `json:"name"`
	Description            string          `json:"description"`
	MailQuotaBytes         *int64          `json:"mail_quota_bytes,omitempty"`
	QuotaWarnPercent       *int            `json:"quota_warn_percent,omitempty"`
	Features               map[string]bool `json:"features,omitempty"`
	PasswordMinLength      *int            `json:"password_min_length,omitempty"`
	SessionLifetimeSeconds *int            `json:"session_lifetime_seconds,omitempty"`
}

// COSUpdated records changed settings. Features is null when unchanged (an
// empty object empties the map); Cleared lists settings reset to inherit.
type COSUpdated struct {
	Name                   string          `json:"name"`
	Description            *string         `json:"description,omitempty"`
	MailQuotaBytes         *int64          `json:"mail_quota_bytes,omitempty"`
	QuotaWarnPercent       *int            `json:"quota_warn_percent,omitempty"`
	Features               map[string]bool `json:"features"`
	PasswordMinLength      *int            `json:"password_min_length,omitempty"`
	SessionLifetimeSeconds *int            `json:"session_lifetime_seconds,omitempty"`
	Cleared                []string        `json:"cleared,omitempty"`
}

// COSDeleted records the removal of a COS. Its name is free again.
type COSDeleted struct {
	Name string `json:"name"`
}

// EventType implements Event.
func (COSCreated) EventType() string { return "COSCreated" }

// EventType implements Event.
func (COSUpdated) EventType() string { return "COSUpdated" }

// EventType implements Event.
func (COSDeleted) EventType() string { return "COSDeleted" }

var (
	featureKeyRE = regexp.MustCompile(`^[a-z0-9_]{1,64}$`)
	cosClearable = []string{"mail_quota_bytes", "quota_warn_percent", "password_min_length", "session_lifetime_seconds"}
)

// Decide validates cmd against the COS.
func (c COS) Decide(cmd COSCommand) ([]Event, error) {
	switch cmd := cmd.(type) {
	case CreateCOS:
		return c.decideCreate(cmd)
	case UpdateCOS:
		return c.decideUpdate(cmd)
	case DeleteCOS:
		return c.decideDelete(cmd)
	}
	return nil, fmt.Errorf("domain: unknown COS command %T", cmd)
}

func (c COS) decideCreate(cmd CreateCOS) ([]Event, error) {
	var fe fieldErrors
	name, err := NormalizeCOSName(cmd.Name)
	if err != nil {
		fe.addErr("name", err)
	}
	if msg := checkText(cmd.Description, maxDescriptionLength, true); msg != "" {
		fe.add("description", msg)
	}
	checkCOSSettings(&fe, cmd.MailQuotaBytes, cmd.QuotaWarnPercent, cmd.PasswordMinLength, cmd.SessionLifetimeSeconds)
	checkFeatures(&fe, cmd.Features)
	if err := fe.err(); err != nil {
		return nil, err
	}
	if c.Exists() {
		return nil, fmt.Errorf("COS %q: %w", name, ErrAlreadyExists)
	}
	return []Event{COSCreated{
		Name:                   name,
		Description:            cmd.Description,
		MailQuotaBytes:         clonePtr(cmd.MailQuotaBytes),
		QuotaWarnPercent:       clonePtr(cmd.QuotaWarnPercent),
		Features:               nonEmpty(cmd.Features),
		PasswordMinLength:      clonePtr(cmd.PasswordMinLength),
		SessionLifetimeSeconds: clonePtr(cmd.SessionLifetimeSeconds),
	}}, nil
}

func (c COS) decideUpdate(cmd UpdateCOS) ([]Event, error) {
	if !c.Exists() {
		return nil, fmt.Errorf("COS: %w", ErrNotFound)
	}
	var fe fieldErrors
	clear := clearList(cmd.Clear, cosClearable, &fe)
	for _, f := range []struct {
		name string
		set  bool
	}{
		{"mail_quota_bytes", cmd.MailQuotaBytes != nil},
		{"quota_warn_percent", cmd.QuotaWarnPercent != nil},
		{"password_min_length", cmd.PasswordMinLength != nil},
		{"session_lifetime_seconds", cmd.SessionLifetimeSeconds != nil},
	} {
		if f.set && clear[f.name] {
			fe.add(f.name, "cannot be both set and cleared")
		}
	}
	if cmd.Description != nil {
		if msg := checkText(*cmd.Description, maxDescriptionLength, true); msg != "" {
			fe.add("description", msg)
		}
	}
	checkCOSSettings(&fe, cmd.MailQuotaBytes, cmd.QuotaWarnPercent, cmd.PasswordMinLength, cmd.SessionLifetimeSeconds)
	checkFeatures(&fe, cmd.Features)
	if err := fe.err(); err != nil {
		return nil, err
	}

	ev := COSUpdated{Name: c.Name}
	changed := false
	if cmd.Description != nil && *cmd.Description != c.Description {
		ev.Description, changed = clonePtr(cmd.Description), true
	}
	if cmd.MailQuotaBytes != nil && !eqPtr(cmd.MailQuotaBytes, c.MailQuotaBytes) {
		ev.MailQuotaBytes, changed = clonePtr(cmd.MailQuotaBytes), true
	}
	if cmd.QuotaWarnPercent != nil && !eqPtr(cmd.QuotaWarnPercent, c.QuotaWarnPercent) {
		ev.QuotaWarnPercent, changed = clonePtr(cmd.QuotaWarnPercent), true
	}
	if cmd.Features != nil && !maps.Equal(cmd.Features, c.Features) {
		ev.Features, changed = maps.Clone(cmd.Features), true
	}
	if cmd.PasswordMinLength != nil && !eqPtr(cmd.PasswordMinLength, c.PasswordMinLength) {
		ev.PasswordMinLength, changed = clonePtr(cmd.PasswordMinLength), true
	}
	if cmd.SessionLifetimeSeconds != nil && !eqPtr(cmd.SessionLifetimeSeconds, c.SessionLifetimeSeconds) {
		ev.SessionLifetimeSeconds, changed = clonePtr(cmd.SessionLifetimeSeconds), true
	}
	current := map[string]bool{
		"mail_quota_bytes":         c.MailQuotaBytes != nil,
		"quota_warn_percent":       c.QuotaWarnPercent != nil,
		"password_min_length":      c.PasswordMinLength != nil,
		"session_lifetime_seconds": c.SessionLifetimeSeconds != nil,
	}
	for _, name := range sortedKeys(clear) {
		if current[name] {
			ev.Cleared, changed = append(ev.Cleared, name), true
		}
	}
	if !changed {
		return nil, nil
	}
	return []Event{ev}, nil
}

func (c COS) decideDelete(cmd DeleteCOS) ([]Event, error) {
	if !c.Exists() {
		return nil, fmt.Errorf("COS: %w", ErrNotFound)
	}
	if len(cmd.InUseBy) > 0 {
		users := slices.Clone(cmd.InUseBy)
		slices.Sort(users)
		return nil, InUseError{Users: slices.Compact(users)}
	}
	return []Event{COSDeleted{Name: c.Name}}, nil
}

func checkCOSSettings(fe *fieldErrors, quota *int64, warn, pwMin, session *int) {
	if quota != nil {
		if msg := checkNonNegative(*quota); msg != "" {
			fe.add("mail_quota_bytes", msg)
		}
	}
	if warn != nil {
		if msg := checkPercent(*warn); msg != "" {
			fe.add("quota_warn_percent", msg)
		}
	}
	if pwMin != nil {
		if msg := checkPasswordMinLength(*pwMin); msg != "" {
			fe.add("password_min_length", msg)
		}
	}
	if session != nil {
		if msg := checkNonNegative(*session); msg != "" {
			fe.add("session_lifetime_seconds", msg)
		}
	}
}

func checkFeatures(fe *fieldErrors, features map[string]bool) {
	for _, k := range slices.Sorted(maps.Keys(features)) {
		if !featureKeyRE.MatchString(k) {
			fe.add("features."+k, "feature names must be 1-64 characters of a-z, 0-9 and '_'")
		}
	}
}

// Evolve applies one event; other events leave c unchanged.
func (c COS) Evolve(e Event) COS {
	switch ev := e.(type) {
	case COSCreated:
		return COS{
			Name:                   ev.Name,
			Description:            ev.Description,
			MailQuotaBytes:         clonePtr(ev.MailQuotaBytes),
			QuotaWarnPercent:       clonePtr(ev.QuotaWarnPercent),
			Features:               maps.Clone(ev.Features),
			PasswordMinLength:      clonePtr(ev.PasswordMinLength),
			SessionLifetimeSeconds: clonePtr(ev.SessionLifetimeSeconds),
		}
	case COSUpdated:
		if ev.Description != nil {
			c.Description = *ev.Description
		}
		if ev.MailQuotaBytes != nil {
			c.MailQuotaBytes = clonePtr(ev.MailQuotaBytes)
		}
		if ev.QuotaWarnPercent != nil {
			c.QuotaWarnPercent = clonePtr(ev.QuotaWarnPercent)
		}
		if ev.Features != nil {
			c.Features = maps.Clone(ev.Features)
		}
		if ev.PasswordMinLength != nil {
			c.PasswordMinLength = clonePtr(ev.PasswordMinLength)
		}
		if ev.SessionLifetimeSeconds != nil {
			c.SessionLifetimeSeconds = clonePtr(ev.SessionLifetimeSeconds)
		}
		for _, name := range ev.Cleared {
			switch name {
			case "mail_quota_bytes":
				c.MailQuotaBytes = nil
			case "quota_warn_percent":
				c.QuotaWarnPercent = nil
			case "password_min_length":
				c.PasswordMinLength = nil
			case "session_lifetime_seconds":
				c.SessionLifetimeSeconds = nil
			}
		}
		return c
	case COSDeleted:
		return COS{}
	}
	return c
}

// nonEmpty copies m, turning an empty map into nil so a created object reads
// the same before and after a JSON round trip (omitempty drops empty maps).
func nonEmpty[K comparable, V any](m map[K]V) map[K]V {
	if len(m) == 0 {
		return nil
	}
	return maps.Clone(m)
}
