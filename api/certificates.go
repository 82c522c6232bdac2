package api

import (
	"context"
	"errors"
	"fmt"
	"io"
	"mime"
	"net/http"
	"slices"
	"strconv"
	"time"

	"mailplane/domain"
)

// certificateFilesRequest is a custom certificate as PEM text (API.md): the JSON body of
// verify and install, or the parts of their multipart/form-data form.
type certificateFilesRequest struct {
	Certificate string `json:"certificate"`
	CAChain     string `json:"ca_chain"`
	PrivateKey  string `json:"private_key"`
}

var certificateParts = []string{"certificate", "ca_chain", "private_key"}

// maxPEMPart bounds one uploaded file: a certificate chain is a few kilobytes.
const maxPEMPart = 256 << 10

// readCertificateFiles reads the three PEM texts from a JSON body or, as the product's upload
// dialog sends them, from a multipart/form-data form whose parts (files or plain fields) are
// named certificate, ca_chain and private_key.
func readCertificateFiles(r *http.Request) (domain.CertificateFiles, error) {
	if mt, _, _ := mime.ParseMediaType(r.Header.Get("Content-Type")); mt == mediaMultipart {
		return readCertificateForm(r)
	}
	var in certificateFilesRequest
	if err := decodeJSON(r, &in); err != nil {
		return domain.CertificateFiles{}, err
	}
	return domain.CertificateFiles{Certificate: in.Certificate, CAChain: in.CAChain, PrivateKey: in.PrivateKey}, nil
}

func readCertificateForm(r *http.Request) (domain.CertificateFiles, error) {
	var f domain.CertificateFiles
	mr, err := r.MultipartReader()
	if err != nil {
		return f, errorf(http.StatusBadRequest, "bad-body", "cannot read the form: %v", err)
	}
	seen := map[string]bool{}
	for {
		part, err := mr.NextPart()
		if errors.Is(err, io.EOF) {
			break
		}
		var tooBig *http.MaxBytesError
		if errors.As(err, &tooBig) {
			return f, errorf(http.StatusRequestEntityTooLarge, "body-too-large", "request bodies are limited to %d bytes", tooBig.Limit)
		}
		if err != nil {
			return f, errorf(http.StatusBadRequest, "bad-body", "cannot read the form: %v", err)
		}
		name := part.FormName()
		if !slices.Contains(certificateParts, name) {
			return f, &Error{Status: http.StatusBadRequest, Type: "unknown-field", Detail: "unknown form part " + strconv.Quote(name),
				Fields: []FieldError{{Field: name, Message: "unknown field"}}}
		}
		if seen[name] {
			return f, &Error{Status: http.StatusBadRequest, Type: "validation", Detail: "a form part is repeated",
				Fields: []FieldError{{Field: name, Message: "given more than once"}}}
		}
		seen[name] = true
		b, err := io.ReadAll(io.LimitReader(part, maxPEMPart+1))
		if errors.As(err, &tooBig) {
			return f, errorf(http.StatusRequestEntityTooLarge, "body-too-large", "request bodies are limited to %d bytes", tooBig.Limit)
		}
		if err != nil {
			return f, errorf(http.StatusBadRequest, "bad-body", "cannot read the form: %v", err)
		}
		if len(b) > maxPEMPart {
			return f, &Error{Status: http.StatusBadRequest, Type: "validation", Detail: "a form part is too large",
				Fields: []FieldError{{Field: name, Message: fmt.Sprintf("must be at most %d bytes", maxPEMPart)}}}
		}
		switch name {
		case "certificate":
			f.Certificate = string(b)
		case "ca_chain":
			f.CAChain = string(b)
		case "private_key":
			f.PrivateKey = string(b)
		}
	}
	return f, nil
}

// verificationJSON is what verify answers. The descriptive members are null when the
// certificate could not be read.
type verificationJSON struct {
	Valid    bool                        `json:"valid"`
	Problems []domain.CertificateProblem `json:"problems"`
	*certificateInfoJSON
}

func (s *Server) verifyCertificate(w http.ResponseWriter, r *http.Request) error {
	name, host, err := virtualHostPath(r)
	if err != nil {
		return err
	}
	files, err := readCertificateFiles(r)
	if err != nil {
		return err
	}
	check, err := s.Commands.VerifyCertificate(r.Context(), name, host, files)
	if err != nil {
		return err
	}
	out := verificationJSON{Valid: check.Valid, Problems: check.Problems, certificateInfoJSON: &certificateInfoJSON{}}
	if c := check.Info; c != nil {
		out.certificateInfoJSON = &certificateInfoJSON{Subject: ptrTo(c.Subject), Issuer: ptrTo(c.Issuer), SANs: c.SANs,
			Serial: ptrTo(c.Serial), Fingerprint: ptrTo(c.Fingerprint), KeyType: ptrTo(c.KeyType),
			NotBefore: ptrTo(c.NotBefore), NotAfter: ptrTo(c.NotAfter), ChainLength: ptrTo(c.ChainLength), ChainRoot: ptrTo(c.ChainRoot)}
	}
	writeJSON(w, http.StatusOK, out)
	return nil
}

func (s *Server) installCertificate(w http.ResponseWriter, r *http.Request) error {
	name, host, err := virtualHostPath(r)
	if err != nil {
		return err
	}
	files, err := readCertificateFiles(r)
	if err != nil {
		return err
	}
	req, err := s.commandRequest(r, nil)
	if err != nil {
		return err
	}
	out, err := s.Commands.InstallCertificate(r.Context(), req, name, host, files)
	if err != nil {
		return err
	}
	return s.respond(w, r, req, out, http.StatusOK, func() (any, int, error) { return s.certificateView(r.Context(), name, host) })
}

func (s *Server) getCertificate(w http.ResponseWriter, r *http.Request) error {
	name, host, err := virtualHostPath(r)
	if err != nil {
		return err
	}
	return s.readObject(w, r, domain.VirtualHostStreamID(name, host),
		func(ctx context.Context, t time.Time) (any, int, error) {
			row, err := s.virtualHostAsOf(ctx, name, host, t)
			if err != nil {
				return nil, 0, err
			}
			return renderCertificate(row.VirtualHost, row.Version, t), row.Version, nil
		},
		func(ctx context.Context) (any, int, error) { return s.certificateView(ctx, name, host) })
}

func (s *Server) removeCertificate(w http.ResponseWriter, r *http.Request) error {
	name, host, err := virtualHostPath(r)
	if err != nil {
		return err
	}
	req, err := s.commandRequest(r, nil)
	if err != nil {
		return err
	}
	out, err := s.Commands.RemoveCertificate(r.Context(), req, name, host)
	if err != nil {
		return err
	}
	return s.respond(w, r, req, out, http.StatusNoContent, nil)
}

// mediaPEM is the download's media type: PEM certificates, as browsers and tools name them.
const mediaPEM = "application/x-pem-file"

// downloadCertificate answers the installed bundle: the server certificate, then its CA chain.
// The private key never leaves mailplane.
func (s *Server) downloadCertificate(w http.ResponseWriter, r *http.Request) error {
	name, host, err := virtualHostPath(r)
	if err != nil {
		return err
	}
	if err := s.catchUp(r, domain.VirtualHostStreamID(name, host)); err != nil {
		return err
	}
	row, err := s.Reads.VirtualHost(r.Context(), name, host)
	if err != nil {
		return err
	}
	c := row.VirtualHost.Certificate
	if c == nil {
		return errorf(http.StatusNotFound, "not-found", "virtual host %s has no certificate", host)
	}
	w.Header().Set("Content-Type", mediaPEM)
	w.Header().Set("Content-Disposition", `attachment; filename="`+host+`.pem"`)
	w.Header().Set("ETag", etag(row.Version))
	w.WriteHeader(http.StatusOK)
	_, _ = io.WriteString(w, c.CertificatePEM+c.ChainPEM)
	return nil
}

type acmeRequest struct {
	Chain string `json:"chain"`
}

// requestACMECertificate records the request and answers 202 with the job that carries it out.
func (s *Server) requestACMECertificate(w http.ResponseWriter, r *http.Request) error {
	name, host, err := virtualHostPath(r)
	if err != nil {
		return err
	}
	body, err := readBody(r)
	if err != nil {
		return err
	}
	var in acmeRequest
	if err := decodeBytes(body, &in); err != nil {
		return err
	}
	req, err := s.commandRequest(r, body)
	if err != nil {
		return err
	}
	out, err := s.Commands.RequestCertificate(r.Context(), req, name, host, in.Chain)
	if err != nil {
		return err
	}
	return s.respondJob(w, r, req, out)
}
