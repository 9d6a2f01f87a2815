package bridge_test

import (
	"context"
	"crypto/tls"
	"encoding/json"
	"net/http"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/rs/zerolog"

	"github.com/maildesk/maildesk/bridge"
	"github.com/maildesk/maildesk/bridge/odoo"
	"github.com/maildesk/maildesk/bridge/odoosim"
	"github.com/maildesk/maildesk/graphsync"
	"github.com/maildesk/maildesk/graphsync/m365sim"
	"github.com/maildesk/maildesk/store"
)

// gate holds the first request it matches until released, so a test can act
// while a sync round is surely in the middle of a folder.
type gate struct {
	rt      http.RoundTripper
	match   func(*http.Request) bool
	mu      sync.Mutex
	armed   bool
	held    chan struct{}
	release chan struct{}
}

// roundOut is how a sync round started by startHeld ended.
type roundOut struct {
	res bridge.RoundResult
	err error
}

// startHeld starts a sync round of mailbox id and returns once the gate holds
// its request (the round is surely in the middle of a folder); the round's
// end arrives on the returned channel after the gate is released.
func (g *gate) startHeld(t *testing.T, syncer *bridge.Syncer, id string) <-chan roundOut {
	t.Helper()
	done := make(chan roundOut, 1)
	go func() {
		res, err := syncer.SyncMailbox(context.Background(), id)
		done <- roundOut{res, err}
	}()
	select {
	case <-g.held:
	case o := <-done:
		t.Fatalf("the round ended before its second backfill page: %+v %v", o.res, o.err)
	}
	return done
}

func (g *gate) RoundTrip(r *http.Request) (*http.Response, error) {
	g.mu.Lock()
	hold := g.armed && g.match(r)
	if hold {
		g.armed = false
	}
	g.mu.Unlock()
	if hold {
		close(g.held)
		<-g.release
	}
	return g.rt.RoundTrip(r)
}

// TestResyncFromScratchDuringRoundLandsOnce: a resync from scratch asked
// while a round is in the middle of a backfill takes effect (the running
// round cannot write its old position back), the new backfill window is
// walked in full, and the Odoo stand-in holds every message exactly once —
// after the first sync, the resync, and another resync.
func TestResyncFromScratchDuringRoundLandsOnce(t *testing.T) {
	r := newRig(t, rigOpts{})
	upn := "rita@" + r.sim.Domain()
	now := time.Now()
	r.sim.GenerateMailbox(upn, 80, m365sim.GenOptions{Start: now.Add(-60 * 24 * time.Hour), End: now.Add(-time.Hour), NoSamples: true, AttachmentRate: -1})
	id := r.mailbox(upn, odoo.ModeLog, 10)
	if _, err := bridge.SetConfig(r.st, id, func(m *store.MailboxConfig) { m.CreateContacts = true }); err != nil {
		t.Fatal(err)
	}

	// Odoo stand-in and pusher.
	osim := odoosim.New(odoosim.Options{Version: 18})
	if err := osim.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(osim.Close)
	set := store.DefaultSettings()
	set.Odoo = store.OdooSettings{URL: osim.URL(), DB: osim.DB(), Login: osim.TechLogin(), APIKey: osim.APIKey(), Protocol: "jsonrpc"}
	if err := r.st.SaveSettings(set); err != nil {
		t.Fatal(err)
	}
	oid := osim.CreateMailbox(id, upn)
	if _, err := bridge.SetConfig(r.st, id, func(m *store.MailboxConfig) { m.OdooID = oid }); err != nil {
		t.Fatal(err)
	}
	pusher := bridge.NewPusher(bridge.PusherConfig{Store: r.st, Log: zerolog.Nop(), Registry: prometheus.NewRegistry(), RetryBase: time.Millisecond, RetryMax: 5 * time.Millisecond})
	drain := func() {
		t.Helper()
		for i := 0; i < 10000; i++ {
			n, err := pusher.DeliverOnce(context.Background())
			if err != nil {
				t.Fatalf("deliver: %v", err)
			}
			if n == 0 {
				return
			}
		}
		t.Fatal("outbox did not drain")
	}
	// landed counts the stand-in's messages per Graph id, failing on doubles.
	landed := func() map[string]bool {
		t.Helper()
		got := map[string]bool{}
		for _, m := range osim.Messages() {
			if m.GraphID == "" {
				continue
			}
			if got[m.GraphID] {
				t.Fatalf("message %s (%q) landed twice in Odoo", m.GraphID, m.Subject)
			}
			got[m.GraphID] = true
		}
		return got
	}
	within := func(days int) map[string]bool {
		want := map[string]bool{}
		for _, f := range []string{"inbox", "sentitems"} {
			for _, m := range r.sim.Messages(upn, f) {
				if m.ReceivedAt.After(now.Add(-time.Duration(days)*24*time.Hour + time.Minute)) {
					want[m.ID] = true
				}
			}
		}
		return want
	}

	// A syncer whose backfill pages are small, behind a gate.
	g := &gate{rt: graphsync.NewTransport(&tls.Config{RootCAs: r.sim.CertPool(), MinVersion: tls.VersionTLS12}),
		match: func(req *http.Request) bool {
			// The second page of the inbox's backfill listing.
			return strings.Contains(req.URL.Path, "/messages") && !strings.Contains(req.URL.Path, "delta") &&
				strings.Contains(req.URL.RawQuery, "skip")
		}}
	graph, err := graphsync.New(graphsync.Config{BaseURL: r.sim.GraphBaseURL(), Transport: g, Tokens: r.toks})
	if err != nil {
		t.Fatal(err)
	}
	syncer, err := bridge.NewSyncer(bridge.SyncConfig{Store: r.st, Graph: graph, Log: zerolog.Nop(), BackfillPageSize: 4, PageSize: 10})
	if err != nil {
		t.Fatal(err)
	}
	sched, err := bridge.NewScheduler(bridge.SchedulerConfig{Store: r.st, Sync: syncer.SyncMailbox})
	if err != nil {
		t.Fatal(err)
	}
	boxes := bridge.NewMailboxes(r.st, zerolog.Nop())
	ctl := bridge.NewSyncControl(r.st, boxes, sched)
	owner := bridge.Actor{UID: 2}
	syncAll := func() {
		t.Helper()
		for i := 0; i < 1000; i++ {
			res, err := syncer.SyncMailbox(context.Background(), id)
			if err != nil {
				t.Fatalf("round: %v", err)
			}
			if !res.More {
				return
			}
		}
		t.Fatal("sync never finished")
	}

	// 1. The first sync: the 10-day window.
	syncAll()
	drain()
	got := landed()
	want10 := within(10)
	if len(want10) == 0 || len(got) < len(want10)-2 || len(got) > len(want10)+2 {
		t.Fatalf("after the first sync Odoo holds %d messages, %d are in the 10-day window", len(got), len(want10))
	}

	// 2. The admin widens the window to 40 days and asks for a resync
	// from scratch while a resync round is in the middle of the inbox's
	// backfill.
	if _, err := ctl.Resync(owner, bridge.MailboxRef{MailboxID: id}); err != nil {
		t.Fatal(err)
	}
	g.held, g.release = make(chan struct{}), make(chan struct{})
	g.mu.Lock()
	g.armed = true
	g.mu.Unlock()
	done := g.startHeld(t, syncer, id)
	days := 40
	if _, err := boxes.Update(bridge.Actor{UID: 1, Admin: true}, bridge.MailboxUpdateParams{MailboxID: id, MailboxFields: bridge.MailboxFields{BackfillDays: &days}}); err != nil {
		t.Fatal(err)
	}
	q, err := ctl.Resync(owner, bridge.MailboxRef{MailboxID: id})
	if err != nil || !q.Queued {
		t.Fatalf("resync: %+v %v", q, err)
	}
	close(g.release)
	o := <-done
	if o.err != nil {
		t.Fatalf("the interrupted round failed: %v", o.err)
	}
	if !o.res.More {
		t.Fatal("the interrupted round did not ask for another one")
	}
	for _, f := range []string{"inbox", "sentitems"} {
		c, err := r.st.Cursor(id, f)
		mb, _ := r.st.Mailbox(id)
		if err == nil && c.Gen == mb.SyncGen && c.Seen > 0 {
			t.Fatalf("%s: the running round wrote its position into the new generation: %+v", f, c)
		}
	}
	syncAll()
	drain()
	got = landed()
	want40 := within(40)
	for gid := range within(39) {
		if !got[gid] {
			t.Fatalf("message %s of the 40-day window never reached Odoo after the resync", gid)
		}
	}
	if len(got) < len(want40)-2 || len(got) <= len(want10)+2 {
		t.Fatalf("after the resync Odoo holds %d messages, %d are in the 40-day window (%d in 10 days)", len(got), len(want40), len(want10))
	}
	mb, _ := r.st.Mailbox(id)
	if !mb.Progress.Finished || mb.Progress.Done < int64(len(want40))-2 {
		t.Fatalf("progress after the resync: %+v", mb.Progress)
	}
	entries, _, err := r.st.AuditList(id, 1000, 0)
	if err != nil {
		t.Fatal(err)
	}
	resyncs := 0
	for _, e := range entries {
		if e.Action == "mailbox.resync" && e.UID == owner.UID {
			resyncs++
		}
	}
	if resyncs != 2 {
		t.Fatalf("audit has %d resync entries by the owner, want 2", resyncs)
	}

	// 3. Another resync from scratch with nothing running: still once.
	before := len(got)
	if _, err := ctl.Resync(owner, bridge.MailboxRef{MailboxID: id}); err != nil {
		t.Fatal(err)
	}
	syncAll()
	drain()
	if got := landed(); len(got) != before {
		t.Fatalf("Odoo holds %d messages after a second resync, %d before", len(got), before)
	}
	b, _ := json.Marshal(bridge.ViewOf(mb))
	if !strings.Contains(string(b), `"unread":`) {
		t.Fatalf("mailbox view has no counts.unread: %s", b)
	}
}
