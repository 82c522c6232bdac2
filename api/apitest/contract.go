package apitest

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"slices"
	"strings"

	"github.com/getkin/kin-openapi/openapi3"
	"github.com/getkin/kin-openapi/openapi3filter"
	"github.com/getkin/kin-openapi/routers"
	"github.com/getkin/kin-openapi/routers/gorillamux"
)

func init() {
	// The history export's media type (JSON lines); kin-openapi knows no decoder for it.
	openapi3filter.RegisterBodyDecoder("application/jsonl", openapi3filter.FileBodyDecoder)
}

// Contract checks HTTP exchanges against the OpenAPI document a server serves. Every exchange
// of every test that runs the API through this package goes through it, so a document that
// no longer says what the server does fails the test that found out.
//
// It checks, for the operation the request resolves to: that the status is declared; that the
// response's media type and body match the declared content (and that a response declared
// without content has no body); that the declared headers are there when required and hold
// what their schemas say, and that no header the document knows is sent where it is not
// declared; and, for a successful exchange, that the request itself was one the document
// allows, since the server accepting what the document refuses is drift as well. A request
// that resolves to no operation must be answered with a 404 or 405 problem.
type Contract struct {
	doc    *openapi3.T
	router routers.Router
	// headers are the response headers the document declares somewhere (canonical form).
	headers []string
}

// Exchange is one request and the response the server gave it.
type Exchange struct {
	Request *http.Request
	// RequestBody is the request's body as sent (Request.Body is not read).
	RequestBody []byte
	Status      int
	Header      http.Header
	Body        []byte
}

// JSON lines bodies (imports, exports) are checked as the text they are, as kin-openapi knows no
// decoder for application/jsonl.
// Its own text/csv decoder is replaced too: it refuses a file with a row of the wrong length,
// which an import accepts (reporting that row).
func init() {
	asText := func(body io.Reader, _ http.Header, _ *openapi3.SchemaRef, _ openapi3filter.EncodingFn) (any, error) {
		b, err := io.ReadAll(body)
		return string(b), err
	}
	openapi3filter.RegisterBodyDecoder("application/jsonl", asText)
	openapi3filter.RegisterBodyDecoder("text/csv", asText)
}

// NewContract parses and validates an OpenAPI 3.1 document.
func NewContract(ctx context.Context, document []byte) (*Contract, error) {
	loader := openapi3.NewLoader()
	doc, err := loader.LoadFromData(document)
	if err != nil {
		return nil, fmt.Errorf("load the OpenAPI document: %w", err)
	}
	if !doc.IsOpenAPI31OrLater() {
		return nil, fmt.Errorf("the OpenAPI document is version %s, not 3.1", doc.OpenAPI)
	}
	if err := doc.Validate(ctx); err != nil {
		return nil, fmt.Errorf("the OpenAPI document is not valid: %w", err)
	}
	router, err := gorillamux.NewRouter(doc)
	if err != nil {
		return nil, fmt.Errorf("route the OpenAPI document: %w", err)
	}
	c := &Contract{doc: doc, router: router}
	closed := map[*openapi3.Schema]bool{}
	for _, item := range doc.Paths.Map() {
		for _, op := range item.Operations() {
			for _, ref := range op.Responses.Map() {
				for name := range ref.Value.Headers {
					if h := http.CanonicalHeaderKey(name); !slices.Contains(c.headers, h) {
						c.headers = append(c.headers, h)
					}
				}
				for _, mt := range ref.Value.Content {
					closeObjects(mt.Schema, closed)
				}
			}
		}
	}
	slices.Sort(c.headers)
	return c, nil
}

// ServedContract reads the document that h serves at /api/v1/openapi.json: the contract is
// what the server under test publishes, not a copy of it.
func ServedContract(ctx context.Context, h http.Handler) (*Contract, error) {
	rec := httptest.NewRecorder()
	h.ServeHTTP(rec, httptest.NewRequestWithContext(ctx, http.MethodGet, "/api/v1/openapi.json", nil))
	if rec.Code != http.StatusOK {
		return nil, fmt.Errorf("GET /api/v1/openapi.json answered %d: %s", rec.Code, rec.Body.Bytes())
	}
	return NewContract(ctx, rec.Body.Bytes())
}

// Check reports every way x departs from the document; nil when it does not.
func (c *Contract) Check(ctx context.Context, x Exchange) error {
	req := x.Request.Clone(ctx)
	req.Body = io.NopCloser(bytes.NewReader(x.RequestBody))
	req.ContentLength = int64(len(x.RequestBody))
	route, params, err := c.router.FindRoute(req)
	if err != nil {
		return c.checkUnrouted(x, err)
	}
	var errs []error
	if x.Status < 300 {
		// The server took the request: the document must have allowed it.
		in := &openapi3filter.RequestValidationInput{Request: req, PathParams: params, Route: route,
			Options: &openapi3filter.Options{MultiError: true, AuthenticationFunc: bearerPresent}}
		if err := openapi3filter.ValidateRequest(ctx, in); err != nil {
			errs = append(errs, fmt.Errorf("the server accepted a request the document refuses: %w", err))
		}
	}
	in := &openapi3filter.ResponseValidationInput{
		RequestValidationInput: &openapi3filter.RequestValidationInput{Request: req, PathParams: params, Route: route},
		Status:                 x.Status,
		Header:                 x.Header,
		Body:                   io.NopCloser(bytes.NewReader(x.Body)),
		Options:                &openapi3filter.Options{IncludeResponseStatus: true, MultiError: true},
	}
	if err := openapi3filter.ValidateResponse(ctx, in); err != nil {
		errs = append(errs, fmt.Errorf("response %d of %s: %w", x.Status, route.Operation.OperationID, err))
	}
	if resp := route.Operation.Responses.Status(x.Status); resp != nil && resp.Value != nil {
		errs = append(errs, c.checkUndeclared(resp.Value, x)...)
	}
	return errors.Join(errs...)
}

// checkUndeclared finds what ValidateResponse does not look for: a body where the document
// declares none, and headers the document knows sent where it does not declare them.
func (c *Contract) checkUndeclared(resp *openapi3.Response, x Exchange) []error {
	var errs []error
	if len(resp.Content) == 0 && len(x.Body) > 0 {
		errs = append(errs, fmt.Errorf("response %d is declared without content, but has a body: %.200s", x.Status, x.Body))
	}
	declared := map[string]bool{}
	for name := range resp.Headers {
		declared[http.CanonicalHeaderKey(name)] = true
	}
	for _, h := range c.headers {
		if _, sent := x.Header[h]; sent && !declared[h] {
			errs = append(errs, fmt.Errorf("response %d has header %s, which the document does not declare for it", x.Status, h))
		}
	}
	return errs
}

// checkUnrouted accepts the answer to a request no operation describes only when it is the
// problem the server gives for unknown paths (404) or methods (405).
func (c *Contract) checkUnrouted(x Exchange, routeErr error) error {
	if x.Status != http.StatusNotFound && x.Status != http.StatusMethodNotAllowed {
		return fmt.Errorf("%s %s is no operation of the document (%w), yet it answered %d",
			x.Request.Method, x.Request.URL.Path, routeErr, x.Status)
	}
	if ct := x.Header.Get("Content-Type"); ct != "application/problem+json" {
		return fmt.Errorf("the %d for %s %s has Content-Type %q, not application/problem+json", x.Status,
			x.Request.Method, x.Request.URL.Path, ct)
	}
	if x.Status == http.StatusMethodNotAllowed && x.Header.Get("Allow") == "" {
		return fmt.Errorf("the 405 for %s %s has no Allow header", x.Request.Method, x.Request.URL.Path)
	}
	problem := c.doc.Components.Schemas["Problem"]
	if problem == nil || problem.Value == nil {
		return errors.New("the document has no Problem schema")
	}
	var body any
	if err := json.Unmarshal(x.Body, &body); err != nil {
		return fmt.Errorf("the %d for %s %s is not JSON: %w", x.Status, x.Request.Method, x.Request.URL.Path, err)
	}
	if err := problem.Value.VisitJSON(body, openapi3.EnableJSONSchema2020(), openapi3.VisitAsResponse()); err != nil {
		return fmt.Errorf("the %d for %s %s is not a Problem: %w", x.Status, x.Request.Method, x.Request.URL.Path, err)
	}
	return nil
}

// closeObjects makes every object schema under ref that lists its members and says nothing of
// others refuse others, for the checks only. The document leaves response objects open, so
// that adding a member is no breaking change for clients; but a member the server returns and
// the document does not describe is drift, and the checks should catch it.
func closeObjects(ref *openapi3.SchemaRef, seen map[*openapi3.Schema]bool) {
	if ref == nil || ref.Value == nil || seen[ref.Value] {
		return
	}
	s := ref.Value
	seen[s] = true
	if len(s.Properties) > 0 && s.AdditionalProperties.Has == nil && s.AdditionalProperties.Schema == nil {
		s.AdditionalProperties.Has = openapi3.Ptr(false)
	}
	for _, p := range s.Properties {
		closeObjects(p, seen)
	}
	closeObjects(s.Items, seen)
	closeObjects(s.AdditionalProperties.Schema, seen)
	for _, list := range []openapi3.SchemaRefs{s.AllOf, s.AnyOf, s.OneOf} {
		for _, x := range list {
			closeObjects(x, seen)
		}
	}
}

// bearerPresent stands in for authentication when checking a request the server accepted:
// an operation the document secures must have come with a bearer token.
func bearerPresent(_ context.Context, in *openapi3filter.AuthenticationInput) error {
	s := in.SecurityScheme
	if s.Type != "http" || !strings.EqualFold(s.Scheme, "bearer") {
		return in.NewError(fmt.Errorf("security scheme %q is not a bearer scheme this check knows", in.SecuritySchemeName))
	}
	token, ok := strings.CutPrefix(in.RequestValidationInput.Request.Header.Get("Authorization"), "Bearer ")
	if !ok || token == "" {
		return in.NewError(errors.New("the document requires a bearer token, but the server answered a request without one"))
	}
	return nil
}
