package bridge

import (
	"errors"
	"fmt"
)

// Kind classifies an error the way Odoo does, so the RPC layer can answer
// with the Odoo exception the addon re-raises.
type Kind int

const (
	KindInternal   Kind = iota // maildesk.InternalError: a bug
	KindUser                   // odoo.exceptions.UserError: a state the user can act on
	KindValidation             // odoo.exceptions.ValidationError: bad params
	KindAccess                 // odoo.exceptions.AccessError: not allowed on that mailbox
	KindMissing                // odoo.exceptions.MissingError: unknown mailbox, message...
	KindDenied                 // odoo.exceptions.AccessDenied: authentication
)

// Error is an error with an Odoo kind, a stable machine code (API.md:
// reauth_required, not_connected, invalid_params, not_found, ...) and a
// message written for the Odoo user: what failed and what to do.
type Error struct {
	Kind    Kind
	Code    string
	Message string
	Err     error // cause, for logs; never shown to the user
}

func (e *Error) Error() string {
	if e.Err != nil {
		return e.Message + ": " + e.Err.Error()
	}
	return e.Message
}

func (e *Error) Unwrap() error { return e.Err }

// Errorf builds an *Error.
func Errorf(kind Kind, code, format string, args ...any) *Error {
	return &Error{Kind: kind, Code: code, Message: fmt.Sprintf(format, args...)}
}

// Invalid is a ValidationError with code invalid_params.
func Invalid(format string, args ...any) *Error {
	return Errorf(KindValidation, "invalid_params", format, args...)
}

// NotFound is a MissingError with code not_found.
func NotFound(format string, args ...any) *Error {
	return Errorf(KindMissing, "not_found", format, args...)
}

// Forbidden is an AccessError with code forbidden.
func Forbidden(format string, args ...any) *Error {
	return Errorf(KindAccess, "forbidden", format, args...)
}

// Internal wraps an unexpected error. The message stays generic; err goes to
// the log.
func Internal(err error) *Error {
	return &Error{Kind: KindInternal, Code: "internal", Message: "MailDesk hit an internal error; the sidecar's log has the details", Err: err}
}

// AsError returns err as an *Error, wrapping unknown errors as Internal.
func AsError(err error) *Error {
	var e *Error
	if errors.As(err, &e) {
		return e
	}
	return Internal(err)
}
