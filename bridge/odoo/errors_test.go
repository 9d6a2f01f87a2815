package odoo

import (
	"context"
	"errors"
	"net/http"
	"net/http/httptest"
	"testing"
)

// TestDecodeSynthetic covers answers the recordings do not hold: proxies,
// serialization failures, session expiry without a name.
func TestDecodeSynthetic(t *testing.T) {
	cases := []struct {
		name   string
		path   string
		status int
		ct     string
		body   string
		want   Kind
	}{
		{"proxy 502", "/jsonrpc", 502, "text/html", "<html>Bad Gateway</html>", KindTransient},
		{"proxy 503 json2", "/json/2/res.partner/read", 503, "text/html", "<html>unavailable</html>", KindTransient},
		{"429", "/json/2/res.partner/read", 429, "text/plain", "slow down", KindTransient},
		{"serialization jsonrpc", "/jsonrpc", 200, "application/json", `{"jsonrpc":"2.0","id":1,"error":{"code":0,"message":"Odoo Server Error","data":{"name":"psycopg2.errors.SerializationFailure","message":"could not serialize access due to concurrent update"}}}`, KindTransient},
		{"serialization json2", "/json/2/res.partner/write", 500, "application/json", `{"name":"psycopg2.errors.SerializationFailure","message":"could not serialize","arguments":[],"context":{},"debug":""}`, KindTransient},
		{"operational error", "/jsonrpc", 200, "application/json", `{"jsonrpc":"2.0","id":1,"error":{"code":200,"message":"Odoo Server Error","data":{"name":"psycopg2.OperationalError","message":"server closed the connection unexpectedly"}}}`, KindTransient},
		{"session expired, no name", "/jsonrpc", 200, "application/json", `{"jsonrpc":"2.0","id":1,"error":{"code":100,"message":"Odoo Session Expired"}}`, KindTransient},
		{"jsonrpc 500 with envelope", "/jsonrpc", 500, "application/json", `{"jsonrpc":"2.0","id":1,"error":{"code":200,"message":"Odoo Server Error","data":{"name":"odoo.exceptions.AccessError","message":"no"}}}`, KindAccess},
		{"jsonrpc 500 odd name", "/jsonrpc", 500, "application/json", `{"jsonrpc":"2.0","id":1,"error":{"code":200,"message":"Odoo Server Error","data":{"name":"odoo.addons.x.Boom","message":"no"}}}`, KindTransient},
		{"json2 builtins 500 stays unknown", "/json/2/res.partner/read", 500, "application/json", `{"name":"builtins.KeyError","message":"x","arguments":[],"context":{},"debug":""}`, KindUnknown},
		{"garbage 200", "/jsonrpc", 200, "application/json", `{"jsonrpc":`, KindUnknown},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
				w.Header().Set("Content-Type", tc.ct)
				w.WriteHeader(tc.status)
				_, _ = w.Write([]byte(tc.body))
			}))
			defer srv.Close()
			c, _ := New(Config{URL: srv.URL, DB: "d", Login: "l", APIKey: "secret-key"})
			err := c.Do(context.Background(), "op", http.MethodPost, tc.path, http.Header{"Content-Type": {"application/json"}}, []byte("{}"), nil)
			var e *Error
			if !errors.As(err, &e) || e.Kind != tc.want || e.HTTPStatus != tc.status {
				t.Fatalf("got %v (%#v), want kind %v", err, e, tc.want)
			}
		})
	}
}

func TestScrubKey(t *testing.T) {
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "application/json")
		_, _ = w.Write([]byte(`{"jsonrpc":"2.0","id":1,"error":{"code":200,"message":"x","data":{"name":"odoo.exceptions.AccessDenied","message":"bad key secret-key-123","debug":"args: secret-key-123"}}}`))
	}))
	defer srv.Close()
	c, _ := New(Config{URL: srv.URL, DB: "d", Login: "l", APIKey: "secret-key-123"})
	_, err := c.Authenticate(context.Background())
	var e *Error
	if !errors.As(err, &e) || e.Kind != KindAuth {
		t.Fatalf("got %v", err)
	}
	if e.Message != "bad key ***" || e.Debug != "args: ***" {
		t.Errorf("not scrubbed: %q %q", e.Message, e.Debug)
	}
}
