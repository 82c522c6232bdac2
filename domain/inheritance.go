package domain

import "maps"

// Effective is a set of resolved settings: Values by API field name, and for
// each the level it came from in Sources ("account", "cos:NAME", "domain",
// "global").
//
// Value types: strings are string, byte quotas int64, percentages, counts,
// lengths and seconds int, features map[string]bool.
type Effective struct {
	Values  map[string]any
	Sources map[string]string
}

func (e Effective) set(key string, v any, source string) {
	e.Values[key] = v
	e.Sources[key] = source
}

func newEffective() Effective {
	return Effective{Values: map[string]any{}, Sources: map[string]string{}}
}

// pick returns the domain's value when set, else the global one.
func pick[T any](e Effective, key string, own *T, global T) {
	if own != nil {
		e.set(key, *own, SourceDomain)
		return
	}
	e.set(key, global, SourceGlobal)
}

// EffectiveDomain resolves a domain's settings against the global
// configuration. It is computed at read time, so a change to the global
// configuration reaches every domain that does not override it.
func EffectiveDomain(g GlobalConfig, d Domain) Effective {
	g = g.WithDefaults()
	e := newEffective()
	pick(e, "time_zone", d.TimeZone, g.TimeZone)
	pick(e, "public_protocol", d.PublicProtocol, g.PublicProtocol)
	pick(e, "spam_relay_host", d.SpamRelayHost, g.SpamRelayHost)
	pick(e, "default_cos", d.DefaultCOS, g.DefaultCOS)
	pick(e, "account_quota_bytes", d.Limits.AccountQuotaBytes, g.AccountQuotaBytes)
	pick(e, "domain_quota_bytes", d.Limits.DomainQuotaBytes, g.DomainQuotaBytes)
	pick(e, "warn_percent", d.Limits.WarnPercent, g.WarnPercent)
	// No global counterparts: these are always the domain's own.
	e.set("max_accounts", d.Limits.MaxAccounts, SourceDomain)
	e.set("warn_recipient", d.Limits.WarnRecipient, SourceDomain)
	e.set("gal_polling_interval_seconds", g.GALPollingIntervalSeconds, SourceGlobal)
	return e
}

// EffectiveCOSName says which COS an account uses and why: its own, else its
// domain's default, else the global default. The caller loads that COS to
// pass to EffectiveAccount.
func EffectiveCOSName(g GlobalConfig, d Domain, a Account) (name, source string) {
	switch {
	case a.COS != nil:
		return *a.COS, SourceAccount
	case d.DefaultCOS != nil:
		return *d.DefaultCOS, SourceDomain
	}
	return g.WithDefaults().DefaultCOS, SourceGlobal
}

// EffectiveAccount resolves an account's settings: account override, then
// its COS, then the domain, then the global configuration. cos is the COS
// named by EffectiveCOSName, or nil when it does not exist (deleted, or the
// global default was never created); its settings then fall through to the
// global ones. Computing this at read time is what lets a COS change reach
// every account that does not override the setting, without touching any
// account stream.
func EffectiveAccount(g GlobalConfig, d Domain, cos *COS, a Account) Effective {
	g = g.WithDefaults()
	e := newEffective()
	cosName, cosSource := EffectiveCOSName(g, d, a)
	e.set("cos", cosName, cosSource)
	var c COS
	if cos != nil && cos.Exists() && cos.Name == cosName {
		c = *cos
	}
	fromCOS := SourceCOS(cosName)

	switch {
	case a.MailQuotaBytes != nil:
		src := a.QuotaSource
		if src == "" {
			src = SourceAccount
		}
		e.set("mail_quota_bytes", *a.MailQuotaBytes, src)
	case c.MailQuotaBytes != nil:
		e.set("mail_quota_bytes", *c.MailQuotaBytes, fromCOS)
	default:
		e.set("mail_quota_bytes", g.AccountQuotaBytes, SourceGlobal)
	}

	switch {
	case c.QuotaWarnPercent != nil:
		e.set("quota_warn_percent", *c.QuotaWarnPercent, fromCOS)
	case d.Limits.WarnPercent != nil:
		e.set("quota_warn_percent", *d.Limits.WarnPercent, SourceDomain)
	default:
		e.set("quota_warn_percent", g.WarnPercent, SourceGlobal)
	}

	if c.Exists() {
		features := maps.Clone(c.Features)
		if features == nil {
			features = map[string]bool{}
		}
		e.set("features", features, fromCOS)
	} else {
		e.set("features", map[string]bool{}, SourceGlobal)
	}

	if c.PasswordMinLength != nil {
		e.set("password_min_length", *c.PasswordMinLength, fromCOS)
	} else {
		e.set("password_min_length", g.PasswordMinLength, SourceGlobal)
	}

	// A COS lifetime of 0 means "the global one", like unset.
	if c.SessionLifetimeSeconds != nil && *c.SessionLifetimeSeconds > 0 {
		e.set("session_lifetime_seconds", *c.SessionLifetimeSeconds, fromCOS)
	} else {
		e.set("session_lifetime_seconds", g.SessionLifetimeSeconds, SourceGlobal)
	}

	pick(e, "time_zone", d.TimeZone, g.TimeZone)
	pick(e, "public_protocol", d.PublicProtocol, g.PublicProtocol)
	return e
}
