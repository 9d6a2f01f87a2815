package bridge_test

import (
	"context"
	"crypto/tls"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/rs/zerolog"

	"github.com/maildesk/maildesk/bridge"
	"github.com/maildesk/maildesk/bridge/odoo"
	"github.com/maildesk/maildesk/graphsync"
	"github.com/maildesk/maildesk/graphsync/m365sim"
)

// TestBackfillWidenedDuringRunningBackfillIsHonoured: mailbox.backfill asked
// while a round is in the middle of a backfill (it answers queued: true)
// widens the window for good — the running round must not write its old
// window back — and every message of the wider window reaches the outbox
// exactly once.
func TestBackfillWidenedDuringRunningBackfillIsHonoured(t *testing.T) {
	r := newRig(t, rigOpts{})
	upn := "wendy@" + r.sim.Domain()
	now := time.Now()
	r.sim.GenerateMailbox(upn, 80, m365sim.GenOptions{Start: now.Add(-60 * 24 * time.Hour), End: now.Add(-time.Hour), NoSamples: true, AttachmentRate: -1})
	id := r.mailbox(upn, odoo.ModeLog, 10)

	g := &gate{rt: graphsync.NewTransport(&tls.Config{RootCAs: r.sim.CertPool(), MinVersion: tls.VersionTLS12}),
		match: func(req *http.Request) bool {
			// A second page of a backfill listing.
			return strings.Contains(req.URL.Path, "/messages") && !strings.Contains(req.URL.Path, "delta") &&
				strings.Contains(req.URL.RawQuery, "skip")
		}, armed: true, held: make(chan struct{}), release: make(chan struct{})}
	graph, err := graphsync.New(graphsync.Config{BaseURL: r.sim.GraphBaseURL(), Transport: g, Tokens: r.toks})
	if err != nil {
		t.Fatal(err)
	}
	syncer, err := bridge.NewSyncer(bridge.SyncConfig{Store: r.st, Graph: graph, Log: zerolog.Nop(), BackfillPageSize: 2, PageSize: 10})
	if err != nil {
		t.Fatal(err)
	}
	sched, err := bridge.NewScheduler(bridge.SchedulerConfig{Store: r.st, Sync: syncer.SyncMailbox})
	if err != nil {
		t.Fatal(err)
	}
	ctl := bridge.NewSyncControl(r.st, bridge.NewMailboxes(r.st, zerolog.Nop()), sched)

	done := g.startHeld(t, syncer, id)
	since := now.Add(-40 * 24 * time.Hour).UTC().Format(time.RFC3339)
	q, err := ctl.Backfill(bridge.Actor{UID: 2}, bridge.BackfillParams{MailboxID: id, Since: since})
	if err != nil || !q.Queued {
		t.Fatalf("backfill: %+v %v", q, err)
	}
	close(g.release)
	if o := <-done; o.err != nil {
		t.Fatalf("the running round failed: %v", o.err)
	}
	for i := 0; i < 1000; i++ {
		res, err := syncer.SyncMailbox(context.Background(), id)
		if err != nil {
			t.Fatalf("round: %v", err)
		}
		if !res.More {
			break
		}
	}
	got := r.outbox(id) // fails on an item queued twice
	want := 0
	for _, f := range []string{"inbox", "sentitems"} {
		for _, m := range r.sim.Messages(upn, f) {
			if !m.ReceivedAt.After(now.Add(-39 * 24 * time.Hour)) {
				continue
			}
			want++
			if _, ok := got[m.ID]; !ok {
				t.Errorf("%s message of %s (%s ago) is in the widened 40-day window but never reached the outbox",
					f, m.ReceivedAt.Format(time.DateOnly), now.Sub(m.ReceivedAt).Round(time.Hour))
			}
		}
	}
	if t.Failed() {
		t.Fatalf("outbox holds %d messages; %d are within 39 days", len(got), want)
	}
	mb, _ := r.st.Mailbox(id)
	if !mb.Progress.Finished {
		t.Fatalf("progress after the widened backfill: %+v", mb.Progress)
	}
}
