package domain

import "fmt"

// Built-in defaults, in force until the global configuration is first set.
const (
	DefaultTimeZone                  = "UTC"
	DefaultPublicProtocol            = ProtocolHTTPS
	DefaultCOSName                   = "default"
	DefaultWarnPercent               = 90
	DefaultGALPollingIntervalSeconds = 3600
	DefaultSessionLifetimeSeconds    = 86400
	DefaultPasswordMinLength         = 8

	minGALPollingIntervalSeconds = 60
	minSessionLifetimeSeconds    = 60
	maxPasswordMinLength         = 256
)

// GlobalConfig is the singleton holding the defaults every domain, COS and
// account falls back to.
//
// A config that was never set has TimeZone "" (a set config never does). Read
// it through WithDefaults, or use the functions of this package, which do:
// the zero value stands for "the built-in defaults".
type GlobalConfig struct {
	TimeZone                  string
	PublicProtocol            string
	SpamRelayHost             string // "" = no relay
	DefaultCOS                string
	AccountQuotaBytes         int64 // 0 = unlimited
	DomainQuotaBytes          int64 // 0 = unlimited
	WarnPercent               int
	GALPollingIntervalSeconds int // 0 = no periodic GAL sync
	SessionLifetimeSeconds    int
	PasswordMinLength         int
	// TOTPRequired: every administrator must log in with a second factor (totp.go).
	TOTPRequired bool `json:",omitempty"`
}

// DefaultGlobalConfig returns the built-in defaults.
func DefaultGlobalConfig() GlobalConfig {
	return GlobalConfig{
		TimeZone:                  DefaultTimeZone,
		PublicProtocol:            DefaultPublicProtocol,
		DefaultCOS:                DefaultCOSName,
		WarnPercent:               DefaultWarnPercent,
		GALPollingIntervalSeconds: DefaultGALPollingIntervalSeconds,
		SessionLifetimeSeconds:    DefaultSessionLifetimeSeconds,
		PasswordMinLength:         DefaultPasswordMinLength,
	}
}

// Exists reports whether the configuration has ever been set.
func (g GlobalConfig) Exists() bool { return g.TimeZone != "" }

// WithDefaults returns g, or the built-in defaults when g was never set.
func (g GlobalConfig) WithDefaults() GlobalConfig {
	if !g.Exists() {
		return DefaultGlobalConfig()
	}
	return g
}

// GlobalConfigCommand is a command on the global configuration.
type GlobalConfigCommand interface{ isGlobalConfigCommand() }

// UpdateGlobalConfig patches the global configuration. Clear resets the named
// settings (API names) to their built-in defaults, since nothing sits above
// the global level to inherit from.
type UpdateGlobalConfig struct {
	TimeZone                  *string
	PublicProtocol            *string
	SpamRelayHost             *string
	DefaultCOS                *string
	AccountQuotaBytes         *int64
	DomainQuotaBytes          *int64
	WarnPercent               *int
	GALPollingIntervalSeconds *int
	SessionLifetimeSeconds    *int
	PasswordMinLength         *int
	TOTPRequired              *bool
	Clear                     []string

	// COSExists is filled by the caller: whether the COS that default_cos
	// would name after this command exists. Only consulted when it changes.
	COSExists bool
}

func (UpdateGlobalConfig) isGlobalConfigCommand() {}

// GlobalConfigUpdated records the settings that changed, with their new
// values; absent fields are unchanged.
type GlobalConfigUpdated struct {
	TimeZone                  *string `json:"time_zone,omitempty"`
	PublicProtocol            *string `json:"public_protocol,omitempty"`
	SpamRelayHost             *string `json:"spam_relay_host,omitempty"`
	DefaultCOS                *string `json:"default_cos,omitempty"`
	AccountQuotaBytes         *int64  `json:"account_quota_bytes,omitempty"`
	DomainQuotaBytes          *int64  `json:"domain_quota_bytes,omitempty"`
	WarnPercent               *int    `json:"warn_percent,omitempty"`
	GALPollingIntervalSeconds *int    `json:"gal_polling_interval_seconds,omitempty"`
	SessionLifetimeSeconds    *int    `json:"session_lifetime_seconds,omitempty"`
	PasswordMinLength         *int    `json:"password_min_length,omitempty"`
	TOTPRequired              *bool   `json:"totp_required,omitempty"`
}

// EventType implements Event.
func (GlobalConfigUpdated) EventType() string { return "GlobalConfigUpdated" }

var globalClearable = []string{
	"time_zone", "public_protocol", "spam_relay_host", "default_cos",
	"account_quota_bytes", "domain_quota_bytes", "warn_percent",
	"gal_polling_interval_seconds", "session_lifetime_seconds", "password_min_length", "totp_required",
}

// Decide validates cmd against the current configuration.
func (g GlobalConfig) Decide(cmd GlobalConfigCommand) ([]Event, error) {
	switch c := cmd.(type) {
	case UpdateGlobalConfig:
		return g.decideUpdate(c)
	}
	return nil, fmt.Errorf("domain: unknown global config command %T", cmd)
}

func (g GlobalConfig) decideUpdate(c UpdateGlobalConfig) ([]Event, error) {
	cur := g.WithDefaults()
	def := DefaultGlobalConfig()
	var fe fieldErrors
	clear := clearList(c.Clear, globalClearable, &fe)

	// Each setting's requested value: the command's, or the default if cleared.
	pick := func(name string, set bool) bool {
		if set && clear[name] {
			fe.add(name, "cannot be both set and cleared")
			return false
		}
		return set || clear[name]
	}
	var ev GlobalConfigUpdated
	changed := false

	if pick("time_zone", c.TimeZone != nil) {
		v := orDefault(c.TimeZone, def.TimeZone)
		if msg := checkTimeZone(v); msg != "" {
			fe.add("time_zone", msg)
		} else if v != cur.TimeZone {
			ev.TimeZone, changed = &v, true
		}
	}
	if pick("public_protocol", c.PublicProtocol != nil) {
		v := orDefault(c.PublicProtocol, def.PublicProtocol)
		if msg := checkProtocol(v); msg != "" {
			fe.add("public_protocol", msg)
		} else if v != cur.PublicProtocol {
			ev.PublicProtocol, changed = &v, true
		}
	}
	if pick("spam_relay_host", c.SpamRelayHost != nil) {
		v, msg := normalizeHostPort(orDefault(c.SpamRelayHost, def.SpamRelayHost))
		if msg != "" {
			fe.add("spam_relay_host", msg)
		} else if v != cur.SpamRelayHost {
			ev.SpamRelayHost, changed = &v, true
		}
	}
	if pick("default_cos", c.DefaultCOS != nil) {
		v, err := NormalizeCOSName(orDefault(c.DefaultCOS, def.DefaultCOS))
		switch {
		case err != nil:
			fe.addErr("default_cos", err)
		case v == cur.DefaultCOS:
		case !c.COSExists:
			fe.add("default_cos", fmt.Sprintf("COS %q does not exist", v))
		default:
			ev.DefaultCOS, changed = &v, true
		}
	}
	if pick("account_quota_bytes", c.AccountQuotaBytes != nil) {
		v := orDefault(c.AccountQuotaBytes, def.AccountQuotaBytes)
		if msg := checkNonNegative(v); msg != "" {
			fe.add("account_quota_bytes", msg)
		} else if v != cur.AccountQuotaBytes {
			ev.AccountQuotaBytes, changed = &v, true
		}
	}
	if pick("domain_quota_bytes", c.DomainQuotaBytes != nil) {
		v := orDefault(c.DomainQuotaBytes, def.DomainQuotaBytes)
		if msg := checkNonNegative(v); msg != "" {
			fe.add("domain_quota_bytes", msg)
		} else if v != cur.DomainQuotaBytes {
			ev.DomainQuotaBytes, changed = &v, true
		}
	}
	if pick("warn_percent", c.WarnPercent != nil) {
		v := orDefault(c.WarnPercent, def.WarnPercent)
		if msg := checkPercent(v); msg != "" {
			fe.add("warn_percent", msg)
		} else if v != cur.WarnPercent {
			ev.WarnPercent, changed = &v, true
		}
	}
	if pick("gal_polling_interval_seconds", c.GALPollingIntervalSeconds != nil) {
		v := orDefault(c.GALPollingIntervalSeconds, def.GALPollingIntervalSeconds)
		if v != 0 && v < minGALPollingIntervalSeconds {
			fe.add("gal_polling_interval_seconds", fmt.Sprintf("must be 0 (off) or at least %d", minGALPollingIntervalSeconds))
		} else if v != cur.GALPollingIntervalSeconds {
			ev.GALPollingIntervalSeconds, changed = &v, true
		}
	}
	if pick("session_lifetime_seconds", c.SessionLifetimeSeconds != nil) {
		v := orDefault(c.SessionLifetimeSeconds, def.SessionLifetimeSeconds)
		if v < minSessionLifetimeSeconds {
			fe.add("session_lifetime_seconds", fmt.Sprintf("must be at least %d", minSessionLifetimeSeconds))
		} else if v != cur.SessionLifetimeSeconds {
			ev.SessionLifetimeSeconds, changed = &v, true
		}
	}
	if pick("password_min_length", c.PasswordMinLength != nil) {
		v := orDefault(c.PasswordMinLength, def.PasswordMinLength)
		if msg := checkPasswordMinLength(v); msg != "" {
			fe.add("password_min_length", msg)
		} else if v != cur.PasswordMinLength {
			ev.PasswordMinLength, changed = &v, true
		}
	}
	if pick("totp_required", c.TOTPRequired != nil) {
		if v := orDefault(c.TOTPRequired, def.TOTPRequired); v != cur.TOTPRequired {
			ev.TOTPRequired, changed = &v, true
		}
	}

	if err := fe.err(); err != nil {
		return nil, err
	}
	if !changed {
		return nil, nil
	}
	return []Event{ev}, nil
}

func checkPasswordMinLength(v int) string {
	if v < 0 || v > maxPasswordMinLength {
		return fmt.Sprintf("must be between 0 and %d", maxPasswordMinLength)
	}
	return ""
}

func orDefault[T any](p *T, def T) T {
	if p == nil {
		return def
	}
	return *p
}

// Evolve applies one event; other events leave g unchanged.
func (g GlobalConfig) Evolve(e Event) GlobalConfig {
	switch ev := e.(type) {
	case GlobalConfigUpdated:
		g = g.WithDefaults()
		g.TimeZone = orDefault(ev.TimeZone, g.TimeZone)
		g.PublicProtocol = orDefault(ev.PublicProtocol, g.PublicProtocol)
		g.SpamRelayHost = orDefault(ev.SpamRelayHost, g.SpamRelayHost)
		g.DefaultCOS = orDefault(ev.DefaultCOS, g.DefaultCOS)
		g.AccountQuotaBytes = orDefault(ev.AccountQuotaBytes, g.AccountQuotaBytes)
		g.DomainQuotaBytes = orDefault(ev.DomainQuotaBytes, g.DomainQuotaBytes)
		g.WarnPercent = orDefault(ev.WarnPercent, g.WarnPercent)
		g.GALPollingIntervalSeconds = orDefault(ev.GALPollingIntervalSeconds, g.GALPollingIntervalSeconds)
		g.SessionLifetimeSeconds = orDefault(ev.SessionLifetimeSeconds, g.SessionLifetimeSeconds)
		g.PasswordMinLength = orDefault(ev.PasswordMinLength, g.PasswordMinLength)
		g.TOTPRequired = orDefault(ev.TOTPRequired, g.TOTPRequired)
	}
	return g
}
