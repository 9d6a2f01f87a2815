package rpc

import (
	"bytes"
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"net/url"
	"path/filepath"
	"strings"
	"testing"

	"github.com/rs/zerolog"

	"github.com/maildesk/maildesk/bridge"
	"github.com/maildesk/maildesk/store"
)

// fuzzMutating are the methods allowed to change the store.
var fuzzMutating = map[string]bool{
	"settings.set":   true,
	"mailbox.create": true,
	"mailbox.update": true,
	"mailbox.delete": true,
}

// fuzzNames are the error names a caller can get: the table of API.md plus
// the transport-level answers (400, 405, 413, 415) the server writes itself.
var fuzzNames = map[string]bool{
	NameAccessDenied: true, NameAccessError: true, NameValidationError: true,
	NameMissingError: true, NameUserError: true, NameNotFound: true, NameInternalError: true,
	NameBadRequest: true, NameMethodNotAllowed: true, NameUnsupportedMedia: true, NameTooLarge: true,
}

var fuzzStatuses = map[int]bool{200: true, 400: true, 401: true, 405: true, 413: true, 415: true}

// fuzzPath maps the fuzzed method name to a request path: "" is /jsonrpc,
// anything else /jsonrpc/<method> (only characters a method name can have,
// so the mux's path cleaning does not answer a redirect).
func fuzzPath(m string) string {
	if m == "" {
		return "/jsonrpc"
	}
	m = strings.Map(func(r rune) rune {
		switch {
		case r >= 'a' && r <= 'z', r >= 'A' && r <= 'Z', r >= '0' && r <= '9', r == '.', r == '_':
			return r
		}
		return -1
	}, m)
	if m == "" || strings.Trim(m, ".") == "" {
		m = "x"
	}
	return "/jsonrpc/" + url.PathEscape(m)
}

func FuzzCodec(f *testing.F) {
	const v = `"jsonrpc":"2.0"`
	dir := f.TempDir()
	st, err := store.Open(filepath.Join(dir, "fuzz.db"), bytes.Repeat([]byte{7}, store.KeySize), store.Options{NoSync: true})
	if err != nil {
		f.Fatal(err)
	}
	f.Cleanup(func() { st.Close() })
	logs := &syncBuffer{}
	log := zerolog.New(logs).Level(zerolog.InfoLevel)
	mbx := bridge.NewMailboxes(st, log)
	srv, err := New(Config{SharedSecret: testSecret, MaxBodyBytes: 8 << 10}, Deps{
		Log:       log,
		System:    bridge.NewSystem(st, bridge.BuildInfo{Version: "test", Commit: "abc123"}),
		Mailboxes: mbx,
		Settings:  bridge.NewSettings(st, log),
		Audit:     bridge.NewAuditLog(st, mbx),
	})
	if err != nil {
		f.Fatal(err)
	}
	h := srv.Handler()
	do := func(path string, body []byte) *httptest.ResponseRecorder {
		req := httptest.NewRequest(http.MethodPost, path, bytes.NewReader(body))
		req.Header.Set("Content-Type", "application/json")
		req.Header.Set("Authorization", "Bearer "+testSecret)
		rec := httptest.NewRecorder()
		h.ServeHTTP(rec, req)
		return rec
	}
	// One mailbox so get/update/delete have something to find.
	rec := do("/jsonrpc", []byte(`{`+v+`,"id":1,"method":"mailbox.create","params":{"context":{"uid":2},"email":"fuzz@example.com","kind":"personal"}}`))
	var created struct {
		Result struct {
			ID string `json:"id"`
		} `json:"result"`
	}
	if err := json.Unmarshal(rec.Body.Bytes(), &created); err != nil || created.Result.ID == "" {
		f.Fatalf("seed mailbox: %v: %s", err, rec.Body.String())
	}
	id := created.Result.ID

	seeds := []struct{ method, body string }{
		{"", `{` + v + `,"id":1,"method":"system.version","params":{}}`},
		{"system.version", `{` + v + `,"id":1,"method":"call","params":{}}`},
		{"", `{` + v + `,"id":"x","method":"system.health"}`},
		{"", `{` + v + `,"id":2,"method":"mailbox.list","params":{"context":{"uid":2,"lang":"en_US","tz":"Europe/Berlin"}}}`},
		{"mailbox.get", `{` + v + `,"id":3,"method":"call","params":{"context":{"uid":2},"mailbox_id":"` + id + `"}}`},
		{"", `{` + v + `,"id":3,"method":"mailbox.get","params":{"context":{"uid":99},"mailbox_id":"` + id + `"}}`},
		{"", `{` + v + `,"id":4,"method":"mailbox.update","params":{"context":{"uid":2},"mailbox_id":"` + id + `","user_ids":[3,4]}}`},
		{"", `{` + v + `,"id":5,"method":"mailbox.create","params":{"context":{"uid":2},"email":"a@example.com","kind":"shared","user_ids":[2,3]}}`},
		{"", `{` + v + `,"id":6,"method":"settings.get","params":{"context":{"uid":2,"maildesk_admin":true}}}`},
		{"", `{` + v + `,"id":7,"method":"settings.set","params":{"context":{"uid":2,"maildesk_admin":true},"odoo":{"api_key":"k"}}}`},
		{"", `{` + v + `,"id":8,"method":"audit.list","params":{"context":{"uid":2,"maildesk_admin":true}}}`},
		{"", `{` + v + `,"method":"system.version","params":{}}`},
		{"", `{` + v + `,"id":null,"method":"system.version"}`},
		{"", `{` + v + `,"id":{},"method":"system.version"}`},
		{"", `[{` + v + `,"id":1,"method":"system.version"}]`},
		{"", `[]`},
		{"", `{"jsonrpc":"2.0","id":1,"method":`},
		{"", ``},
		{"", `"hello"`},
		{"", `{"jsonrpc":"1.0","id":3,"method":"system.version"}`},
		{"", `{` + v + `,"id":4,"method":"call","params":{}}`},
		{"system.health", `{` + v + `,"id":5,"method":"system.version"}`},
		{"", `{` + v + `,"id":"a","method":"mailbox.frobnicate","params":{}}`},
		{"nosuch.thing", `{` + v + `,"id":6,"method":"call","params":{}}`},
		{"", `{` + v + `,"id":7,"method":"mailbox.Create","params":{}}`},
		{"", `{` + v + `,"id":8,"method":"mailbox.get","params":["mbx_1"]}`},
		{"", `{` + v + `,"id":9,"method":"mailbox.create","params":{"context":{"uid":2},"email":"a@example.com","kind":"personal","colour":"red"}}`},
		{"", `{` + v + `,"id":10,"method":"system.version","params":{"verbose":true}}`},
		{"", `{` + v + `,"id":11,"method":"mailbox.create","params":{"context":{"uid":2},"email":"a@example.com","kind":"personal","owner_uid":"2"}}`},
		{"", `{` + v + `,"id":12,"method":"mailbox.create","params":{"context":{"uid":2},"email":"a@example.com","kind":"personal","user_ids":[1,"x"]}}`},
		{"", `{` + v + `,"id":13,"method":"mailbox.get","params":{"mailbox_id":42}}`},
		{"", `{` + v + `,"id":14,"method":"mailbox.list","params":{"context":{"uid":"two"}}}`},
		{"", `{` + v + `,"id":15,"method":"mailbox.get","params":{"context":{"uid":2},"mailbox_id":"mbx_000000000000"}}`},
		{"mailbox.delete", `{` + v + `,"id":16,"method":"call","params":{"context":{"uid":2},"mailbox_id":"mbx_000000000000"}}`},
		{"", `{` + v + `,"id":17,"method":"mailbox.create","params":{"context":{"uid":2},"email":"not-an-address","kind":"personal"}}`},
		{"", `{` + v + `,"id":18,"method":"settings.set","params":{"context":{"uid":2},"odoo":{"api_key":"k"}}}`},
		{"", `{` + v + `,"id":1e400,"method":"system.version"}`},
		{"", `{` + v + `,"id":123456789012345678901234567890,"method":"mailbox.list","params":{"context":{"uid":99999999999999999999999}}}`},
		{"", `{` + v + `,"id":-1,"method":"mailbox.list","params":{"context":{"uid":-5}}}`},
		{"", `{` + v + `,"id":"ü","method":"mailbox.create","params":{"context":{"uid":2},"email":"jürgen@exämple.de","kind":"personal"}}`},
		{"", `{` + v + `,"id":"\u0000\ud800","method":"mailbox.\u0067et","params":{"context":{"uid":2},"mailbox_id":"\u2028"}}`},
		{"", `{` + v + `,"id":19,"method":"mailbox.create","params":{"context":{"uid":2,"maildesk_admin":"yes"},"email":{"a":[{"b":[[[{}]]]}]},"kind":["personal"]}}`},
		{"", `{` + v + `,"id":20,"method":"settings.set","params":{"context":{"uid":2,"maildesk_admin":true},"odoo":{"url":{"x":{"y":[1,2,{"z":null}]}}}}}`},
		{"", `{` + v + `,"id":21,"method":"mailbox.list","params":null}`},
		{"", `{` + v + `,"id":22,"method":"mailbox.list","params":{"context":null}}`},
		{"", `{` + v + `,"id":23,"method":"mailbox.list","params":{"context":false}}`},
		{"", `{` + v + `,"id":24,"method":"mailbox.list","params":{"context":{"uid":false}},"method":"mailbox.get"}`},
		{"", `{` + v + `,"ID":25,"METHOD":"system.version"}`},
		{"", `{` + v + `,"id":26,"method":"system.version","params":"` + strings.Repeat("A", 9000) + `"}`},
	}
	for _, s := range seeds {
		f.Add(s.method, []byte(s.body))
	}

	snapshot := func(t *testing.T) []byte {
		var b bytes.Buffer
		if _, err := st.Backup(&b); err != nil {
			t.Fatal(err)
		}
		return b.Bytes()
	}

	f.Fuzz(func(t *testing.T, method string, body []byte) {
		path := fuzzPath(method)
		pathMethod := strings.TrimPrefix(strings.TrimPrefix(path, "/jsonrpc"), "/")
		pathMethod, _ = url.PathUnescape(pathMethod)
		mutating := false
		if c, rerr := parseCall(body, pathMethod); rerr == nil && fuzzMutating[c.method] {
			mutating = true
		}
		var before []byte
		if !mutating {
			before = snapshot(t)
		}
		logsBefore := len(logs.String())

		rec := do(path, body)

		if !fuzzStatuses[rec.Code] {
			t.Fatalf("status %d for %s %q: %s", rec.Code, path, body, rec.Body.String())
		}
		var resp struct {
			JSONRPC string          `json:"jsonrpc"`
			Result  json.RawMessage `json:"result"`
			Error   *ErrorObject    `json:"error"`
		}
		if err := json.Unmarshal(rec.Body.Bytes(), &resp); err != nil {
			t.Fatalf("answer is not JSON (%v) for %s %q: %q", err, path, body, rec.Body.String())
		}
		if resp.JSONRPC != "2.0" {
			t.Fatalf("answer without jsonrpc 2.0: %s", rec.Body.String())
		}
		switch {
		case resp.Error != nil:
			if !fuzzNames[resp.Error.Data.Name] {
				t.Fatalf("error name %q not in API.md's table: %s", resp.Error.Data.Name, rec.Body.String())
			}
			if resp.Error.Data.Code == "" || resp.Error.Data.Message == "" {
				t.Fatalf("error without data.code or data.message: %s", rec.Body.String())
			}
			if resp.Error.Data.Code == "internal" {
				t.Fatalf("internal error for %s %q: %s", path, body, rec.Body.String())
			}
			if rec.Code != 200 && resp.Result != nil {
				t.Fatalf("HTTP %d with a result: %s", rec.Code, rec.Body.String())
			}
		case len(resp.Result) > 0:
			if rec.Code != 200 {
				t.Fatalf("HTTP %d with a result: %s", rec.Code, rec.Body.String())
			}
		default:
			t.Fatalf("answer has neither result nor error: %s", rec.Body.String())
		}
		if l := logs.String()[logsBefore:]; strings.Contains(l, "panicked") {
			t.Fatalf("a method panicked for %s %q: %s", path, body, l)
		}
		if !mutating && !bytes.Equal(before, snapshot(t)) {
			t.Fatalf("non-mutating request changed the store: %s %q → %s", path, body, rec.Body.String())
		}
	})
}
