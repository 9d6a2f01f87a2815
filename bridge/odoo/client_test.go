package odoo_test

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/maildesk/maildesk/bridge/odoo"
	"github.com/maildesk/maildesk/bridge/odoosim"
)

func startSim(t *testing.T, version int) *odoosim.Server {
	t.Helper()
	s := odoosim.New(odoosim.Options{Version: version, DB: "maildesk"})
	if err := s.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(s.Close)
	return s
}

func client(t *testing.T, s *odoosim.Server, protocol string, key string) *odoo.Client {
	t.Helper()
	c, err := odoo.New(odoo.Config{URL: s.URL(), DB: s.DB(), Login: s.TechLogin(), APIKey: key, Protocol: protocol, Timeout: time.Minute})
	if err != nil {
		t.Fatal(err)
	}
	return c
}

type combo struct {
	version  int
	protocol string // configured; "" = detect
	want     string // resolved
}

var combos = []combo{
	{17, "", odoo.ProtocolJSONRPC}, {18, "", odoo.ProtocolJSONRPC}, {19, "", odoo.ProtocolJSON2},
	{19, odoo.ProtocolJSONRPC, odoo.ProtocolJSONRPC},
}

func (c combo) String() string { return fmt.Sprintf("v%d-%s", c.version, c.want) }

// TestClientAgainstSim runs the client's whole API on each Odoo version and protocol.
func TestClientAgainstSim(t *testing.T) {
	for _, cb := range combos {
		t.Run(cb.String(), func(t *testing.T) {
			ctx := context.Background()
			s := startSim(t, cb.version)
			c := client(t, s, cb.protocol, s.APIKey())
			v, err := c.Version(ctx)
			if err != nil || v.Major() != cb.version {
				t.Fatalf("Version = %+v, %v", v, err)
			}
			p, err := c.Protocol(ctx)
			if err != nil || p != cb.want {
				t.Fatalf("Protocol = %q, %v; want %q", p, err, cb.want)
			}
			uid, err := c.Authenticate(ctx)
			if err != nil || uid != s.TechUID() {
				t.Fatalf("Authenticate = %d, %v; want %d", uid, err, s.TechUID())
			}
			// create: an int on /jsonrpc with one dict, a list on JSON-2; odoo.ID takes both
			var pid odoo.ID
			if err := c.Call(ctx, "res.partner", "create", nil, map[string]any{"vals_list": map[string]any{"name": "Ada", "email": "ada@example.com"}}, &pid); err != nil || pid == 0 {
				t.Fatalf("create = %d, %v", pid, err)
			}
			// message_post: int on 17/18, [id] on 19
			var raw json.RawMessage
			if err := c.Call(ctx, "res.partner", "message_post", []int64{int64(pid)}, map[string]any{"body": "<p>hi</p>", "body_is_html": true}, &raw); err != nil {
				t.Fatal(err)
			}
			isList := strings.HasPrefix(string(raw), "[")
			if isList != (cb.version >= 19) {
				t.Errorf("message_post answered %s on %d", raw, cb.version)
			}
			mid, err := odoo.DecodeID(raw)
			if err != nil || mid == 0 {
				t.Fatalf("DecodeID(%s) = %d, %v", raw, mid, err)
			}
			var rows []struct {
				ID    int64  `json:"id"`
				Email string `json:"email"`
			}
			if err := c.Call(ctx, "res.partner", "search_read", nil, map[string]any{
				"domain": []any{[]any{"email_normalized", "=", "ada@example.com"}}, "fields": []string{"email"},
				"context": map[string]any{"lang": "en_US"}}, &rows); err != nil || len(rows) != 1 || rows[0].ID != int64(pid) {
				t.Fatalf("search_read = %+v, %v", rows, err)
			}
			mbx := s.CreateMailbox("mbx_1", "me@example.com")
			res, err := c.Ingest(ctx, mbx, []odoo.IngestItem{{
				GraphID: "g1", Mailbox: "mbx_1", Folder: "inbox", Direction: "in", InternetMessageID: "<m1@example.com>",
				ReceivedAt: "2026-11-02T09:14:03Z", Subject: "Hello", From: &odoo.Address{Name: "Ada", Email: "ADA@example.com"},
				BodyHTML: "<p>Hi</p>", Options: odoo.IngestOptions{Mode: odoo.ModeLog},
			}})
			if err != nil || len(res) != 1 || res[0].Status != odoo.StatusPosted || len(res[0].Records) != 1 ||
				res[0].Records[0] != (odoo.RecordRef{Model: "res.partner", ID: int64(pid)}) || len(res[0].OdooMessageIDs) != 1 {
				t.Fatalf("Ingest = %+v, %v", res, err)
			}
			if err := c.Notify(ctx, mbx, []odoo.Notice{{Kind: "reauth_required", Mailbox: "mbx_1", Email: "me@example.com", Reason: "token revoked"}}); err != nil {
				t.Fatal(err)
			}
			if n := s.Notices(); len(n) != 1 || n[0]["kind"] != "reauth_required" || n[0]["reason"] != "token revoked" {
				t.Fatalf("notices = %v", n)
			}
		})
	}
}

// TestClientErrorsAgainstSim checks the kinds of Odoo-level errors on both protocols.
func TestClientErrorsAgainstSim(t *testing.T) {
	for _, cb := range combos {
		t.Run(cb.String(), func(t *testing.T) {
			ctx := context.Background()
			s := startSim(t, cb.version)
			c := client(t, s, cb.protocol, s.APIKey())
			cases := []struct {
				model, method string
				ids           []int64
				kw            map[string]any
				want          odoo.Kind
			}{
				{"no.such.model", "search_read", nil, map[string]any{"domain": []any{}}, odoo.KindMissing},
				{"res.partner", "no_such_method", []int64{1}, nil, odoo.KindMissing},
				{"res.partner", "_compute_display_name", []int64{1}, nil, odoo.KindAccess},
				{"res.partner", "write", []int64{999999}, map[string]any{"vals": map[string]any{"name": "x"}}, odoo.KindMissing},
				{"res.partner", "create", nil, map[string]any{"vals_list": []any{map[string]any{"email": "x@example.com"}}}, odoo.KindValidation},
				{"res.users", "unlink", []int64{1}, nil, odoo.KindAccess}, // the technical user is no admin
				{"res.partner", "write", []int64{3}, map[string]any{"vals": map[string]any{"parent_id": 3}}, odoo.KindValidation},
				{"res.partner", "search_read", nil, map[string]any{"domain": []any{[]any{"nope", "=", 1}}}, odoo.KindUnknown},
				{"maildesk.mailbox", "maildesk_ingest", []int64{424242}, map[string]any{"items": []any{}}, odoo.KindMissing},
			}
			for _, tc := range cases {
				err := c.Call(ctx, tc.model, tc.method, tc.ids, tc.kw, nil)
				var e *odoo.Error
				if !errors.As(err, &e) || e.Kind != tc.want {
					t.Errorf("%s.%s: %v, want kind %v", tc.model, tc.method, err, tc.want)
				}
			}
			// wrong key
			bad := client(t, s, cb.protocol, "0000000000000000000000000000000000000000")
			if _, err := bad.Authenticate(ctx); !odoo.IsAuth(err) {
				t.Errorf("wrong key: %v, want auth", err)
			}
			if err := bad.Call(ctx, "res.partner", "search_count", nil, map[string]any{"domain": []any{}}, nil); !odoo.IsAuth(err) {
				t.Errorf("wrong key call: %v, want auth", err)
			} else if strings.Contains(err.Error(), "0000000000000000000000000000000000000000") {
				t.Errorf("error carries the key: %v", err)
			}
			// revoked and restored key; the client recovers by itself
			if err := c.Call(ctx, "res.partner", "search_count", nil, map[string]any{"domain": []any{}}, nil); err != nil {
				t.Fatal(err)
			}
			s.RevokeAPIKey()
			err := c.Call(ctx, "res.partner", "search_count", nil, map[string]any{"domain": []any{}}, nil)
			if !odoo.IsAuth(err) || !errors.Is(err, odoo.ErrAuth) {
				t.Errorf("revoked: %v, want auth", err)
			}
			if strings.Contains(err.Error(), s.APIKey()) {
				t.Errorf("error carries the key: %v", err)
			}
			s.RestoreAPIKey()
			if err := c.Call(ctx, "res.partner", "search_count", nil, map[string]any{"domain": []any{}}, nil); err != nil {
				t.Errorf("restored: %v", err)
			}
		})
	}
}

// TestClientFaults checks that outages, 5xx, serialization failures and
// timeouts are transient, and that the client works again afterwards.
func TestClientFaults(t *testing.T) {
	for _, cb := range []combo{{18, "", odoo.ProtocolJSONRPC}, {19, "", odoo.ProtocolJSON2}} {
		t.Run(cb.String(), func(t *testing.T) {
			ctx := context.Background()
			s := startSim(t, cb.version)
			// Calls that must succeed get a bound only a stuck test reaches;
			// the short timeout is the slow client's below, against an Odoo
			// that answers after 5 s.
			c, err := odoo.New(odoo.Config{URL: s.URL(), DB: s.DB(), Login: s.TechLogin(), APIKey: s.APIKey(), Timeout: time.Minute})
			if err != nil {
				t.Fatal(err)
			}
			short, err := odoo.New(odoo.Config{URL: s.URL(), DB: s.DB(), Login: s.TechLogin(), APIKey: s.APIKey(), Timeout: 300 * time.Millisecond})
			if err != nil {
				t.Fatal(err)
			}
			count := func() error {
				return c.Call(ctx, "res.partner", "search_count", nil, map[string]any{"domain": []any{}}, nil)
			}
			if err := count(); err != nil {
				t.Fatal(err)
			}
			for _, f := range []odoosim.FaultKind{odoosim.FaultHTTP500, odoosim.FaultHTTP503, odoosim.FaultSerialization, odoosim.FaultReset} {
				s.FailNext(1, f)
				err := count()
				if !odoo.IsTransient(err) {
					t.Errorf("fault %d: %v, want transient", f, err)
				}
				if err := count(); err != nil {
					t.Errorf("after fault %d: %v", f, err)
				}
			}
			if err := s.SetDown(true); err != nil {
				t.Fatal(err)
			}
			if err := count(); !odoo.IsTransient(err) {
				t.Errorf("down: %v, want transient", err)
			}
			if err := s.SetDown(false); err != nil {
				t.Fatal(err)
			}
			if err := count(); err != nil {
				t.Errorf("back up: %v", err)
			}
			// A call of the short client that must succeed is retried: on a
			// busy machine a 300 ms call to a quick Odoo can time out too.
			shortCount := func() error {
				return short.Call(ctx, "res.partner", "search_count", nil, map[string]any{"domain": []any{}}, nil)
			}
			shortWorks := func(when string) {
				t.Helper()
				deadline := time.Now().Add(2 * time.Minute)
				for err := shortCount(); err != nil; err = shortCount() {
					if time.Now().After(deadline) {
						t.Fatalf("%s: the client with a 300 ms timeout got no answer from a quick Odoo: %v", when, err)
					}
				}
			}
			// It logs in first (over /jsonrpc it learns the uid), so the
			// call that times out below is the call itself.
			shortWorks("before")
			s.SetSlow(5 * time.Second)
			err = shortCount()
			var e *odoo.Error
			if !odoo.IsTransient(err) || !errors.As(err, &e) || !errors.Is(err, context.DeadlineExceeded) {
				t.Errorf("slow: %v, want transient timeout", err)
			}
			s.SetSlow(0)
			if err := count(); err != nil {
				t.Errorf("fast again: %v", err)
			}
			shortWorks("fast again")
			cctx, cancel := context.WithCancel(ctx)
			cancel()
			if err := c.Call(cctx, "res.partner", "search_count", nil, nil, nil); !errors.Is(err, context.Canceled) || odoo.IsTransient(err) {
				t.Errorf("cancelled: %v, want context.Canceled", err)
			}
		})
	}
}

// TestRequestShape checks what goes on the wire for each protocol.
func TestRequestShape(t *testing.T) {
	var last atomic.Value
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		var body map[string]any
		_ = json.NewDecoder(r.Body).Decode(&body)
		last.Store(map[string]any{"path": r.URL.Path, "auth": r.Header.Get("Authorization"), "db": r.Header.Get("X-Odoo-Database"), "body": body})
		w.Header().Set("Content-Type", "application/json; charset=utf-8")
		if r.URL.Path == "/jsonrpc" {
			_, _ = w.Write([]byte(`{"jsonrpc": "2.0", "id": 1, "result": [5]}`))
			return
		}
		_, _ = w.Write([]byte(`[5]`))
	}))
	defer srv.Close()
	ctx := context.Background()
	c, _ := odoo.New(odoo.Config{URL: srv.URL, DB: "db1", Login: "bot", APIKey: "k3y", Protocol: odoo.ProtocolJSON2})
	var id odoo.ID
	if err := c.Call(ctx, "res.partner", "message_post", []int64{7}, map[string]any{"body": "x"}, &id); err != nil || id != 5 {
		t.Fatalf("json2 call: %d %v", id, err)
	}
	got := last.Load().(map[string]any)
	body := got["body"].(map[string]any)
	if got["path"] != "/json/2/res.partner/message_post" || got["auth"] != "bearer k3y" || got["db"] != "db1" ||
		fmt.Sprint(body["ids"]) != "[7]" || body["body"] != "x" {
		t.Errorf("json2 request = %v", got)
	}
	c, _ = odoo.New(odoo.Config{URL: srv.URL, DB: "db1", Login: "bot", APIKey: "k3y", Protocol: odoo.ProtocolJSONRPC})
	// uid comes from authenticate, answered here with [5] → 5
	if err := c.Call(ctx, "res.partner", "message_post", []int64{7}, map[string]any{"body": "x"}, &id); err != nil {
		t.Fatal(err)
	}
	got = last.Load().(map[string]any)
	params := got["body"].(map[string]any)["params"].(map[string]any)
	if got["path"] != "/jsonrpc" || params["service"] != "object" || params["method"] != "execute_kw" ||
		fmt.Sprint(params["args"]) != "[db1 5 k3y res.partner message_post [[7]] map[body:x]]" {
		t.Errorf("jsonrpc request = %v", got)
	}
}

func TestConfigValidation(t *testing.T) {
	_, err := odoo.New(odoo.Config{URL: "ftp://x", Protocol: "soap", Timeout: -1})
	if err == nil {
		t.Fatal("bad config accepted")
	}
	for _, want := range []string{"url", "db", "api key", "protocol", "timeout"} {
		if !strings.Contains(err.Error(), want) {
			t.Errorf("config error %q does not mention %s", err, want)
		}
	}
	if _, err := odoo.New(odoo.Config{URL: "http://x", DB: "d", APIKey: "k", Protocol: odoo.ProtocolJSONRPC}); err == nil || !strings.Contains(err.Error(), "login") {
		t.Errorf("jsonrpc without login: %v", err)
	}
	// detected protocol: the login is only needed if Odoo turns out older than 19
	s := startSim(t, 18)
	c, err := odoo.New(odoo.Config{URL: s.URL(), DB: s.DB(), APIKey: s.APIKey()})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := c.Authenticate(context.Background()); !odoo.IsAuth(err) {
		t.Errorf("no login on 18: %v, want auth", err)
	}
}

func TestDecodeID(t *testing.T) {
	for in, want := range map[string]int64{"7": 7, "[7]": 7, "false": 0, "null": 0, "[]": 0} {
		if got, err := odoo.DecodeID([]byte(in)); err != nil || got != want {
			t.Errorf("DecodeID(%s) = %d, %v", in, got, err)
		}
	}
	if _, err := odoo.DecodeID([]byte("[1,2]")); err == nil {
		t.Error("DecodeID([1,2]) accepted")
	}
	var r odoo.IngestResult
	if err := json.Unmarshal([]byte(`{"graph_id":"g","status":"posted","odoo_message_ids":[3,4],"records":[["res.partner",7]],"activity_id":null}`), &r); err != nil ||
		r.Records[0].Model != "res.partner" || r.Records[0].ID != 7 || r.ActivityID != 0 || len(r.OdooMessageIDs) != 2 {
		t.Errorf("IngestResult = %+v, %v", r, err)
	}
}

// TestVersionFallback: when /jsonrpc is gone (a future Odoo), Version reads GET
// /web/version and the protocol becomes JSON-2.
func TestVersionFallback(t *testing.T) {
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path == "/web/version" && r.Method == http.MethodGet {
			w.Header().Set("Content-Type", "application/json; charset=utf-8")
			_, _ = w.Write([]byte(`{"version_info": [20, 0, 0, "final", 0, ""], "version": "20.0"}`))
			return
		}
		w.Header().Set("Content-Type", "text/html; charset=utf-8")
		w.WriteHeader(404)
		_, _ = w.Write([]byte("<!doctype html><title>404 Not Found</title>"))
	}))
	defer srv.Close()
	c, _ := odoo.New(odoo.Config{URL: srv.URL, DB: "d", Login: "l", APIKey: "k"})
	v, err := c.Version(context.Background())
	if err != nil || v.Major() != 20 {
		t.Fatalf("Version = %+v, %v", v, err)
	}
	if p, err := c.Protocol(context.Background()); err != nil || p != odoo.ProtocolJSON2 {
		t.Fatalf("Protocol = %q, %v", p, err)
	}
}

// TestConcurrentIngest: one client shared by several goroutines (run with -race).
func TestConcurrentIngest(t *testing.T) {
	for _, cb := range []combo{{18, "", odoo.ProtocolJSONRPC}, {19, "", odoo.ProtocolJSON2}} {
		t.Run(cb.String(), func(t *testing.T) {
			s := startSim(t, cb.version)
			s.AddPartner("Ada", "ada@example.com")
			mbx := s.CreateMailbox("mbx_c", "me@example.com")
			c := client(t, s, "", s.APIKey())
			const workers, per = 6, 20
			errs := make(chan error, workers)
			for w := 0; w < workers; w++ {
				go func(w int) {
					var items []odoo.IngestItem
					for i := 0; i < per; i++ {
						// every worker sends the same Message-Ids: each must land once
						items = append(items, odoo.IngestItem{GraphID: fmt.Sprintf("g%d", i), Mailbox: "mbx_c", Folder: "inbox", Direction: "in",
							InternetMessageID: fmt.Sprintf("<c%d@ex>", i), ReceivedAt: "2026-11-02T09:14:03Z", Subject: "s",
							From: &odoo.Address{Email: "ada@example.com"}, BodyHTML: "<p>x</p>", Options: odoo.IngestOptions{Mode: odoo.ModeLog}})
					}
					_, err := c.Ingest(context.Background(), mbx, items)
					errs <- err
				}(w)
			}
			for w := 0; w < workers; w++ {
				if err := <-errs; err != nil {
					t.Fatal(err)
				}
			}
			if n := len(s.Messages()); n != per {
				t.Errorf("messages = %d, want %d (nothing twice)", n, per)
			}
		})
	}
}
