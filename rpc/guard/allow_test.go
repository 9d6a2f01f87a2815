package guard

import (
	"encoding/json"
	"io"
	"net/http"
	"net/http/httptest"
	"net/netip"
	"strings"
	"testing"
)

func TestParseAllowList(t *testing.T) {
	a, err := ParseAllowList(" 10.0.4.2, 172.18.0.0/16 ;fd00::/8\n::1  ::ffff:192.168.1.0/120 10.1.2.3/8")
	if err != nil {
		t.Fatal(err)
	}
	if got, want := a.String(), "10.0.4.2,172.18.0.0/16,fd00::/8,::1,192.168.1.0/24,10.0.0.0/8"; got != want {
		t.Fatalf("String() = %q, want %q", got, want)
	}
	empty, err := ParseAllowList("  ")
	if err != nil || !empty.Empty() || !empty.Allows(netip.MustParseAddr("203.0.113.9")) {
		t.Fatalf("empty list must allow everyone: %v", err)
	}
	_, err = ParseAllowList("10.0.0.1, odoo.internal, 10.0.0.0/33, 1.2.3")
	if err == nil {
		t.Fatal("want an error for bad entries")
	}
	for _, bad := range []string{`"odoo.internal"`, `"10.0.0.0/33"`, `"1.2.3"`} {
		if !strings.Contains(err.Error(), bad) {
			t.Errorf("error %q does not name %s", err, bad)
		}
	}
	if strings.Contains(err.Error(), `"10.0.0.1"`) {
		t.Errorf("error names a good entry: %v", err)
	}
}

func TestAllows(t *testing.T) {
	a, err := ParseAllowList("10.0.4.2, 172.18.0.0/16, fd00::/8, ::1")
	if err != nil {
		t.Fatal(err)
	}
	cases := map[string]bool{
		"10.0.4.2":           true,
		"10.0.4.3":           false,
		"172.18.255.1":       true,
		"172.19.0.1":         false,
		"::ffff:172.18.0.9":  true, // dual-stack listener reporting an IPv4 peer
		"fd12:3456::1":       true,
		"fe80::1%eth0":       false,
		"::1":                true,
		"127.0.0.1":          false, // loopback is not implicitly allowed
		"2001:db8::1":        false,
		"::ffff:203.0.113.9": false,
	}
	for s, want := range cases {
		if got := a.Allows(netip.MustParseAddr(s)); got != want {
			t.Errorf("Allows(%s) = %v, want %v", s, got, want)
		}
	}
	if a.Allows(netip.Addr{}) {
		t.Error("an unknown peer must be refused by a non-empty list")
	}
}

func TestPeerAddr(t *testing.T) {
	cases := map[string]string{
		"10.0.0.5:40000":          "10.0.0.5",
		"[::ffff:10.0.0.5]:40000": "10.0.0.5",
		"[fe80::1%eth0]:1":        "fe80::1",
		"[2001:db8::7]:443":       "2001:db8::7",
		"@":                       "invalid IP",
		"":                        "invalid IP",
	}
	for remote, want := range cases {
		r := httptest.NewRequest("GET", "/", nil)
		r.RemoteAddr = remote
		if got := PeerAddr(r).String(); got != want {
			t.Errorf("PeerAddr(%q) = %s, want %s", remote, got, want)
		}
	}
}

type accessDenied struct {
	JSONRPC string `json:"jsonrpc"`
	ID      any    `json:"id"`
	Error   struct {
		Code    int    `json:"code"`
		Message string `json:"message"`
		Data    struct {
			Name      string   `json:"name"`
			Message   string   `json:"message"`
			Arguments []string `json:"arguments"`
			Code      string   `json:"code"`
			Debug     string   `json:"debug"`
		} `json:"data"`
	} `json:"error"`
}

func TestMiddleware(t *testing.T) {
	allow, err := ParseAllowList("10.0.4.0/24")
	if err != nil {
		t.Fatal(err)
	}
	var denied []string
	h := Middleware(Options{
		Allow:          allow,
		ExemptPrefixes: []string{"/graph/notify/", "/healthz"},
		OnDeny:         func(r *http.Request, peer netip.Addr) { denied = append(denied, peer.String()+" "+r.URL.Path) },
	}, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { io.WriteString(w, "inner") }))

	cases := []struct {
		remote, path string
		status       int
		jsonBody     bool
	}{
		{"10.0.4.7:5000", "/jsonrpc", 200, false},
		{"10.0.5.7:5000", "/jsonrpc", 403, true},
		{"10.0.5.7:5000", "/jsonrpc/mailbox.connect", 403, true},
		{"10.0.5.7:5000", "/jsonrpcx", 403, false},
		{"10.0.5.7:5000", "/metrics", 403, false},
		{"10.0.5.7:5000", "/graph/notify/mbx_1", 200, false},
		{"10.0.5.7:5000", "/graph/notify", 200, false},
		{"10.0.5.7:5000", "/healthz", 200, false},
		{"10.0.5.7:5000", "/healthzz", 403, false},
	}
	for _, c := range cases {
		r := httptest.NewRequest("POST", c.path, strings.NewReader(`{"jsonrpc":"2.0","id":7,"method":"system.version","params":{}}`))
		r.RemoteAddr = c.remote
		w := httptest.NewRecorder()
		h.ServeHTTP(w, r)
		if w.Code != c.status {
			t.Errorf("%s %s: status %d, want %d", c.remote, c.path, w.Code, c.status)
			continue
		}
		if c.status == 200 {
			if w.Body.String() != "inner" {
				t.Errorf("%s %s: inner handler not reached", c.remote, c.path)
			}
			continue
		}
		if !c.jsonBody {
			if ct := w.Header().Get("Content-Type"); !strings.HasPrefix(ct, "text/plain") {
				t.Errorf("%s: Content-Type %q, want text/plain", c.path, ct)
			}
			continue
		}
		if ct := w.Header().Get("Content-Type"); ct != "application/json" {
			t.Errorf("%s: Content-Type %q", c.path, ct)
		}
		var body accessDenied
		if err := json.Unmarshal(w.Body.Bytes(), &body); err != nil {
			t.Fatalf("%s: body %q is not JSON: %v", c.path, w.Body, err)
		}
		d := body.Error.Data
		if body.JSONRPC != "2.0" || body.ID != nil || body.Error.Code != 200 ||
			d.Name != "odoo.exceptions.AccessDenied" || d.Code != DeniedCode ||
			!strings.Contains(d.Message, "10.0.5.7") || len(d.Arguments) != 1 || d.Arguments[0] != d.Message || d.Debug != "" {
			t.Errorf("%s: unexpected AccessDenied body %s", c.path, w.Body)
		}
	}
	if len(denied) != 5 {
		t.Errorf("OnDeny saw %d refusals, want 5: %v", len(denied), denied)
	}
}

func TestMiddlewareAllowLoopback(t *testing.T) {
	allow, err := ParseAllowList("10.0.4.0/24")
	if err != nil {
		t.Fatal(err)
	}
	inner := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {})
	for _, c := range []struct {
		loopback bool
		remote   string
		status   int
	}{
		{true, "127.0.0.1:1", 200},
		{true, "127.8.9.10:1", 200},
		{true, "[::1]:1", 200},
		{true, "[::ffff:127.0.0.1]:1", 200},
		{true, "10.0.5.1:1", 403},
		{false, "127.0.0.1:1", 403},
		{false, "[::1]:1", 403},
	} {
		h := Middleware(Options{Allow: allow, AllowLoopback: c.loopback}, inner)
		r := httptest.NewRequest("POST", "/jsonrpc", nil)
		r.RemoteAddr = c.remote
		w := httptest.NewRecorder()
		h.ServeHTTP(w, r)
		if w.Code != c.status {
			t.Errorf("AllowLoopback=%v %s: status %d, want %d", c.loopback, c.remote, w.Code, c.status)
		}
	}
}

func TestMiddlewareEmptyListIsTransparent(t *testing.T) {
	inner := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {})
	h := Middleware(Options{}, inner)
	r := httptest.NewRequest("POST", "/jsonrpc", nil)
	r.RemoteAddr = "203.0.113.9:1"
	w := httptest.NewRecorder()
	h.ServeHTTP(w, r)
	if w.Code != 200 {
		t.Fatalf("empty allow-list refused a call: %d", w.Code)
	}
}

// Over a real loopback listener the peer is 127.0.0.1: allowed when listed,
// refused otherwise.
func TestMiddlewareRealListener(t *testing.T) {
	for _, c := range []struct {
		list   string
		status int
	}{{"127.0.0.1", 200}, {"10.0.0.0/8", 403}} {
		allow, err := ParseAllowList(c.list)
		if err != nil {
			t.Fatal(err)
		}
		srv := httptest.NewServer(Middleware(Options{Allow: allow}, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {})))
		resp, err := srv.Client().Post(srv.URL+"/jsonrpc", "application/json", strings.NewReader(`{}`))
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		srv.Close()
		if resp.StatusCode != c.status {
			t.Errorf("allow-from %s: status %d, want %d", c.list, resp.StatusCode, c.status)
		}
	}
}
