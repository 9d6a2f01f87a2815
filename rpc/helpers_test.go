package rpc

import (
	"bytes"
	"encoding/json"
	"io"
	"net/http"
	"net/http/httptest"
	"path/filepath"
	"strings"
	"sync"
	"testing"

	"github.com/rs/zerolog"

	"github.com/maildesk/maildesk/bridge"
	"github.com/maildesk/maildesk/store"
)

const testSecret = "s3cret-for-tests-0123456789abcdef"

// syncBuffer collects log output from concurrent handlers.
type syncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *syncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *syncBuffer) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}

type env struct {
	t    *testing.T
	st   *store.Store
	srv  *Server
	http *httptest.Server
	logs *syncBuffer
	path string
}

func newEnv(t testing.TB, cfg Config) *env {
	t.Helper()
	dir := t.TempDir()
	key := bytes.Repeat([]byte{7}, store.KeySize)
	path := filepath.Join(dir, "maildesk.db")
	st, err := store.Open(path, key, store.Options{NoSync: true})
	if err != nil {
		t.Fatal(err)
	}
	logs := &syncBuffer{}
	log := zerolog.New(logs).Level(zerolog.DebugLevel)
	mbx := bridge.NewMailboxes(st, log)
	if cfg.SharedSecret == "" {
		cfg.SharedSecret = testSecret
	}
	srv, err := New(cfg, Deps{
		Log:       log,
		System:    bridge.NewSystem(st, bridge.BuildInfo{Version: "test", Commit: "abc123", GraphBase: "https://graph.microsoft.com/v1.0"}),
		Mailboxes: mbx,
		Settings:  bridge.NewSettings(st, log),
		Audit:     bridge.NewAuditLog(st, mbx),
	})
	if err != nil {
		t.Fatal(err)
	}
	hs := httptest.NewServer(srv.Handler())
	t.Cleanup(func() {
		hs.Close()
		st.Close()
	})
	e := &env{st: st, srv: srv, http: hs, logs: logs, path: path}
	if tt, ok := t.(*testing.T); ok {
		e.t = tt
	}
	return e
}

// post sends body to path with the given headers; "" secret sends none.
func (e *env) post(path, body string, hdr map[string]string) (int, string) {
	e.t.Helper()
	req, err := http.NewRequest(http.MethodPost, e.http.URL+path, strings.NewReader(body))
	if err != nil {
		e.t.Fatal(err)
	}
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("Authorization", "Bearer "+testSecret)
	for k, v := range hdr {
		if v == "" {
			req.Header.Del(k)
		} else {
			req.Header.Set(k, v)
		}
	}
	resp, err := e.http.Client().Do(req)
	if err != nil {
		e.t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, string(b)
}

// call runs a JSON-RPC call and returns the decoded answer.
func (e *env) call(method string, params map[string]any) (result json.RawMessage, errObj *ErrorObject) {
	e.t.Helper()
	body, _ := json.Marshal(map[string]any{"jsonrpc": "2.0", "id": 1, "method": method, "params": params})
	status, out := e.post("/jsonrpc", string(body), nil)
	if status != http.StatusOK {
		e.t.Fatalf("%s: HTTP %d: %s", method, status, out)
	}
	var resp struct {
		Result json.RawMessage `json:"result"`
		Error  *ErrorObject    `json:"error"`
	}
	if err := json.Unmarshal([]byte(out), &resp); err != nil {
		e.t.Fatalf("%s: answer is not JSON: %v: %s", method, err, out)
	}
	return resp.Result, resp.Error
}

func (e *env) mustCall(method string, params map[string]any, out any) {
	e.t.Helper()
	res, errObj := e.call(method, params)
	if errObj != nil {
		e.t.Fatalf("%s: unexpected error %+v", method, errObj)
	}
	if out != nil {
		if err := json.Unmarshal(res, out); err != nil {
			e.t.Fatalf("%s: decode result: %v: %s", method, err, res)
		}
	}
}

func ctxUID(uid int64) map[string]any {
	return map[string]any{"uid": uid, "lang": "en_US", "tz": "Europe/Berlin"}
}

func ctxAdmin() map[string]any { return map[string]any{"uid": 2, "maildesk_admin": true} }

func with(params map[string]any, ctx map[string]any) map[string]any {
	out := map[string]any{"context": ctx}
	for k, v := range params {
		out[k] = v
	}
	return out
}

// snapshot is the database's bytes, to assert that a failing call changed nothing.
func (e *env) snapshot() []byte {
	e.t.Helper()
	var b bytes.Buffer
	if _, err := e.st.Backup(&b); err != nil {
		e.t.Fatal(err)
	}
	return b.Bytes()
}
