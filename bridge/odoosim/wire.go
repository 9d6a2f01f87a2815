package odoosim

import (
	"bytes"
	"encoding/json"
	"fmt"
	"io"
	"mime"
	"net/http"
	"net/url"
	"strings"
)

const maxBody = 256 << 20

func jsonContentType(r *http.Request) bool {
	mt, _, _ := mime.ParseMediaType(r.Header.Get("Content-Type"))
	return mt == "application/json" || mt == "application/json-rpc"
}

func (s *Server) unsupportedMediaType(w http.ResponseWriter, route, typ string) {
	if s.opts.Version >= 19 {
		w.Header().Set("Accept", "application/json")
		writeRaw(w, 415, "text/html; charset=utf-8", []byte("<!doctype html>\n<html lang=en>\n<title>415 Unsupported Media Type</title>\n<h1>Unsupported Media Type</h1>\n<p>Request inferred type is compatible with [&#39;http&#39;] but &#39;"+route+"&#39; is type=&#39;"+typ+"&#39;.<br><br>Please verify the Content-Type request header and try again.</p>\n"))
		return
	}
	writeRaw(w, 400, "text/html; charset=utf-8", []byte("<!doctype html>\n<html lang=en>\n<title>400 Bad Request</title>\n<h1>Bad Request</h1>\n<p>Request inferred type is compatible with [&#39;http&#39;] but &#39;"+route+"&#39; is type=&#39;"+typ+"&#39;.</p>\n"))
}

// --- /jsonrpc ---

func (s *Server) serveJSONRPC(w http.ResponseWriter, r *http.Request) {
	if r.Method != http.MethodPost {
		writeRaw(w, 405, "text/html; charset=utf-8", []byte("<!doctype html>\n<html lang=en>\n<title>405 Method Not Allowed</title>\n<h1>Method Not Allowed</h1>\n<p>The method is not allowed for the requested URL.</p>\n"))
		return
	}
	if !jsonContentType(r) {
		typ := "json"
		if s.opts.Version >= 19 {
			typ = "jsonrpc"
		}
		s.unsupportedMediaType(w, "/jsonrpc", typ)
		return
	}
	body, err := io.ReadAll(io.LimitReader(r.Body, maxBody))
	if err != nil {
		return
	}
	var req any
	dec := json.NewDecoder(bytes.NewReader(body))
	if err := dec.Decode(&req); err != nil || dec.More() {
		w.Header().Set("X-Content-Type-Options", "nosniff")
		writeRaw(w, 400, "text/html; charset=utf-8", []byte("Invalid JSON data"))
		return
	}
	obj, ok := req.(map[string]any)
	if !ok {
		w.Header().Set("X-Content-Type-Options", "nosniff")
		writeRaw(w, 400, "text/html; charset=utf-8", []byte("Invalid JSON-RPC data"))
		return
	}
	id := obj["id"]
	params, _ := obj["params"].(map[string]any)
	res, oe := s.dispatchRPC(params)
	if oe != nil {
		s.writeRPCError(w, id, oe, 200)
		return
	}
	env := odict{{"jsonrpc", "2.0"}, {"id", id}}
	if res != nil {
		env = append(env, kv{"result", res})
	}
	w.Header().Set("X-Content-Type-Options", "nosniff")
	writeRaw(w, 200, "application/json; charset=utf-8", pyJSON(env))
}

func (s *Server) writeRPCError(w http.ResponseWriter, id any, e *oerr, code int) {
	v := s.opts.Version
	if v >= 19 && code == 200 {
		code = 0
	}
	var data odict
	if v >= 19 {
		data = odict{{"name", e.name}, {"message", e.msg}, {"arguments", e.arguments()}, {"context", odict{}}, {"debug", e.debug(v)}}
	} else {
		data = odict{{"name", e.name}, {"debug", e.debug(v)}, {"message", e.msg}, {"arguments", e.arguments()}, {"context", odict{}}}
	}
	msg := "Odoo Server Error"
	if code == 100 {
		msg = "Odoo Session Expired"
	}
	env := odict{{"jsonrpc", "2.0"}, {"id", id}, {"error", odict{{"code", code}, {"message", msg}, {"data", data}}}}
	writeRaw(w, 200, "application/json; charset=utf-8", pyJSON(env))
}

func (s *Server) serveSessionExpired(w http.ResponseWriter, r *http.Request) {
	var obj map[string]any
	_ = json.NewDecoder(io.LimitReader(r.Body, maxBody)).Decode(&obj)
	s.writeRPCError(w, obj["id"], newErr("odoo.http.SessionExpiredException", 401, "Session expired"), 100)
}

func (s *Server) dispatchRPC(params map[string]any) (any, *oerr) {
	cls := "RPC"
	if s.opts.Version >= 19 {
		cls = "JSONRPC"
	}
	service, ok := params["service"].(string)
	if !ok {
		return nil, typeError("%s.jsonrpc() missing 1 required positional argument: 'service'", cls)
	}
	method, _ := params["method"].(string)
	var args []any
	switch a := params["args"].(type) {
	case []any:
		args = a
	case nil:
	default:
		return nil, keyError("0")
	}
	switch service {
	case "common":
		return s.common(method, args)
	case "object":
		if method != "execute_kw" && method != "execute" {
			return nil, newErr("builtins.NameError", 500, "Method not available %s", method)
		}
		return s.executeKW(method, args)
	case "db":
		if method == "list" {
			return append([]any{s.opts.DB}, toAny(s.opts.OtherDBs)...), nil
		}
		return nil, newErr("builtins.Exception", 500, "Method not found: %s", method)
	default:
		return nil, keyError(service)
	}
}

func toAny(l []string) []any {
	out := make([]any, len(l))
	for i, s := range l {
		out[i] = s
	}
	return out
}

func (s *Server) common(method string, args []any) (any, *oerr) {
	switch method {
	case "version":
		return odict{{"server_version", s.serie()}, {"server_version_info", s.versionInfo()}, {"server_serie", s.serie()}, {"protocol_version", 1}}, nil
	case "login", "authenticate":
		need := 3
		if method == "authenticate" {
			need = 4
		}
		if len(args) < need {
			return nil, typeError("exp_%s() missing %d required positional arguments", method, need-len(args))
		}
		dbname, _ := args[0].(string)
		login, _ := args[1].(string)
		pw, _ := args[2].(string)
		if !s.knownDB(dbname) {
			return nil, dbMissing(dbname, s.opts.Version)
		}
		s.mu.Lock()
		uid := s.login(login, pw)
		s.mu.Unlock()
		if uid == 0 {
			return false, nil
		}
		return uid, nil
	case "about":
		return "See http://openerp.com", nil
	}
	return nil, newErr("builtins.Exception", 500, "Method not found: %s", method)
}

func (s *Server) executeKW(which string, args []any) (any, *oerr) {
	names := []string{"db", "uid", "passwd", "model", "method", "args"}
	if len(args) < 6 {
		missing := names[len(args):]
		q := make([]string, len(missing))
		for i, m := range missing {
			q[i] = "'" + m + "'"
		}
		list := strings.Join(q, ", ")
		if len(q) >= 2 {
			list = strings.Join(q[:len(q)-1], ", ") + " and " + q[len(q)-1]
		}
		plural := "s"
		if len(q) == 1 {
			plural = ""
		}
		return nil, typeError("execute_kw() missing %d required positional argument%s: %s", len(q), plural, list)
	}
	dbname, _ := args[0].(string)
	uid := toInt(args[1])
	pw, _ := args[2].(string)
	model, _ := args[3].(string)
	method, _ := args[4].(string)
	pos, ok := args[5].([]any)
	if !ok {
		return nil, typeError("execute_kw() args must be a list")
	}
	kw := map[string]any{}
	if len(args) > 6 {
		if m, ok := args[6].(map[string]any); ok {
			kw = m
		}
	}
	if !s.knownDB(dbname) {
		return nil, dbMissing(dbname, s.opts.Version)
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	if !s.authPassword(uid, pw) {
		return nil, accessDenied()
	}
	m, md, oe := s.lookup(model, method, false)
	if oe != nil {
		return nil, oe
	}
	var ids []int64
	if !md.model {
		if len(pos) == 0 {
			return nil, newErr("builtins.IndexError", 500, "tuple index out of range")
		}
		ids, ok = toIDs(pos[0])
		if !ok {
			return nil, valueError("Invalid ids %v", pos[0])
		}
		pos = pos[1:]
	}
	bound, oe := bindArgs(model, method, md, pos, kw, false)
	if oe != nil {
		return nil, oe
	}
	e := &env{uid: uid, context: ctxOf(kw)}
	return md.fn(s.d, e, m, ids, bound)
}

func ctxOf(kw map[string]any) map[string]any {
	c, _ := kw["context"].(map[string]any)
	if c == nil {
		c = map[string]any{}
	}
	return c
}

// lookup finds model and method, raising Odoo's errors for unknown or private ones.
func (s *Server) lookup(model, method string, json2 bool) (*modelDef, *methodDef, *oerr) {
	m := s.d.models[model]
	if m == nil {
		if json2 {
			return nil, nil, notFound("the model '%s' does not exist", model)
		}
		return nil, nil, userError("Object %s doesn't exist", model)
	}
	if strings.HasPrefix(method, "_") {
		if s.opts.Version >= 19 {
			return nil, nil, accessError("Private methods (such as '%s.%s') cannot be called remotely.", model, method)
		}
		return nil, nil, accessError("Private methods (such as %s) cannot be called remotely.", method)
	}
	md := m.methods[method]
	if md == nil {
		if json2 {
			return nil, nil, notFound("The method '%s.%s' does not exist", model, method)
		}
		if s.opts.Version >= 19 {
			return nil, nil, newErr("builtins.AttributeError", 500, "The method '%s.%s' does not exist", model, method)
		}
		return nil, nil, newErr("builtins.AttributeError", 500, "The method '%s' does not exist on the model '%s'", method, model)
	}
	return m, md, nil
}

// bindArgs maps positional and named arguments onto the method's parameters
// like Python's call (jsonrpc) or inspect.signature.bind (JSON-2).
func bindArgs(model, method string, md *methodDef, pos []any, kw map[string]any, json2 bool) (map[string]any, *oerr) {
	out := map[string]any{}
	if len(pos) > len(md.params) {
		if json2 {
			return nil, unprocessable("too many positional arguments")
		}
		return nil, typeError("%s() takes %d positional arguments but %d were given", method, len(md.params)+1, len(pos)+1)
	}
	for i, v := range pos {
		out[md.params[i].name] = v
	}
	if json2 {
		for _, p := range md.params {
			if _, ok := kw[p.name]; !ok && p.required {
				return nil, unprocessable("missing a required argument: '%s'", p.name)
			}
		}
	}
	for k, v := range kw {
		if k == "context" {
			continue
		}
		known := false
		for _, p := range md.params {
			if p.name == k {
				known = true
			}
		}
		if !known && !md.varkw {
			if json2 {
				return nil, unprocessable("got an unexpected keyword argument '%s'", k)
			}
			return nil, typeError("%s() got an unexpected keyword argument '%s'", method, k)
		}
		if _, dup := out[k]; dup && known {
			return nil, typeError("%s() got multiple values for argument '%s'", method, k)
		}
		out[k] = v
	}
	for _, p := range md.params {
		if _, ok := out[p.name]; !ok && p.required {
			if json2 {
				return nil, unprocessable("missing a required argument: '%s'", p.name)
			}
			return nil, typeError("%s() missing 1 required positional argument: '%s'", method, p.name)
		}
	}
	return out, nil
}

// --- JSON-2 ---

func (s *Server) writeJSON2Error(w http.ResponseWriter, e *oerr) {
	body := pyJSON(odict{{"name", e.name}, {"message", e.msg}, {"arguments", e.arguments()}, {"context", odict{}}, {"debug", e.debug(s.opts.Version)}})
	if e.status == 401 {
		w.Header().Set("WWW-Authenticate", "Bearer ")
	}
	status := e.status
	if status == 0 {
		status = 500
	}
	writeRaw(w, status, "application/json; charset=utf-8", body)
}

func noDatabase(w http.ResponseWriter) {
	writeRaw(w, 404, "text/html; charset=utf-8", []byte("<!DOCTYPE html>\n<title>404 Not Found</title>\n<h1>Not Found</h1>\n<p>No database is selected and the requested URL was not found in the server-wide controllers.</p>\n<p>Please verify the hostname, <a href=/web/login>login</a> and try again.</p>\n\n<!-- Alternatively, use the X-Odoo-Database header. -->\n"))
}

func (s *Server) serveJSON2(w http.ResponseWriter, r *http.Request) {
	if s.opts.Version < 19 {
		loc := "/web/login?redirect=" + url.QueryEscape(r.URL.Path+"?")
		w.Header().Set("Location", loc)
		writeRaw(w, 303, "text/html; charset=utf-8", []byte("<!doctype html>\n<html lang=en>\n<title>Redirecting...</title>\n<h1>Redirecting...</h1>\n<p>You should be redirected automatically to the target URL: <a href=\""+loc+"\">"+loc+"</a>. If not, click the link.\n"))
		return
	}
	// database selection
	dbname := r.Header.Get("X-Odoo-Database")
	cookie, _ := r.Cookie("session_id")
	if cookie != nil && dbname != "" && dbname != s.opts.DB {
		writeRaw(w, 403, "text/html; charset=utf-8", []byte("<!doctype html>\n<html lang=en>\n<title>403 Forbidden</title>\n<h1>Forbidden</h1>\n<p>Cannot use both the session_id cookie and the x-odoo-database header.</p>\n"))
		return
	}
	if dbname == "" {
		if len(s.opts.OtherDBs) > 0 {
			noDatabase(w)
			return
		}
		dbname = s.opts.DB
	}
	if dbname != s.opts.DB {
		// other databases hold no data here; they are only listed
		noDatabase(w)
		return
	}
	parts := strings.Split(strings.TrimPrefix(r.URL.Path, "/json/2"), "/")
	if r.Method != http.MethodPost || len(parts) != 3 || parts[1] == "" || parts[2] == "" {
		s.writeJSON2Error(w, notFound("Did you mean POST /json/2/<model>/<method>?"))
		return
	}
	model, method := parts[1], parts[2]
	if !jsonContentType(r) {
		s.unsupportedMediaType(w, "/json/2/&lt;__model__&gt;/&lt;__method__&gt;", "json2")
		return
	}
	// authentication
	auth := r.Header.Get("Authorization")
	scheme, key, _ := strings.Cut(auth, " ")
	if !strings.EqualFold(scheme, "bearer") {
		msg := "User not authenticated, use an API Key with a Bearer Authorization header."
		if cookie != nil && auth == "" {
			msg = "Missing \"Authorization\" or Sec-headers for interactive usage."
		}
		s.writeJSON2Error(w, unauthorized(msg))
		return
	}
	s.mu.Lock()
	uid := s.uidForKey(strings.TrimSpace(key))
	s.mu.Unlock()
	if uid == 0 {
		s.writeJSON2Error(w, unauthorized("Invalid apikey"))
		return
	}
	body, err := io.ReadAll(io.LimitReader(r.Body, maxBody))
	if err != nil {
		return
	}
	var req any
	if len(bytes.TrimSpace(body)) > 0 {
		if err := json.Unmarshal(body, &req); err != nil {
			s.writeJSON2Error(w, badRequest("could not parse the body as json: "+pyJSONError(body, err)))
			return
		}
	}
	kw, _ := req.(map[string]any)
	if kw == nil {
		kw = map[string]any{}
	}
	res, oe := s.callJSON2(uid, model, method, kw)
	if oe != nil {
		s.writeJSON2Error(w, oe)
		return
	}
	w.Header().Set("X-Content-Type-Options", "nosniff")
	writeRaw(w, 200, "application/json; charset=utf-8", pyJSON(res))
}

func (s *Server) callJSON2(uid int64, model, method string, kw map[string]any) (any, *oerr) {
	s.mu.Lock()
	defer s.mu.Unlock()
	m, md, oe := s.lookup(model, method, true)
	if oe != nil {
		return nil, oe
	}
	var ids []int64
	rawIDs, hasIDs := kw["ids"]
	delete(kw, "ids")
	if md.model && hasIDs {
		return nil, unprocessable("cannot call %s.%s with ids", model, method)
	}
	if hasIDs {
		var ok bool
		if ids, ok = toIDs(rawIDs); !ok {
			return nil, unprocessable("ids must be a list of integers")
		}
	}
	bound, oe := bindArgs(model, method, md, nil, kw, true)
	if oe != nil {
		return nil, oe
	}
	e := &env{uid: uid, context: ctxOf(kw), json2: true}
	res, oe := md.fn(s.d, e, m, ids, bound)
	if oe != nil {
		return nil, oe
	}
	if res == nil {
		return nil, nil
	}
	return res, nil
}

// pyJSONError words a JSON syntax error like Python's json module does, roughly.
func pyJSONError(body []byte, err error) string {
	var se *json.SyntaxError
	off := int64(len(body))
	if ok := asSyntax(err, &se); ok {
		off = se.Offset - 1
		if off < 0 {
			off = 0
		}
	}
	line, col := 1, 1
	for _, c := range body[:off] {
		if c == '\n' {
			line++
			col = 1
		} else {
			col++
		}
	}
	return fmt.Sprintf("Expecting value: line %d column %d (char %d)", line, col, off)
}

func asSyntax(err error, se **json.SyntaxError) bool {
	s, ok := err.(*json.SyntaxError)
	if ok {
		*se = s
	}
	return ok
}
