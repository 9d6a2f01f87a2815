package main

import (
	"encoding/json"
	"io"
	"net/http"
	"net/http/httptest"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/rs/zerolog"
)

// The allow-list in front of the real routes: private routes refuse a
// foreign address, the public ones (Graph webhooks, OAuth return, probes)
// stay open, loopback stays allowed.
func TestAllowListLeavesPublicRoutesOpen(t *testing.T) {
	dir := t.TempDir()
	cfg := Config{Listen: "127.0.0.1:0", DataDir: dir, LogLevel: "warn", LogFormat: "json", MaxBodyBytes: 1 << 20,
		ShutdownGrace: time.Second, PublicURL: "https://odoo.example.com",
		KeyFile: filepath.Join(dir, "maildesk.key"), SharedSecretFile: filepath.Join(dir, "shared-secret"),
		Net: NetConfig{AllowFrom: "10.0.4.0/24"}}
	key, secret, err := prepareDataDir(cfg, io.Discard)
	if err != nil {
		t.Fatal(err)
	}
	a, err := buildApp(cfg, zerolog.Nop(), key, secret)
	if err != nil {
		t.Fatal(err)
	}
	defer a.close()
	ns, err := newNetSecurity(cfg.Net, zerolog.Nop(), a.Registry)
	if err != nil {
		t.Fatal(err)
	}
	h := ns.handler(a.RPC.Handler())
	cases := []struct {
		method, path, remote string
		denied               bool
	}{
		{"POST", "/jsonrpc", "52.1.2.3:4000", true},
		{"POST", "/jsonrpc/system.version", "52.1.2.3:4000", true},
		{"GET", "/metrics", "52.1.2.3:4000", true},
		{"GET", "/admin/backup", "52.1.2.3:4000", true},
		{"POST", "/graph/notify?validationToken=abc", "52.1.2.3:4000", false},
		{"POST", "/graph/lifecycle?validationToken=abc", "52.1.2.3:4000", false},
		{"GET", "/oauth/callback?state=x&code=y", "52.1.2.3:4000", false},
		{"GET", "/healthz", "52.1.2.3:4000", false},
		{"GET", "/readyz", "52.1.2.3:4000", false},
		{"POST", "/jsonrpc", "10.0.4.9:4000", false},
		{"POST", "/jsonrpc", "127.0.0.1:4000", false},
		{"GET", "/metrics", "[::1]:4000", false},
	}
	for _, c := range cases {
		r := httptest.NewRequest(c.method, c.path, strings.NewReader(`{"jsonrpc":"2.0","id":1,"method":"system.version","params":{}}`))
		r.Header.Set("Content-Type", "application/json")
		r.Header.Set("Authorization", "Bearer "+secret)
		r.RemoteAddr = c.remote
		w := httptest.NewRecorder()
		h.ServeHTTP(w, r)
		if got := w.Code == http.StatusForbidden; got != c.denied {
			t.Errorf("%s %s from %s: status %d, denied=%v want %v", c.method, c.path, c.remote, w.Code, got, c.denied)
			continue
		}
		if c.denied && strings.HasPrefix(c.path, "/jsonrpc") {
			var body struct {
				Error struct {
					Data struct{ Name, Code string } `json:"data"`
				} `json:"error"`
			}
			if err := json.Unmarshal(w.Body.Bytes(), &body); err != nil || body.Error.Data.Name != "odoo.exceptions.AccessDenied" || body.Error.Data.Code != "address_not_allowed" {
				t.Errorf("%s: refusal body %s", c.path, w.Body)
			}
		}
	}
	mfs, err := a.Registry.Gather()
	if err != nil {
		t.Fatal(err)
	}
	for _, mf := range mfs {
		if mf.GetName() == "maildesk_http_denied_total" {
			if v := mf.GetMetric()[0].GetCounter().GetValue(); v != 4 {
				t.Errorf("maildesk_http_denied_total = %v, want 4", v)
			}
			return
		}
	}
	t.Error("maildesk_http_denied_total not registered")
}

func TestNetConfigValidate(t *testing.T) {
	cases := []struct {
		n    NetConfig
		errs int
	}{
		{NetConfig{}, 0},
		{NetConfig{AllowFrom: "10.0.0.0/8, ::1"}, 0},
		{NetConfig{TLSCert: "c.pem", TLSKey: "k.pem"}, 0}, // files are read by serve, not by validate
		{NetConfig{TLSCert: "c.pem"}, 1},
		{NetConfig{TLSKey: "k.pem", AllowFrom: "odoo"}, 2},
	}
	for _, c := range cases {
		if got := c.n.validate(); len(got) != c.errs {
			t.Errorf("%+v: %d errors %v, want %d", c.n, len(got), got, c.errs)
		}
	}
}
