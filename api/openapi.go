package api

import (
	"encoding/json"
	"fmt"
	"maps"
	"net/http"
	"regexp"
	"slices"
	"sort"
	"strconv"
	"strings"
	"sync"
)

// The OpenAPI 3.1 document is built from apiRoutes, a plain table with one row per route the
// server registers. openapi_test.go walks the router and fails when a route is missing from
// the table or the table lists one that nothing serves, so a new route comes with its row.

// apiRoute is one operation of the API.
type apiRoute struct {
	Method  string
	Path    string // a mux path template: {name} is a path parameter
	ID      string // operationId
	Tag     string
	Summary string
	// Description adds what the summary cannot say (rules, choices where API.md is silent).
	Description string
	// Public operations need no bearer token.
	Public bool
	// Query names query parameters (keys of openAPIQueryParams).
	Query []string
	// IfMatch: the operation takes If-Match (412 on a stale version).
	IfMatch bool
	// Idempotent: a POST that takes Idempotency-Key (422 when reused for another request).
	Idempotent bool
	// Body is the request body's oaSchema name; "" for none.
	Body string
	// Form, when set, is the oaSchema of a multipart/form-data body taken besides Body's JSON.
	Form string
	// Status is the success status; Result its body's oaSchema name ("" for no body) and
	// ResultType its media type when not application/json.
	Status     int
	Result     string
	ResultType string
	// ETag: the success response carries the object's ETag.
	ETag bool
	// Headers are components.headers the success response carries besides the usual ones.
	Headers []string
	// Problems lists problem statuses beyond those every operation of its kind can answer
	// (see problems).
	Problems []int
	// Other lists non-problem responses besides the success one, status → oaSchema name.
	Other map[int]string
}

const (
	tagService   = "service"
	tagAuth      = "auth"
	tagConfig    = "config"
	tagCOS       = "cos"
	tagDomains   = "domains"
	tagAccounts  = "accounts"
	tagSessions  = "sessions"
	tagLists     = "lists"
	tagResources = "resources"
	// tagOperations: what operators run the service with.
	tagOperations = "operations"
	// tagVirtualHosts: virtual hosts and their TLS certificates.
	tagVirtualHosts = "virtual-hosts"
)

// certificateProblemList documents the verification problem codes (domain.CertificateProblemCodes).
const certificateProblemList = "Problem codes: certificate_missing, certificate_not_pem, certificate_wrong_type, " +
	"certificate_malformed, certificate_extra_blocks; ca_chain_missing, ca_chain_not_pem, ca_chain_wrong_type, " +
	"ca_chain_malformed, ca_chain_too_long; private_key_missing, private_key_not_pem, private_key_wrong_type, " +
	"private_key_malformed, private_key_encrypted, private_key_extra_blocks; key_mismatch, key_too_weak (RSA under " +
	"2048 bits, EC under P-256), key_unsupported (neither RSA nor ECDSA), weak_signature (SHA-1, MD5); " +
	"host_not_covered (the host is not among the subject alternative names; a wildcard covers one label), expired, " +
	"not_yet_valid, not_for_servers (extended key usage without serverAuth); chain_broken (the certificate, or a CA " +
	"certificate, was not signed by the next), chain_unused (a ca_chain certificate off the path), chain_expired. " +
	"docs/operations.md says what to do about each."

var listQuery = []string{"q", "status", "limit", "cursor"}

// apiRoutes is every route of the server (API.md).
var apiRoutes = []apiRoute{
	// Service.
	{Method: http.MethodGet, Path: "/healthz", ID: "healthz", Tag: tagService, Public: true,
		Summary: "Liveness: the process is up", Status: 200, Result: "Health"},
	{Method: http.MethodGet, Path: "/readyz", ID: "readyz", Tag: tagService, Public: true,
		Summary:     "Readiness: Postgres reachable, migrations applied, projection lag under its bound",
		Description: "503 problem (not-ready) while not ready: its detail names what fails (a stopped projection, unresolved dead letters, Postgres, migrations), its checks hold every check's detail.",
		Status:      200, Result: "Readiness", Problems: []int{503}},
	{Method: http.MethodGet, Path: "/metrics", ID: "metrics", Tag: tagService, Public: true,
		Summary: "Prometheus metrics", Status: 200, Result: "Metrics", ResultType: "text/plain"},
	{Method: http.MethodGet, Path: "/api/v1/openapi.json", ID: "getOpenAPI", Tag: tagService, Public: true,
		Summary: "This OpenAPI document", Status: 200, Result: "OpenAPIDocument"},

	// Authentication.
	{Method: http.MethodPost, Path: "/api/v1/auth/login", ID: "login", Tag: tagAuth, Public: true,
		Summary:     "Log in with e-mail address and password; returns a bearer token",
		Description: "Failed logins are rate limited per account and per source IP (429 with Retry-After and retry_after). Accounts of a domain with ldap or ad authentication are checked by binding to its directory (503 directory-unavailable when it cannot be reached).",
		Body:        "LoginRequest", Status: 200, Result: "LoginResponse", Problems: []int{401, 403, 429, 503}},

	// Global configuration.
	{Method: http.MethodGet, Path: "/api/v1/config", ID: "getConfig", Tag: tagConfig,
		Summary:     "The global defaults",
		Description: "Global and domain administrators. Until first changed, the built-in defaults at version 0 (ETag \"0\").",
		Status:      200, Result: "Config", ETag: true},
	{Method: http.MethodPatch, Path: "/api/v1/config", ID: "patchConfig", Tag: tagConfig,
		Summary:     "Change the global defaults (JSON merge patch)",
		Description: "Global administrators. null resets a setting to its built-in default. default_cos must name an existing COS. If-Match \"0\" holds while the configuration was never changed.",
		IfMatch:     true, Body: "ConfigPatch", Status: 200, Result: "Config", ETag: true},

	// Classes of service.
	{Method: http.MethodGet, Path: "/api/v1/cos", ID: "listCOS", Tag: tagCOS,
		Summary:     "List classes of service by name",
		Description: "Global and domain administrators. q filters by substring of name or description; status is ignored.",
		Query:       []string{"q", "limit", "cursor"}, Status: 200, Result: "COSPage"},
	{Method: http.MethodPost, Path: "/api/v1/cos", ID: "createCOS", Tag: tagCOS,
		Summary: "Create a class of service", Description: "Global administrators. The name is stored lower-case.",
		Idempotent: true, Body: "COSCreate", Status: 201, Result: "COS", ETag: true, Problems: []int{409}},
	{Method: http.MethodGet, Path: "/api/v1/cos/{name}", ID: "getCOS", Tag: tagCOS,
		Summary: "A class of service", Description: "Global and domain administrators.",
		Status: 200, Result: "COS", ETag: true},
	{Method: http.MethodPatch, Path: "/api/v1/cos/{name}", ID: "patchCOS", Tag: tagCOS,
		Summary:     "Change a class of service (JSON merge patch)",
		Description: "Global administrators. null makes a setting inherit the global one again (description: empty). features merges: a feature sent as null is removed, features: null removes all. name may be repeated, not changed.",
		IfMatch:     true, Body: "COSPatch", Status: 200, Result: "COS", ETag: true, Problems: []int{409}},
	{Method: http.MethodDelete, Path: "/api/v1/cos/{name}", ID: "deleteCOS", Tag: tagCOS,
		Summary:     "Delete a class of service nobody uses",
		Description: "Global administrators. 409 (type in-use) while accounts name it, domains have it as default or it is the global default; users lists them (addresses, domain:NAME, global:default_cos).",
		IfMatch:     true, Status: 204, Problems: []int{409}},

	// Domains.
	{Method: http.MethodGet, Path: "/api/v1/domains", ID: "listDomains", Tag: tagDomains,
		Summary:     "List domains by name",
		Description: "Global administrators see all; a domain administrator sees its own domain.",
		Query:       listQuery, Status: 200, Result: "DomainPage"},
	{Method: http.MethodPost, Path: "/api/v1/domains", ID: "createDomain", Tag: tagDomains,
		Summary: "Create a domain", Description: "Global administrators. Unicode names are stored as IDNA A-labels.",
		Idempotent: true, Body: "DomainCreate", Status: 201, Result: "Domain", ETag: true, Problems: []int{409}},
	{Method: http.MethodGet, Path: "/api/v1/domains/{domain}", ID: "getDomain", Tag: tagDomains,
		Summary: "A domain with its effective settings and counts (as_of: as it stood then)",
		Query:   []string{"as_of"}, Status: 200, Result: "Domain", ETag: true},
	{Method: http.MethodPatch, Path: "/api/v1/domains/{domain}", ID: "patchDomain", Tag: tagDomains,
		Summary:     "Change a domain (JSON merge patch)",
		Description: "null makes a setting inherit the global one again. Only global administrators change status and auth.",
		IfMatch:     true, Body: "DomainPatch", Status: 200, Result: "Domain", ETag: true, Problems: []int{409}},
	{Method: http.MethodPost, Path: "/api/v1/domains/{domain}/close", ID: "closeDomain", Tag: tagDomains,
		Summary:     "Close a domain: objects kept, logins and delivery refused",
		Description: "Global administrators. Takes no body (one sent must be JSON, and counts for Idempotency-Key).", IfMatch: true, Idempotent: true,
		Status: 200, Result: "Domain", ETag: true, Problems: []int{409, 413}},
	{Method: http.MethodGet, Path: "/api/v1/domains/{domain}/history", ID: "domainHistory", Tag: tagDomains,
		Summary:     "The events of the domain and of every object in it, oldest first",
		Description: "Administrators of the domain. after and before bound recorded_at (RFC 3339, both exclusive); type keeps only the given event types (comma-separated). Secrets show as \"[redacted]\". Available after the domain is gone.",
		Query:       []string{"after", "before", "type", "limit", "cursor"}, Status: 200, Result: "HistoryPage"},
	{Method: http.MethodGet, Path: "/api/v1/domains/{domain}/deletion-preview", ID: "domainDeletionPreview", Tag: tagDomains,
		Summary: "Every object that removing the domain would take", Description: "Global administrators.",
		Status: 200, Result: "DeletionPreview"},

	// Accounts.
	{Method: http.MethodGet, Path: "/api/v1/domains/{domain}/accounts", ID: "listAccounts", Tag: tagAccounts,
		Summary: "List a domain's accounts by address", Query: listQuery, Status: 200, Result: "AccountPage"},
	{Method: http.MethodPost, Path: "/api/v1/domains/{domain}/accounts", ID: "createAccount", Tag: tagAccounts,
		Summary:     "Create an account",
		Description: "address or local_part. password or password_hash (PHC argon2id, bcrypt, {SSHA}, {SSHA512}) are optional and never returned. An address is unique across accounts, aliases, lists and resources (409 address-taken).",
		Idempotent:  true, Body: "AccountCreate", Status: 201, Result: "Account", ETag: true, Problems: []int{409}},
	{Method: http.MethodGet, Path: "/api/v1/accounts/{address}", ID: "getAccount", Tag: tagAccounts,
		Summary: "An account with its effective settings (as_of: as it stood then)", Description: "The account itself, or an administrator of its domain.",
		Query: []string{"as_of"}, Status: 200, Result: "Account", ETag: true},
	{Method: http.MethodPatch, Path: "/api/v1/accounts/{address}", ID: "patchAccount", Tag: tagAccounts,
		Summary:     "Change an account (JSON merge patch)",
		Description: "An account may change its own display_name and password; administrators the rest. null on cos or mail_quota_bytes inherits again.",
		IfMatch:     true, Body: "AccountPatch", Status: 200, Result: "Account", ETag: true, Problems: []int{409}},
	{Method: http.MethodDelete, Path: "/api/v1/accounts/{address}", ID: "deleteAccount", Tag: tagAccounts,
		Summary: "Delete an account", IfMatch: true, Status: 204, Problems: []int{409}},
	{Method: http.MethodPost, Path: "/api/v1/accounts/{address}/aliases", ID: "addAlias", Tag: tagAccounts,
		Summary:     "Give an account an alias",
		Description: "The alias may be in any domain the caller administers; 409 address-taken when the address is in use.",
		IfMatch:     true, Idempotent: true, Body: "AliasRequest", Status: 201, Result: "Account", ETag: true, Problems: []int{409}},
	{Method: http.MethodDelete, Path: "/api/v1/accounts/{address}/aliases/{alias}", ID: "removeAlias", Tag: tagAccounts,
		Summary: "Remove an alias from an account", IfMatch: true, Status: 204, Problems: []int{409}},

	// Sessions.
	{Method: http.MethodGet, Path: "/api/v1/accounts/{address}/sessions", ID: "listSessions", Tag: tagSessions,
		Summary:     "An account's open sessions",
		Description: "The account itself, or an administrator of its domain. Not paginated: next_cursor is always null.",
		Status:      200, Result: "SessionList"},
	{Method: http.MethodDelete, Path: "/api/v1/accounts/{address}/sessions/{id}", ID: "endSession", Tag: tagSessions,
		Summary: "End one session", IfMatch: true, Status: 204, Problems: []int{409}},

	// Mailing lists.
	{Method: http.MethodGet, Path: "/api/v1/domains/{domain}/lists", ID: "listLists", Tag: tagLists,
		Summary:     "List a domain's mailing lists by address",
		Description: "Administrators of the domain. q filters by substring of address or display name.",
		Query:       []string{"q", "limit", "cursor"}, Status: 200, Result: "ListPage"},
	{Method: http.MethodPost, Path: "/api/v1/domains/{domain}/lists", ID: "createList", Tag: tagLists,
		Summary: "Create a mailing list",
		Description: "Administrators of the domain. An address is unique across accounts, aliases, lists and resources (409 address-taken). " +
			"members (at most 10,000, inside or outside the platform), owners (accounts of the platform, at most 1,000), allowed_senders " +
			"(who may post; empty: anyone; at most 1,000) are sets: duplicates and case do not matter. Policies default to " +
			"subscription approval and unsubscription accept. A dynamic list takes its members from dynamic.member_url, an RFC 4516 " +
			"URL over the platform's own accounts: ldap:///??sub?(filter) or ldap:///??one?(filter), attribute list empty or mail, no " +
			"host, no base DN, no extensions; its filter is compiled before it is accepted (400 naming the problem). A dynamic list has " +
			"no explicit members (400). A closed or suspended domain takes no new list (409 domain-unavailable). Every bad field is " +
			"listed at once, the first 20 bad addresses of a set by index (members[3]) and a count of the rest.",
		Idempotent: true, Body: "ListCreate", Status: 201, Result: "List", ETag: true, Problems: []int{409}},
	{Method: http.MethodGet, Path: "/api/v1/lists/{address}", ID: "getList", Tag: tagLists,
		Summary:     "A mailing list (as_of: as it stood then)",
		Description: "Administrators of its domain and its owners; anyone else gets 403, whether the list exists or not. Members are paged at .../members; member_count counts a static list's (null for a dynamic list).",
		Query:       []string{"as_of"}, Status: 200, Result: "List", ETag: true},
	{Method: http.MethodPatch, Path: "/api/v1/lists/{address}", ID: "patchList", Tag: tagLists,
		Summary: "Change a mailing list's settings (JSON merge patch)",
		Description: "Administrators of its domain; its owners may change display_name, description, allowed_senders and the " +
			"policies, not hide_in_gal (403). null on a policy resets it to its default, on allowed_senders lets anyone post. " +
			"members, owners, aliases and dynamic have endpoints of their own; the address cannot change (400 saying so). " +
			"A suspended domain's lists are frozen (409 domain-unavailable).",
		IfMatch: true, Body: "ListPatch", Status: 200, Result: "List", ETag: true, Problems: []int{409}},
	{Method: http.MethodDelete, Path: "/api/v1/lists/{address}", ID: "deleteList", Tag: tagLists,
		Summary:     "Delete a mailing list",
		Description: "Administrators of its domain (not its owners). Its address and aliases are free again.",
		IfMatch:     true, Status: 204, Problems: []int{409}},
	{Method: http.MethodGet, Path: "/api/v1/lists/{address}/members", ID: "listListMembers", Tag: tagLists,
		Summary: "A mailing list's members by address",
		Description: "Administrators of its domain and its owners. A static list's explicit members; a dynamic list's are found by " +
			"running its query against the directory (501 not-implemented-yet where this server cannot). q filters by substring.",
		Query: []string{"q", "limit", "cursor"}, Status: 200, Result: "MemberPage", Problems: []int{501}},
	{Method: http.MethodPost, Path: "/api/v1/lists/{address}/members", ID: "addListMembers", Tag: tagLists,
		Summary: "Add members to a static list",
		Description: "Administrators of its domain and its owners. At most 10,000 addresses a request, recorded as one event; those " +
			"already members are passed over (nothing new: nothing recorded, the same version). A dynamic list has no explicit " +
			"members (400). Answers the list.",
		IfMatch: true, Idempotent: true, Body: "ListMembersRequest", Status: 200, Result: "List", ETag: true, Problems: []int{409}},
	{Method: http.MethodDelete, Path: "/api/v1/lists/{address}/members", ID: "removeListMembers", Tag: tagLists,
		Summary:     "Remove members from a list",
		Description: "Administrators of its domain and its owners. At most 10,000 addresses, one event; addresses that are not members are passed over. Answers the list.",
		IfMatch:     true, Body: "ListMembersRequest", Status: 200, Result: "List", ETag: true, Problems: []int{409}},
	{Method: http.MethodDelete, Path: "/api/v1/lists/{address}/members/{member}", ID: "removeListMember", Tag: tagLists,
		Summary:     "Remove one member from a list",
		Description: "Administrators of its domain and its owners. 404 when the address is not a member. Answers the list.",
		IfMatch:     true, Status: 200, Result: "List", ETag: true, Problems: []int{409}},
	{Method: http.MethodPost, Path: "/api/v1/lists/{address}/owners", ID: "addListOwners", Tag: tagLists,
		Summary:     "Add owners to a list",
		Description: "Administrators of its domain and its owners. Owners are accounts of the platform (400 naming those that are not), at most 1,000 a list. Answers the list.",
		IfMatch:     true, Idempotent: true, Body: "ListOwnersRequest", Status: 200, Result: "List", ETag: true, Problems: []int{409}},
	{Method: http.MethodDelete, Path: "/api/v1/lists/{address}/owners", ID: "removeListOwners", Tag: tagLists,
		Summary:     "Remove owners from a list",
		Description: "Administrators of its domain and its owners (an owner may remove itself). Addresses that are not owners are passed over. Answers the list.",
		IfMatch:     true, Body: "ListOwnersRequest", Status: 200, Result: "List", ETag: true, Problems: []int{409}},
	{Method: http.MethodDelete, Path: "/api/v1/lists/{address}/owners/{owner}", ID: "removeListOwner", Tag: tagLists,
		Summary: "Remove one owner from a list", Description: "As DELETE .../owners; 404 when the address is not an owner.",
		IfMatch: true, Status: 200, Result: "List", ETag: true, Problems: []int{409}},
	{Method: http.MethodPost, Path: "/api/v1/lists/{address}/aliases", ID: "addListAliases", Tag: tagLists,
		Summary: "Give a list more addresses",
		Description: "Administrators of the list's domain and of each alias's domain (not owners). An alias's domain must exist " +
			"(400) and take new objects (409 domain-unavailable); an address in use is 409 address-taken. At most 100 aliases a list. Answers the list.",
		IfMatch: true, Idempotent: true, Body: "ListAliasesRequest", Status: 200, Result: "List", ETag: true, Problems: []int{409}},
	{Method: http.MethodDelete, Path: "/api/v1/lists/{address}/aliases", ID: "removeListAliases", Tag: tagLists,
		Summary:     "Take aliases away from a list",
		Description: "Administrators of its domain. Addresses that are not its aliases are passed over; the others are free again. Answers the list.",
		IfMatch:     true, Body: "ListAliasesRequest", Status: 200, Result: "List", ETag: true, Problems: []int{409}},
	{Method: http.MethodDelete, Path: "/api/v1/lists/{address}/aliases/{alias}", ID: "removeListAlias", Tag: tagLists,
		Summary: "Take one alias away from a list", Description: "As DELETE .../aliases; 404 when it is not an alias of the list.",
		IfMatch: true, Status: 200, Result: "List", ETag: true, Problems: []int{409}},
	{Method: http.MethodPut, Path: "/api/v1/lists/{address}/dynamic", ID: "makeListDynamic", Tag: tagLists,
		Summary: "Make a list dynamic, or give a dynamic list another query",
		Description: "Administrators of its domain (not owners). member_url as on creation. A static list with members answers " +
			"409 conflict unless drop_members is true (its members are then gone, in the same event). The same query again changes nothing. Answers the list.",
		IfMatch: true, Body: "ListDynamicRequest", Status: 200, Result: "List", ETag: true, Problems: []int{409}},
	{Method: http.MethodDelete, Path: "/api/v1/lists/{address}/dynamic", ID: "makeListStatic", Tag: tagLists,
		Summary:     "Make a dynamic list static",
		Description: "Administrators of its domain. The list keeps its settings and has no members until some are added; 404 when it is not dynamic. Answers the list.",
		IfMatch:     true, Status: 200, Result: "List", ETag: true, Problems: []int{409}},

	// Resources.
	{Method: http.MethodGet, Path: "/api/v1/domains/{domain}/resources", ID: "listResources", Tag: tagResources,
		Summary:     "List a domain's resources by address",
		Description: "Administrators of the domain. q filters by substring of address or display name.",
		Query:       []string{"q", "limit", "cursor"}, Status: 200, Result: "ResourcePage"},
	{Method: http.MethodPost, Path: "/api/v1/domains/{domain}/resources", ID: "createResource", Tag: tagResources,
		Summary: "Create a resource (a room or equipment)",
		Description: "Administrators of the domain. type is required; booking_policy defaults to auto_accept_unless_busy. " +
			"A signature is refused (400: resources have no signature). An address is unique across accounts, aliases, lists " +
			"and resources (409 address-taken); a closed or suspended domain takes no new resource (409 domain-unavailable).",
		Idempotent: true, Body: "ResourceCreate", Status: 201, Result: "Resource", ETag: true, Problems: []int{409}},
	{Method: http.MethodGet, Path: "/api/v1/resources/{address}", ID: "getResource", Tag: tagResources,
		Summary: "A resource (as_of: as it stood then)", Description: "Administrators of its domain.",
		Query: []string{"as_of"}, Status: 200, Result: "Resource", ETag: true},
	{Method: http.MethodPatch, Path: "/api/v1/resources/{address}", ID: "patchResource", Tag: tagResources,
		Summary: "Change a resource (JSON merge patch)",
		Description: "Administrators of its domain. null empties display_name and location, makes capacity and max_conflicts 0, " +
			"removes every notify address. A signature is refused (400). A suspended domain's resources are frozen (409).",
		IfMatch: true, Body: "ResourcePatch", Status: 200, Result: "Resource", ETag: true, Problems: []int{409}},
	{Method: http.MethodDelete, Path: "/api/v1/resources/{address}", ID: "deleteResource", Tag: tagResources,
		Summary: "Delete a resource", Description: "Administrators of its domain. Its address and aliases are free again.",
		IfMatch: true, Status: 204, Problems: []int{409}},
	{Method: http.MethodPost, Path: "/api/v1/resources/{address}/aliases", ID: "addResourceAlias", Tag: tagResources,
		Summary:     "Give a resource an alias",
		Description: "As for accounts: the alias may be in any domain the caller administers that exists; 409 address-taken when the address is in use.",
		IfMatch:     true, Idempotent: true, Body: "AliasRequest", Status: 201, Result: "Resource", ETag: true, Problems: []int{409}},
	{Method: http.MethodDelete, Path: "/api/v1/resources/{address}/aliases/{alias}", ID: "removeResourceAlias", Tag: tagResources,
		Summary: "Remove an alias from a resource", IfMatch: true, Status: 204, Problems: []int{409}},
	// Virtual hosts and certificates.
	{Method: http.MethodGet, Path: "/api/v1/domains/{domain}/virtual-hosts", ID: "listVirtualHosts", Tag: tagVirtualHosts,
		Summary:     "List a domain's virtual hosts by name, with their certificates' status",
		Description: "Administrators of the domain. q filters by substring of the host name; status is ignored.",
		Query:       []string{"q", "limit", "cursor"}, Status: 200, Result: "VirtualHostPage"},
	{Method: http.MethodPost, Path: "/api/v1/domains/{domain}/virtual-hosts", ID: "addVirtualHost", Tag: tagVirtualHosts,
		Summary: "Add a virtual host: another name under which the domain's users reach it",
		Description: "Administrators of the domain. The host follows the domain name rules (Unicode accepted, stored as " +
			"IDNA A-labels) and is unique across all domains (409 already-exists). A host that is, or lies under, " +
			"another domain hosted here is refused (400 on host): that tenant's DNS points at this service. " +
			"To use the virtual host, the name must be registered with an A record on the domain's DNS, pointing " +
			"at the proxy that serves it; users may then reach the domain with just their user names, and ACME " +
			"validation (HTTP-01, port 80) goes through that record too.",
		Idempotent: true, Body: "VirtualHostCreate", Status: 201, Result: "VirtualHost", ETag: true, Problems: []int{409}},
	{Method: http.MethodGet, Path: "/api/v1/domains/{domain}/virtual-hosts/{host}", ID: "getVirtualHost", Tag: tagVirtualHosts,
		Summary: "A virtual host with its certificate's status", Description: "Administrators of the domain.",
		Status: 200, Result: "VirtualHost", ETag: true},
	{Method: http.MethodDelete, Path: "/api/v1/domains/{domain}/virtual-hosts/{host}", ID: "removeVirtualHost", Tag: tagVirtualHosts,
		Summary:     "Remove a virtual host and its certificate; the name is free again",
		Description: "Administrators of the domain. An ACME request in flight records nothing once the host is gone.",
		IfMatch:     true, Status: 204, Problems: []int{409}},
	{Method: http.MethodPost, Path: "/api/v1/domains/{domain}/virtual-hosts/{host}/certificate/verify", ID: "verifyCertificate", Tag: tagVirtualHosts,
		Summary: "Check a custom certificate for the host without installing it",
		Description: "Administrators of the domain. PEM text as JSON, or the three files as a multipart/form-data " +
			"upload with parts certificate, ca_chain and private_key. Always 200 for a host that exists: bad input is a " +
			"problem in problems, never an error. valid is true when problems is empty: the key matches the " +
			"certificate, a path leads from it through ca_chain (each signed by the next; the root may be left out), " +
			"the host is among its names, its dates hold now, the key is RSA 2048+ or ECDSA P-256+, and every text " +
			"holds what it should and nothing else. " + certificateProblemList,
		Body: "CertificateFiles", Form: "CertificateUpload", Status: 200, Result: "CertificateVerification"},
	{Method: http.MethodPut, Path: "/api/v1/domains/{domain}/virtual-hosts/{host}/certificate", ID: "installCertificate", Tag: tagVirtualHosts,
		Summary: "Install a custom certificate for the host (it must verify)",
		Description: "Administrators of the domain. The same body as verify (JSON or multipart/form-data). A certificate " +
			"that does not verify is refused with 400 (type certificate-invalid) whose problems list every problem, " +
			"as verify names them. The private key is stored only sealed with the domain's key (destroyed with the " +
			"domain), never returned, and redacted in history. Replaces the certificate installed before, ACME or not; " +
			"a custom certificate is not renewed automatically.",
		IfMatch: true, Body: "CertificateFiles", Form: "CertificateUpload", Status: 200, Result: "CertificateStatus", ETag: true,
		Problems: []int{409}},
	{Method: http.MethodGet, Path: "/api/v1/domains/{domain}/virtual-hosts/{host}/certificate", ID: "getCertificate", Tag: tagVirtualHosts,
		Summary: "The host's certificate status: issuer, expiry, chain length, source, renewal due date, ACME progress",
		Description: "Administrators of the domain. status: none, valid, renewal_due (an ACME certificate past its " +
			"renewal due date, 30 days before expiry), expired. issuance is the ACME request in flight; last_failure the " +
			"latest failed one (until a certificate is installed); retry_after the seconds before a new ACME request " +
			"is accepted (0: now).",
		Status: 200, Result: "CertificateStatus", ETag: true},
	{Method: http.MethodDelete, Path: "/api/v1/domains/{domain}/virtual-hosts/{host}/certificate", ID: "removeCertificate", Tag: tagVirtualHosts,
		Summary:     "Remove the host's certificate",
		Description: "Administrators of the domain. 404 when none is installed. An ACME certificate is no longer renewed.",
		IfMatch:     true, Status: 204, Problems: []int{409}},
	{Method: http.MethodGet, Path: "/api/v1/domains/{domain}/virtual-hosts/{host}/certificate/download", ID: "downloadCertificate", Tag: tagVirtualHosts,
		Summary: "The installed certificate bundle: the certificate, then its CA chain (PEM, application/x-pem-file)",
		Description: "Administrators of the domain. Never the private key. Content-Disposition names a file <host>.pem. " +
			"404 when no certificate is installed.",
		Status: 200, Result: "PEMBundle", ResultType: mediaPEM, ETag: true, Headers: []string{"ContentDisposition"}},
	{Method: http.MethodPost, Path: "/api/v1/domains/{domain}/virtual-hosts/{host}/certificate/acme", ID: "requestACMECertificate", Tag: tagVirtualHosts,
		Summary: "Issue a certificate for the host through ACME (Let's Encrypt): a job",
		Description: "Administrators of the domain. Answers 202 with the job (kind issue_certificate) that validates the " +
			"host over HTTP-01 and installs the certificate; an e-mail to the requester reports success (with the expiry " +
			"and what to do next) or failure (with each error to fix). The job ends succeeded with a certificate, or " +
			"failed with the CA's error: a refused validation is not retried, an unreachable CA is, with backoff. chain: " +
			"long (default) keeps the CA's default chain with its intermediate; short asks for the CA's alternate chain " +
			"(ending at the configured root), and the default one is kept when the CA offers none. 409 while a request " +
			"for the host is in flight. After 3 failures for the host within an hour, 429 with Retry-After and " +
			"retry_after until the oldest is an hour old (as Let's Encrypt limits failed validations). The certificate " +
			"renews itself 30 days before expiry; a renewal e-mail reports each outcome.",
		Idempotent: true, Body: "ACMERequest", Status: 202, Result: "JobAccepted", Problems: []int{409, 429}},

	// Jobs.
	{Method: http.MethodGet, Path: "/api/v1/jobs/{id}", ID: "getJob", Tag: tagOperations,
		Summary:     "Follow a job that a request answered 202 for",
		Description: "Global administrators see every job, a domain's administrators its domain's, and whoever asked for a job sees it. state: queued, running, retrying (failed, tried again with backoff), succeeded, failed (given up: out of attempts, or the work cannot succeed, e.g. the CA refused), cancelled (from outside). progress counts done out of total, in the job's own unit (objects removed, entries synced).",
		Status:      200, Result: "Job", Problems: []int{404}},

	// Operations.
	{Method: http.MethodGet, Path: "/api/v1/projections", ID: "listProjections", Tag: tagOperations,
		Summary:     "Every projection: position, lag, running or stopped (and why), unresolved dead letters",
		Description: "Global administrators. Read from the database, whichever process runs each projection. A projection stops on lost order or an event of unknown meaning and stays stopped until resumed.",
		Status:      200, Result: "ProjectionList"},
	{Method: http.MethodPost, Path: "/api/v1/projections/{name}/resume", ID: "resumeProjection", Tag: tagOperations,
		Summary:     "Resume a stopped projection, optionally skipping the event it stopped at",
		Description: "Global administrators; recorded with the caller. skip_position must be the stop's position (409 skip-mismatch otherwise); 409 not-stopped when it runs. The body may be empty. Answers the projection as it stands after the resume.",
		Body:        "ResumeRequest", Status: 200, Result: "Projection", Problems: []int{404, 409}},
}

// problemResponse is a standard problem response of components.responses.
type problemResponse struct {
	name, description string
	// headers are the components.headers the response always carries besides X-Request-Id.
	headers []string
}

// problemResponses name the standard problem responses by status.
var problemResponses = map[int]problemResponse{
	400: {"BadRequest", "Invalid request: malformed JSON, unknown or mistyped members, invalid values (every bad field listed in errors), a bad query parameter or If-Match", nil},
	401: {"Unauthorized", "No bearer token, or the token is unknown, ended or expired", []string{"WWWAuthenticate"}},
	403: {"Forbidden", "The caller's role does not allow this", nil},
	404: {"NotFound", "No such object", nil},
	409: {"Conflict", "The object exists already, is in use (users lists who uses it), a limit is reached, or it kept changing concurrently", nil},
	412: {"PreconditionFailed", "If-Match names a version the object is no longer at", nil},
	413: {"PayloadTooLarge", "The request body is over 1 MiB", nil},
	415: {"UnsupportedMediaType", "The request has a body whose Content-Type is not application/json (UTF-8); Accept names the one accepted. Nothing was changed.", []string{"Accept"}},
	422: {"UnprocessableContent", "The Idempotency-Key was already used for a different request", nil},
	429: {"TooManyRequests", "Too many failed logins, or too many failed certificate requests for the host; retry after Retry-After seconds (also retry_after)", []string{"RetryAfter"}},
	500: {"InternalServerError", "An unexpected failure; it is logged with the request id", nil},
	501: {"NotImplemented", "This server cannot do this yet (not-implemented-yet): the detail says what is missing", nil},
	503: {"ServiceUnavailable", "The request timed out, a domain's directory could not be reached, or the change was saved but the read models have not caught up yet; retry after Retry-After seconds", []string{"RetryAfter"}},
}

// Responses for one kind of operation only: login's 401 is no bearer challenge, and a PATCH's
// 415 also names the patch media types.
var (
	loginFailedResponse = problemResponse{"LoginFailed",
		"Wrong e-mail address or password (one answer for both). No WWW-Authenticate: the credentials travel in the body, not in an HTTP authentication scheme.", nil}
	unsupportedPatchResponse = problemResponse{"UnsupportedPatchMediaType",
		"The body's Content-Type is neither application/merge-patch+json nor application/json (UTF-8); Accept-Patch names both. Nothing was changed.", []string{"Accept", "AcceptPatch"}}
)

// problemResponseFor is the response rt answers with for a problem status.
func (rt apiRoute) problemResponseFor(status int) problemResponse {
	switch {
	case status == http.StatusUnauthorized && rt.Public:
		return loginFailedResponse
	case status == http.StatusUnsupportedMediaType && rt.Method == http.MethodPatch:
		return unsupportedPatchResponse
	}
	return problemResponses[status]
}

// problems lists the problem statuses rt can answer: those its kind always can, and its own.
func (rt apiRoute) problems() []int {
	set := map[int]bool{500: true} // a panic is answered, not dropped
	for _, p := range rt.Problems {
		set[p] = true
	}
	if !rt.Public {
		set[401], set[403] = true, true
		// Every read waits for the read models to catch up (catchUp), every write for its
		// own change or the token check's: either wait, and any request, can run out of time.
		set[503] = true
		if rt.Method != http.MethodGet {
			set[409] = true // the object kept changing concurrently
		}
	}
	switch rt.Method {
	case http.MethodPost, http.MethodPut, http.MethodPatch, http.MethodDelete:
		set[415] = true // a body that is not JSON (requireJSON)
	}
	if strings.Contains(rt.Path, "{") {
		set[404] = true
	}
	if rt.Body != "" {
		set[400], set[413] = true, true
	}
	if len(rt.Query) > 0 {
		set[400] = true
	}
	if rt.IfMatch {
		set[400], set[412] = true, true
	}
	if rt.Idempotent {
		set[400], set[422] = true, true
	}
	out := make([]int, 0, len(set))
	for p := range set {
		out = append(out, p)
	}
	sort.Ints(out)
	return out
}

var pathParamRE = regexp.MustCompile(`\{([^}:]+)(?::[^}]*)?\}`)

// pathParamDescriptions describe the path parameters by name.
var pathParamDescriptions = map[string]string{
	"domain":  "Domain name, in A-label or Unicode form, any case",
	"address": "Address of the account, list or resource, any case",
	"alias":   "Alias address, any case",
	"member":  "Member address, any case",
	"owner":   "Owner address, any case",
	"name":    "Class of service name, any case",
	"id":      "Session id",
	"host":    "Virtual host name, in A-label or Unicode form, any case",
}

func oaRef(kind, name string) map[string]any {
	return map[string]any{"$ref": "#/components/" + kind + "/" + name}
}

func (rt apiRoute) operation() map[string]any {
	op := map[string]any{
		"operationId": rt.ID,
		"summary":     rt.Summary,
		"tags":        []string{rt.Tag},
	}
	if rt.Description != "" {
		op["description"] = rt.Description
	}
	if rt.Public {
		op["security"] = []any{} // overrides the document's bearer requirement
	}
	params := []any{}
	for _, m := range pathParamRE.FindAllStringSubmatch(rt.Path, -1) {
		params = append(params, map[string]any{"name": m[1], "in": "path", "required": true,
			"description": pathParamDescriptions[m[1]], "schema": map[string]any{"type": "string"}})
	}
	for _, q := range rt.Query {
		params = append(params, oaRef("parameters", openAPIParamName(q)))
	}
	if rt.IfMatch {
		params = append(params, oaRef("parameters", "IfMatch"))
	}
	if rt.Idempotent {
		params = append(params, oaRef("parameters", "IdempotencyKey"))
	}
	if len(params) > 0 {
		op["parameters"] = params
	}
	if rt.Body != "" {
		body := map[string]any{"schema": oaRef("schemas", rt.Body)}
		content := map[string]any{mediaJSON: body}
		if rt.Method == http.MethodPatch {
			content[mediaMergePatch] = body // what a PATCH body is; application/json is taken too
		}
		if rt.Form != "" {
			content[mediaMultipart] = map[string]any{"schema": oaRef("schemas", rt.Form)}
		}
		op["requestBody"] = map[string]any{"required": true, "content": content}
	}

	responses := map[string]any{}
	ok := map[string]any{"description": http.StatusText(rt.Status)}
	if rt.Result != "" {
		mt := rt.ResultType
		if mt == "" {
			mt = mediaJSON
		}
		ok["content"] = map[string]any{mt: map[string]any{"schema": oaRef("schemas", rt.Result)}}
	}
	headers := map[string]any{"X-Request-Id": oaRef("headers", "RequestId")}
	if rt.ETag {
		if rt.Idempotent {
			// A replayed response (Idempotent-Replayed) is the stored status and body only.
			headers["ETag"] = oaRef("headers", "ETagUnlessReplayed")
		} else {
			headers["ETag"] = oaRef("headers", "ETag")
		}
	}
	if rt.Status == http.StatusCreated {
		headers["Location"] = oaRef("headers", "Location")
	}
	if rt.Status == http.StatusAccepted {
		headers["Location"] = oaRef("headers", "JobLocation")
	}
	for _, h := range rt.Headers {
		headers[openAPIHeaders[h].name] = oaRef("headers", h)
	}
	if rt.Idempotent {
		headers["Idempotent-Replayed"] = oaRef("headers", "IdempotentReplayed")
	}
	ok["headers"] = headers
	responses[strconv.Itoa(rt.Status)] = ok
	for status, oaSchema := range rt.Other {
		responses[strconv.Itoa(status)] = map[string]any{"description": http.StatusText(status),
			"headers": map[string]any{"X-Request-Id": oaRef("headers", "RequestId")},
			"content": map[string]any{mediaJSON: map[string]any{"schema": oaRef("schemas", oaSchema)}}}
	}
	for _, p := range rt.problems() {
		if _, taken := responses[strconv.Itoa(p)]; !taken {
			responses[strconv.Itoa(p)] = oaRef("responses", rt.problemResponseFor(p).name)
		}
	}
	op["responses"] = responses
	return op
}

// openAPIHeader is a response header of components.headers.
type openAPIHeader struct {
	name, description string
	required          bool
	schema            oaSchema
}

// openAPIHeaders are the response headers by components.headers key.
var openAPIHeaders = map[string]openAPIHeader{
	"RequestId": {"X-Request-Id", "The request's X-Request-Id when it sent one of at most 128 characters, else one made up; history shows it as request_id",
		true, oaSchema{"type": "string", "minLength": 1, "maxLength": 128}},
	"ETag": {"ETag", "The object's version, for If-Match", true, oaSchema{"type": "string", "pattern": `^"[0-9]+"$`}},
	"ETagUnlessReplayed": {"ETag", "The object's version, for If-Match; absent from a replayed response (Idempotent-Replayed)",
		false, oaSchema{"type": "string", "pattern": `^"[0-9]+"$`}},
	"Location": {"Location", "Path of the created object", true, oaSchema{"type": "string", "format": "uri-reference"}},
	"JobLocation": {"Location", "Path of the job (GET /api/v1/jobs/{id}); absent from a replayed response (Idempotent-Replayed)",
		false, oaSchema{"type": "string", "format": "uri-reference"}},
	"ContentDisposition": {"Content-Disposition", `attachment; filename="<host>.pem"`, true, oaSchema{"type": "string"}},
	"IdempotentReplayed": {"Idempotent-Replayed", "true when this is the stored response of an earlier request with the same Idempotency-Key", false, oaSchema{"type": "string", "enum": []string{"true"}}},
	"RetryAfter":         {"Retry-After", "Seconds to wait before trying again", true, oaSchema{"type": "integer", "minimum": 0}},
	"WWWAuthenticate": {"WWW-Authenticate", `The bearer challenge (RFC 6750): Bearer realm="mailplane", with error="invalid_token" when a token was sent`,
		true, oaSchema{"type": "string", "pattern": `^Bearer realm="mailplane"`}},
	"Accept":      {"Accept", "The media type a request body may have", true, oaSchema{"type": "string"}},
	"AcceptPatch": {"Accept-Patch", "The media types a PATCH body may have (RFC 5789)", true, oaSchema{"type": "string"}},
}

// openAPIParamName is the components.parameters name of a query parameter.
func openAPIParamName(q string) string { return "Query" + strings.ToUpper(q[:1]) + q[1:] }

// openAPIQueryParams are the list parameters (API.md Conventions).
var openAPIQueryParams = map[string]map[string]any{
	"q": {"description": "Case-insensitive substring of the name (or display name, description)",
		"schema": map[string]any{"type": "string", "maxLength": 256}},
	"status": {"description": "Only objects with this status", "schema": map[string]any{"type": "string"}},
	"limit": {"description": "Page size",
		"schema": map[string]any{"type": "integer", "minimum": 1, "maximum": 500, "default": 50}},
	"cursor": {"description": "next_cursor of the previous page", "schema": map[string]any{"type": "string"}},
	"after":  {"description": "Only events recorded after this time (RFC 3339)", "schema": map[string]any{"type": "string", "format": "date-time"}},
	"before": {"description": "Only events recorded before this time (RFC 3339)", "schema": map[string]any{"type": "string", "format": "date-time"}},
	"type":   {"description": "Only these event types, comma-separated", "schema": map[string]any{"type": "string"}},
	"as_of":  {"description": "The object as it stood at this time (RFC 3339)", "schema": map[string]any{"type": "string", "format": "date-time"}},
}

// Schema helpers (prefixed oa: the api package is shared): the document is plain data.
type oaSchema = map[string]any

func oaObject(required []string, props oaSchema) oaSchema {
	s := oaSchema{"type": "object", "properties": props}
	if len(required) > 0 {
		s["required"] = required
	}
	return s
}

// oaClosed is an object that refuses members it does not define (request bodies).
func oaClosed(required []string, props oaSchema) oaSchema {
	s := oaObject(required, props)
	s["additionalProperties"] = false
	return s
}

func oaTyped(t string, desc string) oaSchema {
	s := oaSchema{"type": t}
	if desc != "" {
		s["description"] = desc
	}
	return s
}

func oaString(desc string) oaSchema  { return oaTyped("string", desc) }
func oaInteger(desc string) oaSchema { return oaTyped("integer", desc) }
func oaBool(desc string) oaSchema    { return oaTyped("boolean", desc) }

func oaDateTime(desc string) oaSchema {
	s := oaString(desc)
	s["format"] = "date-time"
	return s
}

func oaEnum(desc string, values ...string) oaSchema {
	s := oaString(desc)
	s["enum"] = values
	return s
}

func oaBounded(s oaSchema, minimum, maximum int) oaSchema {
	s["minimum"] = minimum
	if maximum >= 0 {
		s["maximum"] = maximum
	}
	return s
}

// oaNullable lets s also be null (JSON Schema 2020-12, as OpenAPI 3.1 uses).
func oaNullable(s oaSchema) oaSchema {
	out := oaSchema{}
	for k, v := range s {
		out[k] = v
	}
	switch t := s["type"].(type) {
	case string:
		out["type"] = []string{t, "null"}
	}
	if e, ok := s["enum"].([]string); ok {
		vals := make([]any, 0, len(e)+1)
		for _, v := range e {
			vals = append(vals, v)
		}
		out["enum"] = append(vals, nil)
	}
	return out
}

func oaArray(items oaSchema) oaSchema { return oaSchema{"type": "array", "items": items} }

func oaMap(values oaSchema, desc string) oaSchema {
	s := oaSchema{"type": "object", "additionalProperties": values}
	if desc != "" {
		s["description"] = desc
	}
	return s
}

// oaFreeObject is an object whose members may be anything. It leaves additionalProperties out
// rather than writing {} for it: kin-openapi, which checks the API tests' exchanges, does not
// let {} match null as JSON Schema would.
func oaFreeObject(desc string) oaSchema {
	return oaSchema{"type": "object", "description": desc}
}

func oaSchemaRef(name string) oaSchema { return oaRef("schemas", name) }

func oaPage(item string) oaSchema {
	return oaObject([]string{"items", "next_cursor"}, oaSchema{
		"items":       oaArray(oaSchemaRef(item)),
		"next_cursor": oaNullable(oaString("Pass as cursor for the next page; null on the last page")),
	})
}

var (
	oaDomainStatuses  = []string{"active", "maintenance", "locked", "closed", "suspended"}
	oaAccountStatuses = []string{"active", "locked", "maintenance", "closed", "lockout", "pending"}
	oaProtocols       = []string{"http", "https"}
	oaMechanisms      = []string{"internal", "ldap", "ad"}
	oaListPolicies    = []string{"accept", "approval", "reject"}
	oaResourceTypes   = []string{"location", "equipment"}
	oaBookingPolicies = []string{"auto_accept", "auto_accept_unless_busy", "manual", "auto_decline"}
)

func openAPISchemas() oaSchema {
	version := oaInteger("Stream version of the object; also its ETag")
	sources := oaMap(oaString(""), `Where each effective value comes from: "account", "cos:NAME", "domain" or "global"`)
	features := oaMap(oaBool(""), "Feature switches, e.g. calendar, contacts, imap, pop3")
	quota := func(desc string) oaSchema { return oaBounded(oaInteger(desc), 0, -1) }
	percent := func(desc string) oaSchema { return oaBounded(oaInteger(desc), 0, 100) }

	configProps := func(patch bool) oaSchema {
		p := oaSchema{
			"time_zone":                    oaString("IANA time zone"),
			"public_protocol":              oaEnum("Protocol of public links", oaProtocols...),
			"spam_relay_host":              oaString(`host[:port] of the spam relay; "" for none`),
			"default_cos":                  oaString("COS of accounts whose domain names none; must exist"),
			"account_quota_bytes":          quota("Default mailbox limit per account; 0 = none"),
			"domain_quota_bytes":           quota("Default limit per domain; 0 = none"),
			"warn_percent":                 percent("Usage percent that sends a warning"),
			"gal_polling_interval_seconds": oaInteger("GAL resync interval; 0 = off, else at least 60"),
			"session_lifetime_seconds":     oaBounded(oaInteger("Login session lifetime"), 60, -1),
			"password_min_length":          oaBounded(oaInteger("Minimum password length"), 0, 256),
		}
		if patch {
			for k, v := range p {
				s := oaNullable(v.(oaSchema))
				s["description"] = fmt.Sprint(v.(oaSchema)["description"], "; null resets to the built-in default")
				p[k] = s
			}
		}
		return p
	}
	configShown := configProps(false)
	configShown["version"] = oaInteger("Stream version; 0 while never changed")
	configRequired := make([]string, 0, len(configShown))
	for k := range configShown {
		configRequired = append(configRequired, k)
	}
	sort.Strings(configRequired)

	cosSettings := func(nullNote string) oaSchema {
		return oaSchema{
			"description":              oaString(""),
			"mail_quota_bytes":         oaNullable(quota("Mailbox limit; 0 = none" + nullNote)),
			"quota_warn_percent":       oaNullable(percent("Usage percent that sends a warning" + nullNote)),
			"password_min_length":      oaNullable(oaBounded(oaInteger("Minimum password length"+nullNote), 0, 256)),
			"session_lifetime_seconds": oaNullable(quota("Session lifetime; 0 = the global one" + nullNote)),
		}
	}
	cosShown := cosSettings("; null inherits the global setting")
	cosShown["name"] = oaString("Lower-case name")
	cosShown["features"] = features
	cosShown["effective"] = oaFreeObject("What an account of this COS gets before domain and account overrides")
	cosShown["sources"] = sources
	cosShown["version"] = version
	cosShown["updated_at"] = oaDateTime("")
	cosCreate := cosSettings("")
	cosCreate["name"] = oaString("1-64 characters of a-z, 0-9, '.', '_', '-'; any case, stored lower-case")
	cosCreate["features"] = features
	cosPatch := cosSettings("; null inherits the global setting")
	cosPatch["description"] = oaNullable(oaString("null empties it"))
	cosPatch["name"] = oaString("The current name; a COS cannot be renamed")
	cosPatch["features"] = oaNullable(oaMap(oaNullable(oaBool("")), "Merged into the current features; a feature sent as null is removed, null removes all"))

	limits := func(patch bool) oaSchema {
		n := func(s oaSchema) oaSchema {
			if patch {
				return oaNullable(s)
			}
			return s
		}
		return oaSchema{
			"domain_quota_bytes":  oaNullable(quota("Limit of the whole domain; 0 = none; null inherits the global setting")),
			"account_quota_bytes": oaNullable(quota("Default limit of new accounts; 0 = none; null inherits the global setting")),
			"warn_percent":        oaNullable(percent("null inherits the global setting")),
			"warn_recipient":      n(oaString("Who gets warnings besides the account")),
			"max_accounts":        n(quota("0 = no limit")),
		}
	}
	authInput := func() oaSchema {
		return oaClosed(nil, oaSchema{
			"mechanism":     oaEnum("", oaMechanisms...),
			"ldap_url":      oaString(""),
			"bind_dn":       oaString(""),
			"bind_password": oaSchema{"type": "string", "writeOnly": true, "description": "Stored encrypted, never returned"},
			"search_base":   oaString(""),
			"search_filter": oaString(""),
		})
	}
	domainSettings := func(patch bool) oaSchema {
		n := func(s oaSchema) oaSchema {
			if patch {
				return oaNullable(s)
			}
			return s
		}
		p := oaSchema{
			"description":     n(oaString("")),
			"time_zone":       oaNullable(oaString("null inherits the global setting")),
			"public_protocol": oaNullable(oaEnum("null inherits the global setting", oaProtocols...)),
			"spam_relay_host": oaNullable(oaString("null inherits the global setting")),
			"default_cos":     oaNullable(oaString("Must exist; null inherits the global setting")),
			"status":          oaEnum("", oaDomainStatuses...),
			"auth":            authInput(),
			"limits":          oaClosed(nil, limits(patch)),
		}
		return p
	}
	domainCreate := domainSettings(false)
	domainCreate["name"] = oaString("Domain name; Unicode accepted, stored as IDNA A-labels")

	// A domain shows its limits without null: a limit of its own is there, one it inherits is
	// absent (effective shows the value in force).
	limitsShown := oaSchema{
		"domain_quota_bytes":  quota("Limit of the whole domain; 0 = none; absent: inherited"),
		"account_quota_bytes": quota("Default limit of new accounts; 0 = none; absent: inherited"),
		"warn_percent":        percent("Absent: inherited"),
		"warn_recipient":      oaString("Who gets warnings besides the account; absent: nobody else"),
		"max_accounts":        oaBounded(oaInteger("Absent: no limit"), 1, -1),
	}
	domainShown := oaSchema{
		"name":            oaString("A-label form"),
		"unicode_name":    oaString(""),
		"description":     oaString(""),
		"time_zone":       oaNullable(oaString("Own setting; null: inherited (see effective)")),
		"public_protocol": oaNullable(oaEnum("", oaProtocols...)),
		"spam_relay_host": oaNullable(oaString("")),
		"default_cos":     oaNullable(oaString("")),
		"status":          oaEnum("", oaDomainStatuses...),
		"auth": oaObject([]string{"mechanism", "has_bind_password"}, oaSchema{
			"mechanism": oaEnum("", oaMechanisms...), "ldap_url": oaString(""), "bind_dn": oaString(""),
			"has_bind_password": oaBool("The bind password itself is never returned"),
			"search_base":       oaString(""), "search_filter": oaString(""),
		}),
		"limits":    oaObject(nil, limitsShown),
		"effective": oaFreeObject("Settings in force"),
		"sources":   sources,
		"counts": oaObject([]string{"accounts", "lists", "resources", "aliases"}, oaSchema{
			"accounts": oaInteger(""), "lists": oaInteger(""), "resources": oaInteger(""), "aliases": oaInteger(""),
		}),
		"version":    version,
		"created_at": oaDateTime(""),
		"updated_at": oaDateTime(""),
	}
	accountShown := oaSchema{
		"address":          oaString("Lower-case address, domain in A-labels"),
		"unicode_address":  oaString(""),
		"local_part":       oaString(""),
		"domain":           oaString(""),
		"display_name":     oaString(""),
		"cos":              oaNullable(oaString("null: the domain's default COS, else the global one")),
		"status":           oaEnum("", oaAccountStatuses...),
		"mail_quota_bytes": oaNullable(quota("null: inherited")),
		"global_admin":     oaBool(""),
		"domain_admin":     oaBool(""),
		"attributes":       oaMap(oaString(""), ""),
		"aliases":          oaArray(oaString("")),
		"has_password":     oaBool("Whether a local password is set; the password itself is never returned"),
		"effective":        oaFreeObject("Settings in force"),
		"sources":          sources,
		"version":          version,
		"created_at":       oaDateTime(""),
		"updated_at":       oaDateTime(""),
	}
	secret := func(desc string) oaSchema {
		return oaSchema{"type": "string", "writeOnly": true, "description": desc}
	}
	accountCreate := oaSchema{
		"address":          oaString("Full address in the domain (or local_part)"),
		"local_part":       oaString(""),
		"display_name":     oaString(""),
		"password":         secret("Optional; no password: no login until one is set"),
		"password_hash":    secret("Existing hash from a migration: PHC argon2id, bcrypt, {SSHA}, {SSHA512}"),
		"cos":              oaString("Must exist"),
		"status":           oaEnum("", oaAccountStatuses...),
		"mail_quota_bytes": quota("0 = none"),
		"global_admin":     oaBool(""),
		"domain_admin":     oaBool(""),
		"attributes":       oaMap(oaString(""), ""),
	}
	accountPatch := oaSchema{
		"display_name":     oaNullable(oaString("")),
		"password":         secret(""),
		"password_hash":    secret(""),
		"cos":              oaNullable(oaString("null: the domain's default again")),
		"status":           oaEnum("", oaAccountStatuses...),
		"mail_quota_bytes": oaNullable(quota("null: inherited again")),
		"global_admin":     oaBool(""),
		"domain_admin":     oaBool(""),
		"attributes": oaNullable(oaMap(oaNullable(oaString("")),
			"Merge patch: a key set to a string sets it, a key set to null is removed, others stay; \"attributes\": null removes all")),
	}

	nullString := func(desc string) oaSchema { return oaNullable(oaString(desc)) }
	nullTime := func(desc string) oaSchema {
		return oaSchema{"type": []string{"string", "null"}, "format": "date-time", "description": desc}
	}
	certInfo := oaSchema{
		"subject":            nullString("Subject DN (RFC 2253)"),
		"issuer":             nullString("Issuer DN"),
		"sans":               oaSchema{"type": []string{"array", "null"}, "items": oaString(""), "description": "Subject alternative names"},
		"serial":             nullString("Serial number, hex"),
		"fingerprint_sha256": nullString("SHA-256 of the certificate, hex"),
		"key_type":           nullString("RSA-<bits> or EC-<curve>"),
		"not_before":         nullTime(""),
		"not_after":          nullTime("Expiry"),
		"chain_length":       oaSchema{"type": []string{"integer", "null"}, "description": "CA certificates served after the certificate"},
		"chain_root":         nullString("The root the chain ends at (its subject, or the issuer of the last certificate when the root is left out)"),
	}
	certStatus := withMembers(certInfo, oaSchema{
		"host":                    oaString(""),
		"status":                  oaEnum("none: no certificate; renewal_due: an ACME certificate past its renewal due date", "none", "valid", "renewal_due", "expired"),
		"source":                  oaNullable(oaEnum("custom: installed by an administrator; acme: issued through ACME", "custom", "acme")),
		"installed_at":            nullTime(""),
		"renewal_due_at":          nullTime("When an ACME certificate renews: 30 days before expiry (after two thirds of a shorter life); null for custom ones"),
		"renewal_failures":        oaInteger("Failed renewals of the current certificate"),
		"next_renewal_attempt_at": nullTime("When a failed renewal is tried again (backoff: 1 h, doubling, at most a day)"),
		"issuance": oaSchema{"description": "The ACME request in flight", "oneOf": []any{oaSchema{"type": "null"},
			oaObject([]string{"state", "request_id", "chain", "renewal", "requested_at", "requested_by"}, oaSchema{
				"state": oaEnum("", "pending"), "request_id": oaString(""), "chain": oaEnum("", "long", "short"),
				"renewal": oaBool(""), "requested_at": oaDateTime(""), "requested_by": oaString("An address, or system:certificate-renewal"),
			})}},
		"last_failure": oaSchema{"description": "The latest failed ACME request, until a certificate is installed", "oneOf": []any{oaSchema{"type": "null"},
			oaObject([]string{"at", "renewal", "errors"}, oaSchema{
				"at": oaDateTime(""), "renewal": oaBool(""), "errors": oaArray(oaString("The CA's error")),
			})}},
		"failures_last_hour": oaInteger("Failed ACME requests for the host within the last hour"),
		"retry_after":        oaInteger("Seconds before a new ACME request is accepted; 0: now"),
		"version":            version,
	})

	schemas := oaSchema{
		"Problem": oaSchema{
			"type":        "object",
			"description": "RFC 9457 problem details",
			"required":    []string{"type", "title", "status"},
			"properties": oaSchema{
				"type":        oaString("Stable problem type, e.g. /problems/validation"),
				"title":       oaString(""),
				"status":      oaInteger(""),
				"detail":      oaString(""),
				"errors":      oaArray(oaSchemaRef("FieldError")),
				"users":       oaArray(oaString("For in-use: what still uses the object")),
				"retry_after": oaInteger("For rate-limited: seconds to wait"),
				"problems":    oaArray(oaSchemaRef("CertificateProblem")),
				"checks":      oaMap(oaString(""), "For not-ready: the detail of each check"),
			},
		},
		"FieldError": oaObject([]string{"field", "message"}, oaSchema{"field": oaString("API name, dotted for nested members"), "message": oaString("")}),
		"Health":     oaObject([]string{"status"}, oaSchema{"status": oaString("")}),
		"Projection": oaObject([]string{"name", "position", "lag_events", "lag_seconds", "state", "stopped", "dead_letters"}, oaSchema{
			"name":        oaString("Stable name, its checkpoint identity"),
			"position":    oaInteger("Global position of the last event its checkpoint has passed"),
			"lag_events":  oaInteger("Events after its checkpoint (counted up to 1,000,000)"),
			"lag_seconds": oaSchema{"type": "number", "description": "Age of the oldest event it has not handled"},
			"state":       oaSchema{"type": "string", "enum": []string{"running", "stopped"}},
			"stopped": oaSchema{"description": "The stop, while stopped", "oneOf": []any{oaSchema{"type": "null"},
				oaObject([]string{"position", "stream", "reason", "at"}, oaSchema{"position": oaInteger("The event it stopped at"),
					"stream": oaString(""), "reason": oaString(""), "at": oaDateTime("")})}},
			"dead_letters": oaInteger("Unresolved dead letters"),
		}),
		"ProjectionList": oaArray(oaSchemaRef("Projection")),
		"Job": oaObject([]string{"id", "kind", "state", "progress", "errors", "created_at", "finished_at"}, oaSchema{
			"id":          oaInteger(""),
			"kind":        oaString("What the job does, e.g. remove_domain"),
			"state":       oaSchema{"type": "string", "enum": []string{"queued", "running", "retrying", "succeeded", "failed", "cancelled"}},
			"progress":    oaObject([]string{"done", "total"}, oaSchema{"done": oaInteger(""), "total": oaInteger("0 until the job knows")}),
			"errors":      oaArray(oaString("One per failed attempt, oldest first")),
			"created_at":  oaDateTime(""),
			"finished_at": oaSchema{"type": []string{"string", "null"}, "format": "date-time"},
		}),
		"JobAccepted": oaObject([]string{"job"}, oaSchema{"job": oaSchemaRef("Job")}),
		"ResumeRequest": oaClosed(nil, oaSchema{"skip_position": oaSchema{"type": []string{"integer", "null"},
			"description": "Skip the event at this position (the stop's): it is never handed to the projection"}}),
		"Readiness":       oaObject([]string{"status", "checks"}, oaSchema{"status": oaString(`"ready"`), "checks": oaMap(oaString(""), "Detail per check")}),
		"Metrics":         oaString("Prometheus text exposition format"),
		"OpenAPIDocument": oaSchema{"type": "object", "description": "An OpenAPI 3.1 document"},
		"LoginRequest":    oaClosed([]string{"email", "password"}, oaSchema{"email": oaString(""), "password": secret("")}),
		"LoginResponse": oaObject([]string{"token", "expires_at", "session_id"}, oaSchema{
			"token": oaString("Bearer token, shown once"), "expires_at": oaDateTime(""), "session_id": oaString(""),
		}),
		"Config":      oaObject(configRequired, configShown),
		"ConfigPatch": oaClosed(nil, configProps(true)),
		"COS": oaObject([]string{"name", "description", "mail_quota_bytes", "quota_warn_percent", "features",
			"password_min_length", "session_lifetime_seconds", "effective", "sources", "version", "updated_at"}, cosShown),
		"COSCreate":     oaClosed([]string{"name"}, cosCreate),
		"COSPatch":      oaClosed(nil, cosPatch),
		"COSPage":       oaPage("COS"),
		"Domain":        oaObject(slices.Sorted(maps.Keys(domainShown)), domainShown),
		"DomainCreate":  oaClosed([]string{"name"}, domainCreate),
		"DomainPatch":   oaClosed(nil, domainSettings(true)),
		"DomainPage":    oaPage("Domain"),
		"Account":       oaObject(slices.Sorted(maps.Keys(accountShown)), accountShown),
		"AccountCreate": accountCreateSchema(accountCreate),
		"AccountPatch":  oaClosed(nil, accountPatch),
		"AccountPage":   oaPage("Account"),
		"AliasRequest":  oaClosed([]string{"alias"}, oaSchema{"alias": oaString("Address in a domain the caller administers")}),
		"Session": oaObject([]string{"id", "created_at", "last_seen_at", "expires_at", "ip", "user_agent", "current"}, oaSchema{
			"id": oaString(""), "created_at": oaDateTime(""), "last_seen_at": oaDateTime(""), "expires_at": oaDateTime(""),
			"ip": oaString(""), "user_agent": oaString(""), "current": oaBool("The session of the token making this request"),
		}),
		"SessionList": oaPage("Session"),
		"HistoryEvent": oaObject([]string{"position", "stream", "stream_type", "version", "type", "schema_version", "data", "actor",
			"recorded_at", "prev_hash", "hash"}, oaSchema{
			"position": oaInteger("Global position"), "stream": oaString("Stream id"), "stream_type": oaString(""),
			"version": oaInteger("Version in its stream"), "type": oaString("Event type"), "schema_version": oaInteger(""),
			"data": oaFreeObject("The event, secrets \"[redacted]\""), "actor": oaString("Who caused it"),
			"request_id": oaString("X-Request-Id of the request that caused it; absent when none"),
			"source_ip":  oaString("Absent when unknown"), "recorded_at": oaDateTime(""),
			"prev_hash": oaString("Hex SHA-256 of the previous event of the stream"),
			"hash":      oaString("Hex SHA-256 over prev_hash and the canonical event"),
		}),
		"HistoryPage":       oaPage("HistoryEvent"),
		"VirtualHostCreate": oaClosed([]string{"host"}, oaSchema{"host": oaString("Host name; Unicode accepted, stored as IDNA A-labels")}),
		"VirtualHost": oaObject([]string{"host", "unicode_host", "domain", "certificate", "version", "created_at", "updated_at"}, oaSchema{
			"host": oaString("A-label form"), "unicode_host": oaString(""), "domain": oaString(""),
			"certificate": oaSchemaRef("CertificateStatus"), "version": version,
			"created_at": oaDateTime(""), "updated_at": oaDateTime(""),
		}),
		"VirtualHostPage":    oaPage("VirtualHost"),
		"CertificateProblem": oaObject([]string{"code", "message"}, oaSchema{"code": oaString("Stable code (see verifyCertificate)"), "message": oaString("What is wrong and what to do")}),
		"CertificateFiles": oaClosed(nil, oaSchema{
			"certificate": oaString("The server certificate, PEM"),
			"ca_chain":    oaString("The CA certificates that signed it (intermediates; the root may be left out), PEM"),
			"private_key": secret("Its private key, PEM (PKCS #8, PKCS #1 or SEC 1), unencrypted"),
		}),
		"CertificateUpload": oaClosed(nil, oaSchema{
			"certificate": oaString("The server certificate file (PEM)"),
			"ca_chain":    oaString("The CA chain file (PEM)"),
			"private_key": oaString("The private key file (PEM)"),
		}),
		"CertificateVerification": oaObject(append([]string{"valid", "problems"}, slices.Sorted(maps.Keys(certInfo))...),
			withMembers(certInfo, oaSchema{
				"valid":    oaBool("true when problems is empty"),
				"problems": oaArray(oaSchemaRef("CertificateProblem")),
			})),
		"CertificateStatus": oaObject(slices.Sorted(maps.Keys(certStatus)), certStatus),
		"ACMERequest":       oaClosed(nil, oaSchema{"chain": oaEnum("long (default): the CA's default chain, with its intermediate; short: the CA's alternate chain", "long", "short")}),
		"PEMBundle":         oaString("PEM certificates: the server certificate, then its CA chain"),
		"DeletionPreview": oaObject([]string{"accounts", "lists", "resources", "aliases", "virtual_hosts"}, oaSchema{
			"accounts": oaArray(oaString("")), "lists": oaArray(oaString("")), "resources": oaArray(oaString("")),
			"aliases": oaArray(oaString("")), "virtual_hosts": oaArray(oaString("")),
		}),
	}
	maps.Copy(schemas, listSchemas(version))
	maps.Copy(schemas, resourceSchemas(version))
	return schemas
}

// listSchemas are the mailing lists' schemas.
func listSchemas(version oaSchema) oaSchema {
	addresses := func(desc string) oaSchema {
		s := oaArray(oaString(""))
		s["description"] = desc
		return s
	}
	policy := func(desc string) oaSchema { return oaEnum(desc, oaListPolicies...) }
	dynamicShown := oaObject([]string{"member_url", "scope", "filter"}, oaSchema{
		"member_url": oaString("The query as stored: ldap:///??SCOPE?FILTER"),
		"scope":      oaEnum("", "sub", "one"),
		"filter":     oaString("RFC 4515 filter, percent-decoded"),
	})
	shown := oaSchema{
		"address":               oaString("Lower-case address, domain in A-labels"),
		"unicode_address":       oaString(""),
		"local_part":            oaString(""),
		"domain":                oaString(""),
		"display_name":          oaString(""),
		"description":           oaString(""),
		"owners":                addresses("Accounts that manage the list's members, owners and policies"),
		"allowed_senders":       addresses("Who may post; empty: anyone"),
		"subscription_policy":   policy(""),
		"unsubscription_policy": policy(""),
		"aliases":               addresses(""),
		"hide_in_gal":           oaBool("Left out of the domain's address book"),
		"dynamic":               oaSchema{"description": "The query of a dynamic list; null for a static one", "oneOf": []any{oaSchema{"type": "null"}, dynamicShown}},
		"member_count":          oaSchema{"type": []string{"integer", "null"}, "minimum": 0, "description": "Explicit members of a static list; null for a dynamic one"},
		"version":               version,
		"created_at":            oaDateTime(""),
		"updated_at":            oaDateTime(""),
	}
	memberURL := oaString("ldap:///??sub?(filter) or ldap:///??one?(filter): no host, no base DN, attribute list empty or mail")
	create := oaSchema{
		"address":               oaString("Full address in the domain"),
		"display_name":          oaString(""),
		"description":           oaString(""),
		"owners":                addresses("Accounts of the platform"),
		"allowed_senders":       addresses("Empty: anyone may post"),
		"subscription_policy":   policy("Default approval"),
		"unsubscription_policy": policy("Default accept"),
		"hide_in_gal":           oaBool(""),
		"dynamic":               oaNullable(oaClosed([]string{"member_url"}, oaSchema{"member_url": memberURL})),
	}
	create["members"] = addresses("At most 10,000, inside or outside the platform; none for a dynamic list")
	create["members"].(oaSchema)["maxItems"] = 10000
	patch := oaSchema{
		"display_name":          oaNullable(oaString("null empties it")),
		"description":           oaNullable(oaString("null empties it")),
		"allowed_senders":       oaNullable(addresses("Replaces them; empty or null: anyone may post")),
		"subscription_policy":   oaNullable(policy("null: approval")),
		"unsubscription_policy": oaNullable(policy("null: accept")),
		"hide_in_gal":           oaNullable(oaBool("Administrators only; null: false")),
	}
	set := func(member, desc string) oaSchema {
		items := addresses(desc)
		items["maxItems"] = 10000
		return oaClosed([]string{member}, oaSchema{member: items})
	}
	return oaSchema{
		"List":               oaObject(slices.Sorted(maps.Keys(shown)), shown),
		"ListCreate":         oaClosed([]string{"address"}, create),
		"ListPatch":          oaClosed(nil, patch),
		"ListPage":           oaPage("List"),
		"Member":             oaObject([]string{"address"}, oaSchema{"address": oaString("")}),
		"MemberPage":         oaPage("Member"),
		"ListMembersRequest": set("members", "At most 10,000 addresses, inside or outside the platform"),
		"ListOwnersRequest":  set("owners", "Accounts of the platform"),
		"ListAliasesRequest": set("aliases", "Addresses in domains the caller administers"),
		"ListDynamicRequest": oaClosed([]string{"member_url"}, oaSchema{
			"member_url":   memberURL,
			"drop_members": oaBool("Let a static list with members become dynamic, dropping them"),
		}),
	}
}

// resourceSchemas are the resources' schemas.
func resourceSchemas(version oaSchema) oaSchema {
	addresses := oaArray(oaString(""))
	addresses["description"] = "Who hears of its bookings (at most 100)"
	shown := oaSchema{
		"address":          oaString("Lower-case address, domain in A-labels"),
		"unicode_address":  oaString(""),
		"local_part":       oaString(""),
		"domain":           oaString(""),
		"display_name":     oaString(""),
		"type":             oaEnum("", oaResourceTypes...),
		"capacity":         oaBounded(oaInteger("People it holds; 0: not said"), 0, 1000000),
		"location":         oaString(""),
		"booking_policy":   oaEnum("How it answers invitations", oaBookingPolicies...),
		"max_conflicts":    oaBounded(oaInteger("Conflicting instances of a recurring booking it still accepts"), 0, 1000),
		"notify_addresses": addresses,
		"aliases":          oaArray(oaString("")),
		"version":          version,
		"created_at":       oaDateTime(""),
		"updated_at":       oaDateTime(""),
	}
	settings := func(patch bool) oaSchema {
		n := func(s oaSchema) oaSchema {
			if patch {
				return oaNullable(s)
			}
			return s
		}
		return oaSchema{
			"display_name":     n(oaString("")),
			"type":             oaEnum("", oaResourceTypes...),
			"capacity":         n(oaBounded(oaInteger("0: not said"), 0, 1000000)),
			"location":         n(oaString("")),
			"booking_policy":   oaEnum("Default auto_accept_unless_busy", oaBookingPolicies...),
			"max_conflicts":    n(oaBounded(oaInteger(""), 0, 1000)),
			"notify_addresses": n(addresses),
		}
	}
	create := settings(false)
	create["address"] = oaString("Full address in the domain")
	return oaSchema{
		"Resource":       oaObject(slices.Sorted(maps.Keys(shown)), shown),
		"ResourceCreate": oaClosed([]string{"address", "type"}, create),
		"ResourcePatch":  oaClosed(nil, settings(true)),
		"ResourcePage":   oaPage("Resource"),
	}
}

// withMembers returns a copy of props with more members.
func withMembers(props, more oaSchema) oaSchema {
	out := maps.Clone(props)
	maps.Copy(out, more)
	return out
}

// accountCreateSchema is a new account: address or local_part (both when they agree), and a
// password or a hash of one, not both.
func accountCreateSchema(props oaSchema) oaSchema {
	s := oaClosed(nil, props)
	s["anyOf"] = []oaSchema{{"required": []string{"address"}}, {"required": []string{"local_part"}}}
	s["not"] = oaSchema{"required": []string{"password", "password_hash"}}
	return s
}

// openAPIDocument builds the document from apiRoutes.
func openAPIDocument() oaSchema {
	paths := oaSchema{}
	for _, rt := range apiRoutes {
		p := pathParamRE.ReplaceAllString(rt.Path, "{$1}")
		item, _ := paths[p].(oaSchema)
		if item == nil {
			item = oaSchema{}
			paths[p] = item
		}
		item[strings.ToLower(rt.Method)] = rt.operation()
	}
	responses := oaSchema{}
	for _, pr := range append(slices.Collect(maps.Values(problemResponses)), loginFailedResponse, unsupportedPatchResponse) {
		headers := oaSchema{"X-Request-Id": oaRef("headers", "RequestId")}
		for _, h := range pr.headers {
			headers[openAPIHeaders[h].name] = oaRef("headers", h)
		}
		responses[pr.name] = oaSchema{"description": pr.description, "headers": headers, "content": oaSchema{
			"application/problem+json": oaSchema{"schema": oaSchemaRef("Problem")}}}
	}
	headers := oaSchema{}
	for key, h := range openAPIHeaders {
		headers[key] = oaSchema{"description": h.description, "required": h.required, "schema": h.schema}
	}
	parameters := oaSchema{
		"IfMatch": oaSchema{"name": "If-Match", "in": "header", "required": false,
			"description": `An ETag this API returned, e.g. "3": the write applies only at that version (412 otherwise)`,
			"schema":      oaString("")},
		"IdempotencyKey": oaSchema{"name": "Idempotency-Key", "in": "header", "required": false,
			"description": "A repeat with the same key returns the first response and changes nothing; the same key with another request is 422",
			"schema":      oaSchema{"type": "string", "maxLength": 255}},
	}
	for q, p := range openAPIQueryParams {
		param := oaSchema{"name": q, "in": "query", "required": false}
		for k, v := range p {
			param[k] = v
		}
		parameters[openAPIParamName(q)] = param
	}
	return oaSchema{
		"openapi": "3.1.0",
		"info": oaSchema{
			"title":       "mailplane admin API",
			"version":     "1",
			"description": "Admin API of the mailplane control plane. Objects are addressed by name; every object read returns version and an ETag; writes take If-Match; POSTs take Idempotency-Key; errors are application/problem+json (RFC 9457).",
		},
		"tags": []oaSchema{
			{"name": tagService}, {"name": tagAuth}, {"name": tagConfig}, {"name": tagCOS},
			{"name": tagDomains}, {"name": tagAccounts}, {"name": tagSessions}, {"name": tagLists}, {"name": tagResources},
			{"name": tagVirtualHosts}, {"name": tagOperations},
		},
		// Relative: the API is wherever this document is served from, under /api/v1 but for
		// the service endpoints at the root.
		"servers":  []oaSchema{{"url": "/", "description": "The server that serves this document"}},
		"security": []oaSchema{{"bearer": []string{}}},
		"paths":    paths,
		"components": oaSchema{
			"securitySchemes": oaSchema{"bearer": oaSchema{"type": "http", "scheme": "bearer",
				"description": "Token from POST /api/v1/auth/login"}},
			"schemas":    openAPISchemas(),
			"responses":  responses,
			"parameters": parameters,
			"headers":    headers,
		},
	}
}

// openAPIJSON is the document, built once.
var openAPIJSON = sync.OnceValue(func() []byte {
	b, err := json.MarshalIndent(openAPIDocument(), "", "  ")
	if err != nil {
		panic(fmt.Sprintf("openapi: %v", err)) // plain data: only a programming error gets here
	}
	return append(b, '\n')
})

func (s *Server) openapi(w http.ResponseWriter, _ *http.Request) {
	w.Header().Set("Content-Type", "application/json")
	w.Header().Set("Cache-Control", "public, max-age=300")
	_, _ = w.Write(openAPIJSON())
}
