package bridge

import (
	"context"
	"crypto/tls"
	"errors"
	"testing"
	"time"

	"github.com/maildesk/maildesk/graphsync"
	"github.com/maildesk/maildesk/graphsync/m365sim"
	"github.com/maildesk/maildesk/store"
)

// TestSyncUsesConnectorTokens runs the real sync engine with the Connector
// as its TokenSource: connected mailboxes sync; when Microsoft refuses a
// refresh in the middle of a round, that mailbox ends reauth_required (the
// end of the round does not flip it back) and the other one keeps syncing.
func TestSyncUsesConnectorTokens(t *testing.T) {
	e := newConnectEnv(t, m365sim.Options{Seed: 13})
	gen := m365sim.GenOptions{AttachmentRate: -1, NoSamples: true, Start: time.Now().Add(-72 * time.Hour)}
	e.sim.GenerateMailbox("anna@contoso.com", 6, gen)
	e.sim.GenerateMailbox("bob@contoso.com", 6, gen)
	anna := e.mailbox(t, "anna@contoso.com", "personal", "")
	bob := e.mailbox(t, "bob@contoso.com", "personal", "")
	for _, m := range []store.Mailbox{anna, bob} {
		if _, err := setConfig(e.st, m.ID, func(mb *store.MailboxConfig) {
			mb.Folders, mb.BackfillDays = []string{"inbox"}, 30
		}); err != nil {
			t.Fatal(err)
		}
	}
	e.connect(t, anna.ID, "anna@contoso.com")
	e.connect(t, bob.ID, "bob@contoso.com")
	graph, err := graphsync.New(graphsync.Config{
		BaseURL:   e.sim.GraphBaseURL(),
		Transport: graphsync.NewTransport(&tls.Config{RootCAs: e.sim.CertPool(), MinVersion: tls.VersionTLS12}),
		Tokens:    e.c,
	})
	if err != nil {
		t.Fatal(err)
	}
	syncer, err := NewSyncer(SyncConfig{Store: e.st, Graph: graph, OnReauth: e.c.MarkReauth})
	if err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	for _, id := range []string{anna.ID, bob.ID} {
		if _, err := syncer.SyncMailbox(ctx, id); err != nil {
			t.Fatalf("first round of %s: %v", id, err)
		}
		if n := e.st.MessageCount(id); n == 0 {
			t.Fatalf("%s: nothing synced", id)
		}
	}
	cur, err := e.st.Cursor(anna.ID, "inbox")
	if err != nil || cur.DeltaLink == "" {
		t.Fatalf("anna's cursor: %+v %v", cur, err)
	}

	// Anna's sessions are revoked and her cached access token is gone (it
	// expired, or a 401 made the engine invalidate it).
	e.sim.RevokeUser("anna@contoso.com")
	if err := e.c.Invalidate(ctx, anna.ID); err != nil {
		t.Fatal(err)
	}
	_, err = syncer.SyncMailbox(ctx, anna.ID)
	var re *graphsync.ReauthError
	if !errors.As(err, &re) {
		t.Fatalf("round after revoke: %v", err)
	}
	if m, _ := e.st.Mailbox(anna.ID); m.State != StateReauthRequired {
		t.Fatalf("anna after the round: %s %s", m.State, m.Error)
	}
	// The scheduler's next pass skips her; Bob carries on.
	if res, err := syncer.SyncMailbox(ctx, anna.ID); err != nil || !res.Skipped {
		t.Fatalf("reauth_required mailbox synced: %+v %v", res, err)
	}
	if _, err := syncer.SyncMailbox(ctx, bob.ID); err != nil {
		t.Fatalf("bob: %v", err)
	}
	if m, _ := e.st.Mailbox(bob.ID); m.State != StateConnected {
		t.Fatalf("bob: %s", m.State)
	}

	// Reconnect: the next round resumes from the kept cursor.
	e.connect(t, anna.ID, "anna@contoso.com")
	if _, err := syncer.SyncMailbox(ctx, anna.ID); err != nil {
		t.Fatalf("round after reconnect: %v", err)
	}
	after, _ := e.st.Cursor(anna.ID, "inbox")
	if after.Rounds <= cur.Rounds || after.Resyncs != cur.Resyncs {
		t.Fatalf("cursor after reconnect: %+v (before %+v)", after, cur)
	}
}
