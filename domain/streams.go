package domain

// Stream types stored with every event; projections route on them.
const (
	StreamTypeConfig   = "config"
	StreamTypeCOS      = "cos"
	StreamTypeDomain   = "domain"
	StreamTypeAccount  = "account"
	StreamTypeList     = "list"
	StreamTypeResource = "resource"
	// StreamTypeVirtualHost: a domain's virtual host and its certificate.
	StreamTypeVirtualHost = "virtual_host"
)

// GlobalConfigStreamID is the one stream of the GlobalConfig singleton.
const GlobalConfigStreamID = "config-global"

// COSStreamID is the stream of a COS; name must come from NormalizeCOSName.
func COSStreamID(name string) string { return "cos-" + name }

// DomainStreamID is the stream of a domain; name must be the A-label form
// from NormalizeDomainName, so both spellings of an IDN share one stream.
func DomainStreamID(name string) string { return "domain-" + name }

// AccountStreamID is the stream of an account. A deleted account's address
// keeps its stream: creating it again continues the same history.
func AccountStreamID(addr Address) string { return "account-" + addr.String() }

// ListStreamID is the stream of a mailing list. As for accounts, a deleted list's address keeps
// its stream: creating it again continues the same history.
func ListStreamID(addr Address) string { return "list-" + addr.String() }

// ResourceStreamID is the stream of a resource, kept as ListStreamID is.
func ResourceStreamID(addr Address) string { return "resource-" + addr.String() }

// VirtualHostStreamID is the stream of a virtual host of a domain (both in A-label form). The
// domain is part of it: a host name moved to another domain starts a history of its own there,
// sealed with that domain's key.
func VirtualHostStreamID(domainName, host string) string { return "vhost-" + domainName + "/" + host }
