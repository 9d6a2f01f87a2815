package main

import (
	"bytes"
	"context"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/maildesk/maildesk/bridge"
)

// inprocBuffer is an io.Writer the serving goroutine and the test share.
type inprocBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (l *inprocBuffer) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.Write(p)
}

func (l *inprocBuffer) String() string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.String()
}

var inprocServingRE = regexp.MustCompile(`serving JSON-RPC on (http://[^ ]+)/jsonrpc`)

// inproc is a `maildesk serve` run in this process (deploy_test.go runs the binary).
type inproc struct {
	url    string
	secret string
	stop   func() int // cancels the context, returns run's exit code
}

func startServe(t *testing.T, args ...string) *inproc {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	out, errOut := &inprocBuffer{}, &inprocBuffer{}
	done := make(chan int, 1)
	go func() {
		done <- run(ctx, append([]string{"serve", "--listen", "127.0.0.1:0"}, args...), out, errOut, func(string) string { return "" })
	}()
	deadline := time.Now().Add(2 * time.Minute) // ends a stuck test only
	var url string
	for url == "" {
		select {
		case rc := <-done:
			cancel()
			t.Fatalf("serve exited with %d before serving:\n%s\n%s", rc, out, errOut)
		default:
		}
		if m := inprocServingRE.FindStringSubmatch(out.String()); m != nil {
			url = m[1]
			break
		}
		if time.Now().After(deadline) {
			cancel()
			t.Fatalf("serve did not start:\n%s\n%s", out, errOut)
		}
		time.Sleep(10 * time.Millisecond) // polling for the start line, with a deadline
	}
	var dataDir string
	for i, a := range args {
		if a == "--data-dir" {
			dataDir = args[i+1]
		}
	}
	secret, err := os.ReadFile(filepath.Join(dataDir, "shared-secret"))
	if err != nil {
		cancel()
		t.Fatalf("read the shared secret: %v (stdout: %s)", err, out)
	}
	stopped := false
	s := &inproc{url: url, secret: strings.TrimSpace(string(secret))}
	s.stop = func() int {
		if stopped {
			return 0
		}
		stopped = true
		cancel()
		select {
		case rc := <-done:
			return rc
		case <-time.After(2 * time.Minute):
			t.Fatalf("serve did not stop:\n%s", errOut)
			return -1
		}
	}
	t.Cleanup(func() { s.stop() })
	return s
}

func (s *inproc) call(t *testing.T, method string, params map[string]any) json.RawMessage {
	t.Helper()
	body, _ := json.Marshal(map[string]any{"jsonrpc": "2.0", "id": 1, "method": method, "params": params})
	req, _ := http.NewRequest(http.MethodPost, s.url+"/jsonrpc", bytes.NewReader(body))
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("Authorization", "Bearer "+s.secret)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatalf("%s: %v", method, err)
	}
	defer resp.Body.Close()
	raw, _ := io.ReadAll(resp.Body)
	var ans struct {
		Result json.RawMessage `json:"result"`
		Error  json.RawMessage `json:"error"`
	}
	if err := json.Unmarshal(raw, &ans); err != nil || ans.Error != nil || resp.StatusCode != 200 {
		t.Fatalf("%s: HTTP %d: %s", method, resp.StatusCode, raw)
	}
	return ans.Result
}

var inprocAdminCtx = map[string]any{"uid": 2, "maildesk_admin": true}

// TestRestartKeepsEverythingAndAnotherKeyFails: settings, mailboxes and the
// audit log survive a restart of `maildesk serve`; starting with another key
// file exits with a clear message and leaves the database's bytes as they were.
func TestRestartKeepsEverythingAndAnotherKeyFails(t *testing.T) {
	dir := t.TempDir()
	data := filepath.Join(dir, "data")
	args := []string{"--data-dir", data, "--log-format", "json"}

	s := startServe(t, args...)
	s.call(t, "settings.set", map[string]any{"context": inprocAdminCtx,
		"odoo": map[string]any{"url": "https://odoo.example.com", "db": "prod", "login": "bot", "api_key": "restart-api-key-123"}})
	var mb struct {
		ID string `json:"id"`
	}
	if err := json.Unmarshal(s.call(t, "mailbox.create", map[string]any{"context": map[string]any{"uid": 2},
		"email": "info@example.com", "kind": "shared", "user_ids": []int{2, 5}}), &mb); err != nil || mb.ID == "" {
		t.Fatalf("mailbox.create: %v", err)
	}
	settings1 := s.call(t, "settings.get", map[string]any{"context": inprocAdminCtx})
	list1 := s.call(t, "mailbox.list", map[string]any{"context": map[string]any{"uid": 5}})
	audit1 := s.call(t, "audit.list", map[string]any{"context": inprocAdminCtx})
	if rc := s.stop(); rc != 0 {
		t.Fatalf("serve exited with %d on cancel", rc)
	}
	if !bytes.Contains(settings1, []byte("odoo.example.com")) || !bytes.Contains(list1, []byte(mb.ID)) ||
		!bytes.Contains(audit1, []byte(mb.ID)) {
		t.Fatalf("before restart: settings %s\nlist %s\naudit %s", settings1, list1, audit1)
	}

	s = startServe(t, args...)
	if got := s.call(t, "settings.get", map[string]any{"context": inprocAdminCtx}); !bytes.Equal(got, settings1) {
		t.Errorf("settings after restart:\n%s\nwant\n%s", got, settings1)
	}
	var views []bridge.MailboxView
	if err := json.Unmarshal(s.call(t, "mailbox.list", map[string]any{"context": map[string]any{"uid": 5}}), &views); err != nil {
		t.Fatal(err)
	}
	if len(views) != 1 || views[0].ID != mb.ID || views[0].Email != "info@example.com" || fmt.Sprint(views[0].UserIDs) != "[2 5]" {
		t.Errorf("mailboxes after restart: %+v", views)
	}
	if got := s.call(t, "audit.list", map[string]any{"context": inprocAdminCtx}); !bytes.Equal(got, audit1) {
		t.Errorf("audit after restart:\n%s\nwant\n%s", got, audit1)
	}
	// `maildesk status` against the running sidecar prints the mailbox table.
	var stOut, stErr inprocBuffer
	if rc := run(context.Background(), []string{"status", "--listen", strings.TrimPrefix(s.url, "http://"), "--data-dir", data},
		&stOut, &stErr, func(string) string { return "" }); rc != 0 {
		t.Fatalf("status exited %d: %s", rc, stErr.String())
	}
	if o := stOut.String(); !strings.Contains(o, "BACKFILL") || !strings.Contains(o, "DELIVERY") || !strings.Contains(o, "info@example.com") {
		t.Errorf("status output:\n%s", o)
	}
	if rc := s.stop(); rc != 0 {
		t.Fatalf("serve exited with %d on cancel", rc)
	}

	// Another key file: a clear message, the database untouched.
	db := filepath.Join(data, "maildesk.db")
	before, err := os.ReadFile(db)
	if err != nil {
		t.Fatal(err)
	}
	other := filepath.Join(dir, "other.key")
	if err := os.WriteFile(other, []byte(base64.StdEncoding.EncodeToString(bytes.Repeat([]byte{0x42}, 32))+"\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	var out, errOut inprocBuffer
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	rc := run(ctx, append([]string{"serve", "--listen", "127.0.0.1:0", "--key-file", other}, args...), &out, &errOut, func(string) string { return "" })
	if rc == 0 {
		t.Fatalf("serve with another key file exited 0:\n%s\n%s", out.String(), errOut.String())
	}
	if msg := out.String() + errOut.String(); !strings.Contains(msg, "another encryption key") || !strings.Contains(msg, "nothing was changed") {
		t.Errorf("serve with another key: message is not clear:\n%s", msg)
	}
	after, err := os.ReadFile(db)
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(before, after) {
		t.Error("serve with another key file changed the database's bytes")
	}
}
