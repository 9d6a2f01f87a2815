package m365sim

import (
	"bytes"
	"context"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"encoding/base64"
	"encoding/json"
	"io"
	"net/http"
	"net/url"
	"strings"
	"sync"
	"testing"
	"time"
)

const testUser = "anna@contoso.com"

// newSim starts a simulator with one user and closes it at cleanup.
func newSim(t *testing.T, opts Options) *Sim {
	t.Helper()
	if opts.TimeScale == 0 {
		opts.TimeScale = 20
	}
	if opts.SamplesDir == "" {
		opts.SamplesDir = t.TempDir() // no samples unless a test asks
	}
	s, err := New(opts)
	if err != nil {
		t.Fatal(err)
	}
	s.AddUser(testUser, "Anna Schmidt")
	if err := s.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		_ = s.Close()
		if n := s.Panics(); n != 0 {
			t.Errorf("simulator recovered %d panics", n)
		}
	})
	return s
}

func pkcePair() (verifier, challenge string) {
	b := make([]byte, 32)
	_, _ = rand.Read(b)
	verifier = base64.RawURLEncoding.EncodeToString(b)
	return verifier, pkceS256(verifier)
}

const testRedirect = "http://127.0.0.1:8069/maildesk/oauth/callback"

var allScopes = "https://graph.microsoft.com/Mail.ReadWrite https://graph.microsoft.com/Mail.Send https://graph.microsoft.com/User.Read https://graph.microsoft.com/Mail.ReadWrite.Shared https://graph.microsoft.com/Mail.Send.Shared offline_access openid profile"

func authURL(s *Sim, scopes, challenge, state string) string {
	q := url.Values{"client_id": {defaultClientID}, "response_type": {"code"}, "redirect_uri": {testRedirect},
		"scope": {scopes}, "state": {state}, "code_challenge": {challenge}, "code_challenge_method": {"S256"}}
	return s.AuthorityURL() + "/oauth2/v2.0/authorize?" + q.Encode()
}

// redeem posts the token endpoint and returns status and decoded body.
func redeem(t *testing.T, s *Sim, form url.Values) (int, map[string]any) {
	t.Helper()
	form.Set("client_id", defaultClientID)
	form.Set("client_secret", defaultSecret)
	resp, err := s.Client().PostForm(s.AuthorityURL()+"/oauth2/v2.0/token", form)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	var body map[string]any
	_ = json.NewDecoder(resp.Body).Decode(&body)
	return resp.StatusCode, body
}

// token runs the auth code flow over plain HTTP and returns an access token.
func token(t *testing.T, s *Sim, upn, scopes string) (access, refresh string) {
	t.Helper()
	v, c := pkcePair()
	loc, err := s.SignIn(context.Background(), authURL(s, scopes, c, "st"), upn)
	if err != nil {
		t.Fatal(err)
	}
	code := loc.Query().Get("code")
	if code == "" {
		t.Fatalf("no code in %s", loc)
	}
	st, body := redeem(t, s, url.Values{"grant_type": {"authorization_code"}, "code": {code}, "redirect_uri": {testRedirect}, "code_verifier": {v}, "scope": {scopes}})
	if st != 200 {
		t.Fatalf("token: %d %v", st, body)
	}
	return body["access_token"].(string), body["refresh_token"].(string)
}

type resp struct {
	status int
	header http.Header
	body   []byte
}

func (r resp) json(t *testing.T) map[string]any {
	t.Helper()
	var m map[string]any
	if err := json.Unmarshal(r.body, &m); err != nil {
		t.Fatalf("not JSON (%d): %s", r.status, r.body)
	}
	return m
}

func (r resp) errCode(t *testing.T) string {
	t.Helper()
	e, _ := r.json(t)["error"].(map[string]any)
	if e == nil {
		t.Fatalf("no error envelope: %s", r.body)
	}
	c, _ := e["code"].(string)
	return c
}

// call makes a Graph request; path is relative to the Graph base URL or absolute.
func call(t *testing.T, s *Sim, tok, method, path string, body any, hdr ...string) resp {
	t.Helper()
	var rd io.Reader
	ct := ""
	switch b := body.(type) {
	case nil:
	case string:
		rd, ct = strings.NewReader(b), "text/plain"
	default:
		j, _ := json.Marshal(b)
		rd, ct = strings.NewReader(string(j)), "application/json"
	}
	u := path
	if !strings.HasPrefix(path, "https://") {
		u = s.GraphBaseURL() + path
	}
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, method, u, rd)
	if err != nil {
		t.Fatal(err)
	}
	if ct != "" {
		req.Header.Set("Content-Type", ct)
	}
	if tok != "" {
		req.Header.Set("Authorization", "Bearer "+tok)
	}
	for i := 0; i+1 < len(hdr); i += 2 {
		req.Header.Add(hdr[i], hdr[i+1])
	}
	res, err := s.Client().Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer res.Body.Close()
	b, _ := io.ReadAll(res.Body)
	return resp{res.StatusCode, res.Header, b}
}

// waitFor polls cond until it holds or the deadline passes (a bound for a
// stuck test only, not a timing guess).
func waitFor(t *testing.T, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(2 * time.Minute)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(5 * time.Millisecond)
	}
}

const immutable = `IdType="ImmutableId"`

func newReq(method, u, tok string) (*http.Request, error) {
	req, err := http.NewRequest(method, u, nil)
	if err == nil && tok != "" {
		req.Header.Set("Authorization", "Bearer "+tok)
	}
	return req, err
}

// callRaw sends bytes to an absolute URL.
func callRaw(t *testing.T, s *Sim, method, u string, body []byte, hdr ...string) resp {
	t.Helper()
	var rd io.Reader
	if body != nil {
		rd = bytes.NewReader(body)
	}
	req, err := http.NewRequest(method, u, rd)
	if err != nil {
		t.Fatal(err)
	}
	for i := 0; i+1 < len(hdr); i += 2 {
		req.Header.Set(hdr[i], hdr[i+1])
	}
	res, err := s.Client().Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer res.Body.Close()
	b, _ := io.ReadAll(res.Body)
	return resp{res.StatusCode, res.Header, b}
}

// pipe is a goroutine-safe buffer for Main's output.
type pipe struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func newPipe() (*pipe, *pipe) { p := &pipe{}; return p, p }

func (p *pipe) Write(b []byte) (int, error) {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.b.Write(b)
}

func (p *pipe) String() string {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.b.String()
}

func field(out, label string) string {
	for _, line := range strings.Split(out, "\n") {
		if i := strings.Index(line, label); i >= 0 {
			return strings.TrimSpace(line[i+len(label):])
		}
	}
	return ""
}

func clientFromPEM(t *testing.T, pem []byte) *http.Client {
	t.Helper()
	pool := x509.NewCertPool()
	if !pool.AppendCertsFromPEM(pem) {
		t.Fatal("bad CA PEM")
	}
	return &http.Client{Timeout: 30 * time.Second, Transport: &http.Transport{TLSClientConfig: &tls.Config{RootCAs: pool}},
		CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}
}

// formFlow signs in through the HTML consent form with a plain client and
// redeems the code.
func formFlow(t *testing.T, c *http.Client, authority string, q url.Values, verifier string) string {
	t.Helper()
	res, err := c.Get(authority + "/oauth2/v2.0/authorize?" + q.Encode())
	if err != nil {
		t.Fatal(err)
	}
	page, _ := io.ReadAll(res.Body)
	res.Body.Close()
	txn := between(string(page), `name="txn" value="`, `"`)
	res, err = c.PostForm(authority+"/oauth2/v2.0/authorize/consent", url.Values{"txn": {txn}, "login": {q.Get("login_hint")}, "decision": {"accept"}})
	if err != nil {
		t.Fatal(err)
	}
	res.Body.Close()
	loc, err := url.Parse(res.Header.Get("Location"))
	if err != nil || loc.Query().Get("code") == "" {
		t.Fatalf("consent redirect: %d %v", res.StatusCode, res.Header)
	}
	res, err = c.PostForm(authority+"/oauth2/v2.0/token", url.Values{"grant_type": {"authorization_code"}, "code": {loc.Query().Get("code")},
		"redirect_uri": {q.Get("redirect_uri")}, "code_verifier": {verifier}, "client_id": {defaultClientID}, "client_secret": {defaultSecret}})
	if err != nil {
		t.Fatal(err)
	}
	defer res.Body.Close()
	var body map[string]any
	_ = json.NewDecoder(res.Body).Decode(&body)
	tok, _ := body["access_token"].(string)
	if tok == "" {
		t.Fatalf("token: %v", body)
	}
	return tok
}

type pageResult struct {
	items       int
	next, delta string
}

// callB fetches one delta page for benchmarks.
func callB(b *testing.B, s *Sim, tok, link string, hdr ...string) pageResult {
	u := link
	if !strings.HasPrefix(u, "https://") {
		u = s.GraphBaseURL() + link
	}
	req, _ := newReq("GET", u, tok)
	for i := 0; i+1 < len(hdr); i += 2 {
		req.Header.Add(hdr[i], hdr[i+1])
	}
	res, err := s.Client().Do(req)
	if err != nil {
		b.Fatal(err)
	}
	defer res.Body.Close()
	var body struct {
		Value []json.RawMessage `json:"value"`
		Next  string            `json:"@odata.nextLink"`
		Delta string            `json:"@odata.deltaLink"`
	}
	if res.StatusCode != 200 {
		b.Fatalf("status %d", res.StatusCode)
	}
	if err := json.NewDecoder(res.Body).Decode(&body); err != nil {
		b.Fatal(err)
	}
	return pageResult{len(body.Value), body.Next, body.Delta}
}
