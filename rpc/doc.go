// Package rpc owns MailDesk's one HTTP server: JSON-RPC on /jsonrpc (gorilla/rpc
// v2 with an Odoo-compatible codec), the public routes other packages add
// (OAuth callback, Graph webhook), /healthz, /readyz, /metrics and the
// authenticated /admin/backup. It authenticates, limits sizes and maps errors
// to Odoo's shapes; it decides nothing about mail — it calls bridge.
//
// # Wire format (see docs/api.md)
//
//   - POST /jsonrpc with {"jsonrpc":"2.0","id":N,"method":"mailbox.create","params":{...}}
//     or POST /jsonrpc/mailbox.create with "method":"call" (Odoo's convention).
//   - Params by name only. params.context is always allowed: it becomes the
//     bridge.Actor of the call (context.uid, lang, tz; context.maildesk_admin:
//     true marks a MailDesk administrator). Every other unknown param is a
//     ValidationError.
//   - Notifications (no id, or id null) and batch arrays are refused: HTTP
//     400, JSON-RPC code -32600, data.name werkzeug.exceptions.BadRequest.
//   - Errors carry Odoo's shape: {"code":200,"message":"MailDesk Error",
//     "data":{"name","message","arguments","code","debug"}} with HTTP 200;
//     unknown method is werkzeug.exceptions.NotFound with code 404. Transport
//     failures keep their HTTP status and still answer JSON: 400 parse error
//     (-32700), 401 AccessDenied, 405, 413, 415.
//
// # Adding RPC methods (the convention for everyone)
//
// A service is any value with exported methods of gorilla's shape:
//
//	func (s *ConnectService) Connect(r *http.Request, p *bridge.ConnectParams, out *bridge.ConnectResult) error
//
// Register it under a namespace with Server.Register("mailbox", svc). The
// public method name is namespace + "." + the Go method name in snake case
// (Connect → mailbox.connect, SyncNow → mailbox.sync_now, AdminURL →
// consent.admin_url, LogToRecord → message.log_to_record). Several services
// may share a namespace (each engineer keeps their own type and file); a
// public name registered twice is an error at start. Register before the
// server starts serving.
//
// Put each service in its own file of this package, named for what it serves
// (rpc/connect.go, rpc/messages.go, ...). Keep it a thin adapter: take the
// acting user with ActorOf(r) and the request context with r.Context(), call
// bridge, return the result. Errors should be *bridge.Error (bridge.Invalid,
// bridge.NotFound, bridge.Forbidden, bridge.Errorf(bridge.KindUser, code,
// ...)); anything else is answered as maildesk.InternalError with a generic
// message and logged. Params structs must have json tags for every field;
// use NoParams for methods without params and pointer fields where "absent"
// differs from the zero value. Then wire it in cmd/maildesk/serve.go (the
// function that builds the components) and add its section to docs/api.md.
//
// # Adding HTTP routes
//
// Server.Handle(pattern, h) adds a PUBLIC route without bearer auth (the
// OAuth callback, the Graph notification webhook: they authenticate by their
// own means — OAuth state, clientState). Server.HandleAuth(pattern, h) adds a
// route that requires the bearer secret. Patterns are http.ServeMux patterns
// ("POST /graph/notify"). Body size limits are the handler's job outside
// /jsonrpc (use http.MaxBytesReader).
//
// # Readiness
//
// Server.AddCheck(name, fn) adds a component to /readyz. system.health comes
// from bridge.System, which takes its own component checks (System.AddComponent).
package rpc
