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

	"mailplane/domain"
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
	// BodyOptional: the operation may be sent without its Body.
	BodyOptional bool
	// Form, when set, is the oaSchema of a multipart/form-data body taken besides Body's JSON.
	Form string
	// Upload maps the media types of a non-JSON body (a file) to their oaSchema names.
	Upload map[string]string
	// Status is the success status; Result its body's oaSchema name ("" for no body) and
	// ResultType its media type when not application/json.
	Status     int
	Result     string
	ResultType string
	// ResultTypes are further media types the success body may come in (same schema).
	ResultTypes []string
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
	// tagDKIM: the domains' DKIM signing keys.
	tagDKIM = "dkim"
	// tagGAL: the Global Address List and its GALSync account.
	tagGAL = "gal"
	// tagUsage: mailbox usage, quotas and the mail store's service tokens.
	tagUsage = "usage"
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

// historyQueryParams are the filters of every history (historyQuery).
var historyQueryParams = []string{"after", "before", "type", "actor", "ip", "request_id", "correlation_id", "session_id", "limit", "cursor"}

const historyFilters = "after and before bound recorded_at (RFC 3339, both exclusive); type keeps only the given event types (comma-separated); " +
	"actor, ip, request_id, correlation_id and session_id keep only events whose request had exactly that value (actor case-insensitive). " +
	"Each entry names who acted (actor) and, for requests made with a login token, the session (session_id). Secrets show as \"[redacted]\"."

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
		Description: "Administrators of the domain. " + historyFilters + " Available after the domain is gone.",
		Query:       historyQueryParams, Status: 200, Result: "HistoryPage"},
	{Method: http.MethodGet, Path: "/api/v1/domains/{domain}/history/export", ID: "exportDomainHistory", Tag: tagDomains,
		Summary: "The domain's whole history as JSON lines, streamed, for an offline check (mailplane verify-export)",
		Description: "Administrators of the domain. Lines, each with a kind: one export header (domain, through: the global head the export stops at, exported_at); " +
			"every event of the domain up to it in the global order, as stored (data and metadata as their hash chain covers them: sealed secrets stay sealed), " +
			"with position, transaction_id, stream, stream_type, domain, version, type, schema_version, recorded_at (microseconds, as hashed), prev_hash and hash; " +
			"the signed anchors up to through that cover those events (with their heads; an anchor present only for the next one's link and digest has heads null); " +
			"and an end line with the domain, the counts, digest (hex SHA-256 of every line before it, each with its newline) and signature (hex Ed25519 with the anchor key over the RFC 8785 form of kind \"export-end\", domain, events, anchors and digest). Written page by page as it is read; a failure after the first line cuts the stream, which leaves the file without its end line. " +
			"docs/operations.md \"Checking an export offline\" gives the procedure.",
		Status: 200, Result: "HistoryExport", ResultType: mediaJSONLines, Headers: []string{"ContentDispositionExport"}},
	{Method: http.MethodGet, Path: "/api/v1/domains/{domain}/deletion-preview", ID: "domainDeletionPreview", Tag: tagDomains,
		Summary: "Every object that removing the domain would take, with counts",
		Description: "Global administrators and auditors of the domain. Accounts, lists, resources, aliases (those in the domain, and those elsewhere " +
			"of its objects), virtual hosts and their certificates, and the GAL account (null while the domain has none). " +
			"counts count every kind; the lists are paged all at once: up to limit of each kind, and next_cursor " +
			"continues each kind where it stopped (kinds already complete come back empty) until all are.",
		Query: []string{"limit", "cursor"}, Status: 200, Result: "DeletionPreview"},
	{Method: http.MethodDelete, Path: "/api/v1/domains/{domain}", ID: "deleteDomain", Tag: tagDomains,
		Summary: "Remove a domain and everything in it: a job",
		Description: "Global administrators, not of the domain itself (409 own-domain). Answers 202 with the job " +
			"(kind remove_domain) and records DomainRemovalStarted: from then on nothing can be created or changed in the " +
			"domain (409 domain-unavailable). The job removes every object with an event of its own (aliases in other " +
			"domains of the domain's objects go with them, and aliases in the domain of objects elsewhere are removed), then " +
			"the virtual hosts, then the domain, and destroys the domain's data key in the same transaction as the " +
			"domain's last event: its sealed secrets can never be opened again, while its history still reads. It survives " +
			"a crash (every step re-derives what is left) and reports progress as done/total. Asked again while the " +
			"removal runs, it answers with the same job. Once done, the name can be created again, empty.",
		Idempotent: true, Status: 202, Result: "JobAccepted", Problems: []int{409, 413}},

	// Accounts.
	{Method: http.MethodGet, Path: "/api/v1/domains/{domain}/accounts", ID: "listAccounts", Tag: tagAccounts,
		Summary: "List a domain's accounts by address", Query: listQuery, Status: 200, Result: "AccountPage"},
	{Method: http.MethodPost, Path: "/api/v1/domains/{domain}/accounts", ID: "createAccount", Tag: tagAccounts,
		Summary:     "Create an account",
		Description: "address or local_part. password or password_hash (PHC argon2id, bcrypt, {SSHA}, {SSHA512}) are optional and never returned. An address is unique across accounts, aliases, lists and resources (409 address-taken).",
		Idempotent:  true, Body: "AccountCreate", Status: 201, Result: "Account", ETag: true, Problems: []int{409}},
	{Method: http.MethodGet, Path: "/api/v1/accounts/{address}", ID: "getAccount", Tag: tagAccounts,
		Summary: "An account with its effective settings (as_of: as it stood then)", Description: "The account itself, an administrator of its domain, or an auditor of it.",
		Query: []string{"as_of"}, Status: 200, Result: "Account", ETag: true},
	{Method: http.MethodPatch, Path: "/api/v1/accounts/{address}", ID: "patchAccount", Tag: tagAccounts,
		Summary:     "Change an account (JSON merge patch)",
		Description: "An account may change its own display_name and password; administrators the rest. null on cos or mail_quota_bytes inherits again.",
		IfMatch:     true, Body: "AccountPatch", Status: 200, Result: "Account", ETag: true, Problems: []int{409}},
	{Method: http.MethodDelete, Path: "/api/v1/accounts/{address}", ID: "deleteAccount", Tag: tagAccounts,
		Summary: "Delete an account", IfMatch: true, Status: 204, Problems: []int{409}},
	{Method: http.MethodGet, Path: "/api/v1/accounts/{address}/history", ID: "accountHistory", Tag: tagAccounts,
		Summary:     "The account's events, oldest first",
		Description: "Administrators of its domain. " + historyFilters + " Available after the account is removed; 404 for an address that never was an account.",
		Query:       historyQueryParams, Status: 200, Result: "HistoryPage"},
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

	// TOTP second factor (api/totp.go).
	{Method: http.MethodGet, Path: "/api/v1/accounts/{address}/totp", ID: "getTOTP", Tag: tagAuth,
		Summary:     "An account's TOTP second factor: enabled, pending, required, recovery codes left",
		Description: "The account itself, or an administrator of its domain. Never the secret.",
		Status:      200, Result: "TOTPStatus"},
	{Method: http.MethodPost, Path: "/api/v1/accounts/{address}/totp", ID: "enrolTOTP", Tag: tagAuth,
		Summary: "Enrol a TOTP second factor (the account itself only)",
		Description: "Answers the secret once: otpauth URI (for a QR code), base32 secret (for manual entry) and ten single-use recovery codes. " +
			"The secret is stored only sealed with the domain's data key, the recovery codes only hashed. The enrolment is pending " +
			"(logins do not ask for a code) until confirmed; enrolling again replaces a pending one; 409 when one is confirmed already. " +
			"Idempotency-Key is not honoured: the answer cannot be stored.",
		Status: 201, Result: "TOTPEnrolment", Problems: []int{409}},
	{Method: http.MethodPost, Path: "/api/v1/accounts/{address}/totp/confirm", ID: "confirmTOTP", Tag: tagAuth,
		Summary:     "Confirm a pending TOTP enrolment with a current code (the account itself only)",
		Description: "From then on the account's logins need totp_code (or recovery_code). 400 on a wrong code, 404 when nothing is pending.",
		Body:        "TOTPCode", Status: 200, Result: "TOTPStatus", Problems: []int{409}},
	{Method: http.MethodDelete, Path: "/api/v1/accounts/{address}/totp", ID: "disableTOTP", Tag: tagAuth,
		Summary: "Remove an account's TOTP second factor",
		Description: "A global administrator may, without a code (a lost device). The owner may with a current code in the body, " +
			"unless a second factor is required of it (409). A domain administrator may not remove another account's (403).",
		Body: "TOTPCode", BodyOptional: true, Status: 204, Problems: []int{409}},

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
	{Method: http.MethodGet, Path: "/api/v1/lists/{address}/history", ID: "listHistory", Tag: tagLists,
		Summary:     "The mailing list's events, oldest first",
		Description: "Administrators of its domain. " + historyFilters + " Available after the list is removed; 404 for an address that never was a list.",
		Query:       historyQueryParams, Status: 200, Result: "HistoryPage"},
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
	{Method: http.MethodGet, Path: "/api/v1/resources/{address}/history", ID: "resourceHistory", Tag: tagResources,
		Summary:     "The resource's events, oldest first",
		Description: "Administrators of its domain. " + historyFilters + " Available after the resource is removed; 404 for an address that never was a resource.",
		Query:       historyQueryParams, Status: 200, Result: "HistoryPage"},
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
		Summary:     "A virtual host with its certificate's status (as_of: as it stood then)",
		Description: "Administrators of the domain. With as_of, the certificate's status is judged at that moment (expired then, renewal due then); 404 before the host was added and while it was removed.",
		Query:       []string{"as_of"}, Status: 200, Result: "VirtualHost", ETag: true},
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
			"is accepted (0: now). With as_of, the certificate as it stood then (metadata only, as always), its status judged at that moment.",
		Query: []string{"as_of"}, Status: 200, Result: "CertificateStatus", ETag: true},
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

	// DKIM.
	{Method: http.MethodGet, Path: "/api/v1/domains/{domain}/dkim", ID: "getDKIM", Tag: tagDKIM,
		Summary: "The domain's DKIM keys, each with the DNS TXT record to publish",
		Description: "Administrators of the domain. selector is the active key's (null: mail is not signed). A key is " +
			"active (mail is signed with it), retiring (replaced by a rotation: still published until retire_at, so that " +
			"mail signed before the rotation verifies) or retired (its record can go from DNS; the selector stays taken " +
			"until the key is removed). published says whether the record must be in DNS. Private keys are never shown.",
		Status: 200, Result: "DKIM", ETag: true},
	{Method: http.MethodPost, Path: "/api/v1/domains/{domain}/dkim", ID: "addDKIMKey", Tag: tagDKIM,
		Summary: "Generate the domain's DKIM key (RSA-2048 or Ed25519) under a selector",
		Description: "Administrators of the domain. selector: one or more DNS labels (letters, digits, hyphens). " +
			"409 conflict when the domain has an active key: rotate it instead. The private key is generated here, " +
			"stored only sealed with the domain's key (destroyed with the domain), never returned, and rendered for the " +
			"signer by mailplane dkim render (docs/operations.md). Publish dns before the signer uses the key.",
		Idempotent: true, Body: "DKIMKeyCreate", Status: 201, Result: "DKIM", ETag: true, Problems: []int{409}},
	{Method: http.MethodPost, Path: "/api/v1/domains/{domain}/dkim/rotate", ID: "rotateDKIMKey", Tag: tagDKIM,
		Summary: "Replace the active DKIM key by a new one under a new selector",
		Description: "Administrators of the domain. The old key turns retiring: it stays published for " +
			"grace_period_seconds (default 604800, 7 days; 3600 to 7776000), then a job (retire_dkim_key) retires it. " +
			"404 when there is no active key to rotate. The selector must be new to the domain (400).",
		Idempotent: true, Body: "DKIMKeyRotate", Status: 201, Result: "DKIM", ETag: true, Problems: []int{409}},
	{Method: http.MethodDelete, Path: "/api/v1/domains/{domain}/dkim/{selector}", ID: "removeDKIMKey", Tag: tagDKIM,
		Summary:     "Remove a DKIM key, whatever its state",
		Description: "Administrators of the domain. Removing the active key stops signing; remove its DNS record too.",
		IfMatch:     true, Status: 204, Problems: []int{409}},

	// Bulk import and export of accounts.
	{Method: http.MethodPost, Path: "/api/v1/domains/{domain}/imports", ID: "importAccounts", Tag: tagAccounts,
		Summary: "Import accounts from a CSV or JSON lines file: a job",
		Description: "Administrators of the domain. The body is the file: text/csv with a header line naming the columns " +
			"(address or local_part, display_name, password, password_hash, cos, status, mail_quota_bytes, and attr.NAME " +
			"for attributes; an empty cell gives nothing), or application/jsonl with one object a line with those members " +
			"(attributes as an object). At most 256 MiB; it streams in. Every row is validated when the file arrives, as " +
			"the account's creation would validate it; a bad row is reported by its line (the line it starts on; the CSV " +
			"header is line 1) with its problem in problems, and the others are applied by the job (kind import_accounts) " +
			"in batches of 500, each one transaction, so a job stopped anywhere goes on where it was. A row whose address " +
			"is taken meanwhile, or over the domain's max_accounts, fails with its problem too. progress counts rows done " +
			"(applied or failed) out of the file's rows. The file's SHA-256 is the import's identity: the same file again " +
			"answers with the first import and its job (Idempotent-Replayed: true) and starts nothing. A file that cannot be read at all (no header, an unknown " +
			"column, a broken quote) is 400 on file. Passwords are stored sealed with the domain's key until applied; " +
			"rows with a password are hashed by the job (argon2id, some tens of milliseconds each): prefer password_hash " +
			"for large migrations. Aliases and admin flags are not imported.",
		Upload: map[string]string{mediaCSV: "ImportFile", mediaJSONL: "ImportFile"},
		Status: 202, Result: "ImportAccepted", Headers: []string{"IdempotentReplayed"}, Problems: []int{409, 415}},
	{Method: http.MethodGet, Path: "/api/v1/domains/{domain}/imports/{id}", ID: "getImport", Tag: tagAccounts,
		Summary:     "An import: its rows counted, and the rows not applied with their problems",
		Description: "Administrators of the domain. problems lists failed rows by line, 1,000 at a time: pass next_cursor as cursor for more. state is applying until the job has gone through every row, then done.",
		Query:       []string{"cursor"}, Status: 200, Result: "Import"},
	{Method: http.MethodGet, Path: "/api/v1/domains/{domain}/accounts/export", ID: "exportAccounts", Tag: tagAccounts,
		Summary: "Every account of the domain, streamed: CSV (default) or JSON lines",
		Description: "Administrators of the domain. format=csv: columns address, display_name, status, cos, " +
			"mail_quota_bytes (the effective quota), mail_quota_source, aliases (space-separated), created_at. " +
			"format=jsonl: one object a line with those members, aliases as an array and attributes. Ordered by address; " +
			"streamed in pages, so it starts at once whatever the domain's size.",
		Query: []string{"format"}, Status: 200, Result: "AccountExport", ResultType: mediaCSV, ResultTypes: []string{mediaJSONL},
		Headers: []string{"ContentDisposition"}},
	// GAL.
	{Method: http.MethodGet, Path: "/api/v1/domains/{domain}/gal", ID: "getGAL", Tag: tagGAL,
		Summary: "The domain's GALSync account: mode, polling interval, external source, last resync",
		Description: "Administrators of the domain. 404 when the domain has no GALSync account. The bind password is " +
			"never shown (has_bind_password says whether one is set). last_sync is the latest resync, failed or not, with " +
			"what it added, changed and removed and how long it took; last_success_at when the external entries were last " +
			"read. effective_polling_interval_seconds is polling_interval_seconds, or the global " +
			"gal_polling_interval_seconds when that is 0 (0 there too: no scheduled resyncs). With as_of, the GAL as it " +
			"stood then, its effective interval resolved against the global configuration of then; 404 before it was set up.",
		Query: []string{"as_of"}, Status: 200, Result: "GAL", ETag: true},
	{Method: http.MethodPut, Path: "/api/v1/domains/{domain}/gal", ID: "putGAL", Tag: tagGAL,
		Summary: "Create the GALSync account if missing, or replace its settings",
		Description: "Administrators of the domain. The whole configuration: account (default galsync@<domain>, or the " +
			"current one; an address of the domain, unique across accounts, aliases, lists and resources: 409 " +
			"address-taken; a new address frees the old), mode (internal: the domain's accounts, lists not hidden from the " +
			"GAL, and resources; external: the entries a resync copies from the external source; both), " +
			"polling_interval_seconds (0: the global setting; else 60 to 604800), external (required for external and " +
			"both). Omitting external.bind_password keeps the one set, \"\" clears it; it is stored only sealed with the " +
			"domain's key. Every invalid field is listed in one 400, and nothing is written. Leaving external out drops " +
			"the external entries. A PUT that changes nothing records nothing. 200 whether it created or replaced (one " +
			"success status per operation; version 1 and created_at tell a creation).",
		IfMatch: true, Body: "GALPut", Status: 200, Result: "GAL", ETag: true, Problems: []int{409}},
	{Method: http.MethodDelete, Path: "/api/v1/domains/{domain}/gal", ID: "deleteGAL", Tag: tagGAL,
		Summary:     "Remove the GALSync account and the external entries it copied",
		Description: "Administrators of the domain. Its address is free again. The internal entries stay: searches then show them.",
		IfMatch:     true, Status: 204, Problems: []int{409}},
	{Method: http.MethodPost, Path: "/api/v1/domains/{domain}/gal/resync", ID: "resyncGAL", Tag: tagGAL,
		Summary: "Resync the external entries now: a job",
		Description: "Administrators of the domain. Answers 202 with the job (kind resync_gal); a resync of the domain already " +
			"queued or running is that job. The job reads the external directory with simple paged results, applies only " +
			"the difference to the stored entries, and records the outcome (last_sync). A source that cannot be read " +
			"leaves the entries of the last good resync in place; the job fails with its error after 3 attempts. Resyncs " +
			"also run every polling interval, and within a minute of the source being set or changed. 400 on external when the GAL has no external source. The body may be empty.",
		Idempotent: true, Status: 202, Result: "JobAccepted", Problems: []int{409}},
	{Method: http.MethodGet, Path: "/api/v1/domains/{domain}/gal/search", ID: "searchGAL", Tag: tagGAL,
		Summary: "Autocomplete over the domain's address book",
		Description: "Administrators of the domain and every account of it. Prefix match on the address, the local part, " +
			"and each word of the display name and other names (cn, givenName, sn), case- and accent-insensitive " +
			"(\"zoe\" finds Zoë). Ranked: exact matches of an address, local part or display name first, then prefixes of " +
			"the address, then prefixes of a name word; within each, alphabetically. The mode decides which entries show " +
			"(a domain without a GALSync account shows its internal ones); lists hidden from the GAL and closed accounts " +
			"never show. An address in both the internal and the external entries shows once, as internal. Paged up to " +
			"1000 entries deep.",
		Query: []string{"galQ", "galLimit", "cursor"}, Status: 200, Result: "GALEntryPage"},
	// Mailbox usage and quotas.
	{Method: http.MethodPost, Path: "/api/v1/usage", ID: "reportUsage", Tag: tagUsage,
		Summary: "Report mailbox usage from the mail store: 1 to 10,000 reports per request",
		Description: "Only a service token of role mailstore (403 for anyone else). The body may be up to 4 MiB; more " +
			"than 10,000 reports, a bad address, a used_bytes outside 0..2^53-1 or an address reported twice refuse " +
			"the whole batch with 400 (each bad report named as reports[i].field), and nothing is stored. Addresses are " +
			"case-insensitive; a Unicode domain is taken in its A-label form. Reports of addresses that are no " +
			"account (never created, deleted, or an alias) are skipped and listed in unknown; the others are stored, " +
			"each replacing the account's last report, in one upsert. Usage is a measurement and not recorded as an " +
			"event. Crossing an account's effective warning percent (quota_warn_percent of its COS, else the domain's " +
			"warn_percent, else the global one) of its effective mail_quota_bytes sends one warning e-mail to the " +
			"account and the domain's warn_recipient; crossing the domain's warn_percent of its domain_quota_bytes " +
			"with the sum of its accounts sends one to the warn_recipient. One e-mail per crossing: reports that stay " +
			"over the line send nothing more; dropping under it and crossing again sends again. A limit lowered under " +
			"the usage counts as a crossing. warnings counts the crossings this batch made; each warning is recorded " +
			"as a QuotaWarningSent event on the account's (domain's) stream, its delivery as MailSent. Idempotent by " +
			"nature (a repeated batch stores the same values and crosses nothing): Idempotency-Key is not needed.",
		Body: "UsageReports", Status: 200, Result: "UsageResult"},
	{Method: http.MethodGet, Path: "/api/v1/domains/{domain}/quota", ID: "domainQuota", Tag: tagUsage,
		Summary: "The domain's limit and usage, and its accounts' usage against their effective limits, highest percent first",
		Description: "Administrators of the domain. domain.used_bytes is the sum of its accounts' last reports. Each " +
			"account shows its last reported used_bytes (0 and reported_at null when never reported), its effective " +
			"limit_bytes (0: none) and warn_percent, and percent = used/limit in percent, rounded to 0.01 (null without " +
			"a limit; those come last). Sorted by percent descending, then address; paginated.",
		Query: []string{"limit", "cursor"}, Status: 200, Result: "DomainQuota"},
	{Method: http.MethodPost, Path: "/api/v1/service-tokens", ID: "createServiceToken", Tag: tagUsage,
		Summary: "Make a service token (role mailstore: the mail store's, to report usage)",
		Description: "Global administrators. The token is in this answer only, and is stored as a hash; the creation is " +
			"recorded (ServiceTokenCreated) with its name, role and creator, never the token. A mailstore token may " +
			"call POST /api/v1/usage and nothing else (403). Idempotency-Key is not honoured: replaying the answer " +
			"would mean keeping the token, so a retry makes a second token (revoke the first).",
		Body: "ServiceTokenCreate", Status: 201, Result: "ServiceToken"},
	{Method: http.MethodDelete, Path: "/api/v1/service-tokens/{id}", ID: "revokeServiceToken", Tag: tagUsage,
		Summary:     "Revoke a service token: it is refused from the next request on",
		Description: "Global administrators. 404 for an unknown id; revoking a revoked token again answers 204.",
		Status:      204},

	// API tokens (api_tokens.go).
	{Method: http.MethodPost, Path: "/api/v1/api-tokens", ID: "createAPIToken", Tag: tagAPITokens,
		Summary: "Make an API token for a script: it acts as you, narrowed to a scope, until it expires",
		Description: "Any account, for itself (a login token only: an API token cannot make, list or revoke tokens, 403). " +
			"expires_at is required, in the future and at most 366 days away. domains: the domains the token may touch (A-labels " +
			"or Unicode); none means all domains (a global administrator's token: all_domains, which also reaches the routes " +
			"bound to no domain, such as the configuration, COS, the domain list, jobs and projections) or your own domain " +
			"(anyone else's). A domain you do not administer: 403. access maps object kinds (the tags of this document: " +
			apiTokenKindsList + ") to read or write; \"*\" stands for every kind not named; a kind not covered is refused " +
			"(403). Each request with the token: GET and HEAD read, any other method writes; the domain its path names " +
			"({domain}, or the domain of {address} or {alias}) must be in scope, or 403. The token has your roles as they " +
			"are at each request (lose them, or have your account locked, and the token loses them). The token is in this " +
			"answer only (prefix mpa_), stored as a hash; the creation is recorded (APITokenCreated) on the token's stream in " +
			"your domain, never the token, and every event a request of the token appends names it in session_id " +
			"(api-token:<id>). Idempotency-Key is not honoured: a retry makes a second token.",
		Body: "APITokenCreate", Status: 201, Result: "APIToken"},
	{Method: http.MethodGet, Path: "/api/v1/api-tokens", ID: "listAPITokens", Tag: tagAPITokens,
		Summary: "Your usable API tokens (not revoked, not expired), newest first, with their last use",
		Description: "account= lists another account's instead: administrators of its domain. last_used_at is updated at most " +
			"once a minute. Not paginated; next_cursor is always null.",
		Query: []string{"account"}, Status: 200, Result: "APITokenPage"},
	{Method: http.MethodDelete, Path: "/api/v1/api-tokens/{id}", ID: "revokeAPIToken", Tag: tagAPITokens,
		Summary:     "Revoke an API token: it is refused (401) from the next request on",
		Description: "Its owner, or an administrator of the owner's domain; 404 for an unknown or already revoked id. Recorded as APITokenRevoked.",
		Status:      204},

	// Jobs.
	{Method: http.MethodGet, Path: "/api/v1/jobs/{id}", ID: "getJob", Tag: tagOperations,
		Summary:     "Follow a job that a request answered 202 for",
		Description: "Global administrators and auditors of every domain see every job, a domain's administrators and auditors its domain's, and whoever asked for a job sees it. state: queued, running, retrying (failed, tried again with backoff), succeeded, failed (given up: out of attempts, or the work cannot succeed, e.g. the CA refused), cancelled (from outside). progress counts done out of total, in the job's own unit (objects removed, entries synced).",
		Status:      200, Result: "Job", Problems: []int{404}},

	// Operations.
	{Method: http.MethodGet, Path: "/api/v1/projections", ID: "listProjections", Tag: tagOperations,
		Summary:     "Every projection: position, lag, running or stopped (and why), unresolved dead letters",
		Description: "Global administrators and auditors of every domain. Read from the database, whichever process runs each projection. A projection stops on lost order or an event of unknown meaning and stays stopped until resumed.",
		Status:      200, Result: "ProjectionList"},
	{Method: http.MethodPost, Path: "/api/v1/projections/{name}/resume", ID: "resumeProjection", Tag: tagOperations,
		Summary:     "Resume a stopped projection, optionally skipping the event it stopped at",
		Description: "Global administrators; recorded with the caller. skip_position must be the stop's position (409 skip-mismatch otherwise); 409 not-stopped when it runs. The body may be empty. Answers the projection as it stands after the resume.",
		Body:        "ResumeRequest", Status: 200, Result: "Projection", Problems: []int{404, 409}},
	{Method: http.MethodGet, Path: "/api/v1/verify-runs", ID: "listVerifyRuns", Tag: tagOperations,
		Summary:     "The latest outcomes of mailplane verify (hash chains and anchors) and verify --read-models",
		Description: "Global administrators and auditors of every domain. Newest first; kind (chains, read_models) narrows; limit 1–100, default 20. Each run keeps its first 100 findings.",
		Query:       []string{"verifyKind", "verifyLimit"}, Status: 200, Result: "VerifyRunList"},
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
	503: {"ServiceUnavailable", "The request timed out, the database or a domain's directory could not be reached, or the change was saved but the read models have not caught up yet; retry after Retry-After seconds", []string{"RetryAfter"}},
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
	if rt.Body != "" || len(rt.Upload) > 0 {
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
	"domain":   "Domain name, in A-label or Unicode form, any case",
	"address":  "Address of the account, list or resource, any case",
	"alias":    "Alias address, any case",
	"member":   "Member address, any case",
	"owner":    "Owner address, any case",
	"name":     "Class of service name, any case",
	"id":       "Id of the session, job, service token, API token or import",
	"host":     "Virtual host name, in A-label or Unicode form, any case",
	"selector": "DKIM selector, any case",
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
		op["requestBody"] = map[string]any{"required": !rt.BodyOptional, "content": content}
	}
	if len(rt.Upload) > 0 {
		content := map[string]any{}
		for mt, schema := range rt.Upload {
			content[mt] = map[string]any{"schema": oaRef("schemas", schema)}
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
		content := map[string]any{mt: map[string]any{"schema": oaRef("schemas", rt.Result)}}
		for _, more := range rt.ResultTypes {
			content[more] = map[string]any{"schema": oaRef("schemas", rt.Result)}
		}
		ok["content"] = content
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
	"ETagUnlessReplayed": {"ETag", "The object's version, for If-Match; a replay (Idempotent-Replayed) repeats the first response's, which records kept before migration 00020 lack",
		false, oaSchema{"type": "string", "pattern": `^"[0-9]+"$`}},
	"Location": {"Location", "Path of the created object", true, oaSchema{"type": "string", "format": "uri-reference"}},
	"JobLocation": {"Location", "Path of the job (GET /api/v1/jobs/{id}); a replay (Idempotent-Replayed) repeats the first response's, which records kept before migration 00020 lack",
		false, oaSchema{"type": "string", "format": "uri-reference"}},
	"ContentDispositionExport": {"Content-Disposition", `attachment; filename="<domain>-history.jsonl"`, true, oaSchema{"type": "string"}},
	"ContentDisposition":       {"Content-Disposition", `attachment; filename="<host>.pem"`, true, oaSchema{"type": "string"}},
	"IdempotentReplayed":       {"Idempotent-Replayed", "true when this is the stored response of an earlier request with the same Idempotency-Key", false, oaSchema{"type": "string", "enum": []string{"true"}}},
	"RetryAfter":               {"Retry-After", "Seconds to wait before trying again", true, oaSchema{"type": "integer", "minimum": 0}},
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
	"cursor":         {"description": "next_cursor of the previous page", "schema": map[string]any{"type": "string"}},
	"after":          {"description": "Only events recorded after this time (RFC 3339)", "schema": map[string]any{"type": "string", "format": "date-time"}},
	"before":         {"description": "Only events recorded before this time (RFC 3339)", "schema": map[string]any{"type": "string", "format": "date-time"}},
	"type":           {"description": "Only these event types, comma-separated", "schema": map[string]any{"type": "string"}},
	"actor":          {"description": "Only events caused by this actor (an address, or a system actor such as system:certificate-renewal)", "schema": map[string]any{"type": "string", "maxLength": 256}},
	"ip":             {"description": "Only events of requests from this source IP address", "schema": map[string]any{"type": "string", "maxLength": 256}},
	"request_id":     {"description": "Only events of the request with this X-Request-Id", "schema": map[string]any{"type": "string", "maxLength": 256}},
	"correlation_id": {"description": "Only events of requests with this X-Correlation-Id", "schema": map[string]any{"type": "string", "maxLength": 256}},
	"session_id":     {"description": "Only events of requests made with this session's token", "schema": map[string]any{"type": "string", "maxLength": 256}},
	"as_of":          {"description": "The object as it stood at this time (RFC 3339)", "schema": map[string]any{"type": "string", "format": "date-time"}},
	// A GAL search's own q and limit (the name member is the query parameter's).
	"galQ": {"name": "q", "required": true, "description": "What the user typed: a prefix of an address, local part or name word",
		"schema": map[string]any{"type": "string", "minLength": 1, "maxLength": 256}},
	"galLimit": {"name": "limit", "description": "Page size",
		"schema": map[string]any{"type": "integer", "minimum": 1, "maximum": 100, "default": 20}},
	"format":  {"description": "csv (default) or jsonl", "schema": map[string]any{"type": "string"}},
	"account": {"description": "The account whose API tokens to list (default: yours)", "schema": map[string]any{"type": "string", "maxLength": 320}},
	// The verify runs' own kind and limit.
	"verifyKind": {"name": "kind", "description": "Only runs of this kind", "schema": map[string]any{"type": "string", "enum": []string{"chains", "read_models"}}},
	"verifyLimit": {"name": "limit", "description": "How many runs",
		"schema": map[string]any{"type": "integer", "minimum": 1, "maximum": 100, "default": 20}},
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
	oaDomainStatuses  = domain.DomainStatuses()
	oaAccountStatuses = domain.AccountStatuses()
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
			"totp_required":                oaBool("Every administrator (global or domain) must log in with a TOTP second factor"),
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
	// A domain is created without the requirement; a global admin sets it afterwards.
	domainPatch := domainSettings(true)
	domainPatch["totp_required"] = oaBool("The domain's administrators must log in with a TOTP second factor (global admins only may change it)")
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
		"removing":        oaBool("A removal is under way (DELETE): nothing can be created or changed in the domain"),
		"totp_required":   oaBool("The domain's administrators must log in with a TOTP second factor"),
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
	const auditorDesc = "Global administrators only; never with global_admin or domain_admin (400). " +
		"auditor_domains: the domains it reads (A-labels or U-labels, need not exist); empty or null: every domain"
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
		"auditor":          oaBool("Reads everything in auditor_domains and writes nothing (403), except ending its own sessions"),
		"auditor_domains":  oaArray(oaString("")),
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
		"auditor":          oaBool(auditorDesc),
		"auditor_domains":  oaArray(oaString("")),
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
		"auditor":          oaBool(auditorDesc),
		"auditor_domains":  oaNullable(oaArray(oaString(""))),
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
		"VerifyRun": oaObject([]string{"id", "kind", "started_at", "finished_at", "ok", "summary", "problems", "host"}, oaSchema{
			"id":          oaInteger(""),
			"kind":        oaSchema{"type": "string", "enum": []string{"chains", "read_models"}},
			"started_at":  oaDateTime(""),
			"finished_at": oaDateTime(""),
			"ok":          oaBool("Everything held"),
			"summary":     oaString("What was checked and the verdict"),
			"problems":    oaArray(oaString("A finding: a broken chain, an anchor, a differing table (the first 100)")),
			"host":        oaString("Where the check ran"),
		}),
		"VerifyRunList": oaObject([]string{"items"}, oaSchema{"items": oaArray(oaSchemaRef("VerifyRun"))}),
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
		"LoginRequest": oaClosed([]string{"email", "password"}, oaSchema{"email": oaString(""), "password": secret(""),
			"totp_code":     secret("The current 6-digit code of an account with TOTP enabled (401 totp-required without it)"),
			"recovery_code": secret("A single-use recovery code, instead of totp_code")}),
		"LoginResponse": oaObject([]string{"token", "expires_at", "session_id"}, oaSchema{
			"token": oaString("Bearer token, shown once"), "expires_at": oaDateTime(""), "session_id": oaString(""),
			"totp_enrolment_required": oaBool("Present (true) when the account must have a second factor and has none: " +
				"the session may only enrol and confirm it; other routes answer 403 totp-enrolment-required"),
		}),
		"TOTPCode": oaClosed([]string{"code"}, oaSchema{"code": secret("The current 6-digit code")}),
		"TOTPEnrolment": oaObject([]string{"otpauth_uri", "secret", "recovery_codes"}, oaSchema{
			"otpauth_uri":    oaString("otpauth://totp/... for a QR code; shown once"),
			"secret":         oaString("The shared secret, base32, for manual entry; shown once"),
			"recovery_codes": oaArray(oaString("Single-use recovery code; shown once")),
		}),
		"TOTPStatus": oaObject([]string{"enabled", "pending", "required", "recovery_codes_left", "confirmed_at"}, oaSchema{
			"enabled":             oaBool("Confirmed: logins need a code"),
			"pending":             oaBool("Enrolled, waiting for its confirmation"),
			"required":            oaBool("Required of this account (an administrator where totp_required holds)"),
			"recovery_codes_left": oaInteger(""),
			"confirmed_at":        oaNullable(oaDateTime("")),
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
		"DomainPatch":   oaClosed(nil, domainPatch),
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
			"session_id":     oaString("The session whose token made the request; absent for the system's own events and for events recorded before sessions were noted"),
			"correlation_id": oaString("X-Correlation-Id of the request; absent when none"),
			"causation_id":   oaString("What caused it (a job, an earlier event); absent when none"),
			"prev_hash":      oaString("Hex SHA-256 of the previous event of the stream"),
			"hash":           oaString("Hex SHA-256 over prev_hash and the canonical event"),
		}),
		"HistoryPage":       oaPage("HistoryEvent"),
		"HistoryExport":     oaString("JSON lines: an export header, the events, the anchors, an end line (see the operation's description)"),
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
		"GALPut": oaClosed([]string{"mode"}, oaSchema{
			"account":                  oaString("The GALSync account's address, in the domain; default galsync@<domain> (or the current one)"),
			"mode":                     oaEnum("Which entries the address book shows", "internal", "external", "both"),
			"polling_interval_seconds": oaBounded(oaInteger("How often the external entries resync; 0: the global setting"), 0, 604800),
			"external":                 oaNullable(oaSchemaRef("GALSourcePut")),
		}),
		"GALSourcePut": oaClosed([]string{"ldap_url", "search_base"}, oaSchema{
			"ldap_url":        oaString("ldap://host[:port] or ldaps://host[:port]"),
			"bind_dn":         oaString("DN to bind as; empty: anonymous"),
			"bind_password":   oaNullable(secret("Password of bind_dn; left out: keep the one set; empty: none")),
			"search_base":     oaString("DN below which entries are read (whole subtree)"),
			"search_filter":   oaString("LDAP filter of the entries (default (mail=*))"),
			"start_tls":       oaBool("Upgrade ldap:// with StartTLS before binding (not with ldaps://)"),
			"timeout_seconds": oaBounded(oaInteger("Bound of each exchange with the directory; 0: 10"), 0, 300),
		}),
		"GAL": oaObject([]string{"domain", "account", "mode", "polling_interval_seconds", "effective_polling_interval_seconds",
			"external", "last_sync", "last_success_at", "version", "created_at", "updated_at"}, oaSchema{
			"domain":                             oaString(""),
			"account":                            oaString("The GALSync account's address"),
			"mode":                               oaEnum("", "internal", "external", "both"),
			"polling_interval_seconds":           oaInteger("0: the global setting"),
			"effective_polling_interval_seconds": oaInteger("The interval in force; 0: no scheduled resyncs"),
			"external": oaNullable(oaObject([]string{"ldap_url", "bind_dn", "has_bind_password", "search_base", "search_filter",
				"start_tls", "timeout_seconds"}, oaSchema{
				"ldap_url": oaString(""), "bind_dn": oaString(""), "has_bind_password": oaBool("Whether a bind password is set (it is never shown)"),
				"search_base": oaString(""), "search_filter": oaString(""), "start_tls": oaBool(""), "timeout_seconds": oaInteger(""),
			})),
			"last_sync": oaNullable(oaObject([]string{"status", "trigger", "started_at", "finished_at", "duration_ms", "added",
				"changed", "removed", "total", "pages", "error"}, oaSchema{
				"status":      oaEnum("failed: the source could not be read, and the entries stayed as they were", "succeeded", "failed"),
				"trigger":     oaEnum("request: POST …/gal/resync; schedule: the polling interval", "request", "schedule"),
				"started_at":  oaDateTime(""),
				"finished_at": oaDateTime(""),
				"duration_ms": oaInteger(""),
				"added":       oaInteger(""), "changed": oaInteger(""), "removed": oaInteger(""),
				"total": oaInteger("External entries held afterwards"),
				"pages": oaInteger("Pages of the directory's paged search read (0 when it failed)"),
				"error": oaNullable(oaString("Why a failed resync failed")),
			})),
			"last_success_at": oaNullable(oaDateTime("When the external entries were last read")),
			"version":         version, "created_at": oaDateTime(""), "updated_at": oaDateTime(""),
		}),
		"GALEntry": oaObject([]string{"address", "display_name", "kind"}, oaSchema{
			"address": oaString(""), "display_name": oaString(""),
			"kind": oaEnum("", "account", "list", "resource", "external"),
		}),
		"GALEntryPage": oaPage("GALEntry"),
		"UsageReports": oaClosed([]string{"reports"}, oaSchema{
			"reports": oaSchema{"type": "array", "minItems": 1, "maxItems": 10000,
				"items": oaClosed([]string{"address", "used_bytes"}, oaSchema{
					"address":    oaString("The account's address, any case"),
					"used_bytes": oaBounded(oaInteger("Bytes the mailbox uses now"), 0, -1),
				})},
		}),
		"UsageResult": oaObject([]string{"stored", "unknown", "warnings"}, oaSchema{
			"stored":   oaInteger("Reports stored"),
			"unknown":  oaArray(oaString("An address that is no account; its report was skipped")),
			"warnings": oaInteger("Warning lines this batch crossed (each warned of once)"),
		}),
		"DomainQuota": oaObject([]string{"domain", "items", "next_cursor"}, oaSchema{
			"domain": oaObject([]string{"name", "used_bytes", "limit_bytes", "percent", "warn_percent", "warn_recipient", "reported_at"}, oaSchema{
				"name":           oaString("A-label form"),
				"used_bytes":     oaInteger("Sum of the accounts' last reports"),
				"limit_bytes":    oaInteger("Effective domain_quota_bytes; 0 = none"),
				"percent":        oaNullable(oaSchema{"type": "number", "description": "used/limit in percent, rounded to 0.01; null without a limit"}),
				"warn_percent":   oaInteger("Effective warn_percent"),
				"warn_recipient": oaNullable(oaString("Who gets the domain's warnings (and a copy of its accounts'); null: nobody")),
				"reported_at":    oaNullable(oaDateTime("The latest report of any account")),
			}),
			"items": oaArray(oaObject([]string{"address", "used_bytes", "limit_bytes", "percent", "warn_percent", "reported_at"}, oaSchema{
				"address":      oaString(""),
				"used_bytes":   oaInteger("Last reported; 0 when never"),
				"limit_bytes":  oaInteger("Effective mail_quota_bytes; 0 = none"),
				"percent":      oaNullable(oaSchema{"type": "number", "description": "used/limit in percent, rounded to 0.01; null without a limit"}),
				"warn_percent": oaInteger("Effective quota_warn_percent"),
				"reported_at":  oaNullable(oaDateTime("When the mail store last reported it; null: never")),
			})),
			"next_cursor": oaNullable(oaString("Pass as cursor for the next page; null on the last page")),
		}),
		"ServiceTokenCreate": oaClosed([]string{"name", "role"}, oaSchema{
			"name": oaString("What the token is for, e.g. the mail store's host; 1-128 bytes"),
			"role": oaEnum("What the token may do", "mailstore"),
		}),
		"ServiceToken": oaObject([]string{"id", "token", "name", "role", "created_at"}, oaSchema{
			"id": oaString("Revoke with DELETE /api/v1/service-tokens/{id}"), "token": oaString("Bearer token, shown once"),
			"name": oaString(""), "role": oaString(""), "created_at": oaDateTime(""),
		}),
		"DeletionPreview": oaObject([]string{"domain", "accounts", "lists", "resources", "aliases", "virtual_hosts",
			"certificates", "gal_account", "counts", "removing", "next_cursor"}, oaSchema{
			"domain":   oaString("A-label form"),
			"accounts": oaArray(oaString("")), "lists": oaArray(oaString("")), "resources": oaArray(oaString("")),
			"aliases": oaArray(oaString("")), "virtual_hosts": oaArray(oaString("")),
			"certificates": oaArray(oaObject([]string{"host", "source", "not_after"}, oaSchema{
				"host": oaString("The virtual host"), "source": oaEnum("", "custom", "acme"), "not_after": oaDateTime(""),
			})),
			"gal_account": oaNullable(oaString("The domain's GALSync account; null while it has none")),
			"counts": oaObject([]string{"accounts", "lists", "resources", "aliases", "virtual_hosts", "certificates"}, oaSchema{
				"accounts": oaInteger(""), "lists": oaInteger(""), "resources": oaInteger(""), "aliases": oaInteger(""),
				"virtual_hosts": oaInteger(""), "certificates": oaInteger(""),
			}),
			"removing":    oaBool("A removal is under way"),
			"next_cursor": oaNullable(oaString("Pass as cursor for the next page of every kind; null when all are complete")),
		}),
	}
	maps.Copy(schemas, listSchemas(version))
	maps.Copy(schemas, resourceSchemas(version))
	maps.Copy(schemas, dkimSchemas(version))
	maps.Copy(schemas, importSchemas())
	maps.Copy(schemas, apiTokenSchemas())
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
			{"name": tagVirtualHosts}, {"name": tagDKIM}, {"name": tagUsage}, {"name": tagOperations},
			{"name": tagAPITokens},
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

// dkimSchemas are the DKIM keys' schemas.
func dkimSchemas(version oaSchema) oaSchema {
	algorithm := oaEnum("rsa: RSA-2048 (rsa-sha256); ed25519: Ed25519 (ed25519-sha256, RFC 8463)", "rsa", "ed25519")
	selector := oaString("One or more DNS labels; stored lower-case")
	return oaSchema{
		"DKIMKeyCreate": oaClosed([]string{"selector", "algorithm"}, oaSchema{"selector": selector, "algorithm": algorithm}),
		"DKIMKeyRotate": oaClosed([]string{"selector", "algorithm"}, oaSchema{"selector": selector, "algorithm": algorithm,
			"grace_period_seconds": oaInteger("How long the replaced key stays published (default 604800)")}),
		"DKIMRecord": oaObject([]string{"name", "type", "value", "strings"}, oaSchema{
			"name":    oaString("selector._domainkey.domain"),
			"type":    oaEnum("", "TXT"),
			"value":   oaString("v=DKIM1; k=rsa|ed25519; p=<base64 public key>"),
			"strings": oaArray(oaString("value cut into character-strings of at most 255 bytes, for zone files")),
		}),
		"DKIMKey": oaObject([]string{"selector", "algorithm", "state", "published", "dns", "created_at", "retire_at", "retired_at", "replaced_by"}, oaSchema{
			"selector": oaString(""), "algorithm": algorithm,
			"state":       oaEnum("", "active", "retiring", "retired"),
			"published":   oaBool("The record must be in DNS (active and retiring keys)"),
			"dns":         oaSchemaRef("DKIMRecord"),
			"created_at":  oaDateTime(""),
			"retire_at":   oaNullable(oaDateTime("When a retiring key's grace period ends")),
			"retired_at":  oaNullable(oaDateTime("")),
			"replaced_by": oaNullable(oaString("Selector of the key that replaced this one")),
		}),
		"DKIM": oaObject([]string{"domain", "selector", "keys", "version"}, oaSchema{
			"domain":   oaString(""),
			"selector": oaNullable(oaString("The active key's selector; null when mail is not signed")),
			"keys":     oaArray(oaSchemaRef("DKIMKey")),
			"version":  version,
		}),
	}
}

// importSchemas are the bulk import's and export's schemas.
func importSchemas() oaSchema {
	count := func(desc string) oaSchema { return oaBounded(oaInteger(desc), 0, -1) }
	return oaSchema{
		"ImportFile":    oaString("The file: CSV with a header line, or JSON lines"),
		"AccountExport": oaString("CSV with a header line, or JSON lines"),
		"ImportProblem": oaObject([]string{"line", "address", "problem"}, oaSchema{
			"line": oaInteger("Line the row starts on"), "address": oaString("As read (may be empty)"),
			"problem": oaString("field: what is wrong; further fields after ; "),
		}),
		"Import": oaObject([]string{"id", "domain", "sha256", "format", "job_id", "state", "rows", "applied", "failed", "pending",
			"problems", "next_cursor", "created_at", "finished_at"}, oaSchema{
			"id": oaString(""), "domain": oaString(""), "sha256": oaString("SHA-256 of the file, hex: the import's identity"),
			"format": oaEnum("", "csv", "jsonl"), "job_id": oaInteger("The import_accounts job"),
			"state": oaEnum("", "applying", "done"), "rows": count("Rows in the file"),
			"applied": count("Rows applied"), "failed": count("Rows not applied (see problems)"),
			"pending":     count("Rows still to apply"),
			"problems":    oaArray(oaSchemaRef("ImportProblem")),
			"next_cursor": oaNullable(oaString("Pass as cursor for the next page of problems")),
			"created_at":  oaDateTime(""), "finished_at": oaNullable(oaDateTime("")),
		}),
		"ImportAccepted": oaObject([]string{"job", "import"}, oaSchema{"job": oaSchemaRef("Job"), "import": oaSchemaRef("Import")}),
	}
}
