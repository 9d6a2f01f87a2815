package graphsync_test

import (
	"context"
	"crypto/tls"
	"errors"
	"strings"
	"sync"
	"testing"

	"github.com/maildesk/maildesk/graphsync"
	"github.com/maildesk/maildesk/graphsync/m365sim"
)

// invTokens hands out simulator tokens and counts what the Graph client
// does with them: acquisitions, invalidations, reauth marks. refuse makes
// every acquisition after an invalidation fail as a refused refresh.
type invTokens struct {
	sim *m365sim.Sim
	upn string

	mu                          sync.Mutex
	cur                         string
	issued, invalidated, marked int
	refuse                      bool
	markedErr                   error
}

func (t *invTokens) Token(ctx context.Context, id string) (string, error) {
	t.mu.Lock()
	defer t.mu.Unlock()
	if t.cur == "" {
		if t.refuse {
			return "", &graphsync.ReauthError{MailboxID: id, Code: "invalid_grant", AADSTS: "AADSTS9002313"}
		}
		tok, err := t.sim.IssueToken(t.upn, m365sim.DefaultApp().ClientID)
		if err != nil {
			return "", err
		}
		t.cur = tok
		t.issued++
	}
	return t.cur, nil
}

func (t *invTokens) Invalidate(ctx context.Context, id string) error {
	t.mu.Lock()
	defer t.mu.Unlock()
	t.cur = ""
	t.invalidated++
	return nil
}

func (t *invTokens) MarkReauth(ctx context.Context, id string, cause error) error {
	t.mu.Lock()
	defer t.mu.Unlock()
	t.marked++
	t.markedErr = cause
	return nil
}

func newInvRig(t *testing.T) (*m365sim.Sim, *invTokens, *graphsync.Mailbox) {
	t.Helper()
	sim, err := m365sim.New(m365sim.Options{Seed: 3, TimeScale: 50})
	if err != nil {
		t.Fatal(err)
	}
	if err := sim.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = sim.Close() })
	upn := "anna@contoso.com"
	sim.AddUser(upn, "Anna")
	ts := &invTokens{sim: sim, upn: upn}
	c, err := graphsync.New(graphsync.Config{BaseURL: sim.GraphBaseURL(), Tokens: ts,
		Transport: graphsync.NewTransport(&tls.Config{RootCAs: sim.CertPool(), MinVersion: tls.VersionTLS12})})
	if err != nil {
		t.Fatal(err)
	}
	m, err := c.Mailbox("mbx_1", upn)
	if err != nil {
		t.Fatal(err)
	}
	return sim, ts, m
}

// getUser is a request through the msgraph-sdk-go client itself.
func getUser(m *graphsync.Mailbox) error {
	_, err := m.SDK().Users().ByUserId(m.User()).Get(context.Background(), nil)
	return err
}

func TestSDK401ReacquiresTokenAndRetriesOnce(t *testing.T) {
	sim, ts, m := newInvRig(t)
	if err := getUser(m); err != nil {
		t.Fatal(err)
	}
	sim.RevokeAccessTokens(ts.upn)
	if err := getUser(m); err != nil {
		t.Fatalf("after the token was revoked: %v", err)
	}
	if ts.issued != 2 || ts.invalidated != 1 || ts.marked != 0 {
		t.Fatalf("issued %d invalidated %d marked %d: want the token re-acquired once", ts.issued, ts.invalidated, ts.marked)
	}
	// A later 401 is again retried once (the retry is per request).
	sim.RejectTokens(ts.upn, 1)
	if err := getUser(m); err != nil || ts.invalidated != 2 {
		t.Fatalf("second single 401: %v (invalidated %d)", err, ts.invalidated)
	}
}

func TestSDK401EveryTimeIsReauthAfterOneRetry(t *testing.T) {
	sim, ts, m := newInvRig(t)
	sim.RejectTokens(ts.upn, -1)
	err := getUser(m)
	var re *graphsync.ReauthError
	if !errors.As(err, &re) || re.Code != "graph_401" || !strings.Contains(re.Reason, "InvalidAuthenticationToken") {
		t.Fatalf("want a graph_401 ReauthError, got %v", err)
	}
	if got := sim.Stats(ts.upn).Rejected; got != 2 {
		t.Fatalf("Graph saw %d refused requests, want 2 (exactly one retry)", got)
	}
	if ts.invalidated != 1 || ts.issued != 2 || ts.marked != 1 || !graphsync.IsReauth(ts.markedErr) {
		t.Fatalf("invalidated %d issued %d marked %d (%v)", ts.invalidated, ts.issued, ts.marked, ts.markedErr)
	}
}

func TestSDK401RefusedRefreshIsReauth(t *testing.T) {
	sim, ts, m := newInvRig(t)
	if err := getUser(m); err != nil {
		t.Fatal(err)
	}
	sim.RevokeAccessTokens(ts.upn)
	ts.refuse = true
	err := getUser(m)
	var re *graphsync.ReauthError
	if !errors.As(err, &re) || re.Code != "invalid_grant" {
		t.Fatalf("want the refresh's ReauthError, got %v", err)
	}
}
