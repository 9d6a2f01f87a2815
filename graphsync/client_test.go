package graphsync_test

import (
	"context"
	"crypto/rand"
	"crypto/sha256"
	"crypto/tls"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/maildesk/maildesk/graphsync"
	"github.com/maildesk/maildesk/graphsync/m365sim"
)

// simTokens gets real tokens from the simulator: sign-in as the user, code
// redemption with PKCE, refresh when close to expiry.
type simTokens struct {
	sim   *m365sim.Sim
	mu    sync.Mutex
	users map[string]string // mailbox id -> upn
	toks  map[string]simTok
}

type simTok struct {
	access, refresh string
	exp             time.Time
	life            time.Duration
}

func newSimTokens(sim *m365sim.Sim) *simTokens {
	return &simTokens{sim: sim, users: map[string]string{}, toks: map[string]simTok{}}
}

func (t *simTokens) add(mailboxID, upn string) {
	t.mu.Lock()
	t.users[mailboxID] = upn
	t.mu.Unlock()
}

func (t *simTokens) Token(ctx context.Context, mailboxID string) (string, error) {
	t.mu.Lock()
	defer t.mu.Unlock()
	tok, ok := t.toks[mailboxID]
	if ok && time.Until(tok.exp) > tok.life/5 {
		return tok.access, nil
	}
	upn := t.users[mailboxID]
	if upn == "" {
		return "", &graphsync.ReauthError{MailboxID: mailboxID, Code: "no_token"}
	}
	app := m365sim.DefaultApp()
	form := url.Values{"client_id": {app.ClientID}, "client_secret": {app.ClientSecret},
		"scope": {"https://graph.microsoft.com/Mail.ReadWrite https://graph.microsoft.com/Mail.Send offline_access openid profile"}}
	if ok && tok.refresh != "" {
		form.Set("grant_type", "refresh_token")
		form.Set("refresh_token", tok.refresh)
	} else {
		vb := make([]byte, 32)
		_, _ = rand.Read(vb)
		verifier := base64.RawURLEncoding.EncodeToString(vb)
		sum := sha256.Sum256([]byte(verifier))
		redirect := "http://127.0.0.1:1/cb"
		q := url.Values{"client_id": {app.ClientID}, "response_type": {"code"}, "redirect_uri": {redirect},
			"scope": {form.Get("scope")}, "state": {"s"}, "code_challenge": {base64.RawURLEncoding.EncodeToString(sum[:])},
			"code_challenge_method": {"S256"}}
		loc, err := t.sim.SignIn(ctx, t.sim.AuthorityURL()+"/oauth2/v2.0/authorize?"+q.Encode(), upn)
		if err != nil {
			return "", err
		}
		code := loc.Query().Get("code")
		if code == "" {
			return "", fmt.Errorf("sign-in gave no code: %s", loc)
		}
		form.Set("grant_type", "authorization_code")
		form.Set("code", code)
		form.Set("redirect_uri", redirect)
		form.Set("code_verifier", verifier)
	}
	resp, err := t.sim.Client().PostForm(t.sim.AuthorityURL()+"/oauth2/v2.0/token", form)
	if err != nil {
		return "", err
	}
	defer resp.Body.Close()
	var body struct {
		Access  string `json:"access_token"`
		Refresh string `json:"refresh_token"`
		Expires int    `json:"expires_in"`
		Error   string `json:"error"`
	}
	if err := json.NewDecoder(resp.Body).Decode(&body); err != nil || body.Access == "" {
		return "", fmt.Errorf("token: %d %s %v", resp.StatusCode, body.Error, err)
	}
	t.toks[mailboxID] = simTok{access: body.Access, refresh: body.Refresh, exp: time.Now().Add(time.Duration(body.Expires) * time.Second), life: time.Duration(body.Expires) * time.Second}
	return body.Access, nil
}

// newSim starts a simulator for a test.
func newSim(t testing.TB, opts m365sim.Options) *m365sim.Sim {
	t.Helper()
	sim, err := m365sim.New(opts)
	if err != nil {
		t.Fatal(err)
	}
	if err := sim.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = sim.Close() })
	return sim
}

func newClient(t testing.TB, sim *m365sim.Sim, toks graphsync.TokenSource, scale float64) *graphsync.Client {
	t.Helper()
	c, err := graphsync.New(graphsync.Config{
		BaseURL:   sim.GraphBaseURL(),
		Transport: graphsync.NewTransport(&tls.Config{RootCAs: sim.CertPool(), MinVersion: tls.VersionTLS12}),
		Tokens:    toks,
		Budget:    graphsync.BudgetOptions{Window: time.Duration(float64(10*time.Minute) / scale)},
		Retry: graphsync.RetryOptions{BaseDelay: time.Duration(float64(500*time.Millisecond) / scale),
			MaxDelay: time.Duration(float64(30*time.Second) / scale), MaxAttempts: 12},
	})
	if err != nil {
		t.Fatal(err)
	}
	return c
}

// staticTokens hands out a fixed token (for plain httptest servers).
type staticTokens struct{}

func (staticTokens) Token(context.Context, string) (string, error) { return "t0k", nil }

// TestBudgetNeverLetsAFifthRequestOut holds requests at a server and checks
// that with 4 held, a 5th never reaches it until one finishes.
func TestBudgetNeverLetsAFifthRequestOut(t *testing.T) {
	var inflight, maxSeen atomic.Int64
	arrived := make(chan struct{}, 100)
	hold := make(chan struct{})
	srv := httptest.NewTLSServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		n := inflight.Add(1)
		for {
			m := maxSeen.Load()
			if n <= m || maxSeen.CompareAndSwap(m, n) {
				break
			}
		}
		if !strings.Contains(r.Header.Get("Prefer"), `IdType="ImmutableId"`) && !strings.Contains(strings.Join(r.Header.Values("Prefer"), ","), "ImmutableId") {
			t.Errorf("request without Prefer: IdType=\"ImmutableId\": %v", r.Header.Values("Prefer"))
		}
		if r.Header.Get("Authorization") != "Bearer t0k" {
			t.Errorf("no bearer token sent to the allowed host: %q", r.Header.Get("Authorization"))
		}
		arrived <- struct{}{}
		<-hold
		inflight.Add(-1)
		w.Header().Set("Content-Type", "application/json")
		_, _ = w.Write([]byte(`{"id":"f","displayName":"Inbox","totalItemCount":1}`))
	}))
	defer srv.Close()
	c, err := graphsync.New(graphsync.Config{BaseURL: srv.URL + "/v1.0", Transport: srv.Client().Transport, Tokens: staticTokens{}})
	if err != nil {
		t.Fatal(err)
	}
	m, err := c.Mailbox("mbx_1", "anna@contoso.com")
	if err != nil {
		t.Fatal(err)
	}
	var wg sync.WaitGroup
	for i := 0; i < 6; i++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			if _, err := m.GetFolder(context.Background(), "inbox"); err != nil {
				t.Error(err)
			}
		}()
	}
	for i := 0; i < 4; i++ {
		<-arrived
	}
	// Four are held at the server. Wait until the other two are queued in
	// the budget, then check none of them got out.
	deadline := time.Now().Add(5 * time.Second)
	for m.Budget().InFlight() != 4 && time.Now().Before(deadline) {
		time.Sleep(time.Millisecond)
	}
	select {
	case <-arrived:
		t.Fatal("a fifth concurrent request reached the server")
	case <-time.After(200 * time.Millisecond):
	}
	close(hold)
	wg.Wait()
	if got := maxSeen.Load(); got != 4 {
		t.Fatalf("max concurrent requests at the server = %d, want 4", got)
	}
}

// TestRetryAfterPausesTheMailbox: a 429 with Retry-After stops every request
// of the mailbox until it passes, then the request is retried.
func TestRetryAfterPausesTheMailbox(t *testing.T) {
	var calls atomic.Int64
	var firstAt, secondAt atomic.Int64
	srv := httptest.NewTLSServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		n := calls.Add(1)
		if n == 1 {
			firstAt.Store(time.Now().UnixNano())
			w.Header().Set("Retry-After", "0.3")
			w.WriteHeader(429)
			_, _ = w.Write([]byte(`{"error":{"code":"TooManyRequests","message":"Please retry again later."}}`))
			return
		}
		if n == 2 {
			secondAt.Store(time.Now().UnixNano())
		}
		w.Header().Set("Content-Type", "application/json")
		_, _ = w.Write([]byte(`{"id":"f","totalItemCount":3}`))
	}))
	defer srv.Close()
	c, err := graphsync.New(graphsync.Config{BaseURL: srv.URL + "/v1.0", Transport: srv.Client().Transport, Tokens: staticTokens{}})
	if err != nil {
		t.Fatal(err)
	}
	m, _ := c.Mailbox("mbx_1", "anna@contoso.com")
	f, err := m.GetFolder(context.Background(), "inbox")
	if err != nil {
		t.Fatal(err)
	}
	if f.Total != 3 || calls.Load() != 2 {
		t.Fatalf("total %d after %d calls", f.Total, calls.Load())
	}
	if gap := time.Duration(secondAt.Load() - firstAt.Load()); gap < 300*time.Millisecond {
		t.Fatalf("retried after %v, before Retry-After 0.3 s", gap)
	}
	if !m.Budget().PausedUntil().After(time.Unix(0, firstAt.Load())) {
		t.Fatal("the 429 did not pause the mailbox's budget")
	}
}

// TestBudgetWindow: the window limit holds requests until units expire.
func TestBudgetWindow(t *testing.T) {
	now := time.Unix(1_000_000, 0)
	var mu sync.Mutex
	clock := func() time.Time { mu.Lock(); defer mu.Unlock(); return now }
	b := graphsync.NewBudget(graphsync.BudgetOptions{Limit: 10, Window: 10 * time.Second, Buckets: 10, Now: clock})
	for i := 0; i < 10; i++ {
		rel, err := b.Acquire(context.Background(), 1, 1)
		if err != nil {
			t.Fatal(err)
		}
		rel()
	}
	ctx, cancel := context.WithTimeout(context.Background(), 50*time.Millisecond)
	defer cancel()
	if _, err := b.Acquire(ctx, 1, 1); err == nil {
		t.Fatal("an 11th request within the window was admitted")
	}
	mu.Lock()
	now = now.Add(11 * time.Second)
	mu.Unlock()
	rel, err := b.Acquire(context.Background(), 5, 1)
	if err != nil {
		t.Fatal(err)
	}
	rel()
	if b.Used() != 15 {
		t.Fatalf("used %d, want 15", b.Used())
	}
}

// TestDeltaAndBatchAgainstSim: a delta round brings bodies and headers,
// attachments come in $batch, ids are immutable.
func TestDeltaAndBatchAgainstSim(t *testing.T) {
	sim := newSim(t, m365sim.Options{Seed: 7, TimeScale: 100, Throttle: true})
	upn := "anna@" + sim.Domain()
	sim.GenerateMailbox(upn, 120, m365sim.GenOptions{MaxAttachment: 64 << 10, NoSamples: true})
	toks := newSimTokens(sim)
	toks.add("mbx_a", upn)
	c := newClient(t, sim, toks, 100)
	m, err := c.Mailbox("mbx_a", upn)
	if err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	p, err := m.DeltaStart(ctx, "inbox", time.Time{}, 50)
	if err != nil {
		t.Fatal(err)
	}
	var all []*graphsync.Message
	for {
		all = append(all, p.Messages...)
		if p.NextLink == "" {
			break
		}
		if p, err = m.NextPage(ctx, p.NextLink); err != nil {
			t.Fatal(err)
		}
	}
	if p.DeltaLink == "" {
		t.Fatal("round ended without a deltaLink")
	}
	want := sim.Messages(upn, "inbox")
	if len(all) != len(want) {
		t.Fatalf("delta gave %d messages, inbox has %d", len(all), len(want))
	}
	ids := map[string]bool{}
	for _, w := range want {
		ids[w.ID] = true
	}
	withAtt := 0
	for _, msg := range all {
		if !ids[msg.ID] {
			t.Fatalf("message id %s is not the immutable id", msg.ID)
		}
		if !msg.Full || msg.Body == "" || msg.InternetMessageID == "" {
			t.Fatalf("message %s came without content", msg.ID)
		}
		if msg.Header("Message-ID") == "" {
			t.Fatalf("message %s came without internet headers", msg.ID)
		}
		if msg.NeedsAttachments() {
			withAtt++
		}
	}
	before := sim.Stats(upn)
	if err := m.FetchAttachments(ctx, all, 2); err != nil {
		t.Fatal(err)
	}
	after := sim.Stats(upn)
	for _, msg := range all {
		if msg.HasAttachments && len(msg.Attachments) == 0 {
			t.Fatalf("message %s has attachments but none were fetched", msg.ID)
		}
		for _, a := range msg.Attachments {
			if a.Kind == "file" && int64(len(a.Data)) != a.Size {
				t.Fatalf("attachment %s: %d bytes, size says %d", a.Name, len(a.Data), a.Size)
			}
		}
	}
	if got, want := after.Batches-before.Batches, int64((withAtt+19)/20); got != want {
		t.Fatalf("%d $batch envelopes for %d messages with attachments, want %d", got, withAtt, want)
	}
}

// TestAppRateSpansMailboxes: AppRate paces all mailboxes together. 50
// requests over 5 mailboxes at 20 per second: 20 go at once, 20 once the
// first ones have left the one-second window, the last 10 a second later —
// so they take at least 2 seconds (a slow machine only makes it longer).
func TestAppRateSpansMailboxes(t *testing.T) {
	var arrived atomic.Int64
	srv := httptest.NewTLSServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		arrived.Add(1)
		w.Header().Set("Content-Type", "application/json")
		_, _ = w.Write([]byte(`{"id":"f","displayName":"Inbox","totalItemCount":1}`))
	}))
	defer srv.Close()
	c, err := graphsync.New(graphsync.Config{BaseURL: srv.URL + "/v1.0", Transport: srv.Client().Transport, Tokens: staticTokens{}, AppRate: 20})
	if err != nil {
		t.Fatal(err)
	}
	start := time.Now()
	var wg sync.WaitGroup
	for k := 0; k < 5; k++ {
		m, err := c.Mailbox(fmt.Sprintf("mbx_%d", k), fmt.Sprintf("u%d@contoso.com", k))
		if err != nil {
			t.Fatal(err)
		}
		for i := 0; i < 10; i++ {
			wg.Add(1)
			go func() {
				defer wg.Done()
				if _, err := m.GetFolder(context.Background(), "inbox"); err != nil {
					t.Error(err)
				}
			}()
		}
	}
	wg.Wait()
	if n := arrived.Load(); n != 50 {
		t.Fatalf("%d requests arrived, want 50", n)
	}
	if d := time.Since(start); d < 1900*time.Millisecond {
		t.Fatalf("50 requests at 20 per second took %v, want at least 2 s", d)
	}
}
