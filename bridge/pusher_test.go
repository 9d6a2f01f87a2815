package bridge

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"path/filepath"
	"sync"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/rs/zerolog"

	"github.com/maildesk/maildesk/bridge/odoo"
	"github.com/maildesk/maildesk/bridge/odoosim"
	"github.com/maildesk/maildesk/store"
)

type pushEnv struct {
	st   *store.Store
	odoo *odoosim.Server
	mb   store.Mailbox
	p    *Pusher
}

func newPushEnv(t testing.TB, n int) *pushEnv {
	t.Helper()
	st, err := store.Open(filepath.Join(t.TempDir(), "db"), bytes.Repeat([]byte{5}, 32), store.Options{NoSync: true})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { st.Close() })
	sim := odoosim.New(odoosim.Options{Version: 18})
	if err := sim.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(sim.Close)
	set := store.DefaultSettings()
	set.Odoo = store.OdooSettings{URL: sim.URL(), DB: sim.DB(), Login: sim.TechLogin(), APIKey: sim.APIKey(), Protocol: "jsonrpc"}
	if err := st.SaveSettings(set); err != nil {
		t.Fatal(err)
	}
	mb, _ := st.CreateMailbox(store.Mailbox{MailboxConfig: store.MailboxConfig{Email: "anna@contoso.com", Kind: "personal", Mode: "log", MainUserID: 2, LogSentAsActivity: true}, MailboxStatus: store.MailboxStatus{State: StateDraft}})
	oid := sim.CreateMailbox(mb.ID, mb.Email)
	mb, _ = setConfig(st, mb.ID, func(m *store.MailboxConfig) { m.OdooID = oid })
	sim.AddPartner("Customer", "customer@example.com")
	queue(t, st, mb.ID, 0, n)
	p := NewPusher(PusherConfig{Store: st, Log: zerolog.Nop(), Registry: prometheus.NewRegistry(), RetryBase: time.Millisecond, RetryMax: 5 * time.Millisecond})
	return &pushEnv{st: st, odoo: sim, mb: mb, p: p}
}

func queue(t testing.TB, st *store.Store, mailboxID string, from, n int) {
	t.Helper()
	var items []store.PageItem
	for i := from; i < from+n; i++ {
		id := fmt.Sprintf("AAMk%06d", i)
		mid := fmt.Sprintf("<m%06d@example.com>", i)
		it := odoo.IngestItem{
			GraphID: id, Mailbox: mailboxID, Folder: "inbox", Direction: "in", InternetMessageID: mid,
			ReceivedAt: time.Unix(int64(1700000000+i), 0).UTC().Format(time.RFC3339),
			Subject:    fmt.Sprintf("Order %d", i), From: &odoo.Address{Name: "Customer", Email: "customer@example.com"},
			To: []odoo.Address{{Email: "anna@contoso.com"}}, Headers: map[string]string{"message-id": mid}, BodyHTML: "<p>hello</p>",
		}
		raw, _ := json.Marshal(it)
		items = append(items, store.PageItem{Message: store.Message{ID: id, InternetMessageID: mid, ReceivedAt: time.Unix(int64(i), 0)}, Direction: "in", Payload: raw})
		if len(items) == 500 {
			if _, err := st.ApplyPage(mailboxID, store.Page{Folder: "inbox", Items: items}); err != nil {
				t.Fatal(err)
			}
			items = nil
		}
	}
	if _, err := st.ApplyPage(mailboxID, store.Page{Folder: "inbox", Items: items}); err != nil {
		t.Fatal(err)
	}
}

// drain delivers until the outbox is empty or no progress is possible.
func (e *pushEnv) drain(t testing.TB) {
	t.Helper()
	for i := 0; i < 10000; i++ {
		n, err := e.p.DeliverOnce(context.Background())
		if err != nil {
			t.Fatalf("deliver: %v", err)
		}
		if n == 0 {
			return
		}
	}
	t.Fatal("outbox did not drain")
}

func TestPusherDeliversOnceAndRecordsOdooIDs(t *testing.T) {
	e := newPushEnv(t, 120)
	e.drain(t)
	stats, _ := e.st.OutboxStats()
	if stats[e.mb.ID].Items != 0 {
		t.Fatalf("outbox not empty: %+v", stats)
	}
	pid := e.odoo.PartnerByEmail("customer@example.com")
	mailOn := func() int {
		n := 0
		for _, m := range e.odoo.MessagesOn("res.partner", pid) {
			if m.GraphID != "" {
				n++
			}
		}
		return n
	}
	if got := mailOn(); got != 120 {
		t.Fatalf("partner has %d synced messages, want 120", got)
	}
	m, _ := e.st.Message(e.mb.ID, "AAMk000007")
	if m.Delivery != store.DeliveryPosted || len(m.OdooMessageIDs) != 1 || len(m.OdooRefs) != 1 || m.OdooRefs[0].ID != pid {
		t.Fatalf("index entry %+v", m)
	}
	got, _ := e.st.Mailbox(e.mb.ID)
	if got.Counts.Delivered != 120 || got.Delivery.Delayed {
		t.Fatalf("mailbox %+v", got)
	}
	// The same messages queued again (a resync from scratch on a new index)
	// are answered duplicate by Odoo and land nowhere twice.
	st2 := e.st
	_, _ = updateStatus(st2, e.mb.ID, func(m *store.MailboxStatus) error { return nil })
	for i := 0; i < 3; i++ {
		raw, _ := json.Marshal(odoo.IngestItem{GraphID: fmt.Sprintf("AAMk%06d", i), Mailbox: e.mb.ID, Folder: "inbox", Direction: "in",
			InternetMessageID: fmt.Sprintf("<m%06d@example.com>", i), Subject: "again", From: &odoo.Address{Email: "customer@example.com"}})
		_, _ = st2.Enqueue(store.OutboxItem{MailboxID: e.mb.ID, GraphID: fmt.Sprintf("AAMk%06d", i), Payload: raw})
	}
	e.drain(t)
	if got := mailOn(); got != 120 {
		t.Fatalf("after replay partner has %d synced messages, want 120", got)
	}
}

func TestPusherWaitsWhileOdooIsDownAndResumes(t *testing.T) {
	e := newPushEnv(t, 30)
	if err := e.odoo.SetDown(true); err != nil {
		t.Fatal(err)
	}
	if _, err := e.p.DeliverOnce(context.Background()); err == nil {
		t.Fatal("delivery to a down Odoo succeeded")
	} else {
		e.p.callFailed(err, nil)
	}
	m, _ := e.st.Mailbox(e.mb.ID)
	if !m.Delivery.Delayed || m.Delivery.Reason == "" {
		t.Fatalf("mailbox does not show the delay: %+v", m.Delivery)
	}
	if st, _ := e.st.OutboxStats(); st[e.mb.ID].Items != 30 {
		t.Fatalf("items lost while Odoo was down: %+v", st)
	}
	if err := e.odoo.SetDown(false); err != nil {
		t.Fatal(err)
	}
	e.drain(t)
	m, _ = e.st.Mailbox(e.mb.ID)
	if m.Delivery.Delayed || m.Counts.Delivered != 30 {
		t.Fatalf("after recovery: %+v %+v", m.Delivery, m.Counts)
	}
}

func TestPusherRevokedKeyShowsWhy(t *testing.T) {
	e := newPushEnv(t, 5)
	e.odoo.RevokeAPIKey()
	_, err := e.p.DeliverOnce(context.Background())
	if !odoo.IsAuth(err) {
		t.Fatalf("want auth error, got %v", err)
	}
	e.p.callFailed(err, nil)
	m, _ := e.st.Mailbox(e.mb.ID)
	if !m.Delivery.Delayed || !bytes.Contains([]byte(m.Delivery.Reason), []byte("Pair with Odoo")) {
		t.Fatalf("reason %q", m.Delivery.Reason)
	}
	e.odoo.RestoreAPIKey()
	e.drain(t)
	if st, _ := e.st.OutboxStats(); st[e.mb.ID].Items != 0 {
		t.Fatalf("not delivered after the key came back: %+v", st)
	}
}

func TestPusherRunLoopDrainsAndStops(t *testing.T) {
	e := newPushEnv(t, 50)
	ctx, cancel := context.WithCancel(context.Background())
	var wg sync.WaitGroup
	wg.Add(1)
	go func() { defer wg.Done(); e.p.Run(ctx) }()
	deadline := time.Now().Add(2 * time.Minute)
	for {
		st, _ := e.st.OutboxStats()
		if st[e.mb.ID].Items == 0 {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("outbox not drained by the run loop: %+v", st)
		}
		time.Sleep(5 * time.Millisecond)
	}
	cancel()
	wg.Wait()
}

func TestPusherDeliversReauthNotice(t *testing.T) {
	e := newPushEnv(t, 0)
	_ = e.st.QueueNotice(store.Notice{MailboxID: e.mb.ID, Kind: "reauth_required", Reason: "AADSTS50173"})
	if d := e.p.runOnce(context.Background()); d > 0 {
		t.Fatalf("paused %v", d)
	}
	if ns, _ := e.st.Notices(); len(ns) != 0 {
		t.Fatalf("notice not delivered: %+v", ns)
	}
	if got := e.odoo.Notices(); len(got) != 1 || got[0]["kind"] != "reauth_required" {
		t.Fatalf("Odoo got %+v", got)
	}
}

// BenchmarkPusher measures messages per second into the stand-in with 20 ms
// per Odoo call, and reports the batch size the pusher settled on.
func BenchmarkPusher(b *testing.B) {
	const n = 5000
	for i := 0; i < b.N; i++ {
		b.StopTimer()
		e := newPushEnv(b, n)
		e.odoo.SetLatency(20 * time.Millisecond)
		b.StartTimer()
		start := time.Now()
		e.drain(b)
		el := time.Since(start)
		b.ReportMetric(float64(n)/el.Seconds(), "msgs/s")
		b.ReportMetric(float64(e.p.BatchSize()), "batch")
		b.ReportMetric(float64(e.odoo.IngestCalls().Calls), "calls")
	}
}

func TestPusherStartsAtOnceWhenOdooIsPaired(t *testing.T) {
	e := newPushEnv(t, 20)
	paired, _ := e.st.Settings()
	unpaired := paired
	unpaired.Odoo = store.OdooSettings{}
	if err := e.st.SaveSettings(unpaired); err != nil {
		t.Fatal(err)
	}
	// A pause far longer than the test's deadline: only the settings hook
	// can end it in time.
	e.p = NewPusher(PusherConfig{Store: e.st, Log: zerolog.Nop(), RetryBase: time.Hour, RetryMax: time.Hour})
	ctx, cancel := context.WithCancel(context.Background())
	var wg sync.WaitGroup
	wg.Add(1)
	go func() { defer wg.Done(); e.p.Run(ctx) }()
	defer func() { cancel(); wg.Wait() }()
	waitUntil(t, "the mailbox to say Odoo is not paired", func() bool {
		m, _ := e.st.Mailbox(e.mb.ID)
		return m.Delivery.Delayed && bytes.Contains([]byte(m.Delivery.Reason), []byte("not paired"))
	})
	if err := e.st.SaveSettings(paired); err != nil {
		t.Fatal(err)
	}
	waitUntil(t, "delivery after pairing", func() bool {
		st, _ := e.st.OutboxStats()
		return st[e.mb.ID].Items == 0
	})
}

func waitUntil(t *testing.T, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(2 * time.Minute)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(5 * time.Millisecond)
	}
}
