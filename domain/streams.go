package domain

import "strings"

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
	// StreamTypeDKIM: a domain's DKIM keys.
	StreamTypeDKIM = "dkim"
	// StreamTypeGAL: a domain's Global Address List and its GALSync account.
	StreamTypeGAL = "gal"
	// StreamTypeServiceToken: a service credential (the mail store's), outside any domain.
	StreamTypeServiceToken = "service_token"
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

// DKIMStreamID is the stream of a domain's DKIM keys (the domain in A-label form).
func DKIMStreamID(domainName string) string { return "dkim-" + domainName }

// StreamInDomain reports whether a stream id names a stream of the domain (A-label form): the
// domain's own stream, a stream of an address in it (account, list, resource) or of a name
// under it (a virtual host). An offline export check uses it to find, among an anchor's
// heads, the streams the export must hold; it goes by the shape of the ids above (kind-, then
// the domain, an address at it, or the domain and a slash), so a new kind of per-domain stream
// is covered when its id takes one of those shapes.
func StreamInDomain(streamID, name string) bool {
	_, rest, ok := strings.Cut(streamID, "-")
	if !ok || name == "" {
		return false
	}
	return rest == name || strings.HasSuffix(rest, "@"+name) || strings.HasPrefix(rest, name+"/")
}

// GALStreamID is the stream of a domain's GAL (A-label domain name). It is a stream of its own,
// not the domain's: every resync records its outcome there, and the domain's history of
// settings should not fill with them.
func GALStreamID(domainName string) string { return "gal-" + domainName }

// ServiceTokenStreamID is the stream of a service token.
func ServiceTokenStreamID(id string) string { return "service-token-" + id }
