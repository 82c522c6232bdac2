package api

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"time"

	"mailplane/commands"
	"mailplane/domain"
	"mailplane/eventstore"
	"mailplane/projections"
	"mailplane/projections/ldap"
	"mailplane/projections/postgres"
	"mailplane/workers"
)

// mapError is the single mapping from errors of the layers below to HTTP problems.
func (s *Server) mapError(err error) *Error {
	var (
		ve      domain.ValidationError
		inUse   domain.InUseError
		inUseP  *domain.InUseError
		taken   *commands.AddressTakenError
		limited *commands.RateLimitedError
		later   *domain.RetryLaterError
		badCert *domain.CertificateInvalidError
	)
	var tooBig *http.MaxBytesError
	switch {
	case errors.As(err, &tooBig):
		return &Error{Status: http.StatusRequestEntityTooLarge, Type: "body-too-large",
			Detail: fmt.Sprintf("request bodies are limited to %d bytes", tooBig.Limit)}
	case errors.As(err, &ve):
		e := &Error{Status: http.StatusBadRequest, Type: "validation", Detail: "the request has invalid fields"}
		for _, f := range ve.Errors {
			e.Fields = append(e.Fields, FieldError{Field: f.Field, Message: f.Message})
		}
		return e
	case errors.As(err, &limited):
		return &Error{Status: http.StatusTooManyRequests, Type: "rate-limited", Detail: limited.Error(),
			RetryAfter: int(limited.RetryAfter.Seconds()), Extra: map[string]any{"retry_after": int(limited.RetryAfter.Seconds())}}
	case errors.As(err, &badCert):
		return &Error{Status: http.StatusBadRequest, Type: "certificate-invalid",
			Detail: "the certificate does not verify; problems lists what to fix", Extra: map[string]any{"problems": badCert.Problems}}
	case errors.As(err, &later):
		secs := int((later.RetryAfter + time.Second - 1) / time.Second)
		return &Error{Status: http.StatusTooManyRequests, Type: "rate-limited", Detail: later.Error(),
			RetryAfter: secs, Extra: map[string]any{"retry_after": secs}}
	case errors.As(err, &inUse):
		return &Error{Status: http.StatusConflict, Type: "in-use", Detail: err.Error(), Extra: map[string]any{"users": inUse.Users}}
	case errors.As(err, &inUseP):
		return &Error{Status: http.StatusConflict, Type: "in-use", Detail: err.Error(), Extra: map[string]any{"users": inUseP.Users}}
	case errors.As(err, &taken):
		return &Error{Status: http.StatusConflict, Type: "address-taken", Detail: err.Error()}
	case errors.Is(err, commands.ErrNoCertificate):
		return &Error{Status: http.StatusNotFound, Type: "not-found", Detail: err.Error()}
	case errors.Is(err, commands.ErrPreconditionFailed):
		return &Error{Status: http.StatusPreconditionFailed, Type: "precondition-failed", Detail: err.Error()}
	case errors.Is(err, domain.ErrNotFound):
		return &Error{Status: http.StatusNotFound, Type: "not-found", Detail: err.Error()}
	case errors.Is(err, domain.ErrAlreadyExists):
		return &Error{Status: http.StatusConflict, Type: "already-exists", Detail: err.Error()}
	case errors.Is(err, domain.ErrLimitReached):
		return &Error{Status: http.StatusConflict, Type: "limit-reached", Detail: err.Error()}
	case errors.Is(err, domain.ErrDomainUnavailable):
		return &Error{Status: http.StatusConflict, Type: "domain-unavailable", Detail: err.Error()}
	case errors.Is(err, domain.ErrConflict):
		return &Error{Status: http.StatusConflict, Type: "conflict", Detail: err.Error()}
	case errors.Is(err, domain.ErrLoginRefused):
		return &Error{Status: http.StatusForbidden, Type: "login-refused", Detail: err.Error()}
	case errors.Is(err, commands.ErrTOTPRequired):
		return &Error{Status: http.StatusUnauthorized, Type: "totp-required", Detail: err.Error()}
	case errors.Is(err, commands.ErrTOTPInvalid):
		return &Error{Status: http.StatusUnauthorized, Type: "totp-invalid", Detail: err.Error()}
	case errors.Is(err, commands.ErrTOTPEnrolmentRequired):
		return &Error{Status: http.StatusForbidden, Type: "totp-enrolment-required", Detail: err.Error()}
	case errors.Is(err, commands.ErrInvalidCredentials):
		return &Error{Status: http.StatusUnauthorized, Type: "invalid-credentials", Detail: err.Error()}
	case errors.Is(err, commands.ErrUnauthenticated):
		return &Error{Status: http.StatusUnauthorized, Type: "unauthenticated", Detail: err.Error()}
	case errors.Is(err, eventstore.ErrIdempotencyMismatch):
		return &Error{Status: http.StatusUnprocessableEntity, Type: "idempotency-key-reused",
			Detail: "this Idempotency-Key was already used for a different request"}
	case errors.Is(err, eventstore.ErrConcurrency):
		return &Error{Status: http.StatusConflict, Type: "conflict", Detail: "the object kept changing concurrently; try again", Internal: err}
	case errors.Is(err, commands.ErrDirectoryUnavailable):
		return &Error{Status: http.StatusServiceUnavailable, Type: "directory-unavailable", RetryAfter: 5,
			Detail: "the domain's directory could not check the password; try again later", Internal: err}
	case errors.Is(err, ldap.ErrUnavailable):
		return &Error{Status: http.StatusServiceUnavailable, Type: "directory-unavailable", RetryAfter: 5,
			Detail: "the directory could not be asked for the list's members; try again later", Internal: err}
	case errors.Is(err, postgres.ErrBadCursor):
		return &Error{Status: http.StatusBadRequest, Type: "validation", Detail: "bad cursor",
			Fields: []FieldError{{Field: "cursor", Message: err.Error()}}}
	case errors.Is(err, workers.ErrJobNotFound):
		return &Error{Status: http.StatusNotFound, Type: "not-found", Detail: err.Error()}
	case errors.Is(err, projections.ErrUnknownProjection):
		return &Error{Status: http.StatusNotFound, Type: "not-found", Detail: err.Error()}
	case errors.Is(err, projections.ErrNotStopped):
		return &Error{Status: http.StatusConflict, Type: "not-stopped", Detail: err.Error()}
	case errors.Is(err, projections.ErrSkipMismatch):
		return &Error{Status: http.StatusConflict, Type: "skip-mismatch", Detail: err.Error()}
	case errors.Is(err, context.DeadlineExceeded):
		return &Error{Status: http.StatusServiceUnavailable, Type: "timeout", Detail: "the request took too long", RetryAfter: 1, Internal: err}
	case eventstore.Unavailable(err):
		// PostgreSQL is away (restarting, stopped, unreachable): nothing was changed, or the
		// change is whole (one transaction); the pool reconnects by itself once it is back.
		return &Error{Status: http.StatusServiceUnavailable, Type: "database-unavailable", RetryAfter: 2,
			Detail: "the database cannot be reached; try again later", Internal: err}
	}
	return &Error{Status: http.StatusInternalServerError, Type: "internal", Internal: err}
}
