package api

import (
	"bytes"
	"io"
	"mime"
	"net/http"
	"strings"
)

// Media types a request body may have: JSON everywhere, and a JSON merge patch (RFC 7396,
// which is what every PATCH here is) for PATCH.
const (
	mediaJSON       = "application/json"
	mediaMergePatch = "application/merge-patch+json"
	// mediaMultipart is taken by the certificate uploads (verify and install) besides JSON.
	mediaMultipart = "multipart/form-data"
	// acceptPatch lists the PATCH media types (RFC 5789 §3.1), the one PATCH means first.
	acceptPatch = mediaMergePatch + ", " + mediaJSON
)

// requireJSON refuses a write whose body is not declared as JSON with 415, before any handler
// reads it, so that a refused request changes nothing. Decoding a form or a JSON Patch as if
// it were a merge patch would otherwise apply something the client never meant (or fail with
// a misleading 400). A write without a body (POST .../close, DELETE) needs no Content-Type;
// GET bodies have no meaning and are left alone. JSON is UTF-8 (RFC 8259 §8.1): a charset
// parameter naming anything else is refused too.
func (s *Server) requireJSON(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		switch r.Method {
		case http.MethodPost, http.MethodPut, http.MethodPatch, http.MethodDelete:
		default:
			next.ServeHTTP(w, r)
			return
		}
		upload := isCertificateUpload(r)
		if _, ok := importFormat(r.Header.Get("Content-Type")); ok && isImportUpload(r) {
			next.ServeHTTP(w, r)
			return
		}
		if !hasBody(r) || acceptedMediaType(r.Method, r.Header.Get("Content-Type")) ||
			upload && isMultipart(r.Header.Get("Content-Type")) {
			next.ServeHTTP(w, r)
			return
		}
		// RFC 9110 §15.5.16: Accept says which media types would have been accepted.
		w.Header().Set("Accept", mediaJSON)
		detail := "request bodies are " + mediaJSON
		if upload {
			w.Header().Set("Accept", mediaJSON+", "+mediaMultipart)
			detail = "certificate uploads are " + mediaJSON + " or " + mediaMultipart
		}
		if r.Method == http.MethodPatch {
			w.Header().Set("Accept-Patch", acceptPatch)
			detail = "PATCH bodies are " + mediaMergePatch + " or " + mediaJSON
		}
		ct := r.Header.Get("Content-Type")
		if ct == "" {
			ct = "none"
		}
		writeProblem(w, errorf(http.StatusUnsupportedMediaType, "unsupported-media-type",
			"%s (UTF-8); this one's Content-Type is %q", detail, ct))
	})
}

// isCertificateUpload reports whether r is one of the two requests that take a certificate's
// files, which a form may upload: POST …/certificate/verify and PUT …/certificate.
func isCertificateUpload(r *http.Request) bool {
	p := r.URL.Path
	if !strings.HasPrefix(p, "/api/v1/domains/") || !strings.Contains(p, "/virtual-hosts/") {
		return false
	}
	return r.Method == http.MethodPost && strings.HasSuffix(p, "/certificate/verify") ||
		r.Method == http.MethodPut && strings.HasSuffix(p, "/certificate")
}

func isMultipart(ct string) bool {
	mt, params, err := mime.ParseMediaType(ct)
	return err == nil && mt == mediaMultipart && params["boundary"] != ""
}

// acceptedMediaType reports whether a body of Content-Type ct is JSON this method takes.
func acceptedMediaType(method, ct string) bool {
	mt, params, err := mime.ParseMediaType(ct)
	if err != nil {
		return false
	}
	if cs, ok := params["charset"]; ok && !strings.EqualFold(cs, "utf-8") {
		return false
	}
	return mt == mediaJSON || (method == http.MethodPatch && mt == mediaMergePatch)
}

// hasBody reports whether the request carries a body. A chunked one (length unknown) is
// peeked at: an empty chunked body is no body. The peeked byte is put back.
func hasBody(r *http.Request) bool {
	if r.ContentLength >= 0 {
		return r.ContentLength > 0
	}
	var b [1]byte
	n, _ := io.ReadFull(r.Body, b[:])
	r.Body = struct {
		io.Reader
		io.Closer
	}{io.MultiReader(bytes.NewReader(b[:n]), r.Body), r.Body}
	return n > 0
}
