package bridge

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/maildesk/maildesk/graphsync"
	"github.com/maildesk/maildesk/graphsync/m365sim"
	"github.com/maildesk/maildesk/store"
)

// authEnv is a connected mailbox synced by the real engine (msgraph-sdk-go
// client over the Connector's MSAL tokens) against the simulator.
type authEnv struct {
	*connectEnv
	tr     *http.Transport
	graph  *graphsync.Client
	syncer *Syncer
	mb     store.Mailbox
	upn    string
	gen    m365sim.GenOptions
}

func newAuthEnv(t *testing.T, seed int64) *authEnv {
	t.Helper()
	e := &authEnv{connectEnv: newConnectEnv(t, m365sim.Options{Seed: seed}), upn: "anna@contoso.com"}
	e.gen = m365sim.GenOptions{AttachmentRate: -1, Start: time.Date(2026, 11, 1, 0, 0, 0, 0, time.UTC), End: time.Now().Add(-time.Hour).Truncate(time.Hour)}
	e.sim.GenerateMailbox(e.upn, 8, e.gen)
	e.mb = e.mailbox(t, e.upn, "personal", "")
	if _, err := setConfig(e.st, e.mb.ID, func(m *store.MailboxConfig) {
		m.Folders, m.BackfillDays = []string{"inbox"}, 60
	}); err != nil {
		t.Fatal(err)
	}
	e.connect(t, e.mb.ID, e.upn)
	e.tr = graphsync.NewTransport(&tls.Config{RootCAs: e.sim.CertPool(), MinVersion: tls.VersionTLS12})
	var err error
	e.graph, err = graphsync.New(graphsync.Config{BaseURL: e.sim.GraphBaseURL(), Transport: e.tr, Tokens: e.c,
		Retry: graphsync.RetryOptions{BaseDelay: 10 * time.Millisecond, MaxDelay: 50 * time.Millisecond}})
	if err != nil {
		t.Fatal(err)
	}
	e.syncer, err = NewSyncer(SyncConfig{Store: e.st, Graph: e.graph, OnReauth: e.c.MarkReauth})
	if err != nil {
		t.Fatal(err)
	}
	e.syncAll(t)
	if n := e.st.MessageCount(e.mb.ID); n == 0 {
		t.Fatal("first sync stored nothing")
	}
	return e
}

// syncAll runs rounds until the mailbox has nothing more to do.
func (e *authEnv) syncAll(t *testing.T) {
	t.Helper()
	for i := 0; i < 50; i++ {
		res, err := e.syncer.SyncMailbox(context.Background(), e.mb.ID)
		if err != nil {
			m, _ := e.st.Mailbox(e.mb.ID)
			t.Fatalf("round %d: %v (mailbox %s %s: %s)", i, err, m.State, m.ErrorCode, m.Error)
		}
		if !res.More {
			return
		}
	}
	t.Fatal("sync never finished")
}

// wantReauth checks the mailbox is reauth_required with one "Sign in again"
// notice queued for Odoo, and not error/graph_error.
func (e *authEnv) wantReauth(t *testing.T, err error) {
	t.Helper()
	if !graphsync.IsReauth(err) {
		t.Fatalf("round: want a sign-in-again error, got %v", err)
	}
	m, _ := e.st.Mailbox(e.mb.ID)
	if m.State != StateReauthRequired || m.ErrorCode != "reauth_required" || !strings.Contains(m.Error, "sign in again") {
		t.Fatalf("mailbox: %s %s %q", m.State, m.ErrorCode, m.Error)
	}
	ns, _ := e.st.Notices()
	if len(ns) != 1 || ns[0].MailboxID != e.mb.ID || ns[0].Kind != "reauth_required" {
		t.Fatalf("notices: %+v", ns)
	}
	// The scheduler skips it from now on.
	if res, err := e.syncer.SyncMailbox(context.Background(), e.mb.ID); err != nil || !res.Skipped {
		t.Fatalf("reauth_required mailbox synced again: %+v %v", res, err)
	}
}

func (e *authEnv) deliver(t *testing.T, sim *m365sim.Sim, subject string) string {
	t.Helper()
	raw := fmt.Sprintf("From: Zoë Müller <zoe.mueller@example.de>\r\nTo: %s\r\nSubject: %s\r\nMessage-ID: <%d.%s@example.de>\r\nDate: %s\r\nContent-Type: text/plain; charset=utf-8\r\n\r\nHello\r\n",
		e.upn, subject, time.Now().UnixNano(), strings.ReplaceAll(subject, " ", "-"), time.Now().Format(time.RFC1123Z))
	id, err := sim.DeliverMIME(e.upn, "inbox", []byte(raw))
	if err != nil {
		t.Fatal(err)
	}
	return id
}

// (a) Graph stops taking the cached access token once: the request is
// retried once with a token re-acquired through MSAL and succeeds.
func TestGraph401RefreshesTokenAndRetriesOnce(t *testing.T) {
	e := newAuthEnv(t, 21)
	refreshes := e.sim.TokenGrants("refresh_token")
	e.sim.RevokeAccessTokens(e.upn)
	e.deliver(t, e.sim, "after revoke")
	before := e.st.MessageCount(e.mb.ID)
	e.syncAll(t)
	if got := e.st.MessageCount(e.mb.ID); got != before+1 {
		t.Fatalf("messages after the retried round: %d, want %d", got, before+1)
	}
	if got := e.sim.TokenGrants("refresh_token"); got != refreshes+1 {
		t.Fatalf("refresh grants: %d, want %d (the refused token re-acquired once)", got, refreshes+1)
	}
	if m, _ := e.st.Mailbox(e.mb.ID); m.State != StateConnected || m.Error != "" {
		t.Fatalf("mailbox: %s %q", m.State, m.Error)
	}
	if ns, _ := e.st.Notices(); len(ns) != 0 {
		t.Fatalf("notices: %+v", ns)
	}
	// One refused request only: the next one needs no refresh.
	e.sim.RejectTokens(e.upn, 1)
	e.syncAll(t)
	if st := e.sim.Stats(e.upn); st.Rejected != 1 {
		t.Fatalf("rejected: %d", st.Rejected)
	}
	if got := e.sim.TokenGrants("refresh_token"); got != refreshes+2 {
		t.Fatalf("refresh grants after a single 401: %d, want %d", got, refreshes+2)
	}
}

// (c) Graph refuses every token, even a fresh one: exactly one retry, then
// reauth_required with its notice.
func TestGraph401EveryTimeNeedsSignIn(t *testing.T) {
	e := newAuthEnv(t, 22)
	refreshes := e.sim.TokenGrants("refresh_token")
	e.sim.RejectTokens(e.upn, -1)
	_, err := e.syncer.SyncMailbox(context.Background(), e.mb.ID)
	var re *graphsync.ReauthError
	if !errors.As(err, &re) || re.Code != "graph_401" || !strings.Contains(re.Reason, "InvalidAuthenticationToken") {
		t.Fatalf("round: %v", err)
	}
	e.wantReauth(t, err)
	if st := e.sim.Stats(e.upn); st.Rejected != 2 {
		t.Fatalf("Graph saw %d refused requests, want 2 (one retry)", st.Rejected)
	}
	if got := e.sim.TokenGrants("refresh_token"); got != refreshes+1 {
		t.Fatalf("refresh grants: %d, want %d", got, refreshes+1)
	}
}

// (b) The simulator restarts (same seed, same address, new state): the
// stored tokens mean nothing to it ("IDX14100: JWT is not well formed",
// then an unknown refresh token). The mailbox must end reauth_required with
// its notice, not error/graph_error. After signing in again, the delta
// links of the old run are answered 410 SyncStateNotFound, the folder is
// resynced, the message added after the restart arrives and nothing is
// queued twice.
func TestSimulatorRestartNeedsSignInThenResyncs(t *testing.T) {
	e := newAuthEnv(t, 23)
	cur, err := e.st.Cursor(e.mb.ID, "inbox")
	if err != nil || cur.DeltaLink == "" {
		t.Fatalf("cursor: %+v %v", cur, err)
	}
	addr := strings.TrimPrefix(e.sim.URL(), "https://")
	if err := e.sim.Close(); err != nil {
		t.Fatal(err)
	}
	sim2, err := m365sim.New(m365sim.Options{Seed: 23, Listen: addr})
	if err != nil {
		t.Fatal(err)
	}
	sim2.GenerateMailbox(e.upn, 8, e.gen)
	// The sidecar trusts the restarted simulator's new CA (as serve
	// --simulate does after a restart).
	e.sim.CertPool().AppendCertsFromPEM(sim2.CAPEM())
	if err := sim2.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = sim2.Close() })
	e.tr.CloseIdleConnections()
	if tr, ok := e.hc.Transport.(*http.Transport); ok {
		tr.CloseIdleConnections()
	}
	_, err = e.syncer.SyncMailbox(context.Background(), e.mb.ID)
	e.wantReauth(t, err)
	m, _ := e.st.Mailbox(e.mb.ID)
	if !strings.Contains(m.Error, "AADSTS9002313") && !strings.Contains(m.Error, "refresh token is unknown") {
		t.Errorf("reason does not say why: %q", m.Error)
	}

	// Sign in again on the restarted simulator; mail arrives meanwhile.
	e.sim = sim2
	e.connect(t, e.mb.ID, e.upn)
	newID := e.deliver(t, sim2, "after restart")
	e.syncAll(t)
	after, _ := e.st.Cursor(e.mb.ID, "inbox")
	if after.Resyncs != cur.Resyncs+1 || after.DeltaLink == cur.DeltaLink {
		t.Fatalf("cursor after the restart: resyncs %d (before %d)", after.Resyncs, cur.Resyncs)
	}
	want := len(sim2.Messages(e.upn, "inbox"))
	if got := e.st.MessageCount(e.mb.ID); got != want {
		t.Fatalf("stored %d messages, the restarted inbox holds %d", got, want)
	}
	items, err := e.st.DueOutbox(time.Now().Add(24*time.Hour), 1<<30, 0, nil)
	if err != nil {
		t.Fatal(err)
	}
	seen, found := map[string]bool{}, false
	for _, it := range items {
		if it.MailboxID != e.mb.ID {
			continue
		}
		if seen[it.GraphID] {
			t.Fatalf("message %s queued twice", it.GraphID)
		}
		seen[it.GraphID] = true
		found = found || it.GraphID == newID
	}
	if len(seen) != want || !found {
		t.Fatalf("queued %d messages (want %d), the new one queued: %v", len(seen), want, found)
	}
}
