package odoosim

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"io"
	"mime"
	"net/http"
	"net/http/httptest"
	"net/url"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"testing"

	"github.com/maildesk/maildesk/bridge/odoo"
)

// The recordings of real Odoo 18.0 and 19.0, kept with the client's tests.
const transcriptDir = "../odoo/testdata/transcripts"

const (
	key18        = "0f1e2d3c4b5a69788796a5b4c3d2e1f0a1b2c3d4"
	key19Limited = "1f1e2d3c4b5a69788796a5b4c3d2e1f0a1b2c3d5"
	key19UI      = "2f1e2d3c4b5a69788796a5b4c3d2e1f0a1b2c3d6"
)

// notSimulated names the recordings odoosim does not reproduce, and why.
var notSimulated = map[string]string{
	"62_web_session_authenticate":                               "browser sessions are not simulated",
	"63_json2_probe_v18_with_session":                           "browser sessions are not simulated",
	"64_apikey_description_create":                              "browser sessions are not simulated",
	"64a_err_apikey_description_create_quirk":                   "browser sessions are not simulated",
	"65_apikey_make_key_needs_identity_check":                   "browser sessions are not simulated",
	"66_identitycheck_write_password":                           "browser sessions are not simulated",
	"67_identitycheck_run_check_returns_key":                    "browser sessions are not simulated",
	"80_xmlrpc_authenticate_ok":                                 "XML-RPC is not simulated",
	"81_xmlrpc_err_access_denied":                               "XML-RPC is not simulated",
	"82_xmlrpc_err_user_error_missing_model":                    "XML-RPC is not simulated",
	"83_xmlrpc_err_validation":                                  "XML-RPC is not simulated",
	"90_rig_probe_module_state":                                 "the rig's probe addon is not simulated",
	"91_rig_probe_config_param":                                 "the rig's probe addon is not simulated",
	"92_rig_probe_field_write":                                  "the rig's probe addon is not simulated",
	"93_rig_probe_field_read_and_tracking":                      "the rig's probe addon is not simulated",
	"96_after_restart_partner_read":                             "the rig's probe addon is not simulated",
	"odoo19/90_web_session_authenticate":                        "browser sessions are not simulated",
	"odoo19/94_json2_err_session_cookie_plus_bearer_other_user": "browser sessions are not simulated",
	"odoo19/A0_xmlrpc_common_version":                           "XML-RPC is not simulated",
	"odoo19/A1_xmlrpc_err_access_denied":                        "XML-RPC is not simulated",
	"odoo19/A2_xmlrpc_err_missing_model":                        "XML-RPC is not simulated",
	"odoo19/B0_ui_apikey_description_create":                    "browser sessions are not simulated",
	"odoo19/B1_ui_apikey_make_key_needs_identity_check":         "browser sessions are not simulated",
	"odoo19/B2_ui_identitycheck_run_check_returns_key":          "browser sessions are not simulated",
}

type transcript struct {
	File    string `json:"-"`
	Request struct {
		Method  string            `json:"method"`
		URL     string            `json:"url"`
		Headers map[string]string `json:"headers"`
		Body    *string           `json:"body"`
	} `json:"request"`
	Response struct {
		Status  int      `json:"status"`
		Headers []string `json:"headers"`
		Body    string   `json:"body"`
	} `json:"response"`
}

func loadTranscripts(t *testing.T) []*transcript {
	t.Helper()
	var files []string
	for _, pat := range []string{"*.json", "odoo19/*.json"} {
		m, _ := filepath.Glob(filepath.Join(transcriptDir, pat))
		sort.Strings(m)
		files = append(files, m...)
	}
	if len(files) < 150 {
		t.Fatalf("found only %d transcripts", len(files))
	}
	var out []*transcript
	for _, f := range files {
		b, err := os.ReadFile(f)
		if err != nil {
			t.Fatal(err)
		}
		tr := &transcript{}
		if err := json.Unmarshal(b, tr); err != nil {
			t.Fatal(err)
		}
		rel, _ := filepath.Rel(transcriptDir, f)
		tr.File = strings.TrimSuffix(rel, ".json")
		out = append(out, tr)
	}
	return out
}

// captured is a raw response as the client saw it.
type captured struct {
	status int
	header http.Header
	body   []byte
}

type captureTransport struct{ last *captured }

func (c *captureTransport) RoundTrip(r *http.Request) (*http.Response, error) {
	resp, err := http.DefaultTransport.RoundTrip(r)
	if err != nil {
		return nil, err
	}
	b, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	c.last = &captured{status: resp.StatusCode, header: resp.Header.Clone(), body: b}
	resp.Body = io.NopCloser(bytes.NewReader(b))
	return resp, nil
}

// outcome is the typed result of one replayed request.
type outcome struct {
	ok         bool
	resultType string
	kind       odoo.Kind
	name       string
	status     int
	code       int
	raw        *captured
}

func replay(t *testing.T, base string, tr *transcript) outcome {
	t.Helper()
	ct := &captureTransport{}
	c, err := odoo.New(odoo.Config{URL: base, DB: "x", Login: "x", APIKey: "x", Protocol: odoo.ProtocolJSONRPC,
		HTTPClient: &http.Client{Transport: ct, CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}})
	if err != nil {
		t.Fatal(err)
	}
	u, _ := url.Parse(tr.Request.URL)
	h := http.Header{}
	for k, v := range tr.Request.Headers {
		h.Set(k, v)
	}
	var body []byte
	if tr.Request.Body != nil {
		body = []byte(*tr.Request.Body)
	}
	var res json.RawMessage
	err = c.Do(context.Background(), tr.File, tr.Request.Method, u.Path, h, body, &res)
	if err == nil {
		return outcome{ok: true, resultType: jsonType(res), raw: ct.last}
	}
	var e *odoo.Error
	if !errors.As(err, &e) {
		t.Fatalf("%s: untyped error %v", tr.File, err)
	}
	return outcome{kind: e.Kind, name: e.Name, status: e.HTTPStatus, code: e.Code, raw: ct.last}
}

func jsonType(b []byte) string {
	var v any
	if json.Unmarshal(b, &v) != nil {
		return "invalid"
	}
	switch v.(type) {
	case map[string]any:
		return "object"
	case []any:
		return "array"
	case float64:
		return "number"
	case bool:
		return "bool"
	case string:
		return "string"
	}
	return "null"
}

// keyOrder returns the keys of the JSON object at path (e.g. "error", "data") in order.
func keyOrder(body []byte, path ...string) []string {
	var v json.RawMessage = body
	for _, p := range path {
		var m map[string]json.RawMessage
		if json.Unmarshal(v, &m) != nil {
			return nil
		}
		v = m[p]
	}
	dec := json.NewDecoder(bytes.NewReader(v))
	tok, err := dec.Token()
	if err != nil || tok != json.Delim('{') {
		return nil
	}
	var keys []string
	for dec.More() {
		k, _ := dec.Token()
		keys = append(keys, k.(string))
		var skip json.RawMessage
		_ = dec.Decode(&skip)
	}
	return keys
}

func mediaType(h http.Header) string {
	mt, _, _ := mime.ParseMediaType(h.Get("Content-Type"))
	return mt
}

// TestReplayAgainstSim sends every recorded request, in order, to odoosim set up
// like the recording rigs, and checks it answers with the same typed outcome
// (through bridge/odoo) as the recorded response, and the same envelope shape:
// status, content type, key order of the body and error data, WWW-Authenticate.
func TestReplayAgainstSim(t *testing.T) {
	all := loadTranscripts(t)
	var cur *transcript
	verbatim := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		for _, h := range cur.Response.Headers {
			k, v, _ := strings.Cut(h, ": ")
			switch strings.ToLower(k) {
			case "content-length", "connection", "date", "server":
				continue
			}
			w.Header().Add(k, v)
		}
		w.WriteHeader(cur.Response.Status)
		_, _ = w.Write([]byte(cur.Response.Body))
	}))
	defer verbatim.Close()

	s18 := New(Options{Version: 18, DB: "rig", AdminAPIKeys: []string{key18}, TechUserID: 5, TechPartnerID: 6})
	s19 := New(Options{Version: 19, DB: "rig19", AdminAPIKeys: []string{key18, key19UI}, TechUserID: 4, TechPartnerID: 5,
		Users: []User{{ID: 5, PartnerID: 6, Name: "Rig Limited", Login: "limited", Password: "limited", APIKeys: []string{key19Limited}}}})
	s19multi := New(Options{Version: 19, DB: "rig19", OtherDBs: []string{"rig19b"}, AdminAPIKeys: []string{key18}})
	for _, s := range []*Server{s18, s19, s19multi} {
		if err := s.Start(); err != nil {
			t.Fatal(err)
		}
		defer s.Close()
	}
	replayed := 0
	for _, tr := range all {
		if why, skip := notSimulated[tr.File]; skip {
			t.Logf("%s: not replayed: %s", tr.File, why)
			continue
		}
		sim := s18
		if strings.HasPrefix(tr.File, "odoo19/") {
			sim = s19
			if n := strings.TrimPrefix(tr.File, "odoo19/"); n >= "95" && n < "A" {
				sim = s19multi
			}
		}
		cur = tr
		want := replay(t, verbatim.URL, tr)
		got := replay(t, sim.URL(), tr)
		replayed++
		if want.ok != got.ok || want.resultType != got.resultType || want.kind != got.kind || want.name != got.name ||
			want.status != got.status || want.code != got.code {
			t.Errorf("%s: sim gave %+v\n\twant %+v\n\tsim body: %.300s", tr.File, brief(got), brief(want), got.raw.body)
			continue
		}
		if want.raw.status != got.raw.status || mediaType(want.raw.header) != mediaType(got.raw.header) {
			t.Errorf("%s: status/content type %d %s, want %d %s", tr.File, got.raw.status, mediaType(got.raw.header),
				want.raw.status, mediaType(want.raw.header))
		}
		if (want.raw.header.Get("WWW-Authenticate") == "") != (got.raw.header.Get("WWW-Authenticate") == "") {
			t.Errorf("%s: WWW-Authenticate %q, want %q", tr.File, got.raw.header.Get("WWW-Authenticate"), want.raw.header.Get("WWW-Authenticate"))
		}
		if mediaType(want.raw.header) == "application/json" {
			for _, path := range [][]string{nil, {"error"}, {"error", "data"}} {
				w, g := keyOrder(want.raw.body, path...), keyOrder(got.raw.body, path...)
				if strings.Join(w, ",") != strings.Join(g, ",") {
					t.Errorf("%s: keys at %v = %v, want %v", tr.File, path, g, w)
				}
			}
		} else if !bytes.Equal(bytes.TrimSpace(want.raw.body), bytes.TrimSpace(got.raw.body)) && want.raw.status != 303 {
			t.Errorf("%s: body %q, want %q", tr.File, got.raw.body, want.raw.body)
		}
	}
	t.Logf("replayed %d of %d transcripts against odoosim", replayed, len(all))
}

func brief(o outcome) map[string]any {
	return map[string]any{"ok": o.ok, "type": o.resultType, "kind": o.kind.String(), "name": o.name, "status": o.status, "code": o.code}
}
