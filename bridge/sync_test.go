package bridge_test

import (
	"bytes"
	"context"
	"crypto/rand"
	"crypto/sha256"
	"crypto/tls"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"net/url"
	"path/filepath"
	"sync"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/rs/zerolog"

	"github.com/maildesk/maildesk/bridge"
	"github.com/maildesk/maildesk/bridge/odoo"
	"github.com/maildesk/maildesk/graphsync"
	"github.com/maildesk/maildesk/graphsync/m365sim"
	"github.com/maildesk/maildesk/store"
)

// simTokens gets real tokens from the simulator (sign-in, PKCE code
// redemption, refresh near expiry).
type simTokens struct {
	sim   *m365sim.Sim
	mu    sync.Mutex
	users map[string]string
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
	life := time.Duration(body.Expires) * time.Second
	t.toks[mailboxID] = simTok{access: body.Access, refresh: body.Refresh, exp: time.Now().Add(life), life: life}
	return body.Access, nil
}

// rig is a store, a simulator and a syncer wired together.
type rig struct {
	t     testing.TB
	sim   *m365sim.Sim
	st    *store.Store
	toks  *simTokens
	graph *graphsync.Client
	sync  *bridge.Syncer
	scale float64
}

type rigOpts struct {
	scale    float64
	throttle bool
	latency  time.Duration
	slice    time.Duration
	dbPath   string
	reg      prometheus.Registerer
	// batchSlots overrides graphsync.Config.BatchSlots (0: default 4).
	batchSlots int
	lazy       bool
	quiet      bool
}

func newRig(t testing.TB, o rigOpts) *rig {
	t.Helper()
	if o.scale == 0 {
		o.scale = 100
	}
	sim, err := m365sim.New(m365sim.Options{Seed: 42, TimeScale: o.scale, Throttle: o.throttle, Latency: o.latency})
	if err != nil {
		t.Fatal(err)
	}
	if err := sim.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = sim.Close() })
	r := &rig{t: t, sim: sim, scale: o.scale}
	r.openStore(o.dbPath)
	r.toks = newSimTokens(sim)
	r.graph, err = graphsync.New(graphsync.Config{
		BaseURL:    sim.GraphBaseURL(),
		Transport:  graphsync.NewTransport(&tls.Config{RootCAs: sim.CertPool(), MinVersion: tls.VersionTLS12}),
		Tokens:     r.toks,
		Budget:     graphsync.BudgetOptions{Window: time.Duration(float64(10*time.Minute) / o.scale)},
		Retry:      graphsync.RetryOptions{BaseDelay: time.Duration(float64(500*time.Millisecond) / o.scale), MaxDelay: time.Duration(float64(30*time.Second) / o.scale), MaxAttempts: 10},
		Registerer: o.reg,
		BatchSlots: o.batchSlots,
	})
	if err != nil {
		t.Fatal(err)
	}
	r.sync, err = bridge.NewSyncer(bridge.SyncConfig{Store: r.st, Graph: r.graph, Log: zerolog.Nop(), BackfillSlice: o.slice, LazyCursor: o.lazy, QuietIdle: o.quiet,
		Metrics: bridge.NewSyncMetrics(o.reg, r.st)})
	if err != nil {
		t.Fatal(err)
	}
	return r
}

func (r *rig) openStore(path string) {
	if path == "" {
		path = filepath.Join(r.t.TempDir(), "maildesk.db")
	}
	key := bytes.Repeat([]byte{7}, store.KeySize)
	st, err := store.Open(path, key, store.Options{NoSync: true})
	if err != nil {
		r.t.Fatal(err)
	}
	r.t.Cleanup(func() { _ = st.Close() })
	r.st = st
}

// mailbox creates a connected mailbox for upn.
func (r *rig) mailbox(upn string, mode string, backfillDays int) string {
	r.t.Helper()
	m, err := r.st.CreateMailbox(store.Mailbox{MailboxConfig: store.MailboxConfig{Email: upn, Kind: "personal", Mode: mode, BackfillDays: backfillDays, Folders: []string{"inbox", "sentitems"}, OwnerUID: 2, MainUserID: 2}, MailboxStatus: store.MailboxStatus{State: bridge.StateConnected}})
	if err != nil {
		r.t.Fatal(err)
	}
	r.toks.add(m.ID, upn)
	return m.ID
}

// syncUntilDone runs rounds until one succeeds with nothing more to do.
// Failed rounds (injected faults) are allowed up to maxErrs.
func (r *rig) syncUntilDone(id string, maxErrs int) (rounds, errs int) {
	r.t.Helper()
	ctx := context.Background()
	for i := 0; i < 10000; i++ {
		res, err := r.sync.SyncMailbox(ctx, id)
		rounds++
		if err != nil {
			errs++
			if errs > maxErrs {
				r.t.Fatalf("round %d: %v (after %d errors)", i, err, errs)
			}
			continue
		}
		if res.Skipped {
			r.t.Fatal("round skipped")
		}
		if !res.More {
			return rounds, errs
		}
	}
	r.t.Fatal("sync never finished")
	return
}

// outbox returns every outbox item of a mailbox by graph id, failing on a
// duplicate.
func (r *rig) outbox(id string) map[string]odoo.IngestItem {
	r.t.Helper()
	items, err := r.st.DueOutbox(time.Now().Add(24*time.Hour), 1<<30, 0, nil)
	if err != nil {
		r.t.Fatal(err)
	}
	out := map[string]odoo.IngestItem{}
	for _, it := range items {
		if it.MailboxID != id {
			continue
		}
		if _, dup := out[it.GraphID]; dup {
			r.t.Fatalf("message %s is in the outbox twice", it.GraphID)
		}
		var ii odoo.IngestItem
		if err := json.Unmarshal(it.Payload, &ii); err != nil {
			r.t.Fatalf("payload of %s: %v", it.GraphID, err)
		}
		out[it.GraphID] = ii
	}
	return out
}

// checkExactlyOnce compares the outbox with the simulator's folders.
func (r *rig) checkExactlyOnce(id, upn string) map[string]odoo.IngestItem {
	r.t.Helper()
	got := r.outbox(id)
	want := map[string]m365sim.MessageInfo{}
	for _, f := range []string{"inbox", "sentitems"} {
		for _, m := range r.sim.Messages(upn, f) {
			want[m.ID] = m
		}
	}
	for gid, m := range want {
		if _, ok := got[gid]; !ok {
			r.t.Fatalf("message %s (%q, %s) never reached the outbox", gid, m.Subject, m.Folder)
		}
	}
	if len(got) != len(want) {
		r.t.Fatalf("outbox has %d items, the folders hold %d messages", len(got), len(want))
	}
	return got
}

func TestBackfillReachesOutboxExactlyOnce(t *testing.T) {
	r := newRig(t, rigOpts{throttle: true})
	upn := "anna@" + r.sim.Domain()
	r.sim.GenerateMailbox(upn, 400, m365sim.GenOptions{MaxAttachment: 64 << 10})
	id := r.mailbox(upn, odoo.ModeLog, 0)
	r.syncUntilDone(id, 0)
	items := r.checkExactlyOnce(id, upn)

	// Structured items carry what Odoo needs.
	withAtt, withBody := 0, 0
	for _, m := range r.sim.Messages(upn, "inbox") {
		it := items[m.ID]
		if it.Options.Mode != odoo.ModeLog || it.Direction != "in" || it.Folder != "inbox" {
			t.Fatalf("item %s: mode %q direction %q folder %q", m.ID, it.Options.Mode, it.Direction, it.Folder)
		}
		if it.BodyHTML != "" {
			withBody++
		}
		if it.InternetMessageID != m.InternetMessageID || it.Headers["message-id"] == "" || it.From == nil {
			t.Fatalf("item %s lacks content: imid %q/%q from %v body %d headers %+v", m.ID, it.InternetMessageID, m.InternetMessageID, it.From, len(it.BodyHTML), it.Headers)
		}
		if m.InReplyTo != "" && it.Headers["in-reply-to"] == "" {
			t.Fatalf("item %s lost In-Reply-To", m.ID)
		}
		if m.HasAttachments {
			withAtt++
			if len(it.Attachments) == 0 || it.Attachments[0].DataBase64 == "" {
				t.Fatalf("item %s has no attachment data", m.ID)
			}
		}
	}
	if withBody < len(r.sim.Messages(upn, "inbox"))*9/10 {
		t.Fatalf("only %d items have a body", withBody)
	}
	if withAtt == 0 {
		t.Fatal("the seeded mailbox has no attachments: the test checks nothing about them")
	}
	for _, m := range r.sim.Messages(upn, "sentitems") {
		if items[m.ID].Direction != "out" {
			t.Fatalf("sent item %s has direction %q", m.ID, items[m.ID].Direction)
		}
	}
	mb, _ := r.st.Mailbox(id)
	if !mb.Progress.Finished || mb.Progress.Done != mb.Progress.Total || mb.Progress.Done < int64(len(items)) {
		t.Fatalf("progress %+v after the backfill of %d", mb.Progress, len(items))
	}
	if mb.State != bridge.StateConnected || mb.LastSuccessAt.IsZero() {
		t.Fatalf("mailbox state %s, last success %v", mb.State, mb.LastSuccessAt)
	}

	// New mail: queued once, by the delta round.
	raw := []byte("From: Zoë <zoe@example.de>\r\nTo: " + upn + "\r\nSubject: new one\r\nMessage-ID: <new-1@example.de>\r\nDate: Mon, 2 Nov 2026 09:14:03 +0000\r\nContent-Type: text/plain\r\n\r\nhello\r\n")
	newID, err := r.sim.DeliverMIME(upn, "inbox", raw)
	if err != nil {
		t.Fatal(err)
	}
	r.syncUntilDone(id, 0)
	items = r.checkExactlyOnce(id, upn)
	if items[newID].InternetMessageID != "<new-1@example.de>" {
		t.Fatalf("new mail item: %+v", items[newID])
	}
	// Another round with nothing new queues nothing.
	r.syncUntilDone(id, 0)
	r.checkExactlyOnce(id, upn)
}

func TestReplayAndExpiredDeltaNoDuplicates(t *testing.T) {
	r := newRig(t, rigOpts{throttle: true})
	upn := "ben@" + r.sim.Domain()
	r.sim.GenerateMailbox(upn, 150, m365sim.GenOptions{MaxAttachment: 16 << 10, NoSamples: true})
	id := r.mailbox(upn, odoo.ModeLog, 0)
	r.syncUntilDone(id, 0)
	r.checkExactlyOnce(id, upn)

	// New mail, then changes to it, then the delta state expires: the
	// folder resyncs and the index follows the changes.
	var fresh []string
	for i := 0; i < 2; i++ {
		raw := fmt.Sprintf("From: x@example.com\r\nTo: %s\r\nSubject: fresh %d\r\nMessage-ID: <fresh-%d@example.com>\r\nContent-Type: text/plain\r\n\r\nbody\r\n", upn, i, i)
		gid, err := r.sim.DeliverMIME(upn, "inbox", []byte(raw))
		if err != nil {
			t.Fatal(err)
		}
		fresh = append(fresh, gid)
	}
	r.syncUntilDone(id, 0)
	r.sim.MarkRead(upn, fresh[0], true)
	r.sim.Delete(upn, fresh[1])
	r.sim.ExpireDeltaState(upn, "inbox")
	r.syncUntilDone(id, 0)
	got := r.outbox(id)
	if len(got) != 152 {
		t.Fatalf("outbox has %d items after the resync, want 152", len(got))
	}
	c, err := r.st.Cursor(id, "inbox")
	if err != nil || c.Resyncs != 1 || c.DeltaLink == "" {
		t.Fatalf("cursor after resync: %+v %v", c, err)
	}
	if m0, _ := r.st.Message(id, fresh[0]); !m0.IsRead {
		t.Fatal("the read flag change did not reach the index")
	}

	// A replay of the whole folder (cursor forgotten, so the backfill and
	// delta pages come again) queues nothing.
	for _, f := range []string{"inbox", "sentitems"} {
		if err := r.st.DeleteCursor(id, f); err != nil {
			t.Fatal(err)
		}
	}
	r.syncUntilDone(id, 0)
	if got := r.outbox(id); len(got) != 152 {
		t.Fatalf("outbox has %d items after a full replay, want 152", len(got))
	}
}

func TestFaultsConvergeWithoutDuplicates(t *testing.T) {
	r := newRig(t, rigOpts{throttle: true})
	upns := []string{"cara@" + r.sim.Domain(), "dan@" + r.sim.Domain(), "eve@" + r.sim.Domain()}
	ids := make([]string, len(upns))
	for i, upn := range upns {
		r.sim.GenerateMailbox(upn, 200, m365sim.GenOptions{MaxAttachment: 16 << 10, NoSamples: true})
		ids[i] = r.mailbox(upn, odoo.ModeLog, 0)
	}
	r.sim.InjectFaults(m365sim.FaultOptions{Rate: 0.2, BurstLen: 3})
	r.sim.ExpireDeltaState(upns[0], "inbox")
	var wg sync.WaitGroup
	for i := range ids {
		wg.Add(1)
		go func() {
			defer wg.Done()
			r.syncUntilDone(ids[i], 1000)
		}()
	}
	wg.Wait()
	// New mail while faults go on.
	for i, upn := range upns {
		raw := fmt.Sprintf("From: x@example.com\r\nTo: %s\r\nSubject: during faults %d\r\nMessage-ID: <f-%d@example.com>\r\nContent-Type: text/plain\r\n\r\nbody\r\n", upn, i, i)
		if _, err := r.sim.DeliverMIME(upn, "inbox", []byte(raw)); err != nil {
			t.Fatal(err)
		}
		r.sim.ExpireDeltaState(upn, "sentitems")
		r.syncUntilDone(ids[i], 1000)
	}
	st := r.sim.Stats("")
	r.sim.InjectFaults(m365sim.FaultOptions{})
	for i, upn := range upns {
		r.syncUntilDone(ids[i], 0)
		r.checkExactlyOnce(ids[i], upn)
	}
	if st.Faults == 0 {
		t.Fatal("no faults were injected")
	}
	t.Logf("faults injected: %d, 429s: %d, requests: %d", st.Faults, st.Throttled, st.Requests)
}

func TestGatewayModeCarriesMIME(t *testing.T) {
	r := newRig(t, rigOpts{})
	upn := "support@" + r.sim.Domain()
	r.sim.GenerateMailbox(upn, 45, m365sim.GenOptions{MaxAttachment: 8 << 10, NoSamples: true})
	id := r.mailbox(upn, odoo.ModeGateway, 0)
	r.syncUntilDone(id, 0)
	items := r.checkExactlyOnce(id, upn)
	for gid, it := range items {
		raw, err := base64.StdEncoding.DecodeString(it.MIMEBase64)
		if err != nil || len(raw) == 0 {
			t.Fatalf("item %s has no MIME", gid)
		}
		want, _ := r.sim.MIME(upn, gid)
		if !bytes.Equal(raw, want) {
			t.Fatalf("item %s: MIME differs from the mailbox's", gid)
		}
	}
	if st := r.sim.Stats(upn); st.Batches == 0 {
		t.Fatal("MIME was not fetched in $batch requests")
	}
}

func TestBackfillWindow(t *testing.T) {
	r := newRig(t, rigOpts{})
	upn := "finn@" + r.sim.Domain()
	now := time.Now()
	r.sim.GenerateMailbox(upn, 120, m365sim.GenOptions{Start: now.Add(-60 * 24 * time.Hour), End: now.Add(-time.Hour), NoSamples: true, AttachmentRate: -1})
	id := r.mailbox(upn, odoo.ModeLog, 30)
	r.syncUntilDone(id, 0)
	got := r.outbox(id)
	inWindow := 0
	for _, f := range []string{"inbox", "sentitems"} {
		for _, m := range r.sim.Messages(upn, f) {
			_, ok := got[m.ID]
			in := m.ReceivedAt.After(now.Add(-30*24*time.Hour + time.Minute))
			if in {
				inWindow++
			}
			if in != ok && m.ReceivedAt.Before(now.Add(-30*24*time.Hour-time.Minute)) == ok {
				t.Fatalf("message received %v: queued %v", m.ReceivedAt, ok)
			}
		}
	}
	if inWindow == 0 || len(got) < inWindow-2 || len(got) > inWindow+2 {
		t.Fatalf("queued %d, %d in the 30-day window", len(got), inWindow)
	}
}

func TestLazyCursorSkipsIdleWrites(t *testing.T) {
	r := newRig(t, rigOpts{lazy: true})
	upn := "lena@" + r.sim.Domain()
	r.sim.GenerateMailbox(upn, 20, m365sim.GenOptions{NoSamples: true, AttachmentRate: -1})
	id := r.mailbox(upn, odoo.ModeLog, 0)
	r.syncUntilDone(id, 0)
	before, _ := r.st.Cursor(id, "inbox")
	r.syncUntilDone(id, 0)
	idle, _ := r.st.Cursor(id, "inbox")
	if !idle.UpdatedAt.Equal(before.UpdatedAt) || idle.DeltaLink != before.DeltaLink {
		t.Fatal("an idle round rewrote the cursor")
	}
	raw := "From: a@example.com\r\nTo: " + upn + "\r\nSubject: lazy\r\nMessage-ID: <lazy@example.com>\r\nContent-Type: text/plain\r\n\r\nx\r\n"
	gid, err := r.sim.DeliverMIME(upn, "inbox", []byte(raw))
	if err != nil {
		t.Fatal(err)
	}
	r.syncUntilDone(id, 0)
	r.syncUntilDone(id, 0) // from the new deltaLink: nothing again
	if got := r.checkExactlyOnce(id, upn); got[gid].InternetMessageID != "<lazy@example.com>" {
		t.Fatal("new mail missing after idle rounds")
	}
	after, _ := r.st.Cursor(id, "inbox")
	if after.DeltaLink == before.DeltaLink {
		t.Fatal("a round with mail did not save its deltaLink")
	}
}

func TestQuietIdleRounds(t *testing.T) {
	r := newRig(t, rigOpts{lazy: true, quiet: true})
	upn := "mia@" + r.sim.Domain()
	r.sim.GenerateMailbox(upn, 20, m365sim.GenOptions{NoSamples: true, AttachmentRate: -1})
	id := r.mailbox(upn, odoo.ModeLog, 0)
	r.syncUntilDone(id, 0)
	r.syncUntilDone(id, 0) // records its success (the first quiet round after the backfill may)
	before, _ := r.st.Mailbox(id)
	r.syncUntilDone(id, 0)
	idle, _ := r.st.Mailbox(id)
	if !idle.UpdatedAt.Equal(before.UpdatedAt) {
		t.Fatal("an idle quiet round wrote the mailbox")
	}
	raw := "From: a@example.com\r\nTo: " + upn + "\r\nSubject: q\r\nMessage-ID: <quiet@example.com>\r\nContent-Type: text/plain\r\n\r\nx\r\n"
	if _, err := r.sim.DeliverMIME(upn, "inbox", []byte(raw)); err != nil {
		t.Fatal(err)
	}
	r.syncUntilDone(id, 0)
	r.checkExactlyOnce(id, upn)
	if m, _ := r.st.Mailbox(id); !m.LastSyncAt.After(before.LastSyncAt) || m.State != bridge.StateConnected {
		t.Fatalf("a quiet round with mail was not recorded: %+v", m)
	}
	// Failures of quiet rounds still show: state error, then recovery.
	r.sim.InjectFaults(m365sim.FaultOptions{Rate: 1, Kinds: []m365sim.FaultKind{m365sim.Fault5xx}})
	if _, err := r.sync.SyncMailbox(context.Background(), id); err == nil {
		t.Fatal("a round against a failing Graph succeeded")
	}
	if m, _ := r.st.Mailbox(id); m.State != bridge.StateError || m.Failures != 1 {
		t.Fatalf("after a failed quiet round: state %s, failures %d", m.State, m.Failures)
	}
	r.sim.InjectFaults(m365sim.FaultOptions{})
	r.syncUntilDone(id, 0)
	if m, _ := r.st.Mailbox(id); m.State != bridge.StateConnected || m.Failures != 0 {
		t.Fatalf("after recovery: state %s, failures %d", m.State, m.Failures)
	}
}

// A poll of a backfilled mailbox sends every folder's delta request in one
// $batch (one HTTP exchange; Graph still counts each); new mail in either
// folder arrives once, and an expired delta state inside the batch resyncs
// that folder.
func TestIdlePollIsOneBatch(t *testing.T) {
	r := newRig(t, rigOpts{lazy: true, quiet: true})
	upn := "noa@" + r.sim.Domain()
	r.sim.GenerateMailbox(upn, 20, m365sim.GenOptions{NoSamples: true, AttachmentRate: -1})
	id := r.mailbox(upn, odoo.ModeLog, 0)
	if m, _ := r.st.Mailbox(id); len(m.Folders) < 2 {
		t.Fatalf("folders %v: the test needs two", m.Folders)
	}
	r.syncUntilDone(id, 0)
	poll := func() (batches, delta int64) {
		t.Helper()
		before := r.sim.Stats(upn)
		if _, err := r.sync.SyncMailbox(context.Background(), id); err != nil {
			t.Fatal(err)
		}
		after := r.sim.Stats(upn)
		return after.Batches - before.Batches, after.Delta - before.Delta
	}
	if b, d := poll(); b != 1 || d != 2 {
		t.Fatalf("idle poll: %d batches, %d delta requests; want 1 and 2", b, d)
	}
	for i, f := range []string{"inbox", "sentitems"} {
		raw := fmt.Sprintf("From: a@example.com\r\nTo: %s\r\nSubject: b%d\r\nMessage-ID: <batch%d@example.com>\r\nContent-Type: text/plain\r\n\r\nx\r\n", upn, i, i)
		if _, err := r.sim.DeliverMIME(upn, f, []byte(raw)); err != nil {
			t.Fatal(err)
		}
	}
	if b, _ := poll(); b != 1 {
		t.Fatalf("poll with mail: %d batches, want 1", b)
	}
	got := r.checkExactlyOnce(id, upn)
	for i := range 2 {
		found := false
		for _, it := range got {
			found = found || it.InternetMessageID == fmt.Sprintf("<batch%d@example.com>", i)
		}
		if !found {
			t.Fatalf("mail %d not queued after the batched poll", i)
		}
	}
	// The inbox's delta state expires: its inner request fails with 410,
	// the folder resyncs alone, nothing is queued twice.
	r.sim.ExpireDeltaState(upn, "inbox")
	before, _ := r.st.Cursor(id, "inbox")
	poll()
	if after, _ := r.st.Cursor(id, "inbox"); after.Resyncs != before.Resyncs+1 {
		t.Fatalf("resyncs %d → %d, want one more", before.Resyncs, after.Resyncs)
	}
	r.checkExactlyOnce(id, upn)
	if b, _ := poll(); b != 1 {
		t.Fatalf("after the resync: %d batches, want 1", b)
	}
}
