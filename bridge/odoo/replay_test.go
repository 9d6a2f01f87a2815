package odoo

import (
	"context"
	"encoding/json"
	"errors"
	"net/http/httptest"
	"strings"
	"testing"
)

// TestReplayVerbatim serves every recorded response verbatim and checks that
// Client.Do (the one path every call takes) decodes it to the expected typed
// result or error, with Odoo's name, HTTP status and code kept.
func TestReplayVerbatim(t *testing.T) {
	all := loadTranscripts(t)
	var cur *transcript
	srv := httptest.NewServer(verbatimServer(&cur))
	defer srv.Close()
	c, err := New(Config{URL: srv.URL, DB: "rig", Login: "admin", APIKey: fakeAPIKey, Protocol: ProtocolJSONRPC})
	if err != nil {
		t.Fatal(err)
	}
	seen := map[string]bool{}
	for _, tr := range all {
		seen[tr.File] = true
		w, listed := expected[tr.File]
		if !listed {
			t.Errorf("%s: no expected outcome listed", tr.File)
			continue
		}
		cur = tr
		var got json.RawMessage
		err := c.Do(context.Background(), tr.File, tr.Request.Method, tr.path(), tr.header(), tr.body(), &got)
		if w.ok {
			if err != nil {
				t.Errorf("%s: want success, got %v", tr.File, err)
				continue
			}
			if want := recordedResult(t, tr); !jsonEqual(got, want) {
				t.Errorf("%s: result %.120s, want %.120s", tr.File, got, want)
			}
			continue
		}
		var e *Error
		if !errors.As(err, &e) {
			t.Errorf("%s: want %v error, got %v (result %.80s)", tr.File, w.kind, err, got)
			continue
		}
		if e.Kind != w.kind {
			t.Errorf("%s: kind %v, want %v (%v)", tr.File, e.Kind, w.kind, e)
		}
		if e.HTTPStatus != tr.Response.Status {
			t.Errorf("%s: HTTPStatus %d, want %d", tr.File, e.HTTPStatus, tr.Response.Status)
		}
		if name, code, isErr := recordedError(tr); isErr {
			if e.Name != name || e.Code != code {
				t.Errorf("%s: name %q code %d, want %q %d", tr.File, e.Name, e.Code, name, code)
			}
		}
		if strings.Contains(e.Error(), fakeAPIKey) {
			t.Errorf("%s: error carries the API key", tr.File)
		}
		if !errors.Is(err, &Error{Kind: w.kind}) {
			t.Errorf("%s: errors.Is by kind failed", tr.File)
		}
	}
	for name := range expected {
		if !seen[name] {
			t.Errorf("expected lists %s but no such transcript", name)
		}
	}
}
