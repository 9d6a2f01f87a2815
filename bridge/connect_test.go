package bridge

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"io"
	"net/http"
	"net/url"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/rs/zerolog"

	"github.com/maildesk/maildesk/graphsync"
	"github.com/maildesk/maildesk/graphsync/m365sim"
	"github.com/maildesk/maildesk/store"
)

// syncBuffer collects log output from many goroutines.
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

// connectEnv is a sidecar's connect side against the simulator, with the
// real MSAL client and a real store file.
type connectEnv struct {
	sim    *m365sim.Sim
	path   string
	key    []byte
	st     *store.Store
	auth   *graphsync.Auth
	c      *Connector
	logs   *syncBuffer
	hc     *http.Client
	offset atomic.Int64 // added to the clock (state expiry tests)
	// answers collects every RPC-visible answer and error message.
	answers []string
}

const testRedirect = "https://127.0.0.1:8443/maildesk/oauth/callback"

var admin = Actor{UID: 2}

var maildeskAdmin = Actor{UID: 2, Admin: true}

func newConnectEnv(t testing.TB, opts m365sim.Options) *connectEnv {
	t.Helper()
	sim, err := m365sim.New(opts)
	if err != nil {
		t.Fatal(err)
	}
	if err := sim.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = sim.Close() })
	e := &connectEnv{sim: sim, path: filepath.Join(t.TempDir(), "maildesk.db"), key: bytes.Repeat([]byte{7}, 32), logs: &syncBuffer{}}
	e.hc = &http.Client{Timeout: 20 * time.Second, Transport: sim.Transport()}
	e.open(t)
	app := m365sim.DefaultApp()
	settings := store.DefaultSettings()
	settings.Azure = store.AzureSettings{Tenant: sim.Tenant(), ClientID: app.ClientID, RedirectURI: testRedirect,
		Authority: sim.URL(), ClientSecret: app.ClientSecret}
	if err := e.st.SaveSettings(settings); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = e.st.Close() })
	return e
}

func (e *connectEnv) now() time.Time { return time.Now().Add(time.Duration(e.offset.Load())) }

// open (re)opens the store and builds a fresh Auth and Connector, as a
// restarted sidecar would.
func (e *connectEnv) open(t testing.TB) {
	t.Helper()
	st, err := store.Open(e.path, e.key, store.Options{Now: e.now})
	if err != nil {
		t.Fatal(err)
	}
	log := zerolog.New(e.logs)
	e.st = st
	e.auth = graphsync.NewAuth(st, NewAccounts(st), graphsync.AuthOptions{HTTPClient: e.hc, GraphBaseURL: e.sim.GraphBaseURL(), Log: log})
	e.c = NewConnector(st, e.auth, ConnectorOptions{Log: log, Now: e.now})
}

func (e *connectEnv) restart(t testing.TB) {
	t.Helper()
	if err := e.st.Close(); err != nil {
		t.Fatal(err)
	}
	e.open(t)
}

func (e *connectEnv) mailbox(t testing.TB, email, kind, signIn string) store.Mailbox {
	t.Helper()
	m, err := e.st.CreateMailbox(store.Mailbox{MailboxConfig: store.MailboxConfig{Email: email, Kind: kind, SignInEmail: signIn, OwnerUID: 2, MainUserID: 2, UserIDs: []int64{2}, Mode: "log"}, MailboxStatus: store.MailboxStatus{State: StateDraft}})
	if err != nil {
		t.Fatal(err)
	}
	return m
}

func (e *connectEnv) record(v any, err error) {
	if v != nil {
		b, _ := json.Marshal(v)
		e.answers = append(e.answers, string(b))
	}
	if err != nil {
		e.answers = append(e.answers, err.Error())
		var be *Error
		if errors.As(err, &be) {
			e.answers = append(e.answers, be.Message)
		}
	}
}

// start runs mailbox.connect and the simulated browser; it returns what
// Microsoft put on the redirect.
func (e *connectEnv) start(t testing.TB, id, upn string, deny bool) CompleteParams {
	t.Helper()
	ctx := context.Background()
	res, err := e.c.Connect(ctx, admin, ConnectParams{MailboxID: id})
	e.record(res, err)
	if err != nil {
		t.Fatalf("connect %s: %v", id, err)
	}
	var loc *url.URL
	if deny {
		loc, err = e.sim.SignInDeny(ctx, res.AuthURL, upn)
	} else {
		loc, err = e.sim.SignIn(ctx, res.AuthURL, upn)
	}
	if err != nil {
		t.Fatalf("sign in %s as %s: %v", id, upn, err)
	}
	q := loc.Query()
	return CompleteParams{Code: q.Get("code"), State: q.Get("state"), Error: q.Get("error"), ErrorDescription: q.Get("error_description")}
}

func (e *connectEnv) complete(p CompleteParams) (MailboxView, error) {
	v, err := e.c.Complete(context.Background(), Actor{}, p)
	e.record(v, err)
	return v, err
}

func (e *connectEnv) connect(t testing.TB, id, upn string) MailboxView {
	t.Helper()
	v, err := e.complete(e.start(t, id, upn, false))
	if err != nil {
		t.Fatalf("complete %s: %v", id, err)
	}
	return v
}

// graphGet calls Graph with a token the TokenSource hands out.
func (e *connectEnv) graphGet(t testing.TB, ts graphsync.TokenSource, id, path string) (int, map[string]any) {
	t.Helper()
	tok, err := ts.Token(context.Background(), id)
	if err != nil {
		t.Fatalf("token for %s: %v", id, err)
	}
	return e.graphGetWith(t, tok, path)
}

func (e *connectEnv) graphGetWith(t testing.TB, tok, path string) (int, map[string]any) {
	t.Helper()
	req, _ := http.NewRequest(http.MethodGet, e.sim.GraphBaseURL()+path, nil)
	req.Header.Set("Authorization", "Bearer "+tok)
	resp, err := e.hc.Do(req)
	if err != nil {
		t.Fatalf("GET %s: %v", path, err)
	}
	defer resp.Body.Close()
	var body map[string]any
	raw, _ := io.ReadAll(resp.Body)
	_ = json.Unmarshal(raw, &body)
	return resp.StatusCode, body
}

func codeOf(err error) string {
	var be *Error
	if errors.As(err, &be) {
		return be.Code
	}
	return ""
}

func TestConnectPersonalAndSharedEndToEnd(t *testing.T) {
	e := newConnectEnv(t, m365sim.Options{Seed: 1})
	e.sim.AddUser("anna@contoso.com", "Anna Berg")
	e.sim.AddSharedMailbox("support@contoso.com", "Support", m365sim.Grant{User: "anna@contoso.com", FullAccess: true, SendAs: true})
	anna := e.mailbox(t, "anna@contoso.com", "personal", "")
	support := e.mailbox(t, "support@contoso.com", "shared", "anna@contoso.com")

	res, err := e.c.Connect(context.Background(), admin, ConnectParams{MailboxID: anna.ID})
	if err != nil {
		t.Fatal(err)
	}
	u, _ := url.Parse(res.AuthURL)
	q := u.Query()
	for k, want := range map[string]string{"code_challenge_method": "S256", "login_hint": "anna@contoso.com", "prompt": "select_account", "response_type": "code", "redirect_uri": testRedirect} {
		if q.Get(k) != want {
			t.Errorf("auth_url %s = %q, want %q", k, q.Get(k), want)
		}
	}
	if q.Get("state") == "" || len(q.Get("code_challenge")) != 43 || !strings.Contains(q.Get("scope"), "offline_access") || !strings.Contains(q.Get("scope"), "Mail.Send") {
		t.Errorf("auth_url lacks state, challenge or scopes: %s", res.AuthURL)
	}
	if d := time.Until(res.ExpiresAt); d < 14*time.Minute || d > 16*time.Minute {
		t.Errorf("expires_at %v is not 15 minutes ahead", res.ExpiresAt)
	}
	if m, _ := e.st.Mailbox(anna.ID); m.State != StatePendingConsent {
		t.Fatalf("after connect: state %s", m.State)
	}
	loc, err := e.sim.SignIn(context.Background(), res.AuthURL, "anna@contoso.com")
	if err != nil {
		t.Fatal(err)
	}
	v, err := e.complete(CompleteParams{Code: loc.Query().Get("code"), State: loc.Query().Get("state")})
	if err != nil {
		t.Fatal(err)
	}
	if v.State != StateConnected || v.ConnectedAs != "anna@contoso.com" {
		t.Fatalf("anna: %+v", v)
	}
	sv := e.connect(t, support.ID, "anna@contoso.com")
	if sv.State != StateConnected || sv.ConnectedAs != "anna@contoso.com" {
		t.Fatalf("support: %+v", sv)
	}
	if m, _ := e.st.Mailbox(support.ID); m.HomeAccountID == "" {
		t.Fatal("home account id not stored")
	}
	tokBefore, err := e.c.Token(context.Background(), anna.ID)
	if err != nil {
		t.Fatal(err)
	}

	// Restart: a new store, Auth and Connector from the same file.
	e.restart(t)
	tokAfter, err := e.c.Token(context.Background(), anna.ID)
	if err != nil {
		t.Fatal(err)
	}
	if tokAfter != tokBefore {
		t.Error("after restart the access token did not come from the persisted cache")
	}
	if code, body := e.graphGetWith(t, tokAfter, "/me"); code != 200 || body["userPrincipalName"] != "anna@contoso.com" {
		t.Fatalf("GET /me after restart: %d %v", code, body)
	}
	if code, body := e.graphGet(t, e.c, support.ID, "/users/support@contoso.com/mailFolders/inbox"); code != 200 {
		t.Fatalf("GET shared inbox after restart: %d %v", code, body)
	}
	entries, _, _ := e.st.AuditList(anna.ID, 20, 0)
	var actions []string
	for _, en := range entries {
		actions = append(actions, en.Action)
	}
	if got := strings.Join(actions, ","); !strings.Contains(got, "mailbox.connected") || !strings.Contains(got, "mailbox.connect_started") || strings.Count(got, "mailbox.state") != 2 {
		t.Errorf("audit of anna: %s", got)
	}
	if e.auth.Clients() != 2 {
		t.Errorf("clients in memory: %d", e.auth.Clients())
	}
}

// snapshot is what "the mailbox as it was" means: its record and its tokens.
type snapshot struct {
	m      store.Mailbox
	tokens []byte
}

func (e *connectEnv) snap(t testing.TB, id string) snapshot {
	t.Helper()
	m, err := e.st.Mailbox(id)
	if err != nil {
		t.Fatal(err)
	}
	tok, err := e.st.TokenCache(id)
	if err != nil {
		t.Fatal(err)
	}
	return snapshot{m, tok}
}

// sameExceptError compares two snapshots; the error fields may change on a
// mailbox still waiting for its sign-in.
func sameExceptError(a, b snapshot) bool {
	am, bm := a.m, b.m
	am.Error, am.ErrorCode, bm.Error, bm.ErrorCode = "", "", "", ""
	am.UpdatedAt, bm.UpdatedAt = time.Time{}, time.Time{}
	return reflect.DeepEqual(am, bm) && bytes.Equal(a.tokens, b.tokens)
}

func TestCompleteRefusalsLeaveMailboxAsItWas(t *testing.T) {
	e := newConnectEnv(t, m365sim.Options{Seed: 2})
	e.sim.AddUser("anna@contoso.com", "Anna Berg")
	e.sim.AddUser("bob@contoso.com", "Bob Stone")
	e.sim.AddSharedMailbox("sales@contoso.com", "Sales", m365sim.Grant{User: "anna@contoso.com", FullAccess: true})
	anna := e.mailbox(t, "anna@contoso.com", "personal", "")
	bob := e.mailbox(t, "bob@contoso.com", "personal", "")
	sales := e.mailbox(t, "sales@contoso.com", "shared", "bob@contoso.com")

	t.Run("replayed state", func(t *testing.T) {
		p := e.start(t, anna.ID, "anna@contoso.com", false)
		if _, err := e.complete(p); err != nil {
			t.Fatal(err)
		}
		before := e.snap(t, anna.ID)
		_, err := e.complete(p)
		if codeOf(err) != "invalid_state" || !strings.Contains(err.Error(), "already used") {
			t.Fatalf("replay: %v", err)
		}
		if after := e.snap(t, anna.ID); !reflect.DeepEqual(before, after) {
			t.Fatal("replay changed the mailbox")
		}
	})
	t.Run("expired state", func(t *testing.T) {
		p := e.start(t, bob.ID, "bob@contoso.com", false)
		before := e.snap(t, bob.ID)
		e.offset.Store(int64(16 * time.Minute))
		defer e.offset.Store(0)
		_, err := e.complete(p)
		if codeOf(err) != "state_expired" || !strings.Contains(err.Error(), "bob@contoso.com") {
			t.Fatalf("expired: %v", err)
		}
		if after := e.snap(t, bob.ID); !reflect.DeepEqual(before, after) || after.m.HomeAccountID != "" || after.tokens != nil {
			t.Fatal("expired state changed the mailbox")
		}
	})
	t.Run("state of another mailbox", func(t *testing.T) {
		p := e.start(t, bob.ID, "bob@contoso.com", false)
		p.MailboxID = anna.ID
		beforeA, beforeB := e.snap(t, anna.ID), e.snap(t, bob.ID)
		_, err := e.complete(p)
		if codeOf(err) != "invalid_state" || !strings.Contains(err.Error(), "another mailbox") {
			t.Fatalf("cross-mailbox: %v", err)
		}
		if !reflect.DeepEqual(beforeA, e.snap(t, anna.ID)) || !reflect.DeepEqual(beforeB, e.snap(t, bob.ID)) {
			t.Fatal("a state of another mailbox changed a mailbox")
		}
	})
	t.Run("wrong account on a waiting mailbox", func(t *testing.T) {
		p := e.start(t, bob.ID, "anna@contoso.com", false)
		before := e.snap(t, bob.ID)
		_, err := e.complete(p)
		if codeOf(err) != "wrong_account" || !strings.Contains(err.Error(), "anna@contoso.com signed in, but this mailbox is bob@contoso.com") {
			t.Fatalf("wrong account: %v", err)
		}
		after := e.snap(t, bob.ID)
		if !sameExceptError(before, after) || after.tokens != nil || after.m.State != StatePendingConsent {
			t.Fatalf("wrong account stored something: %+v", after.m)
		}
		if after.m.ErrorCode != "wrong_account" {
			t.Errorf("waiting mailbox does not show the error: %q", after.m.ErrorCode)
		}
	})
	t.Run("wrong account on a connected mailbox", func(t *testing.T) {
		before := e.snap(t, anna.ID)
		if before.m.State != StateConnected || before.tokens == nil {
			t.Fatalf("anna not connected: %+v", before.m)
		}
		p := e.start(t, anna.ID, "bob@contoso.com", false)
		_, err := e.complete(p)
		if codeOf(err) != "wrong_account" {
			t.Fatalf("wrong account: %v", err)
		}
		if after := e.snap(t, anna.ID); !reflect.DeepEqual(before, after) {
			t.Fatalf("wrong account changed a connected mailbox:\n%+v\n%+v", before.m, after.m)
		}
	})
	t.Run("delegate without access to the shared mailbox", func(t *testing.T) {
		p := e.start(t, sales.ID, "bob@contoso.com", false)
		before := e.snap(t, sales.ID)
		_, err := e.complete(p)
		if codeOf(err) != "no_mailbox_access" || !strings.Contains(err.Error(), "Full Access") {
			t.Fatalf("no access: %v", err)
		}
		if after := e.snap(t, sales.ID); !sameExceptError(before, after) || after.tokens != nil {
			t.Fatal("no-access sign-in stored tokens")
		}
	})
	t.Run("denied consent", func(t *testing.T) {
		p := e.start(t, bob.ID, "bob@contoso.com", true)
		if p.Error != "access_denied" {
			t.Fatalf("sim redirect: %+v", p)
		}
		before := e.snap(t, bob.ID)
		_, err := e.complete(p)
		if codeOf(err) != "consent_denied" || !strings.Contains(err.Error(), "declined") {
			t.Fatalf("denied: %v", err)
		}
		after := e.snap(t, bob.ID)
		if !sameExceptError(before, after) || after.m.ErrorCode != "consent_denied" {
			t.Fatalf("denied consent: %+v", after.m)
		}
	})
	t.Run("admin consent missing", func(t *testing.T) {
		p := e.start(t, bob.ID, "bob@contoso.com", false)
		before := e.snap(t, bob.ID)
		_, err := e.complete(CompleteParams{State: p.State, Error: "consent_required",
			ErrorDescription: "AADSTS65001: The user or administrator has not consented to use the application.\r\nTrace ID: x"})
		if codeOf(err) != "consent_missing" || !strings.Contains(err.Error(), "admin consent") || strings.Contains(err.Error(), "Trace ID") {
			t.Fatalf("consent missing: %v", err)
		}
		if after := e.snap(t, bob.ID); !sameExceptError(before, after) {
			t.Fatal("consent_missing changed the mailbox")
		}
	})
	t.Run("bad params", func(t *testing.T) {
		if _, err := e.complete(CompleteParams{Code: "x"}); codeOf(err) != "invalid_params" {
			t.Fatalf("no state: %v", err)
		}
		if _, err := e.complete(CompleteParams{State: "nope", Code: "x"}); codeOf(err) != "invalid_state" {
			t.Fatalf("unknown state: %v", err)
		}
	})
	// After all that, a proper sign-in still works.
	if v := e.connect(t, bob.ID, "bob@contoso.com"); v.State != StateConnected || v.Error != "" {
		t.Fatalf("bob after refusals: %+v", v)
	}
}

func TestRevokedUserNeedsReauthAndReconnectKeepsCursors(t *testing.T) {
	e := newConnectEnv(t, m365sim.Options{Seed: 3})
	e.sim.AddUser("anna@contoso.com", "Anna Berg")
	e.sim.AddUser("bob@contoso.com", "Bob Stone")
	anna := e.mailbox(t, "anna@contoso.com", "personal", "")
	bob := e.mailbox(t, "bob@contoso.com", "personal", "")
	e.connect(t, anna.ID, "anna@contoso.com")
	e.connect(t, bob.ID, "bob@contoso.com")
	cur := store.Cursor{Folder: "inbox", DeltaLink: "https://graph.example/delta?token=abc", Rounds: 7}
	if err := e.st.PutCursor(anna.ID, cur); err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()

	e.sim.RevokeUser("anna@contoso.com")
	// One sync cycle as the engine runs it: token, Graph call; a 401 drops the
	// cached access token and asks again, which Microsoft refuses.
	code, _ := e.graphGet(t, e.c, anna.ID, "/me")
	if code != http.StatusUnauthorized {
		t.Fatalf("Graph with a revoked token: %d", code)
	}
	if err := e.c.Invalidate(ctx, anna.ID); err != nil {
		t.Fatal(err)
	}
	_, err := e.c.Token(ctx, anna.ID)
	var re *graphsync.ReauthError
	if !errors.As(err, &re) || re.Code != "invalid_grant" || re.AADSTS != "AADSTS50173" {
		t.Fatalf("token after revoke: %v", err)
	}
	m, _ := e.st.Mailbox(anna.ID)
	if m.State != StateReauthRequired || m.ErrorCode != "reauth_required" || !strings.Contains(m.Error, "sign in again") || !strings.Contains(m.Error, "AADSTS50173") {
		t.Fatalf("after revoke: %+v", m)
	}
	notices, _ := e.st.Notices()
	if len(notices) != 1 || notices[0].MailboxID != anna.ID || notices[0].Kind != "reauth_required" || !strings.Contains(notices[0].Reason, "AADSTS50173") {
		t.Fatalf("notices after revoke: %+v", notices)
	}
	// Later calls do not hit Microsoft again and say the same.
	if _, err := e.c.Token(ctx, anna.ID); !graphsync.IsReauth(err) {
		t.Fatalf("second token call: %v", err)
	}
	// Other mailboxes carry on.
	if code, _ := e.graphGet(t, e.c, bob.ID, "/me"); code != 200 {
		t.Fatalf("bob after anna's revoke: %d", code)
	}
	if mb, _ := e.st.Mailbox(bob.ID); mb.State != StateConnected {
		t.Fatalf("bob: %s", mb.State)
	}

	// Reconnect: back to connected, sync position kept.
	v := e.connect(t, anna.ID, "anna@contoso.com")
	if v.State != StateConnected || v.Error != "" {
		t.Fatalf("reconnect: %+v", v)
	}
	got, err := e.st.Cursor(anna.ID, "inbox")
	if err != nil || got.DeltaLink != cur.DeltaLink || got.Rounds != 7 {
		t.Fatalf("cursor after reconnect: %+v %v", got, err)
	}
	if ns, _ := e.st.Notices(); len(ns) != 0 {
		t.Errorf("stale notice kept after reconnect: %+v", ns)
	}
	if code, _ := e.graphGet(t, e.c, anna.ID, "/me"); code != 200 {
		t.Fatalf("Graph after reconnect: %d", code)
	}
}

func TestRefreshRefusalsBecomeReauth(t *testing.T) {
	e := newConnectEnv(t, m365sim.Options{Seed: 4})
	cases := []struct {
		upn, code, aadsts string
		do                func()
	}{
		{"inactive@contoso.com", "invalid_grant", "AADSTS700082", func() { e.sim.ExpireRefreshTokens("inactive@contoso.com") }},
		{"mfa@contoso.com", "interaction_required", "AADSTS50079", func() { e.sim.RequireMFA("mfa@contoso.com") }},
	}
	for _, tc := range cases {
		e.sim.AddUser(tc.upn, tc.upn)
		m := e.mailbox(t, tc.upn, "personal", "")
		e.connect(t, m.ID, tc.upn)
		tc.do()
		if err := e.c.Invalidate(context.Background(), m.ID); err != nil {
			t.Fatal(err)
		}
		_, err := e.c.Token(context.Background(), m.ID)
		var re *graphsync.ReauthError
		if !errors.As(err, &re) || re.Code != tc.code || re.AADSTS != tc.aadsts {
			t.Fatalf("%s: %v", tc.upn, err)
		}
		if got, _ := e.st.Mailbox(m.ID); got.State != StateReauthRequired {
			t.Fatalf("%s: state %s", tc.upn, got.State)
		}
	}
	// Consent withdrawn for the app: every mailbox needs a new sign-in.
	e.sim.AddUser("c@contoso.com", "C")
	m := e.mailbox(t, "c@contoso.com", "personal", "")
	e.connect(t, m.ID, "c@contoso.com")
	e.sim.RequireConsent(m365sim.DefaultApp().ClientID)
	_ = e.c.Invalidate(context.Background(), m.ID)
	if _, err := e.c.Token(context.Background(), m.ID); !graphsync.IsReauth(err) || !strings.Contains(err.Error(), "AADSTS65001") {
		t.Fatalf("consent withdrawn: %v", err)
	}
}

func TestDisconnectErasesTokens(t *testing.T) {
	e := newConnectEnv(t, m365sim.Options{Seed: 5})
	e.sim.AddUser("anna@contoso.com", "Anna Berg")
	anna := e.mailbox(t, "anna@contoso.com", "personal", "")
	e.connect(t, anna.ID, "anna@contoso.com")
	if _, err := e.c.Disconnect(context.Background(), Actor{UID: 99}, ConnectParams{MailboxID: anna.ID}); codeOf(err) != "forbidden" {
		t.Fatalf("stranger disconnects: %v", err)
	}
	v, err := e.c.Disconnect(context.Background(), admin, ConnectParams{MailboxID: anna.ID})
	e.record(v, err)
	if err != nil || v.State != StateDisconnected {
		t.Fatalf("disconnect: %+v %v", v, err)
	}
	if tok, _ := e.st.TokenCache(anna.ID); tok != nil {
		t.Fatal("tokens kept after disconnect")
	}
	if _, err := e.c.Token(context.Background(), anna.ID); !errors.Is(err, graphsync.ErrNotConnected) {
		t.Fatalf("token after disconnect: %v", err)
	}
	// One entry, written with the state change: the action, from and to.
	entries, _, _ := e.st.AuditList(anna.ID, 5, 0)
	if len(entries) < 2 || entries[0].Action != "mailbox.disconnect" || entries[0].Detail["from"] != StateConnected ||
		entries[0].Detail["to"] != StateDisconnected || entries[0].Detail["tokens"] != "erased" || entries[1].Detail["to"] == StateDisconnected {
		t.Fatalf("audit: %+v", entries)
	}
	// Connecting again works from disconnected.
	if v := e.connect(t, anna.ID, "anna@contoso.com"); v.State != StateConnected {
		t.Fatalf("reconnect: %+v", v)
	}
	// Delete erases the cache too (store); the sweep drops the client.
	if err := e.st.DeleteMailbox(anna.ID); err != nil {
		t.Fatal(err)
	}
	if tok, _ := e.st.TokenCache(anna.ID); tok != nil {
		t.Fatal("delete kept tokens")
	}
	if e.auth.Clients() != 1 {
		t.Fatalf("%d clients before the sweep", e.auth.Clients())
	}
	if n, err := e.auth.Sweep(); err != nil || n != 1 || e.auth.Clients() != 0 {
		t.Fatalf("sweep: %d %v, %d left", n, err, e.auth.Clients())
	}
}

func TestAdminConsentURL(t *testing.T) {
	e := newConnectEnv(t, m365sim.Options{Seed: 6})
	res, err := e.c.AdminConsentURL(maildeskAdmin, AdminURLParams{})
	if err != nil {
		t.Fatal(err)
	}
	u, _ := url.Parse(res.URL)
	if u.Path != "/"+e.sim.Tenant()+"/v2.0/adminconsent" || u.Query().Get("client_id") != m365sim.DefaultApp().ClientID ||
		u.Query().Get("redirect_uri") != testRedirect || !strings.Contains(u.Query().Get("scope"), "https://graph.microsoft.com/Mail.ReadWrite.Shared") {
		t.Fatalf("admin url %s", res.URL)
	}
	if _, err := e.c.AdminConsentURL(admin, AdminURLParams{}); codeOf(err) != "forbidden" {
		t.Fatalf("non-admin: %v", err)
	}
	// The simulator accepts it and redirects with admin_consent=True.
	hc := &http.Client{Transport: e.sim.Transport(), Timeout: 10 * time.Second, CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}
	resp, err := hc.Get(res.URL)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	loc, _ := url.Parse(resp.Header.Get("Location"))
	if resp.StatusCode != http.StatusFound || loc.Query().Get("admin_consent") != "True" {
		t.Fatalf("admin consent: %d %s", resp.StatusCode, loc)
	}
	if res, err := e.c.AdminConsentURL(maildeskAdmin, AdminURLParams{Tenant: "fabrikam.com"}); err != nil || !strings.Contains(res.URL, "/fabrikam.com/v2.0/adminconsent") {
		t.Fatalf("tenant override: %v %v", res, err)
	}
}

func TestConnectNeedsConfiguredApp(t *testing.T) {
	e := newConnectEnv(t, m365sim.Options{Seed: 7})
	anna := e.mailbox(t, "anna@contoso.com", "personal", "")
	s, _ := e.st.Settings()
	s.Azure.ClientSecret = ""
	if err := e.st.SaveSettings(s); err != nil {
		t.Fatal(err)
	}
	_, err := e.c.Connect(context.Background(), admin, ConnectParams{MailboxID: anna.ID})
	if codeOf(err) != "not_configured" || !strings.Contains(err.Error(), "client secret or certificate") {
		t.Fatalf("unconfigured: %v", err)
	}
	if m, _ := e.st.Mailbox(anna.ID); m.State != StateDraft {
		t.Fatalf("state changed: %s", m.State)
	}
	if _, err := e.c.Connect(context.Background(), Actor{UID: 42}, ConnectParams{MailboxID: anna.ID}); codeOf(err) != "forbidden" {
		t.Fatalf("stranger connects: %v", err)
	}
	if _, err := e.c.Connect(context.Background(), admin, ConnectParams{MailboxID: "mbx_nope"}); codeOf(err) != "not_found" {
		t.Fatalf("unknown mailbox: %v", err)
	}
}

// TestNoSecretLeaks runs connects, refreshes, a revoke and a disconnect, then
// looks for every token, code and secret in the database file, the logs and
// every answer.
func TestNoSecretLeaks(t *testing.T) {
	e := newConnectEnv(t, m365sim.Options{Seed: 8})
	e.sim.AddUser("anna@contoso.com", "Anna Berg")
	e.sim.AddUser("bob@contoso.com", "Bob Stone")
	e.sim.AddSharedMailbox("support@contoso.com", "Support", m365sim.Grant{User: "anna@contoso.com", FullAccess: true})
	anna := e.mailbox(t, "anna@contoso.com", "personal", "")
	bob := e.mailbox(t, "bob@contoso.com", "personal", "")
	support := e.mailbox(t, "support@contoso.com", "shared", "anna@contoso.com")
	ctx := context.Background()

	var secrets []string
	secrets = append(secrets, m365sim.DefaultApp().ClientSecret)
	for _, m := range []store.Mailbox{anna, bob, support} {
		p := e.start(t, m.ID, map[string]string{anna.ID: "anna@contoso.com", bob.ID: "bob@contoso.com", support.ID: "anna@contoso.com"}[m.ID], false)
		secrets = append(secrets, p.Code)
		if _, err := e.complete(p); err != nil {
			t.Fatal(err)
		}
	}
	// A failing completion logs too.
	p := e.start(t, bob.ID, "anna@contoso.com", false)
	secrets = append(secrets, p.Code)
	_, err := e.complete(p)
	if err == nil {
		t.Fatal("wrong account accepted")
	}
	e.record(e.c.AdminConsentURL(maildeskAdmin, AdminURLParams{}))
	collect := func(id string) {
		tok, err := e.c.Token(ctx, id)
		if err == nil {
			secrets = append(secrets, tok)
		}
		raw, _ := e.st.TokenCache(id)
		var c struct {
			AccessToken, RefreshToken, IdToken map[string]struct {
				Secret string `json:"secret"`
			}
		}
		if raw != nil {
			if err := json.Unmarshal(raw, &c); err != nil {
				t.Fatal(err)
			}
		}
		for _, sec := range []map[string]struct {
			Secret string `json:"secret"`
		}{c.AccessToken, c.RefreshToken, c.IdToken} {
			for _, v := range sec {
				secrets = append(secrets, v.Secret)
			}
		}
	}
	for _, id := range []string{anna.ID, bob.ID, support.ID} {
		collect(id)
	}
	// Refresh everything once, then revoke bob and disconnect support.
	e.sim.ExpireAccessTokens()
	for _, id := range []string{anna.ID, bob.ID, support.ID} {
		_ = e.c.Invalidate(ctx, id)
		collect(id)
	}
	e.sim.RevokeUser("bob@contoso.com")
	_ = e.c.Invalidate(ctx, bob.ID)
	if _, err := e.c.Token(ctx, bob.ID); !graphsync.IsReauth(err) {
		t.Fatalf("bob: %v", err)
	}
	e.record(e.c.Disconnect(ctx, admin, ConnectParams{MailboxID: support.ID}))
	mbs, _ := e.st.Mailboxes()
	for _, m := range mbs {
		e.record(ViewOf(m), nil)
	}

	if err := e.st.Close(); err != nil {
		t.Fatal(err)
	}
	file, err := os.ReadFile(e.path)
	if err != nil {
		t.Fatal(err)
	}
	logs := e.logs.String()
	answers := strings.Join(e.answers, "\n")
	if len(logs) == 0 || len(e.answers) < 10 {
		t.Fatalf("nothing to search: %d bytes of logs, %d answers", len(logs), len(e.answers))
	}
	n := 0
	for _, s := range secrets {
		if len(s) < 8 {
			continue
		}
		n++
		for where, hay := range map[string][]byte{"database file": file, "logs": []byte(logs), "RPC answers": []byte(answers)} {
			if bytes.Contains(hay, []byte(s)) {
				t.Errorf("a secret (%.6s…) is in the %s", s, where)
			}
		}
	}
	if n < 15 {
		t.Fatalf("only %d secrets collected", n)
	}
	// Token-shaped strings of the simulator never appear in the file either.
	for _, prefix := range []string{"sim-at.", "sim-rt.", "maildesk-sim-secret", "0.sim-code."} {
		if bytes.Contains(file, []byte(prefix)) {
			t.Errorf("%q found in the database file", prefix)
		}
	}
	e.open(t) // Cleanup closes it again
}

// TestConcurrentTokensAndInvalidate hammers one Auth from many goroutines
// (run with -race): silent reads, refreshes after Invalidate, and a
// reconnect of another mailbox at the same time.
func TestConcurrentTokensAndInvalidate(t *testing.T) {
	e := newConnectEnv(t, m365sim.Options{Seed: 12})
	var ids []string
	for _, upn := range []string{"a@contoso.com", "b@contoso.com", "c@contoso.com", "d@contoso.com"} {
		e.sim.AddUser(upn, upn)
		m := e.mailbox(t, upn, "personal", "")
		e.connect(t, m.ID, upn)
		ids = append(ids, m.ID)
	}
	ctx := context.Background()
	var wg sync.WaitGroup
	errs := make(chan error, 100)
	for g := 0; g < 8; g++ {
		wg.Add(1)
		go func(g int) {
			defer wg.Done()
			for i := 0; i < 10; i++ {
				id := ids[(g+i)%len(ids)]
				if i%3 == 0 {
					if err := e.c.Invalidate(ctx, id); err != nil {
						errs <- err
					}
				}
				if _, err := e.c.Token(ctx, id); err != nil {
					errs <- err
				}
			}
		}(g)
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Error(err)
	}
	for _, id := range ids {
		if code, _ := e.graphGet(t, e.c, id, "/me"); code != 200 {
			t.Fatalf("%s: Graph %d", id, code)
		}
	}
}
