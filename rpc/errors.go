package rpc

import (
	"bytes"
	"encoding/json"
	"net/http"

	"github.com/maildesk/maildesk/bridge"
)

// Odoo exception names put in error.data.name (API.md).
const (
	NameAccessDenied     = "odoo.exceptions.AccessDenied"
	NameAccessError      = "odoo.exceptions.AccessError"
	NameValidationError  = "odoo.exceptions.ValidationError"
	NameMissingError     = "odoo.exceptions.MissingError"
	NameUserError        = "odoo.exceptions.UserError"
	NameNotFound         = "werkzeug.exceptions.NotFound"
	NameInternalError    = "maildesk.InternalError"
	NameBadRequest       = "werkzeug.exceptions.BadRequest"
	NameMethodNotAllowed = "werkzeug.exceptions.MethodNotAllowed"
	NameUnsupportedMedia = "werkzeug.exceptions.UnsupportedMediaType"
	NameTooLarge         = "werkzeug.exceptions.RequestEntityTooLarge"
)

// JSON-RPC error codes used besides Odoo's 200.
const (
	codeOdoo           = 200
	codeNotFound       = 404
	codeParseError     = -32700
	codeInvalidRequest = -32600
)

// ErrorData is error.data of an answer, shaped like Odoo's serialize_exception.
type ErrorData struct {
	Name      string   `json:"name"`
	Message   string   `json:"message"`
	Arguments []string `json:"arguments"`
	Code      string   `json:"code"`
	Debug     string   `json:"debug"`
}

// ErrorObject is the JSON-RPC error member.
type ErrorObject struct {
	Code    int       `json:"code"`
	Message string    `json:"message"`
	Data    ErrorData `json:"data"`
}

// Response is a JSON-RPC answer; exactly one of Result and Error is set.
type Response struct {
	JSONRPC string          `json:"jsonrpc"`
	ID      json.RawMessage `json:"id"`
	Result  any             `json:"result,omitempty"`
	Error   *ErrorObject    `json:"error,omitempty"`

	success bool // Result is the answer even when it is null
}

type successResponse struct {
	JSONRPC string          `json:"jsonrpc"`
	ID      json.RawMessage `json:"id"`
	Result  any             `json:"result"`
}

var nullID = json.RawMessage("null")

func kindName(k bridge.Kind) string {
	switch k {
	case bridge.KindUser:
		return NameUserError
	case bridge.KindValidation:
		return NameValidationError
	case bridge.KindAccess:
		return NameAccessError
	case bridge.KindMissing:
		return NameMissingError
	case bridge.KindDenied:
		return NameAccessDenied
	default:
		return NameInternalError
	}
}

func errorObject(code int, message, name, msg, machine, debug string) *ErrorObject {
	return &ErrorObject{Code: code, Message: message, Data: ErrorData{
		Name: name, Message: msg, Arguments: []string{msg}, Code: machine, Debug: debug,
	}}
}

// odooError is the error member for a bridge error. debug carries the cause
// only when the server runs in debug mode.
func odooError(e *bridge.Error, debug bool) *ErrorObject {
	d := ""
	if debug && e.Err != nil {
		d = e.Err.Error()
	}
	return errorObject(codeOdoo, "MailDesk Error", kindName(e.Kind), e.Message, e.Code, d)
}

func methodNotFound(method string) *ErrorObject {
	return errorObject(codeNotFound, "404: Not Found", NameNotFound,
		"Method not found: "+method+" (see docs/api.md for the methods this sidecar has)", "method_not_found", "")
}

// writeJSON writes an answer with the given HTTP status.
func writeJSON(w http.ResponseWriter, status int, resp *Response) {
	if resp.JSONRPC == "" {
		resp.JSONRPC = "2.0"
	}
	if resp.ID == nil {
		resp.ID = nullID
	}
	var buf bytes.Buffer
	enc := json.NewEncoder(&buf)
	enc.SetEscapeHTML(false)
	var err error
	if resp.success {
		err = enc.Encode(successResponse{JSONRPC: resp.JSONRPC, ID: resp.ID, Result: resp.Result})
	} else {
		err = enc.Encode(resp)
	}
	if err != nil {
		// A result that cannot be encoded is a bug in a service.
		buf.Reset()
		_ = enc.Encode(&Response{JSONRPC: "2.0", ID: resp.ID, Error: errorObject(codeOdoo, "MailDesk Error", NameInternalError,
			"MailDesk hit an internal error; the sidecar's log has the details", "internal", "")})
	}
	h := w.Header()
	h.Set("Content-Type", "application/json; charset=utf-8")
	h.Set("X-Content-Type-Options", "nosniff")
	h.Set("Cache-Control", "no-store")
	w.WriteHeader(status)
	_, _ = w.Write(buf.Bytes())
}

// writeTransportError answers a failure before any method runs.
func writeTransportError(w http.ResponseWriter, status, code int, message, name, msg, machine string) {
	writeJSON(w, status, &Response{Error: errorObject(code, message, name, msg, machine, "")})
}

func writeUnauthorized(w http.ResponseWriter) {
	w.Header().Set("WWW-Authenticate", `Bearer realm="maildesk"`)
	writeTransportError(w, http.StatusUnauthorized, codeOdoo, "MailDesk Error", NameAccessDenied,
		"Access Denied: send the sidecar's shared secret as Authorization: Bearer <secret>", "unauthenticated")
}
