package rpc

import (
	"bytes"
	"encoding/json"
	"net/http"
	"strings"
	"testing"
)

// errBody is the exact answer for an Odoo-shaped error.
func errBody(id string, code int, message, name, msg, machine string) string {
	var buf bytes.Buffer
	enc := json.NewEncoder(&buf)
	enc.SetEscapeHTML(false)
	_ = enc.Encode(msg)
	b := bytes.TrimSpace(buf.Bytes())
	return `{"jsonrpc":"2.0","id":` + id + `,"error":{"code":` + itoa(code) + `,"message":"` + message + `","data":{"name":"` + name +
		`","message":` + string(b) + `,"arguments":[` + string(b) + `],"code":"` + machine + `","debug":""}}}` + "\n"
}

func itoa(i int) string { b, _ := json.Marshal(i); return string(b) }

func TestCodecErrors(t *testing.T) {
	const v = `"jsonrpc":"2.0"`
	accessDenied := errBody("null", 200, "MailDesk Error", NameAccessDenied,
		"Access Denied: send the sidecar's shared secret as Authorization: Bearer <secret>", "unauthenticated")
	cases := []struct {
		name       string
		method     string // HTTP method; "" = POST
		path       string
		body       string
		hdr        map[string]string
		wantStatus int
		want       string
	}{
		{name: "no secret", body: `{` + v + `,"id":1,"method":"system.version"}`, hdr: map[string]string{"Authorization": ""},
			wantStatus: 401, want: accessDenied},
		{name: "wrong secret", body: `{` + v + `,"id":1,"method":"system.version"}`, hdr: map[string]string{"Authorization": "Bearer nope"},
			wantStatus: 401, want: accessDenied},
		{name: "secret as basic auth", body: `{` + v + `,"id":1,"method":"system.version"}`, hdr: map[string]string{"Authorization": "Basic " + testSecret},
			wantStatus: 401, want: accessDenied},
		{name: "secret prefix", body: `{` + v + `,"id":1,"method":"system.version"}`, hdr: map[string]string{"Authorization": "Bearer " + testSecret[:10]},
			wantStatus: 401, want: accessDenied},
		{name: "GET is 405", method: "GET", wantStatus: 405,
			want: errBody("null", 405, "Method Not Allowed", NameMethodNotAllowed, "JSON-RPC needs POST, not GET", "method_not_allowed")},
		{name: "text/plain is 415", body: `{` + v + `,"id":1,"method":"system.version"}`, hdr: map[string]string{"Content-Type": "text/plain"},
			wantStatus: 415, want: errBody("null", 415, "Unsupported Media Type", NameUnsupportedMedia,
				"Send JSON-RPC with Content-Type: application/json, not text/plain", "unsupported_media_type")},
		{name: "form is 415", body: `a=b`, hdr: map[string]string{"Content-Type": "application/x-www-form-urlencoded"},
			wantStatus: 415, want: errBody("null", 415, "Unsupported Media Type", NameUnsupportedMedia,
				"Send JSON-RPC with Content-Type: application/json, not application/x-www-form-urlencoded", "unsupported_media_type")},
		{name: "malformed JSON", body: `{"jsonrpc":"2.0","id":1,"method":`, wantStatus: 400,
			want: errBody("null", -32700, "Parse error", NameBadRequest, "Invalid JSON data: unexpected end of JSON input", "parse_error")},
		{name: "empty body", body: ``, wantStatus: 400,
			want: errBody("null", -32700, "Parse error", NameBadRequest, "Invalid JSON data: unexpected end of JSON input", "parse_error")},
		{name: "not an object", body: `"hello"`, wantStatus: 400,
			want: errBody("null", -32600, "Invalid Request", NameBadRequest, "The request body must be a JSON-RPC object", "invalid_request")},
		{name: "batch array", body: `[{` + v + `,"id":1,"method":"system.version"}]`, wantStatus: 400,
			want: errBody("null", -32600, "Invalid Request", NameBadRequest,
				"Batch requests (JSON arrays) are not supported: send one JSON-RPC object per request", "batch_not_supported")},
		{name: "notification without id", body: `{` + v + `,"method":"system.version","params":{}}`, wantStatus: 400,
			want: errBody("null", -32600, "Invalid Request", NameBadRequest,
				"Notifications are not supported: every request needs an id, and every request gets an answer", "notification_not_supported")},
		{name: "notification with null id", body: `{` + v + `,"id":null,"method":"system.version"}`, wantStatus: 400,
			want: errBody("null", -32600, "Invalid Request", NameBadRequest,
				"Notifications are not supported: every request needs an id, and every request gets an answer", "notification_not_supported")},
		{name: "object id", body: `{` + v + `,"id":{},"method":"system.version"}`, wantStatus: 400,
			want: errBody("null", -32600, "Invalid Request", NameBadRequest, "The request id must be a string or a number", "invalid_request")},
		{name: "jsonrpc 1.0", body: `{"jsonrpc":"1.0","id":3,"method":"system.version"}`, wantStatus: 400,
			want: errBody("3", -32600, "Invalid Request", NameBadRequest, `Only JSON-RPC "2.0" is supported`, "invalid_request")},
		{name: "call without path", body: `{` + v + `,"id":4,"method":"call","params":{}}`, wantStatus: 400,
			want: errBody("4", -32600, "Invalid Request", NameBadRequest, `Method "call" takes the method from the path: POST /jsonrpc/<method>`, "invalid_request")},
		{name: "path and body disagree", path: "/jsonrpc/system.health", body: `{` + v + `,"id":5,"method":"system.version"}`, wantStatus: 400,
			want: errBody("5", -32600, "Invalid Request", NameBadRequest, "The path names method system.health but the body names system.version", "invalid_request")},
		{name: "unknown method", body: `{` + v + `,"id":"a","method":"mailbox.frobnicate","params":{}}`, wantStatus: 200,
			want: errBody(`"a"`, 404, "404: Not Found", NameNotFound,
				"Method not found: mailbox.frobnicate (see docs/api.md for the methods this sidecar has)", "method_not_found")},
		{name: "unknown method by path", path: "/jsonrpc/nosuch.thing", body: `{` + v + `,"id":6,"method":"call","params":{}}`, wantStatus: 200,
			want: errBody("6", 404, "404: Not Found", NameNotFound,
				"Method not found: nosuch.thing (see docs/api.md for the methods this sidecar has)", "method_not_found")},
		{name: "Go method name is not public", body: `{` + v + `,"id":7,"method":"mailbox.Create","params":{}}`, wantStatus: 200,
			want: errBody("7", 404, "404: Not Found", NameNotFound,
				"Method not found: mailbox.Create (see docs/api.md for the methods this sidecar has)", "method_not_found")},
		{name: "positional params", body: `{` + v + `,"id":8,"method":"mailbox.get","params":["mbx_1"]}`, wantStatus: 200,
			want: errBody("8", 200, "MailDesk Error", NameValidationError,
				"Params must be an object of named parameters (positional params are not supported)", "invalid_params")},
		{name: "unknown param", body: `{` + v + `,"id":9,"method":"mailbox.create","params":{"context":{"uid":2},"email":"a@example.com","kind":"personal","colour":"red"}}`,
			wantStatus: 200, want: errBody("9", 200, "MailDesk Error", NameValidationError, "Unknown parameter colour", "invalid_params")},
		{name: "unknown param on a method without params", body: `{` + v + `,"id":10,"method":"system.version","params":{"verbose":true}}`,
			wantStatus: 200, want: errBody("10", 200, "MailDesk Error", NameValidationError, "Unknown parameter verbose", "invalid_params")},
		{name: "wrong param type", body: `{` + v + `,"id":11,"method":"mailbox.create","params":{"context":{"uid":2},"email":"a@example.com","kind":"personal","owner_uid":"2"}}`,
			wantStatus: 200, want: errBody("11", 200, "MailDesk Error", NameValidationError, "Parameter owner_uid must be an integer, not string", "invalid_params")},
		{name: "wrong list element type", body: `{` + v + `,"id":12,"method":"mailbox.create","params":{"context":{"uid":2},"email":"a@example.com","kind":"personal","user_ids":[1,"x"]}}`,
			wantStatus: 200, want: errBody("12", 200, "MailDesk Error", NameValidationError, "Parameter user_ids must be an integer, not string", "invalid_params")},
		{name: "wrong mailbox_id type", body: `{` + v + `,"id":13,"method":"mailbox.get","params":{"mailbox_id":42}}`,
			wantStatus: 200, want: errBody("13", 200, "MailDesk Error", NameValidationError, "Parameter mailbox_id must be a string, not number", "invalid_params")},
		{name: "bad context uid", body: `{` + v + `,"id":14,"method":"mailbox.list","params":{"context":{"uid":"two"}}}`,
			wantStatus: 200, want: errBody("14", 200, "MailDesk Error", NameValidationError, "context.uid must be a positive integer (the acting Odoo user id)", "invalid_params")},
		{name: "missing mailbox", body: `{` + v + `,"id":15,"method":"mailbox.get","params":{"context":{"uid":2},"mailbox_id":"mbx_000000000000"}}`,
			wantStatus: 200, want: errBody("15", 200, "MailDesk Error", NameMissingError, "Mailbox mbx_000000000000 does not exist (it may have been deleted)", "not_found")},
		{name: "missing mailbox by path", path: "/jsonrpc/mailbox.delete", body: `{` + v + `,"id":16,"method":"call","params":{"context":{"uid":2},"mailbox_id":"mbx_000000000000"}}`,
			wantStatus: 200, want: errBody("16", 200, "MailDesk Error", NameMissingError, "Mailbox mbx_000000000000 does not exist (it may have been deleted)", "not_found")},
		{name: "invalid e-mail", body: `{` + v + `,"id":17,"method":"mailbox.create","params":{"context":{"uid":2},"email":"not-an-address","kind":"personal"}}`,
			wantStatus: 200, want: errBody("17", 200, "MailDesk Error", NameValidationError, `email "not-an-address" is not a valid e-mail address`, "invalid_params")},
		{name: "settings.set without admin", body: `{` + v + `,"id":18,"method":"settings.set","params":{"context":{"uid":2},"odoo":{"api_key":"k"}}}`,
			wantStatus: 200, want: errBody("18", 200, "MailDesk Error", NameAccessError, "Only MailDesk administrators may change the sidecar's settings", "forbidden")},
	}
	e := newEnv(t, Config{})
	// One mailbox exists, so "nothing changed" is checked against real data.
	e.mustCall("mailbox.create", with(map[string]any{"email": "seed@example.com", "kind": "personal"}, ctxUID(2)), nil)
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			e.t = t
			before := e.snapshot()
			path := tc.path
			if path == "" {
				path = "/jsonrpc"
			}
			m := tc.method
			if m == "" {
				m = http.MethodPost
			}
			req, _ := http.NewRequest(m, e.http.URL+path, strings.NewReader(tc.body))
			req.Header.Set("Content-Type", "application/json")
			req.Header.Set("Authorization", "Bearer "+testSecret)
			for k, v := range tc.hdr {
				if v == "" {
					req.Header.Del(k)
				} else {
					req.Header.Set(k, v)
				}
			}
			resp, err := e.http.Client().Do(req)
			if err != nil {
				t.Fatal(err)
			}
			var got bytes.Buffer
			_, _ = got.ReadFrom(resp.Body)
			resp.Body.Close()
			if resp.StatusCode != tc.wantStatus {
				t.Errorf("HTTP %d, want %d", resp.StatusCode, tc.wantStatus)
			}
			if ct := resp.Header.Get("Content-Type"); ct != "application/json; charset=utf-8" {
				t.Errorf("Content-Type %q", ct)
			}
			if got.String() != tc.want {
				t.Errorf("body\n got: %s\nwant: %s", got.String(), tc.want)
			}
			if !bytes.Equal(before, e.snapshot()) {
				t.Errorf("the database changed")
			}
		})
	}
}

func TestCodecOversizedBody(t *testing.T) {
	e := newEnv(t, Config{MaxBodyBytes: 2048})
	before := e.snapshot()
	big := `{"jsonrpc":"2.0","id":1,"method":"mailbox.create","params":{"context":{"uid":2},"email":"a@example.com","kind":"personal","gateway_model":"` +
		strings.Repeat("x", 4096) + `"}}`
	want := errBody("null", 413, "Request Entity Too Large", NameTooLarge,
		"The request body is larger than the sidecar's limit of 2048 bytes (--max-body-bytes)", "too_large")
	status, body := e.post("/jsonrpc", big, nil)
	if status != 413 || body != want {
		t.Fatalf("HTTP %d %s", status, body)
	}
	// Without Content-Length (chunked), the limit holds while reading.
	req, _ := http.NewRequest(http.MethodPost, e.http.URL+"/jsonrpc", struct{ *strings.Reader }{strings.NewReader(big)})
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("Authorization", "Bearer "+testSecret)
	resp, err := e.http.Client().Do(req)
	if err != nil {
		t.Fatal(err)
	}
	var got bytes.Buffer
	_, _ = got.ReadFrom(resp.Body)
	resp.Body.Close()
	if resp.StatusCode != 413 || got.String() != want || req.ContentLength != -1 && req.ContentLength != 0 {
		t.Fatalf("chunked: HTTP %d %s (content length %d)", resp.StatusCode, got.String(), req.ContentLength)
	}
	if !bytes.Equal(before, e.snapshot()) {
		t.Errorf("the database changed")
	}
}

// The same call answers the same in both envelope styles.
func TestCodecBothEnvelopes(t *testing.T) {
	e := newEnv(t, Config{})
	var mb struct {
		ID string `json:"id"`
	}
	e.mustCall("mailbox.create", with(map[string]any{"email": "anna@example.com", "kind": "personal"}, ctxUID(2)), &mb)
	params := `{"context":{"uid":2,"lang":"en_US","tz":"Europe/Berlin"},"mailbox_id":"` + mb.ID + `"}`
	s1, std := e.post("/jsonrpc", `{"jsonrpc":"2.0","id":7,"method":"mailbox.get","params":`+params+`}`, nil)
	s2, odoo := e.post("/jsonrpc/mailbox.get", `{"jsonrpc":"2.0","id":7,"method":"call","params":`+params+`}`, nil)
	s3, both := e.post("/jsonrpc/mailbox.get", `{"jsonrpc":"2.0","id":7,"method":"mailbox.get","params":`+params+`}`, nil)
	if s1 != 200 || s2 != 200 || s3 != 200 {
		t.Fatalf("HTTP %d %d %d", s1, s2, s3)
	}
	if std != odoo || std != both {
		t.Fatalf("answers differ:\n%s\n%s\n%s", std, odoo, both)
	}
	if !strings.HasPrefix(std, `{"jsonrpc":"2.0","id":7,"result":{"id":"`+mb.ID+`","email":"anna@example.com"`) {
		t.Fatalf("unexpected answer %s", std)
	}
	// String ids come back as given.
	_, s := e.post("/jsonrpc", `{"jsonrpc":"2.0","id":"req-1","method":"system.health"}`, nil)
	if !strings.HasPrefix(s, `{"jsonrpc":"2.0","id":"req-1","result":{"status":"ok"`) {
		t.Fatalf("unexpected answer %s", s)
	}
}

func TestSnakeNames(t *testing.T) {
	for in, want := range map[string]string{
		"Create": "create", "SyncNow": "sync_now", "AdminURL": "admin_url", "LogToRecord": "log_to_record",
		"MarkRead": "mark_read", "URLFor": "url_for", "Get2FA": "get2_fa",
	} {
		if got := snake(in); got != want {
			t.Errorf("snake(%s) = %s, want %s", in, got, want)
		}
	}
}

type dupService struct{}

func (dupService) Create(r *http.Request, _ *NoParams, out *bool) error { *out = true; return nil }

type extraService struct{}

func (extraService) SyncNow(r *http.Request, _ *NoParams, out *map[string]bool) error {
	*out = map[string]bool{"queued": true}
	return nil
}

// Other services can join a namespace; a name registered twice is refused.
func TestRegisterSharedNamespace(t *testing.T) {
	e := newEnv(t, Config{})
	if err := e.srv.Register("mailbox", dupService{}); err == nil || !strings.Contains(err.Error(), "mailbox.create registered twice") {
		t.Fatalf("duplicate registration: %v", err)
	}
	if err := e.srv.Register("mailbox", extraService{}); err != nil {
		t.Fatal(err)
	}
	var out map[string]bool
	e.mustCall("mailbox.sync_now", nil, &out)
	if !out["queued"] {
		t.Fatalf("got %v", out)
	}
	var mbs []any
	e.mustCall("mailbox.list", with(nil, ctxUID(2)), &mbs) // the first service still answers
}
