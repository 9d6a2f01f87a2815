package odoosim

import (
	"fmt"
	"strings"
)

// oerr is an Odoo exception raised inside the simulator: rendered as a
// /jsonrpc error envelope (HTTP 200) or a JSON-2 error body with a status.
type oerr struct {
	name   string
	msg    string
	status int // JSON-2 status
	args   []any
}

func (e *oerr) Error() string { return e.name + ": " + e.msg }

func newErr(name string, status int, format string, a ...any) *oerr {
	msg := format
	if len(a) > 0 {
		msg = fmt.Sprintf(format, a...)
	}
	return &oerr{name: name, msg: msg, status: status}
}

func userError(f string, a ...any) *oerr {
	return newErr("odoo.exceptions.UserError", 422, f, a...)
}
func validationError(f string, a ...any) *oerr {
	return newErr("odoo.exceptions.ValidationError", 422, f, a...)
}
func accessError(f string, a ...any) *oerr {
	return newErr("odoo.exceptions.AccessError", 403, f, a...)
}
func accessDenied() *oerr { return newErr("odoo.exceptions.AccessDenied", 403, "Access Denied") }
func missingError(model string, ids []int64, uid int64) *oerr {
	parts := make([]string, len(ids))
	for i, id := range ids {
		parts[i] = fmt.Sprint(id)
	}
	return newErr("odoo.exceptions.MissingError", 404,
		"Record does not exist or has been deleted.\n(Record: %s(%s,), User: %d)", model, strings.Join(parts, ", "), uid)
}
func typeError(f string, a ...any) *oerr  { return newErr("builtins.TypeError", 500, f, a...) }
func valueError(f string, a ...any) *oerr { return newErr("builtins.ValueError", 500, f, a...) }
func keyError(k string) *oerr             { return newErr("builtins.KeyError", 500, "%s", k) }
func notFound(f string, a ...any) *oerr   { return newErr("werkzeug.exceptions.NotFound", 404, f, a...) }
func unprocessable(f string, a ...any) *oerr {
	e := newErr("werkzeug.exceptions.UnprocessableEntity", 422, f, a...)
	e.args = []any{e.msg, 422}
	return e
}
func unauthorized(msg string) *oerr {
	e := newErr("werkzeug.exceptions.Unauthorized", 401, "%s", msg)
	e.args = []any{msg, 401}
	return e
}
func badRequest(msg string) *oerr {
	e := newErr("werkzeug.exceptions.BadRequest", 400, "%s", msg)
	e.args = []any{msg, 400}
	return e
}
func dbMissing(db string, v int) *oerr {
	port := 5433
	if v >= 19 {
		port = 5434
	}
	return newErr("psycopg2.OperationalError", 500,
		"connection to server at \"127.0.0.1\", port %d failed: FATAL:  database \"%s\" does not exist\n", port, db)
}

func (e *oerr) arguments() []any {
	if e.args != nil {
		return e.args
	}
	return []any{e.msg}
}

// debug is a short fake traceback in Odoo's shape.
func (e *oerr) debug(v int) string {
	if v >= 19 && e.name == "odoo.exceptions.AccessDenied" {
		return ""
	}
	short := e.name
	if i := strings.LastIndex(short, "."); i >= 0 && strings.HasPrefix(short, "builtins.") {
		short = short[i+1:]
	}
	return "Traceback (most recent call last):\n  File \"/opt/odoo/odoo/http.py\", line 1954, in _transactioning\n    return service_model.retrying(func, env=self.env)\n" +
		short + ": " + e.msg + "\n"
}
