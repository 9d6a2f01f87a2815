package bridge

import (
	"context"
	"encoding/json"
	"errors"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/rs/zerolog"

	"github.com/maildesk/maildesk/bridge/odoo"
	"github.com/maildesk/maildesk/bridge/odoosim"
	"github.com/maildesk/maildesk/store"
)

// fakeClock is the pusher's clock in tests that must pass backoffs without
// waiting for them.
type fakeClock struct {
	mu sync.Mutex
	t  time.Time
}

func (c *fakeClock) Now() time.Time { c.mu.Lock(); defer c.mu.Unlock(); return c.t }
func (c *fakeClock) Add(d time.Duration) {
	c.mu.Lock()
	c.t = c.t.Add(d)
	c.mu.Unlock()
}

const currencyRefusal = "You are not allowed to access 'Currency' (res.currency) records."

// twoBoxes is a push environment with a second mailbox, A (shared, queued
// first), next to the env's mailbox, B (anna@, queued after A).
type twoBoxes struct {
	*pushEnv
	a     store.Mailbox
	clock *fakeClock
}

func newTwoBoxes(t testing.TB, itemsA, itemsB int, cfg PusherConfig) *twoBoxes {
	t.Helper()
	e := newPushEnv(t, 0)
	a, err := e.st.CreateMailbox(store.Mailbox{MailboxConfig: store.MailboxConfig{Email: "info@contoso.com", Kind: "shared", Mode: "log", OwnerUID: 2, MainUserID: 2, UserIDs: []int64{7}}, MailboxStatus: store.MailboxStatus{State: StateDraft}})
	if err != nil {
		t.Fatal(err)
	}
	oid := e.odoo.CreateMailbox(a.ID, a.Email)
	a, _ = setConfig(e.st, a.ID, func(m *store.MailboxConfig) { m.OdooID = oid })
	queue(t, e.st, a.ID, 0, itemsA)
	queue(t, e.st, e.mb.ID, 100000, itemsB)
	clock := &fakeClock{t: time.Now()}
	cfg.Store, cfg.Log, cfg.Registry, cfg.Now = e.st, zerolog.Nop(), prometheus.NewRegistry(), clock.Now
	e.p = NewPusher(cfg)
	return &twoBoxes{pushEnv: e, a: a, clock: clock}
}

func (e *twoBoxes) callsOf(odooID int64) (calls, items int) {
	st := e.odoo.IngestCalls()
	for i, id := range st.Mailboxes {
		if id == odooID {
			calls++
			items += st.BatchSizes[i]
		}
	}
	return calls, items
}

// Issue 12 item 7: while the shared mailbox's items failed, the personal
// mailbox's 200 queued messages waited behind them.
func TestPusherFailingMailboxDoesNotStallOthers(t *testing.T) {
	e := newTwoBoxes(t, 50, 200, PusherConfig{StartBatch: 10, FailLimit: 3, RetryBase: time.Hour, RetryMax: 4 * time.Hour})
	e.odoo.RefuseItems(e.a.OdooID, currencyRefusal)

	// No clock moves: nothing may wait for A's backoff.
	e.drain(t)
	if st, _ := e.st.OutboxStats(); st[e.mb.ID].Items != 0 {
		t.Fatalf("B's items wait behind A's: %+v", st[e.mb.ID])
	}
	b, _ := e.st.Mailbox(e.mb.ID)
	if b.Counts.Delivered != 200 || b.Delivery.Delayed {
		t.Fatalf("B: counts %+v delivery %+v", b.Counts, b.Delivery)
	}
	// B's first call came in the first round, not after A's items.
	if first := indexOf(e.odoo.IngestCalls().Mailboxes, e.mb.OdooID); first < 0 || first > 1 {
		t.Fatalf("B's first call was call #%d (calls by Odoo mailbox: %v)", first, e.odoo.IngestCalls().Mailboxes)
	}
	// A was tried once (its first batch, refused), then backed off alone.
	if calls, items := e.callsOf(e.a.OdooID); calls != 1 || items != 10 {
		t.Fatalf("A: %d calls with %d items while it was failing, want 1 call of 10", calls, items)
	}
	if e.p.BackoffOf(e.a.ID).IsZero() || !e.p.BackoffOf(e.mb.ID).IsZero() {
		t.Fatalf("backoff: A until %v, B until %v", e.p.BackoffOf(e.a.ID), e.p.BackoffOf(e.mb.ID))
	}
	// B's batch grew on its own; A's refusals did not shrink it.
	if got := e.p.BatchSizeOf(e.mb.ID); got <= 10 {
		t.Fatalf("B's batch size %d did not grow from 10", got)
	}
	a, _ := e.st.Mailbox(e.a.ID)
	if a.Counts.Failed != 0 || !a.Delivery.Delayed || !strings.Contains(a.Delivery.Reason, "Currency") {
		t.Fatalf("A after one refusal: counts %+v delivery %+v", a.Counts, a.Delivery)
	}
	st, _ := e.st.OutboxStats()
	if st[e.a.ID].Items != 50 || st[e.a.ID].Failing != 10 || st[e.a.ID].Failed != 0 {
		t.Fatalf("A's outbox: %+v", st[e.a.ID])
	}

	// Time passes: A's items are refused the same way FailLimit times each and
	// become failed; they are kept, and no longer tried.
	for i := 0; i < 100; i++ {
		if st, _ := e.st.OutboxStats(); st[e.a.ID].Failed == 50 {
			break
		}
		e.clock.Add(5 * time.Hour)
		e.drain(t)
	}
	st, _ = e.st.OutboxStats()
	if st[e.a.ID].Items != 50 || st[e.a.ID].Failed != 50 {
		t.Fatalf("A's outbox after the refusals: %+v", st[e.a.ID])
	}
	calls, items := e.callsOf(e.a.OdooID)
	if items != 150 {
		t.Fatalf("Odoo saw %d of A's items in %d calls, want each of 50 items 3 times", items, calls)
	}
	e.clock.Add(24 * time.Hour)
	e.drain(t)
	if c, _ := e.callsOf(e.a.OdooID); c != calls {
		t.Fatalf("failed items were tried again (%d calls, then %d)", calls, c)
	}
	mgr := NewMailboxes(e.st, zerolog.Nop())
	v, err := mgr.Get(Actor{UID: 7}, e.a.ID)
	if err != nil {
		t.Fatal(err)
	}
	if v.Delivery.Failed != 50 || v.Delivery.FailedReason != currencyRefusal || v.Delivery.FailedAt == nil || v.Counts.Failed != 50 {
		t.Fatalf("mailbox.get delivery %+v counts %+v", v.Delivery, v.Counts)
	}
	if m, _ := e.st.Message(e.a.ID, "AAMk000003"); m.Delivery != store.DeliveryFailed || m.DeliveryError != currencyRefusal {
		t.Fatalf("index entry of a failed item: %+v", m)
	}

	// Retry failed: only those who may see the mailbox, audited.
	if _, err := mgr.RetryFailed(Actor{UID: 99}, e.a.ID); err == nil || AsError(err).Kind != KindAccess {
		t.Fatalf("a stranger retried A's failed items: %v", err)
	}
	e.odoo.RefuseItems(e.a.OdooID, "")
	res, err := mgr.RetryFailed(Actor{UID: 7}, e.a.ID)
	if err != nil || res.Requeued != 50 {
		t.Fatalf("retry_failed: %+v %v", res, err)
	}
	v, _ = mgr.Get(Actor{UID: 7}, e.a.ID)
	if v.Delivery.Failed != 0 || v.Delivery.FailedReason != "" {
		t.Fatalf("after retry_failed: %+v", v.Delivery)
	}
	audit, _, _ := e.st.AuditList(e.a.ID, 10, 0)
	if len(audit) == 0 || audit[0].Action != "mailbox.retry_failed" || audit[0].UID != 7 {
		t.Fatalf("audit %+v", audit)
	}
	e.clock.Add(5 * time.Hour) // past A's own backoff
	e.drain(t)
	a, _ = e.st.Mailbox(e.a.ID)
	if st, _ := e.st.OutboxStats(); st[e.a.ID].Items != 0 || a.Counts.Delivered != 50 || a.Counts.Failed != 0 || a.Delivery.Delayed {
		t.Fatalf("A after retry: outbox %+v counts %+v delivery %+v", st[e.a.ID], a.Counts, a.Delivery)
	}
}

// Odoo refusing with a different reason each time resets the count; an item
// is still not retried forever.
func TestPusherChangingReasonsStillFailInTheEnd(t *testing.T) {
	e := newTwoBoxes(t, 1, 0, PusherConfig{FailLimit: 2, RetryBase: time.Hour, RetryMax: time.Hour})
	for i := 0; i < 2*store.FailAfterAttempts; i++ {
		if st, _ := e.st.OutboxStats(); st[e.a.ID].Failed == 1 {
			break
		}
		e.odoo.RefuseItems(e.a.OdooID, "reason "+string(rune('a'+i)))
		e.clock.Add(2 * time.Hour)
		e.drain(t)
	}
	st, _ := e.st.OutboxStats()
	if st[e.a.ID].Failed != 1 {
		t.Fatalf("an item refused with changing reasons: %+v", st[e.a.ID])
	}
	if c, _ := e.callsOf(e.a.OdooID); c != 2*store.FailAfterAttempts {
		t.Fatalf("failed after %d refusals with changing reasons, want %d", c, 2*store.FailAfterAttempts)
	}
}

// Odoo down is nobody's item's fault: nothing becomes failed, however long.
func TestPusherOdooDownFailsNothing(t *testing.T) {
	e := newTwoBoxes(t, 5, 5, PusherConfig{FailLimit: 1, RetryBase: time.Millisecond, RetryMax: time.Millisecond})
	if err := e.odoo.SetDown(true); err != nil {
		t.Fatal(err)
	}
	for i := 0; i < 5; i++ {
		if _, err := e.p.DeliverOnce(context.Background()); !odoo.IsTransient(err) {
			t.Fatalf("round %d against a down Odoo: %v", i, err)
		}
		e.clock.Add(time.Hour)
	}
	st, _ := e.st.OutboxStats()
	for _, id := range []string{e.a.ID, e.mb.ID} {
		if st[id].Items != 5 || st[id].Failing != 0 || st[id].Failed != 0 {
			t.Fatalf("%s while Odoo was down: %+v", id, st[id])
		}
		if !e.p.BackoffOf(id).IsZero() {
			t.Fatalf("%s backs off alone for Odoo being down", id)
		}
	}
	if err := e.odoo.SetDown(false); err != nil {
		t.Fatal(err)
	}
	e.drain(t)
	if st, _ := e.st.OutboxStats(); len(st) != 0 {
		t.Fatalf("not delivered after Odoo came back: %+v", st)
	}
}

// A call-level failure of one mailbox while Odoo answers the others (a
// timeout on its items, say) backs off that mailbox alone, not everyone.
func TestPusherOneMailboxCallFailureBacksOffOnlyIt(t *testing.T) {
	e := newTwoBoxes(t, 5, 5, PusherConfig{RetryBase: time.Hour, RetryMax: time.Hour})
	first, second := e.a.ID, e.mb.ID // a round serves mailboxes in id order
	if second < first {
		first, second = second, first
	}
	e.odoo.FailNext(1, odoosim.FaultHTTP503)
	if _, err := e.p.DeliverOnce(context.Background()); err != nil {
		t.Fatalf("a round where Odoo answered one mailbox failed as a whole: %v", err)
	}
	if e.p.BackoffOf(first).IsZero() || !e.p.BackoffOf(second).IsZero() {
		t.Fatalf("backoff: failed mailbox until %v, the other until %v", e.p.BackoffOf(first), e.p.BackoffOf(second))
	}
	if d := e.p.pausedFor(); d > 0 {
		t.Fatalf("delivery paused for everyone (%v)", d)
	}
	st, _ := e.st.OutboxStats()
	if st[second].Items != 0 || st[first].Items != 5 || st[first].Failing != 0 {
		t.Fatalf("outbox %+v", st)
	}
	m, _ := e.st.Mailbox(first)
	if !m.Delivery.Delayed {
		t.Fatalf("the failed mailbox does not show its delay: %+v", m.Delivery)
	}
	e.clock.Add(2 * time.Hour)
	e.drain(t)
	if st, _ := e.st.OutboxStats(); len(st) != 0 {
		t.Fatalf("not delivered after the backoff: %+v", st)
	}
}

// Issue 12 item 7: an undecodable outbox item was skipped from the payload
// but the answers were read by the index of the picked items, shifting the
// acknowledgements (or panicking).
func TestDeliverOnceUndecodableItemInBatch(t *testing.T) {
	e := newPushEnv(t, 0)
	queue(t, e.st, e.mb.ID, 0, 3)
	bad, err := e.st.Enqueue(store.OutboxItem{MailboxID: e.mb.ID, GraphID: "AAMkBAD", Folder: "inbox", Direction: "in", Payload: []byte(`{"graph_id": "AAMkBAD", "subject": `)})
	if err != nil {
		t.Fatal(err)
	}
	queue(t, e.st, e.mb.ID, 3, 3)
	n, err := e.p.DeliverOnce(context.Background())
	if err != nil || n != 7 {
		t.Fatalf("DeliverOnce: %d %v", n, err)
	}
	if calls := e.odoo.IngestCalls(); calls.Calls != 1 || calls.Items != 6 {
		t.Fatalf("Odoo got %+v, want one call with the 6 readable items", calls)
	}
	byGraph := map[string]int64{}
	for _, m := range e.odoo.Messages() {
		byGraph[m.GraphID] = m.ID
	}
	for i := 0; i < 6; i++ {
		id := "AAMk00000" + string(rune('0'+i))
		m, err := e.st.Message(e.mb.ID, id)
		if err != nil {
			t.Fatal(err)
		}
		if m.Delivery != store.DeliveryPosted || len(m.OdooMessageIDs) != 1 || m.OdooMessageIDs[0] != byGraph[id] || byGraph[id] == 0 {
			t.Fatalf("%s acked as %+v; Odoo holds it as message %d", id, m, byGraph[id])
		}
	}
	items, _ := e.st.FailedOutbox(e.mb.ID)
	if len(items) != 1 || items[0].Seq != bad || !strings.Contains(items[0].LastError, "cannot read") {
		t.Fatalf("the unreadable item: %+v", items)
	}
	mb, _ := e.st.Mailbox(e.mb.ID)
	if mb.Counts.Delivered != 6 || mb.Counts.Failed != 1 || !strings.Contains(mb.Delivery.FailedReason, "cannot read") {
		t.Fatalf("mailbox counts %+v delivery %+v", mb.Counts, mb.Delivery)
	}
	if n, _ := e.p.DeliverOnce(context.Background()); n != 0 {
		t.Fatalf("a failed unreadable item was picked again (%d items)", n)
	}
}

// A stub Odoo whose answers are not in the order asked: the pusher must not
// record one message's Odoo ids on another.
type swappedOdoo struct{}

func (swappedOdoo) Ingest(_ context.Context, _ int64, items []odoo.IngestItem) ([]odoo.IngestResult, error) {
	out := make([]odoo.IngestResult, len(items))
	for i := range items {
		j := len(items) - 1 - i
		out[i] = odoo.IngestResult{GraphID: items[j].GraphID, Status: odoo.StatusPosted, OdooMessageIDs: odoo.IDs{int64(100 + j)}}
	}
	return out, nil
}
func (swappedOdoo) Notify(context.Context, int64, []odoo.Notice) error { return errors.New("no") }

func TestDeliverOnceRefusesAnswersForOtherMessages(t *testing.T) {
	e := newPushEnv(t, 2)
	e.p = NewPusher(PusherConfig{Store: e.st, Log: zerolog.Nop(), Odoo: func(store.OdooSettings) (OdooAPI, error) { return swappedOdoo{}, nil }})
	if _, err := e.p.DeliverOnce(context.Background()); err != nil {
		t.Fatal(err)
	}
	for _, id := range []string{"AAMk000000", "AAMk000001"} {
		if m, _ := e.st.Message(e.mb.ID, id); m.Delivery != store.DeliveryQueued || len(m.OdooMessageIDs) != 0 {
			t.Fatalf("%s got another message's answer: %+v", id, m)
		}
	}
	if st, _ := e.st.OutboxStats(); st[e.mb.ID].Items != 2 || st[e.mb.ID].Failing != 2 {
		t.Fatalf("outbox %+v", st)
	}
}

func indexOf(ids []int64, id int64) int {
	for i, x := range ids {
		if x == id {
			return i
		}
	}
	return -1
}

// BenchmarkPusherFairness: mailbox A (queued first) has 200 items Odoo
// refuses, B has 200 good ones; Odoo takes 20 ms per call. It reports how
// long B's items took to be all delivered, how many calls went to Odoo
// before B's first one and while B drained, and B's final batch size.
func BenchmarkPusherFairness(b *testing.B) {
	for i := 0; i < b.N; i++ {
		b.StopTimer()
		e := newTwoBoxes(b, 200, 200, PusherConfig{RetryBase: 2 * time.Second, RetryMax: 10 * time.Minute})
		e.odoo.RefuseItems(e.a.OdooID, currencyRefusal)
		e.odoo.SetLatency(20 * time.Millisecond)
		b.StartTimer()
		start := time.Now()
		for j := 0; j < 10000; j++ {
			if st, _ := e.st.OutboxStats(); st[e.mb.ID].Items == 0 {
				break
			}
			if _, err := e.p.DeliverOnce(context.Background()); err != nil {
				b.Fatal(err)
			}
		}
		el := time.Since(start)
		calls := e.odoo.IngestCalls()
		b.ReportMetric(float64(el.Milliseconds()), "B_drain_ms")
		b.ReportMetric(float64(indexOf(calls.Mailboxes, e.mb.OdooID)), "calls_before_B")
		aCalls, _ := e.callsOf(e.a.OdooID)
		b.ReportMetric(float64(aCalls), "A_calls")
		b.ReportMetric(float64(e.p.BatchSizeOf(e.mb.ID)), "B_batch")
	}
}

var _ = json.Marshal
