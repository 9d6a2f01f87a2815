// Package odoo is MailDesk's client for Odoo's external API: /jsonrpc
// (common.version, common.login/authenticate, object.execute_kw) on Odoo 17, 18
// and 19, and JSON-2 (POST /json/2/<model>/<method>, bearer API key) on 19+. It
// owns the wire formats, per-call timeouts and the mapping of Odoo's errors to
// typed Go errors (see Error and Kind). It never logs and never puts the API key
// into an error.
//
// Every call takes the same path (Client.Do), so one mapping holds for both
// protocols. How Odoo's answers become Kinds (checked against the recordings of
// real Odoo 18 and 19 in testdata/transcripts):
//
//	KindAuth        AccessDenied, HTTP 401, authenticate answering false
//	KindAccess      AccessError, HTTP 403 (private methods too)
//	KindValidation  UserError, ValidationError, JSON-2 422, HTTP 400/415 (malformed request)
//	KindMissing     MissingError, unknown model or method (UserError "Object x doesn't
//	                exist" / AttributeError on /jsonrpc, 404 on JSON-2), unknown
//	                database, 303 to /web/login (no JSON-2 before 19)
//	KindTransient   no connection, timeout, 5xx without a Python error, 429,
//	                psycopg2 serialization/operational errors, session expired (code 100)
//	KindUnknown     builtins.* (Python bugs such as TypeError, ValueError), anything else
//
// For the pusher: an Ingest that returns an error failed as a whole (retry the
// batch later if IsTransient, surface it on the mailbox if IsAuth); per-item
// outcomes are in the results.
package odoo

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"strings"
	"sync"
	"sync/atomic"
	"time"
)

// Protocols.
const (
	ProtocolJSONRPC = "jsonrpc"
	ProtocolJSON2   = "json2"
)

// DefaultTimeout bounds one call when Config.Timeout is zero.
const DefaultTimeout = 30 * time.Second

// maxResponse caps how much of a response body is read.
const maxResponse = 64 << 20

// Config says which Odoo to talk to and as whom.
type Config struct {
	// URL is the Odoo base URL, e.g. "https://erp.example.com" (no trailing path).
	URL string
	// DB is the database name; sent as execute_kw's first argument and as X-Odoo-Database.
	DB string
	// Login of the technical user (needed for /jsonrpc authenticate).
	Login string
	// APIKey of the technical user. Never logged, never in errors.
	APIKey string
	// Protocol is "jsonrpc", "json2", or "" to detect from common.version (19+ → json2).
	Protocol string
	// Timeout per call; DefaultTimeout when zero.
	Timeout time.Duration
	// HTTPClient to use; a client that does not follow redirects when nil.
	HTTPClient *http.Client
}

// VersionInfo is common.version's answer.
type VersionInfo struct {
	ServerVersion     string `json:"server_version"`
	ServerVersionInfo []any  `json:"server_version_info"`
	ServerSerie       string `json:"server_serie"`
	ProtocolVersion   int    `json:"protocol_version"`
}

// Major returns the major version (17, 18, 19, ...), 0 when unknown.
func (v VersionInfo) Major() int {
	if len(v.ServerVersionInfo) > 0 {
		if f, ok := v.ServerVersionInfo[0].(float64); ok {
			return int(f)
		}
	}
	var m int
	s := v.ServerSerie
	if s == "" {
		s = v.ServerVersion
	}
	s = strings.TrimPrefix(s, "saas~")
	fmt.Sscanf(s, "%d", &m)
	return m
}

// Client calls one Odoo database as one user. Safe for concurrent use.
type Client struct {
	cfg  Config
	base *url.URL
	hc   *http.Client

	mu       sync.Mutex
	protocol string // resolved protocol
	uid      int64  // cached uid for /jsonrpc
	version  *VersionInfo

	nextID atomic.Int64
}

// New checks cfg and builds a client. It does not contact Odoo.
func New(cfg Config) (*Client, error) {
	var problems []string
	u, err := url.Parse(strings.TrimRight(cfg.URL, "/"))
	if cfg.URL == "" || err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
		problems = append(problems, "url must be an http(s) URL")
	}
	if cfg.DB == "" {
		problems = append(problems, "db is required")
	}
	if cfg.APIKey == "" {
		problems = append(problems, "api key is required")
	}
	switch cfg.Protocol {
	case "", ProtocolJSONRPC, ProtocolJSON2:
	default:
		problems = append(problems, fmt.Sprintf("protocol %q is not jsonrpc, json2 or empty", cfg.Protocol))
	}
	if cfg.Protocol == ProtocolJSONRPC && cfg.Login == "" {
		problems = append(problems, "login is required for jsonrpc")
	}
	if cfg.Timeout < 0 {
		problems = append(problems, "timeout must not be negative")
	}
	if len(problems) > 0 {
		return nil, fmt.Errorf("odoo: config: %s", strings.Join(problems, "; "))
	}
	if cfg.Timeout == 0 {
		cfg.Timeout = DefaultTimeout
	}
	hc := cfg.HTTPClient
	if hc == nil {
		hc = &http.Client{CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}
	}
	return &Client{cfg: cfg, base: u, hc: hc, protocol: cfg.Protocol}, nil
}

// Protocol returns the protocol in use, detecting it first when configured as "".
func (c *Client) Protocol(ctx context.Context) (string, error) {
	c.mu.Lock()
	p := c.protocol
	c.mu.Unlock()
	if p != "" {
		return p, nil
	}
	v, err := c.Version(ctx)
	if err != nil {
		return "", err
	}
	p = ProtocolJSONRPC
	if v.Major() >= 19 {
		p = ProtocolJSON2
	}
	c.mu.Lock()
	c.protocol = p
	c.mu.Unlock()
	return p, nil
}

// Version calls common.version over /jsonrpc; when that endpoint is gone (a
// future Odoo) it falls back to GET /web/version.
func (c *Client) Version(ctx context.Context) (VersionInfo, error) {
	var v VersionInfo
	err := c.jsonrpc(ctx, "common.version", "common", "version", []any{}, &v)
	if err != nil && KindOf(err) == KindMissing {
		var wv struct {
			VersionInfo []any  `json:"version_info"`
			Version     string `json:"version"`
		}
		if err2 := c.rawGET(ctx, "/web/version", &wv); err2 == nil {
			v = VersionInfo{ServerVersion: wv.Version, ServerVersionInfo: wv.VersionInfo, ServerSerie: wv.Version}
			err = nil
		}
	}
	if err != nil {
		return VersionInfo{}, err
	}
	c.mu.Lock()
	c.version = &v
	c.mu.Unlock()
	return v, nil
}

// Authenticate checks the API key and returns the user's id. Over /jsonrpc it
// calls common.authenticate (false → KindAuth); over JSON-2 it calls
// res.users.context_get.
func (c *Client) Authenticate(ctx context.Context) (int64, error) {
	p, err := c.Protocol(ctx)
	if err != nil {
		return 0, err
	}
	if p == ProtocolJSON2 {
		var cg struct {
			UID int64 `json:"uid"`
		}
		if err := c.json2(ctx, "res.users", "context_get", nil, nil, &cg); err != nil {
			return 0, err
		}
		c.mu.Lock()
		c.uid = cg.UID
		c.mu.Unlock()
		return cg.UID, nil
	}
	if c.cfg.Login == "" {
		return 0, &Error{Kind: KindAuth, Op: "common.authenticate", Message: "a login is needed for /jsonrpc (Odoo before 19)"}
	}
	var raw json.RawMessage
	if err := c.jsonrpc(ctx, "common.authenticate", "common", "authenticate",
		[]any{c.cfg.DB, c.cfg.Login, c.cfg.APIKey, map[string]any{}}, &raw); err != nil {
		return 0, err
	}
	uid, err := DecodeID(raw)
	if err != nil || uid == 0 {
		return 0, &Error{Kind: KindAuth, Op: "common.authenticate", Message: "login or API key refused", HTTPStatus: 200}
	}
	c.mu.Lock()
	c.uid = uid
	c.mu.Unlock()
	return uid, nil
}

func (c *Client) cachedUID(ctx context.Context) (int64, error) {
	c.mu.Lock()
	uid := c.uid
	c.mu.Unlock()
	if uid != 0 {
		return uid, nil
	}
	return c.Authenticate(ctx)
}

// Call calls model.method: execute_kw over /jsonrpc (positional args = [ids]
// when ids != nil, everything else by name), or POST /json/2/<model>/<method>
// with {ids, ...kwargs}. Put a context in kwargs["context"]. out receives the
// decoded result (nil to discard; json.RawMessage to keep it raw).
func (c *Client) Call(ctx context.Context, model, method string, ids []int64, kwargs map[string]any, out any) error {
	p, err := c.Protocol(ctx)
	if err != nil {
		return err
	}
	if p == ProtocolJSON2 {
		return c.json2(ctx, model, method, ids, kwargs, out)
	}
	uid, err := c.cachedUID(ctx)
	if err != nil {
		return err
	}
	args := []any{}
	if ids != nil {
		args = append(args, ids)
	}
	if kwargs == nil {
		kwargs = map[string]any{}
	}
	err = c.jsonrpc(ctx, model+"."+method, "object", "execute_kw",
		[]any{c.cfg.DB, uid, c.cfg.APIKey, model, method, args, kwargs}, out)
	if IsAuth(err) {
		// The key may have been changed or the user recreated: authenticate again next time.
		c.mu.Lock()
		c.uid = 0
		c.mu.Unlock()
	}
	return err
}

// jsonrpc posts one JSON-RPC "call" to /jsonrpc.
func (c *Client) jsonrpc(ctx context.Context, op, service, method string, args []any, out any) error {
	body, err := json.Marshal(map[string]any{
		"jsonrpc": "2.0", "method": "call", "id": c.nextID.Add(1),
		"params": map[string]any{"service": service, "method": method, "args": args},
	})
	if err != nil {
		return &Error{Kind: KindValidation, Op: op, Message: "encode request: " + err.Error()}
	}
	h := http.Header{"Content-Type": {"application/json"}}
	return c.Do(ctx, op, http.MethodPost, "/jsonrpc", h, body, out)
}

// json2 posts one JSON-2 call.
func (c *Client) json2(ctx context.Context, model, method string, ids []int64, kwargs map[string]any, out any) error {
	op := model + "." + method
	m := make(map[string]any, len(kwargs)+1)
	for k, v := range kwargs {
		m[k] = v
	}
	if ids != nil {
		m["ids"] = ids
	}
	body, err := json.Marshal(m)
	if err != nil {
		return &Error{Kind: KindValidation, Op: op, Message: "encode request: " + err.Error()}
	}
	h := http.Header{
		"Content-Type":    {"application/json"},
		"Authorization":   {"bearer " + c.cfg.APIKey},
		"X-Odoo-Database": {c.cfg.DB},
	}
	return c.Do(ctx, op, http.MethodPost, "/json/2/"+url.PathEscape(model)+"/"+url.PathEscape(method), h, body, out)
}

func (c *Client) rawGET(ctx context.Context, path string, out any) error {
	return c.Do(ctx, "GET "+path, http.MethodGet, path, http.Header{}, nil, out)
}

// Do sends one raw request to path and decodes the answer the way the endpoint
// answers: /json/2/... bare results and HTTP statuses, GET /web/version a bare
// object, everything else a JSON-RPC envelope. It is the single place every call
// goes through (and what the transcript replay tests drive). op names the call
// in errors.
func (c *Client) Do(ctx context.Context, op, method, path string, header http.Header, body []byte, out any) error {
	ctx, cancel := context.WithTimeout(ctx, c.cfg.Timeout)
	defer cancel()
	u := *c.base
	u.Path = strings.TrimRight(u.Path, "/") + path
	var rd io.Reader
	if body != nil {
		rd = bytes.NewReader(body)
	}
	req, err := http.NewRequestWithContext(ctx, method, u.String(), rd)
	if err != nil {
		return &Error{Kind: KindValidation, Op: op, Message: "build request", Err: err}
	}
	for k, vs := range header {
		for _, v := range vs {
			req.Header.Add(k, v)
		}
	}
	resp, err := c.hc.Do(req)
	if err != nil {
		return c.transportError(ctx, op, err)
	}
	defer resp.Body.Close()
	data, err := io.ReadAll(io.LimitReader(resp.Body, maxResponse))
	if err != nil {
		return c.transportError(ctx, op, fmt.Errorf("read response: %w", err))
	}
	ct := resp.Header.Get("Content-Type")
	switch {
	case strings.HasPrefix(path, "/json/2"):
		err = decodeJSON2(op, resp.StatusCode, ct, data, out)
	case method == http.MethodGet:
		err = decodeBare(op, resp.StatusCode, ct, data, out)
	default:
		err = decodeJSONRPC(op, resp.StatusCode, ct, data, out)
	}
	return c.scrub(err)
}

// scrub removes the API key from an error, should a server ever echo it.
func (c *Client) scrub(err error) error {
	var e *Error
	if c.cfg.APIKey == "" || !errors.As(err, &e) {
		return err
	}
	e.Message = strings.ReplaceAll(e.Message, c.cfg.APIKey, "***")
	e.Debug = strings.ReplaceAll(e.Debug, c.cfg.APIKey, "***")
	return err
}

// transportError turns a failed round trip into a transient Error, unless the
// caller itself cancelled (then the context's error is returned, wrapped).
func (c *Client) transportError(ctx context.Context, op string, err error) error {
	if errors.Is(err, context.Canceled) && ctx.Err() != nil {
		return fmt.Errorf("odoo: %s: %w", op, context.Canceled)
	}
	// Strip the URL from *url.Error: it never holds the key (bodies carry it), but
	// keep messages short and stable.
	var ue *url.Error
	if errors.As(err, &ue) {
		err = ue.Err
	}
	msg := "connection failed"
	if errors.Is(err, context.DeadlineExceeded) {
		msg = "timed out"
	}
	return &Error{Kind: KindTransient, Op: op, Message: msg, Err: err}
}

// rpcEnvelope is a JSON-RPC answer.
type rpcEnvelope struct {
	ID     json.RawMessage `json:"id"`
	Result json.RawMessage `json:"result"`
	Error  *struct {
		Code    int    `json:"code"`
		Message string `json:"message"`
		Data    *struct {
			Name    string `json:"name"`
			Message string `json:"message"`
			Debug   string `json:"debug"`
		} `json:"data"`
	} `json:"error"`
}

func decodeJSONRPC(op string, status int, ct string, data []byte, out any) error {
	if !isJSON(ct) {
		return httpError(op, status, data)
	}
	var env rpcEnvelope
	if err := json.Unmarshal(data, &env); err != nil {
		if status != http.StatusOK {
			return httpError(op, status, data)
		}
		return &Error{Kind: KindUnknown, Op: op, HTTPStatus: status, Message: "undecodable JSON-RPC answer: " + err.Error()}
	}
	if env.Error == nil && status != http.StatusOK {
		return httpError(op, status, data)
	}
	if env.Error != nil {
		e := &Error{Op: op, HTTPStatus: status, Code: env.Error.Code, Message: env.Error.Message}
		if d := env.Error.Data; d != nil {
			e.Name, e.Debug = d.Name, d.Debug
			if d.Message != "" {
				e.Message = d.Message
			}
		}
		e.Kind = kindForName(e.Name, e.Message)
		switch {
		case env.Error.Code == 100:
			e.Kind = KindTransient // session expired
		case e.Name == "" && env.Error.Code == 404:
			e.Kind = KindMissing
		case e.Kind == KindUnknown && !strings.HasPrefix(e.Name, "builtins.") && status != http.StatusOK:
			e.Kind = kindForStatus(status)
		}
		return e
	}
	return decodeResult(op, status, env.Result, out)
}

func decodeResult(op string, status int, raw json.RawMessage, out any) error {
	if out == nil {
		return nil
	}
	if len(raw) == 0 {
		raw = json.RawMessage("null") // a method returning None: Odoo omits "result"
	}
	if rm, ok := out.(*json.RawMessage); ok {
		*rm = append((*rm)[:0], raw...)
		return nil
	}
	if err := json.Unmarshal(raw, out); err != nil {
		return &Error{Kind: KindUnknown, Op: op, HTTPStatus: status, Message: "decode result: " + err.Error()}
	}
	return nil
}

// json2Error is JSON-2's error body.
type json2Error struct {
	Name    string `json:"name"`
	Message string `json:"message"`
	Debug   string `json:"debug"`
}

func decodeJSON2(op string, status int, ct string, data []byte, out any) error {
	if status == http.StatusOK && isJSON(ct) {
		return decodeResult(op, status, json.RawMessage(bytes.TrimSpace(data)), out)
	}
	if isJSON(ct) {
		var je json2Error
		if json.Unmarshal(data, &je) == nil && je.Name != "" {
			e := &Error{Op: op, HTTPStatus: status, Name: je.Name, Message: je.Message, Debug: je.Debug}
			e.Kind = kindForName(je.Name, je.Message)
			if e.Kind == KindUnknown && !strings.HasPrefix(je.Name, "builtins.") && status != http.StatusOK {
				e.Kind = kindForStatus(status)
			}
			return e
		}
	}
	return httpError(op, status, data)
}

func decodeBare(op string, status int, ct string, data []byte, out any) error {
	if status != http.StatusOK || !isJSON(ct) {
		return httpError(op, status, data)
	}
	return decodeResult(op, status, data, out)
}

// httpError describes a non-JSON or non-200 answer (Odoo's 400 "Invalid JSON
// data", HTML 4xx pages, proxies' 502s, 303 to /web/login on a pre-19 JSON-2 probe).
func httpError(op string, status int, data []byte) error {
	k := kindForStatus(status)
	if status == http.StatusOK {
		k = KindUnknown
	}
	return &Error{Kind: k, Op: op, HTTPStatus: status, Message: summarize(data)}
}

func isJSON(ct string) bool {
	return strings.HasPrefix(strings.ToLower(strings.TrimSpace(ct)), "application/json")
}

// summarize keeps the first line of text from a non-JSON body, tags stripped.
func summarize(data []byte) string {
	s := string(data)
	var b strings.Builder
	in := false
	for _, r := range s {
		switch {
		case r == '<':
			in = true
		case r == '>':
			in = false
			b.WriteByte(' ')
		case !in:
			b.WriteRune(r)
		}
	}
	out := strings.Join(strings.Fields(b.String()), " ")
	if len(out) > 200 {
		out = out[:200] + "…"
	}
	return out
}
