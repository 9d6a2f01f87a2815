package rpc

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"strings"

	gorpc "github.com/gorilla/rpc/v2"

	"github.com/maildesk/maildesk/bridge"
)

// NoParams is the params type of methods that take none (besides context).
type NoParams struct{}

// call is one parsed JSON-RPC request, put into the request's context by the
// handler before gorilla runs, so the codec and the services share it.
type call struct {
	id     json.RawMessage
	method string          // public name, e.g. mailbox.create
	params json.RawMessage // the params object without "context"; "{}" when absent
	actor  bridge.Actor
	errObj *ErrorObject // set by the codec when the call failed (for logs/metrics)
}

type callKey struct{}

// ActorOf returns the acting Odoo user of a JSON-RPC call (params.context).
// Outside a call it is the zero Actor (uid 0, not admin).
func ActorOf(r *http.Request) bridge.Actor {
	if c, ok := r.Context().Value(callKey{}).(*call); ok {
		return c.actor
	}
	return bridge.Actor{}
}

// MethodOf returns the public method name of the JSON-RPC call r carries.
func MethodOf(r *http.Request) string {
	if c, ok := r.Context().Value(callKey{}).(*call); ok {
		return c.method
	}
	return ""
}

func withCall(ctx context.Context, c *call) context.Context {
	return context.WithValue(ctx, callKey{}, c)
}

// envelope is the request body's top level.
type envelope struct {
	JSONRPC *string         `json:"jsonrpc"`
	ID      json.RawMessage `json:"id"`
	Method  *string         `json:"method"`
	Params  json.RawMessage `json:"params"`
}

// requestError is a failure to accept the envelope: HTTP status plus body.
type requestError struct {
	status int
	obj    *ErrorObject
	id     json.RawMessage
}

func badRequest(id json.RawMessage, msg, machine string) *requestError {
	return &requestError{status: http.StatusBadRequest, id: id,
		obj: errorObject(codeInvalidRequest, "Invalid Request", NameBadRequest, msg, machine, "")}
}

// parseCall turns a body (and the method in the path, "" for /jsonrpc) into
// a call. It never panics on any input.
func parseCall(body []byte, pathMethod string) (*call, *requestError) {
	trimmed := bytes.TrimLeft(body, " \t\r\n")
	if len(trimmed) > 0 && trimmed[0] == '[' {
		if json.Valid(body) {
			return nil, badRequest(nil, "Batch requests (JSON arrays) are not supported: send one JSON-RPC object per request", "batch_not_supported")
		}
	}
	var env envelope
	if err := json.Unmarshal(body, &env); err != nil {
		var te *json.UnmarshalTypeError
		if errors.As(err, &te) && json.Valid(body) {
			return nil, badRequest(nil, "The request body must be a JSON-RPC object", "invalid_request")
		}
		return nil, &requestError{status: http.StatusBadRequest, obj: errorObject(codeParseError, "Parse error", NameBadRequest,
			"Invalid JSON data: "+err.Error(), "parse_error", "")}
	}
	if env.ID == nil || string(env.ID) == "null" {
		return nil, badRequest(nil, "Notifications are not supported: every request needs an id, and every request gets an answer", "notification_not_supported")
	}
	switch env.ID[0] {
	case '"', '-', '0', '1', '2', '3', '4', '5', '6', '7', '8', '9':
	default:
		return nil, badRequest(nil, "The request id must be a string or a number", "invalid_request")
	}
	if env.JSONRPC != nil && *env.JSONRPC != "2.0" {
		return nil, badRequest(env.ID, `Only JSON-RPC "2.0" is supported`, "invalid_request")
	}
	if env.Method == nil || *env.Method == "" {
		return nil, badRequest(env.ID, "The request has no method", "invalid_request")
	}
	method := *env.Method
	switch {
	case method == "call" && pathMethod == "":
		return nil, badRequest(env.ID, `Method "call" takes the method from the path: POST /jsonrpc/<method>`, "invalid_request")
	case method == "call":
		method = pathMethod
	case pathMethod != "" && pathMethod != method:
		return nil, badRequest(env.ID, fmt.Sprintf("The path names method %s but the body names %s", pathMethod, method), "invalid_request")
	}
	c := &call{id: env.ID, method: method, params: json.RawMessage("{}")}
	if len(env.Params) > 0 && string(env.Params) != "null" {
		if env.Params[0] != '{' {
			return nil, &requestError{status: http.StatusOK, id: env.ID, obj: odooError(bridge.Invalid("Params must be an object of named parameters (positional params are not supported)"), false)}
		}
		var fields map[string]json.RawMessage
		if err := json.Unmarshal(env.Params, &fields); err != nil {
			return nil, &requestError{status: http.StatusOK, id: env.ID, obj: odooError(bridge.Invalid("Params must be an object of named parameters"), false)}
		}
		if ctxRaw, ok := fields["context"]; ok {
			actor, aerr := parseActor(ctxRaw)
			if aerr != nil {
				return nil, &requestError{status: http.StatusOK, id: env.ID, obj: odooError(aerr, false)}
			}
			c.actor = actor
			delete(fields, "context")
			b, err := json.Marshal(fields)
			if err != nil {
				return nil, &requestError{status: http.StatusOK, id: env.ID, obj: odooError(bridge.Invalid("Params could not be read"), false)}
			}
			c.params = b
		} else {
			c.params = env.Params
		}
	}
	return c, nil
}

// odooContext is the part of Odoo's context the sidecar reads.
type odooContext struct {
	UID   json.RawMessage `json:"uid"`
	Lang  json.RawMessage `json:"lang"`
	TZ    json.RawMessage `json:"tz"`
	Admin json.RawMessage `json:"maildesk_admin"`
}

// parseActor reads params.context. Odoo sends false for unset values, so
// false and null read as empty.
func parseActor(raw json.RawMessage) (bridge.Actor, *bridge.Error) {
	var a bridge.Actor
	if string(raw) == "null" {
		return a, nil
	}
	var oc odooContext
	if err := json.Unmarshal(raw, &oc); err != nil {
		return a, bridge.Invalid("context must be an object like {\"uid\": 2, \"lang\": \"en_US\"}")
	}
	empty := func(r json.RawMessage) bool { s := string(r); return s == "" || s == "null" || s == "false" }
	if !empty(oc.UID) {
		if err := json.Unmarshal(oc.UID, &a.UID); err != nil || a.UID < 0 {
			return bridge.Actor{}, bridge.Invalid("context.uid must be a positive integer (the acting Odoo user id)")
		}
	}
	if !empty(oc.Lang) {
		if err := json.Unmarshal(oc.Lang, &a.Lang); err != nil {
			return bridge.Actor{}, bridge.Invalid("context.lang must be a string")
		}
	}
	if !empty(oc.TZ) {
		if err := json.Unmarshal(oc.TZ, &a.TZ); err != nil {
			return bridge.Actor{}, bridge.Invalid("context.tz must be a string")
		}
	}
	if !empty(oc.Admin) {
		if err := json.Unmarshal(oc.Admin, &a.Admin); err != nil {
			return bridge.Actor{}, bridge.Invalid("context.maildesk_admin must be true or false")
		}
	}
	return a, nil
}

// codec is our gorilla codec. The handler has already parsed the call; the
// codec maps public names to gorilla's, decodes params strictly and writes
// Odoo-shaped answers.
type codec struct{ s *Server }

func (c codec) NewRequest(r *http.Request) gorpc.CodecRequest {
	cl, _ := r.Context().Value(callKey{}).(*call)
	return &codecRequest{s: c.s, call: cl}
}

type codecRequest struct {
	s    *Server
	call *call
}

var errNoCall = errors.New("rpc: request did not pass through the MailDesk handler")

// errUnknownMethod marks Method()'s failure so WriteError answers NotFound.
type errUnknownMethod struct{ method string }

func (e errUnknownMethod) Error() string { return "unknown method " + e.method }

func (cr *codecRequest) Method() (string, error) {
	if cr.call == nil {
		return "", errNoCall
	}
	internal, ok := cr.s.methods[cr.call.method]
	if !ok {
		return "", errUnknownMethod{cr.call.method}
	}
	return internal, nil
}

func (cr *codecRequest) ReadRequest(args any) error {
	if cr.call == nil {
		return errNoCall
	}
	return decodeParams(cr.call.params, args)
}

// decodeParams decodes a params object into args, refusing unknown fields
// and naming the parameter in type errors.
func decodeParams(raw json.RawMessage, args any) error {
	dec := json.NewDecoder(bytes.NewReader(raw))
	dec.DisallowUnknownFields()
	err := dec.Decode(args)
	if err == nil {
		return nil
	}
	var te *json.UnmarshalTypeError
	if errors.As(err, &te) {
		field := jsonPath(te.Field)
		if field == "" {
			return bridge.Invalid("Params must be an object of named parameters")
		}
		return bridge.Invalid("Parameter %s must be %s, not %s", field, typeWord(te.Type.String()), te.Value)
	}
	if msg := err.Error(); strings.HasPrefix(msg, "json: unknown field ") {
		name := strings.Trim(strings.TrimPrefix(msg, "json: unknown field "), `"`)
		return bridge.Invalid("Unknown parameter %s", name)
	}
	var be *bridge.Error
	if errors.As(err, &be) {
		return be
	}
	return bridge.Invalid("Params could not be read: %s", strings.TrimPrefix(err.Error(), "json: "))
}

// jsonPath drops the Go names of embedded structs from a type error's field
// path (MailboxFields.owner_uid → owner_uid); JSON names are lower case.
func jsonPath(field string) string {
	parts := strings.Split(field, ".")
	out := parts[:0]
	for _, p := range parts {
		if p != "" && !(p[0] >= 'A' && p[0] <= 'Z') {
			out = append(out, p)
		}
	}
	return strings.Join(out, ".")
}

// typeWord names a Go type the way an Odoo developer thinks of JSON.
func typeWord(t string) string {
	t = strings.TrimPrefix(t, "*")
	switch {
	case strings.HasPrefix(t, "[]"):
		return "a list of " + typeWord(t[2:])
	case strings.HasPrefix(t, "int"), strings.HasPrefix(t, "uint"):
		return "an integer"
	case strings.HasPrefix(t, "float"):
		return "a number"
	case t == "string":
		return "a string"
	case t == "bool":
		return "true or false"
	case strings.HasPrefix(t, "map["):
		return "an object"
	case t == "time.Time":
		return "an ISO 8601 date-time string"
	default:
		return "an object"
	}
}

func (cr *codecRequest) WriteResponse(w http.ResponseWriter, reply any) {
	writeJSON(w, http.StatusOK, &Response{ID: cr.call.id, Result: reply, success: true})
}

func (cr *codecRequest) WriteError(w http.ResponseWriter, status int, err error) {
	var id json.RawMessage
	if cr.call != nil {
		id = cr.call.id
	}
	var obj *ErrorObject
	var um errUnknownMethod
	switch {
	case errors.As(err, &um):
		obj = methodNotFound(um.method)
	case errors.Is(err, errNoCall):
		obj = odooError(bridge.Internal(err), false)
	default:
		be := bridge.AsError(err)
		if be.Kind == bridge.KindInternal {
			cr.s.log.Error().Err(err).Str("method", cr.call.method).Msg("rpc: method failed with an internal error")
		}
		obj = odooError(be, cr.s.cfg.Debug)
	}
	if cr.call != nil {
		cr.call.errObj = obj
	}
	writeJSON(w, http.StatusOK, &Response{ID: id, Error: obj})
}
