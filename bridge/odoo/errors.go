package odoo

import (
	"errors"
	"fmt"
	"strings"
)

// Kind classifies an Odoo failure by what the caller should do about it.
type Kind int

const (
	// KindUnknown is a failure nothing more is known about (Python builtins.* errors,
	// unexpected answers). Not retried automatically.
	KindUnknown Kind = iota
	// KindAuth: the login or API key was refused (AccessDenied, HTTP 401).
	KindAuth
	// KindAccess: the user is known but not allowed (AccessError, HTTP 403).
	KindAccess
	// KindValidation: Odoo refused the input (UserError, ValidationError, HTTP 400/422).
	KindValidation
	// KindMissing: a record, model, method, endpoint or database does not exist.
	KindMissing
	// KindTransient: worth retrying later (connection refused/reset, timeouts, HTTP 5xx
	// without an Odoo error, serialization failures, session expired).
	KindTransient
)

func (k Kind) String() string {
	switch k {
	case KindAuth:
		return "auth"
	case KindAccess:
		return "access"
	case KindValidation:
		return "validation"
	case KindMissing:
		return "missing"
	case KindTransient:
		return "transient"
	default:
		return "unknown"
	}
}

// Error is every failure the client returns (except a caller's own context
// cancellation). It never holds the API key.
type Error struct {
	Kind Kind
	// Op is what was called, e.g. "res.partner.search_read" or "common.version".
	Op string
	// Name is Odoo's exception name (error.data.name / JSON-2 "name"), if any.
	Name    string
	Message string
	// HTTPStatus is the response status (0 when no response arrived).
	HTTPStatus int
	// Code is the JSON-RPC error.code (200 on 17/18, 0 on 19, 100 session expired).
	Code int
	// Debug is Odoo's traceback, when it sent one.
	Debug string
	// Err is the underlying transport error, if any.
	Err error
}

func (e *Error) Error() string {
	var b strings.Builder
	b.WriteString("odoo: ")
	if e.Op != "" {
		b.WriteString(e.Op)
		b.WriteString(": ")
	}
	b.WriteString(e.Kind.String())
	if e.Name != "" {
		b.WriteString(" (")
		b.WriteString(e.Name)
		b.WriteString(")")
	}
	if e.HTTPStatus != 0 && e.HTTPStatus != 200 {
		fmt.Fprintf(&b, " HTTP %d", e.HTTPStatus)
	}
	if e.Message != "" {
		b.WriteString(": ")
		b.WriteString(e.Message)
	}
	if e.Err != nil {
		b.WriteString(": ")
		b.WriteString(e.Err.Error())
	}
	return b.String()
}

func (e *Error) Unwrap() error { return e.Err }

// Is lets errors.Is(err, odoo.ErrAuth) and friends match by Kind.
func (e *Error) Is(target error) bool {
	t, ok := target.(*Error)
	if !ok {
		return false
	}
	return t.Op == "" && t.Name == "" && t.Message == "" && t.Kind == e.Kind
}

// Sentinels for errors.Is.
var (
	ErrAuth       = &Error{Kind: KindAuth}
	ErrAccess     = &Error{Kind: KindAccess}
	ErrValidation = &Error{Kind: KindValidation}
	ErrMissing    = &Error{Kind: KindMissing}
	ErrTransient  = &Error{Kind: KindTransient}
	ErrUnknown    = &Error{Kind: KindUnknown}
)

// KindOf returns the Kind of err, or KindUnknown when err is not an *Error.
func KindOf(err error) Kind {
	var e *Error
	if errors.As(err, &e) {
		return e.Kind
	}
	return KindUnknown
}

// IsTransient reports whether err is worth retrying later.
func IsTransient(err error) bool { return err != nil && KindOf(err) == KindTransient }

// IsAuth reports whether Odoo refused the credentials.
func IsAuth(err error) bool { return err != nil && KindOf(err) == KindAuth }

// kindForName maps an Odoo/werkzeug exception name (and, for a few names whose
// meaning depends on it, the message) to a Kind.
func kindForName(name, message string) Kind {
	switch name {
	case "odoo.exceptions.AccessDenied", "werkzeug.exceptions.Unauthorized":
		return KindAuth
	case "odoo.exceptions.AccessError", "werkzeug.exceptions.Forbidden":
		return KindAccess
	case "odoo.exceptions.MissingError", "werkzeug.exceptions.NotFound":
		return KindMissing
	case "odoo.exceptions.UserError":
		// /jsonrpc reports an unknown model as a UserError; JSON-2 as 404. Same Kind for both.
		if strings.HasPrefix(message, "Object ") && strings.HasSuffix(message, " doesn't exist") {
			return KindMissing
		}
		return KindValidation
	case "odoo.exceptions.ValidationError", "odoo.exceptions.RedirectWarning",
		"werkzeug.exceptions.UnprocessableEntity", "werkzeug.exceptions.BadRequest":
		return KindValidation
	case "odoo.http.SessionExpiredException":
		return KindTransient
	case "builtins.AttributeError":
		// /jsonrpc reports an unknown method this way; JSON-2 as 404.
		if strings.HasPrefix(message, "The method ") && strings.Contains(message, "does not exist") {
			return KindMissing
		}
		return KindUnknown
	}
	if strings.HasPrefix(name, "psycopg2") {
		// An unknown database is a configuration error, not something a retry fixes.
		if strings.Contains(message, "database \"") && strings.Contains(message, "does not exist") {
			return KindMissing
		}
		if strings.Contains(name, "OperationalError") || strings.Contains(name, "SerializationFailure") ||
			strings.Contains(name, "TransactionRollbackError") || strings.Contains(name, "DeadlockDetected") ||
			strings.Contains(name, "LockNotAvailable") {
			return KindTransient
		}
	}
	if strings.HasPrefix(name, "werkzeug.exceptions.") {
		switch strings.TrimPrefix(name, "werkzeug.exceptions.") {
		case "ServiceUnavailable", "GatewayTimeout", "BadGateway", "TooManyRequests":
			return KindTransient
		}
	}
	return KindUnknown
}

// kindForStatus classifies an HTTP status when the body told nothing better.
func kindForStatus(status int) Kind {
	switch {
	case status == 401:
		return KindAuth
	case status == 403:
		return KindAccess
	case status == 404:
		return KindMissing
	case status == 408 || status == 429:
		return KindTransient
	case status == 400 || status == 415 || status == 422:
		return KindValidation
	case status >= 500:
		return KindTransient
	case status >= 300 && status < 400:
		return KindMissing
	}
	return KindUnknown
}
