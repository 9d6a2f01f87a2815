package bridge

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"math/rand/v2"
	"sort"
	"sync"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/rs/zerolog"

	"github.com/maildesk/maildesk/bridge/odoo"
	"github.com/maildesk/maildesk/internal/recovery"
	"github.com/maildesk/maildesk/store"
)

// OdooAPI is what the pusher needs of Odoo; *odoo.Client implements it.
type OdooAPI interface {
	Ingest(ctx context.Context, odooMailboxID int64, items []odoo.IngestItem) ([]odoo.IngestResult, error)
	Notify(ctx context.Context, odooMailboxID int64, notices []odoo.Notice) error
}

// OdooFactory builds the Odoo client from the current settings. It returns
// an error (and the pusher waits) while Odoo is not paired.
type OdooFactory func(st store.OdooSettings) (OdooAPI, error)

// DefaultOdooFactory builds an *odoo.Client.
func DefaultOdooFactory(st store.OdooSettings) (OdooAPI, error) {
	if st.URL == "" || st.APIKey == "" {
		return nil, Errorf(KindUser, "odoo_not_paired", "Odoo is not paired with MailDesk yet: open Settings → MailDesk in Odoo and press \"Pair with Odoo\"")
	}
	return odoo.New(odoo.Config{URL: st.URL, DB: st.DB, Login: st.Login, APIKey: st.APIKey, Protocol: st.Protocol})
}

// PusherConfig configures the pusher.
type PusherConfig struct {
	Store    Outbox
	Odoo     OdooFactory // DefaultOdooFactory when nil
	Log      zerolog.Logger
	Registry prometheus.Registerer // may be nil
	Group    *recovery.Group       // may be nil
	Now      func() time.Time

	// MaxBatch caps items per ingest call (default 200); each mailbox's batch
	// size adapts between 1 and MaxBatch to keep its calls under TargetCall.
	MaxBatch int
	// StartBatch is the first batch size (default 50).
	StartBatch int
	// MaxBatchBytes caps the payload of one call (default 16 MiB).
	MaxBatchBytes int
	// TargetCall is how long one ingest call should take at most (default 2 s),
	// so a batch never holds an Odoo worker for long.
	TargetCall time.Duration
	// FailLimit is how many times in a row Odoo may refuse an item with the
	// same reason before it becomes failed (default 5): kept in the outbox,
	// no longer retried, counted on its mailbox with Odoo's reason until
	// mailbox.retry_failed. Items are never dropped. A transport failure (Odoo
	// down, key revoked) is not a refusal and counts for nothing.
	FailLimit int
	// RetryBase and RetryMax bound the jittered exponential backoff (defaults
	// 2 s and 10 min).
	RetryBase, RetryMax time.Duration
	// CallTimeout bounds one Odoo call (default 60 s).
	CallTimeout time.Duration
	// Owner says which mailboxes this node delivers (SoleOwner when nil).
	Owner Owner
}

// Pusher drains the outbox into Odoo. One call at a time keeps Odoo's
// workers free for its users; batching makes each call count.
//
// Delivery is fair and isolated per mailbox: each round serves every mailbox
// with due items once, in turn (round-robin), each with its own batch of its
// own items, its own adaptive batch size and its own backoff. A mailbox whose
// items Odoo refuses backs off alone; the others' items never wait behind
// its items, and its slow or refused calls never shrink their batches.
type Pusher struct {
	cfg  PusherConfig
	kick chan struct{}

	mu        sync.Mutex
	boxes     map[string]*boxState // per mailbox id
	last      string               // the mailbox served last (round-robin)
	client    OdooAPI
	clientFor time.Time // settings.UpdatedAt the client was built for
	failures  int       // consecutive call-level failures
	pauseTill time.Time
	lastErr   string

	mItems   *prometheus.CounterVec
	mCalls   *prometheus.CounterVec
	mBatch   prometheus.Gauge
	mCallDur prometheus.Histogram
}

// boxState is one mailbox's delivery state.
type boxState struct {
	batch    int       // adaptive batch size
	failures int       // consecutive calls of this mailbox that failed or had every item refused
	retryAt  time.Time // backoff: the mailbox is skipped until then
}

// NewPusher builds a pusher; Run starts it.
func NewPusher(cfg PusherConfig) *Pusher {
	if cfg.Odoo == nil {
		cfg.Odoo = DefaultOdooFactory
	}
	if cfg.Now == nil {
		cfg.Now = time.Now
	}
	if cfg.MaxBatch <= 0 {
		cfg.MaxBatch = 200
	}
	if cfg.StartBatch <= 0 || cfg.StartBatch > cfg.MaxBatch {
		cfg.StartBatch = min(50, cfg.MaxBatch)
	}
	if cfg.MaxBatchBytes <= 0 {
		cfg.MaxBatchBytes = 16 << 20
	}
	if cfg.TargetCall <= 0 {
		cfg.TargetCall = 2 * time.Second
	}
	if cfg.FailLimit <= 0 {
		cfg.FailLimit = 5
	}
	if cfg.RetryBase <= 0 {
		cfg.RetryBase = 2 * time.Second
	}
	if cfg.RetryMax <= 0 {
		cfg.RetryMax = 10 * time.Minute
	}
	if cfg.CallTimeout <= 0 {
		cfg.CallTimeout = 60 * time.Second
	}
	p := &Pusher{
		cfg:   cfg,
		kick:  make(chan struct{}, 1),
		boxes: map[string]*boxState{},
		mItems: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "maildesk_push_items_total", Help: "Outbox items Odoo answered, by status (posted, duplicate, unrouted, excluded, error).",
		}, []string{"status"}),
		mCalls: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "maildesk_push_calls_total", Help: "Ingest calls to Odoo, by result (ok, transient, auth, error).",
		}, []string{"result"}),
		mBatch: prometheus.NewGauge(prometheus.GaugeOpts{
			Name: "maildesk_push_batch_size", Help: "Largest current adaptive batch size of ingest calls (each mailbox has its own).",
		}),
		mCallDur: prometheus.NewHistogram(prometheus.HistogramOpts{
			Name: "maildesk_push_call_seconds", Help: "Duration of ingest calls to Odoo.",
			Buckets: []float64{.01, .025, .05, .1, .25, .5, 1, 2, 5, 10, 30},
		}),
	}
	if cfg.Registry != nil {
		for _, c := range []prometheus.Collector{p.mItems, p.mCalls, p.mBatch, p.mCallDur, outboxCollector{cfg.Store}} {
			_ = cfg.Registry.Register(c)
		}
	}
	p.mBatch.Set(float64(cfg.StartBatch))
	if cfg.Owner != nil {
		cfg.Owner.OnChange(p.Kick) // gained mailboxes may have items waiting
	}
	if cfg.Store != nil {
		cfg.Store.OnQueued(p.Kick)
		cfg.Store.OnSettings(p.retryNow)
	}
	return p
}

// Kick asks the pusher to look at the outbox now (new items were queued).
func (p *Pusher) Kick() {
	select {
	case p.kick <- struct{}{}:
	default:
	}
}

// retryNow ends a pause and wakes the loop: settings changed (Odoo was just
// paired, or its URL or key fixed), so the reason for the pause may be gone.
func (p *Pusher) retryNow() {
	p.mu.Lock()
	p.pauseTill = time.Time{}
	p.mu.Unlock()
	p.Kick()
}

// BatchSize is the largest current adaptive batch size of any mailbox
// (StartBatch before the first call).
func (p *Pusher) BatchSize() int {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.maxBatchLocked()
}

func (p *Pusher) maxBatchLocked() int {
	n := 0
	for _, b := range p.boxes {
		n = max(n, b.batch)
	}
	if n == 0 {
		n = p.cfg.StartBatch
	}
	return n
}

// BatchSizeOf is a mailbox's current adaptive batch size.
func (p *Pusher) BatchSizeOf(mailboxID string) int {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.boxLocked(mailboxID).batch
}

// BackoffOf returns until when a mailbox is skipped (zero when it is not).
func (p *Pusher) BackoffOf(mailboxID string) time.Time {
	p.mu.Lock()
	defer p.mu.Unlock()
	if b := p.boxes[mailboxID]; b != nil && b.retryAt.After(p.cfg.Now()) {
		return b.retryAt
	}
	return time.Time{}
}

func (p *Pusher) boxLocked(id string) *boxState {
	b := p.boxes[id]
	if b == nil {
		b = &boxState{batch: p.cfg.StartBatch}
		p.boxes[id] = b
	}
	return b
}

// Status reports whether delivery is paused and why (for system.health).
func (p *Pusher) Status() (ok bool, reason string) {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.failures == 0, p.lastErr
}

// Run drains the outbox until ctx ends. It wakes on Kick, when the earliest
// waiting item becomes due, and at least every idle interval.
func (p *Pusher) Run(ctx context.Context) {
	const idle = 30 * time.Second
	timer := time.NewTimer(0)
	defer timer.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-p.kick:
		case <-timer.C:
		}
		wait := p.runOnce(ctx)
		if wait <= 0 {
			wait = idle
			now := p.cfg.Now()
			skip, backoffs := p.waiting(now)
			if t, ok := p.cfg.Store.NextOutboxDue(skip); ok {
				if d := t.Sub(now); d < wait {
					wait = max(d, 10*time.Millisecond)
				}
			}
			// A mailbox in backoff is due again when its backoff ends.
			for _, t := range backoffs {
				if d := t.Sub(now); d < wait {
					wait = max(d, 10*time.Millisecond)
				}
			}
		}
		if !timer.Stop() {
			select {
			case <-timer.C:
			default:
			}
		}
		timer.Reset(wait)
	}
}

// runOnce delivers what is due; it returns how long to wait before the next
// attempt when delivery is paused (0 = ask the outbox).
func (p *Pusher) runOnce(ctx context.Context) (wait time.Duration) {
	if p.cfg.Group != nil {
		defer p.cfg.Group.Recover("pusher")
	}
	if err := p.deliverNotices(ctx); err != nil {
		return p.callFailed(err, nil)
	}
	for ctx.Err() == nil {
		if d := p.pausedFor(); d > 0 {
			return d
		}
		n, err := p.DeliverOnce(ctx)
		if err != nil {
			return max(p.pausedFor(), time.Second)
		}
		if n == 0 {
			return 0
		}
	}
	return 0
}

func (p *Pusher) pausedFor() time.Duration {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.pauseTill.Sub(p.cfg.Now())
}

func (p *Pusher) odooClient() (OdooAPI, error) {
	st, err := p.cfg.Store.Settings()
	if err != nil {
		return nil, err
	}
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.client != nil && p.clientFor.Equal(st.UpdatedAt) {
		return p.client, nil
	}
	c, err := p.cfg.Odoo(st.Odoo)
	if err != nil {
		return nil, err
	}
	p.client, p.clientFor = c, st.UpdatedAt
	return c, nil
}

// DeliverOnce runs one delivery round: every mailbox with due items, in turn
// starting after the one served last, gets one ingest call with a batch of
// its own items (its own batch size), and Odoo's answers are applied. A
// mailbox in backoff is skipped. It returns how many items it handled; an
// error means a call-level failure for every mailbox tried (Odoo down, key
// revoked) and the items wait. A call-level failure of some mailboxes while
// others got through backs off only those mailboxes.
func (p *Pusher) DeliverOnce(ctx context.Context) (int, error) {
	now := p.cfg.Now()
	ms, err := p.cfg.Store.Mailboxes()
	if err != nil {
		return 0, err
	}
	boxes := make(map[string]*store.Mailbox, len(ms))
	for i := range ms {
		boxes[ms[i].ID] = &ms[i]
	}
	skip, _ := p.skipper(boxes, now)
	batches, err := p.cfg.Store.DueOutboxByMailbox(now, p.BatchSizeOf, p.cfg.MaxBatchBytes, skip)
	if err != nil {
		return 0, err
	}
	if len(batches) == 0 {
		p.flagUndeliverable(boxes)
		return 0, nil
	}
	// Round-robin: start after the mailbox served last.
	p.mu.Lock()
	start := sort.Search(len(batches), func(i int) bool { return batches[i].MailboxID > p.last })
	p.mu.Unlock()
	batches = append(batches[start:], batches[:start]...)
	waiting := make([]string, len(batches))
	for i, b := range batches {
		waiting[i] = b.MailboxID
	}
	client, err := p.odooClient()
	if err != nil {
		p.callFailed(err, waiting)
		return 0, err
	}
	total, ok := 0, 0
	var failed []string
	var lastErr error
	for _, b := range batches {
		if ctx.Err() != nil {
			return total, ctx.Err()
		}
		p.mu.Lock()
		p.last = b.MailboxID
		p.mu.Unlock()
		n, err := p.deliverBox(ctx, client, boxes[b.MailboxID], b.Items)
		total += n
		if err == nil {
			ok++
			continue
		}
		if ctx.Err() != nil {
			return total, ctx.Err()
		}
		if odoo.IsAuth(err) {
			// The key is refused for everyone.
			p.callFailed(err, waiting)
			return total, err
		}
		failed, lastErr = append(failed, b.MailboxID), err
	}
	if lastErr != nil && ok == 0 {
		// Nobody got through: Odoo is down or unreachable, nobody's fault.
		p.callFailed(lastErr, waiting)
		return total, lastErr
	}
	// Odoo answered others: only these mailboxes' calls fail (a timeout
	// on their items, say); they back off alone.
	for _, id := range failed {
		d := p.boxBackoff(id, time.Minute)
		p.cfg.Log.Warn().Str("mailbox", id).Err(lastErr).Dur("retry_in", d).Msg("pusher: a mailbox's call failed while others got through; it backs off alone")
		p.setDelivery(id, true, deliveryReason(lastErr))
	}
	return total, nil
}

// deliverBox makes one ingest call with items of mailbox m and applies the
// answers. It returns how many items it handled; an error is a call-level
// failure (transient or auth) and the items wait untouched.
func (p *Pusher) deliverBox(ctx context.Context, client OdooAPI, m *store.Mailbox, items []store.OutboxItem) (int, error) {
	now := p.cfg.Now()
	// sent[i] is the outbox item of payload[i]: Odoo's results are in the
	// order of the payload, which skips items that cannot be read.
	sent := make([]store.OutboxItem, 0, len(items))
	payload := make([]odoo.IngestItem, 0, len(items))
	var bad []store.OutboxAck
	for _, it := range items {
		item, err := decodeItem(it.Payload, m)
		if err != nil {
			// A payload we cannot read is a bug no retry fixes: keep the
			// item as failed and say why.
			bad = append(bad, store.OutboxAck{Seq: it.Seq, Status: "error", Fail: true,
				Error: "MailDesk cannot read this queued message (" + err.Error() + "); it was not sent to Odoo", RetryAt: now.Add(p.cfg.RetryMax)})
			continue
		}
		sent = append(sent, it)
		payload = append(payload, item)
	}
	if len(bad) > 0 {
		p.mItems.WithLabelValues("error").Add(float64(len(bad)))
		p.cfg.Log.Error().Str("mailbox", m.ID).Int("items", len(bad)).Msg("pusher: unreadable outbox items marked failed")
		if err := p.cfg.Store.AckOutbox(bad, p.cfg.FailLimit); err != nil {
			return 0, err
		}
	}
	if len(payload) == 0 {
		return len(items), nil
	}
	cctx, cancel := context.WithTimeout(ctx, p.cfg.CallTimeout)
	start := time.Now()
	results, err := client.Ingest(cctx, m.OdooID, payload)
	took := time.Since(start)
	cancel()
	p.mCallDur.Observe(took.Seconds())
	if err == nil && len(results) != len(payload) {
		err = &odoo.Error{Kind: odoo.KindUnknown, Op: "maildesk.mailbox.maildesk_ingest",
			Message: fmt.Sprintf("got %d results for %d items", len(results), len(payload))}
	}
	if err != nil {
		if ctx.Err() != nil {
			return 0, ctx.Err()
		}
		if odoo.IsTransient(err) || odoo.IsAuth(err) {
			return 0, err
		}
		p.mCalls.WithLabelValues("error").Inc()
		if len(sent) > 1 {
			// Odoo refused the whole call: find the item at fault by going one
			// at a time in this mailbox, so good items are not held back by
			// a bad one (other mailboxes keep their batch sizes).
			p.setBatch(m.ID, 1)
			return len(items), nil
		}
		p.ackRefused(m.ID, sent, "Odoo refused the delivery: "+err.Error())
		return len(items), nil
	}
	p.mCalls.WithLabelValues("ok").Inc()
	p.adapt(m.ID, len(payload), took)
	acks := make([]store.OutboxAck, 0, len(sent))
	refused, reason := 0, ""
	for i, it := range sent {
		r := results[i]
		a := store.OutboxAck{Seq: it.Seq, Status: r.Status, Error: string(r.Error), ActivityID: int64(r.ActivityID), OdooMessageIDs: []int64(r.OdooMessageIDs)}
		for _, ref := range r.Records {
			a.Records = append(a.Records, store.OdooRef{Model: ref.Model, ID: ref.ID})
		}
		switch r.Status {
		case odoo.StatusPosted, odoo.StatusDuplicate, odoo.StatusUnrouted, odoo.StatusExcluded:
			// Done: an excluded item (Odoo deliberately did not log it)
			// is never retried; its reason goes on the index entry.
		default:
			a.Status = "error"
			if a.Error == "" {
				a.Error = fmt.Sprintf("Odoo answered status %q", r.Status)
			}
		}
		if a.Status != "error" && r.GraphID != "" && r.GraphID != payload[i].GraphID {
			// An answer for another message: record nothing of it.
			a = store.OutboxAck{Seq: it.Seq, Status: "error", Error: fmt.Sprintf("Odoo answered for message %s instead of %s", r.GraphID, payload[i].GraphID)}
		}
		if a.Status == "error" {
			a.RetryAt = now.Add(p.backoff(it.Attempts + 1))
			refused++
			reason = a.Error
		}
		p.mItems.WithLabelValues(a.Status).Inc()
		acks = append(acks, a)
	}
	if err := p.cfg.Store.AckOutbox(acks, p.cfg.FailLimit); err != nil {
		return 0, err
	}
	if refused == len(sent) {
		p.allRefused(m.ID, reason)
	} else {
		p.callOK(m.ID)
	}
	return len(items), nil
}

// allRefused backs a mailbox off when Odoo refused every item of its call:
// its other items would likely be refused the same way, and the other
// mailboxes should have Odoo's time meanwhile.
func (p *Pusher) allRefused(mailboxID, reason string) {
	d := p.boxBackoff(mailboxID, p.cfg.RetryMax)
	p.cfg.Log.Warn().Str("mailbox", mailboxID).Str("reason", reason).Dur("retry_in", d).Msg("pusher: Odoo refused every item of a mailbox's call; the mailbox backs off")
	p.setDelivery(mailboxID, true, fmt.Sprintf("Odoo refuses this mailbox's mail (%s); MailDesk retries with backoff, and a message refused %d times the same way shows as failed", reason, p.cfg.FailLimit))
}

// boxBackoff starts or lengthens a mailbox's backoff (at most limit) and
// returns it.
func (p *Pusher) boxBackoff(mailboxID string, limit time.Duration) time.Duration {
	p.mu.Lock()
	defer p.mu.Unlock()
	b := p.boxLocked(mailboxID)
	b.failures++
	d := min(p.backoff(b.failures), limit)
	b.retryAt = p.cfg.Now().Add(d)
	return d
}

// waiting returns a skip function for mailboxes whose items cannot go to
// Odoo now (no Odoo record id, or in backoff) and the backoff ends.
func (p *Pusher) waiting(now time.Time) (func(string) bool, []time.Time) {
	ms, _ := p.cfg.Store.Mailboxes()
	boxes := make(map[string]*store.Mailbox, len(ms))
	for i := range ms {
		boxes[ms[i].ID] = &ms[i]
	}
	return p.skipper(boxes, now)
}

// skipper says which mailboxes' items cannot go to Odoo now (unknown, no
// Odoo record id, or in backoff), and when those backoffs end.
func (p *Pusher) skipper(boxes map[string]*store.Mailbox, now time.Time) (func(string) bool, []time.Time) {
	backoff := map[string]bool{}
	var ends []time.Time
	p.mu.Lock()
	for id, b := range p.boxes {
		if b.retryAt.After(now) {
			backoff[id] = true
			ends = append(ends, b.retryAt)
		}
	}
	p.mu.Unlock()
	return func(id string) bool {
		m := boxes[id]
		return m == nil || m.OdooID == 0 || backoff[id] || !holds(p.cfg.Owner, id)
	}, ends
}

// flagUndeliverable shows on mailboxes without an Odoo record why their
// mail waits.
func (p *Pusher) flagUndeliverable(boxes map[string]*store.Mailbox) {
	stats, err := p.cfg.Store.OutboxStats()
	if err != nil {
		return
	}
	for id := range stats {
		if m := boxes[id]; m != nil && m.OdooID == 0 && holds(p.cfg.Owner, id) {
			p.setDelivery(id, true, "This mailbox has no Odoo record to deliver to (it was created outside Odoo): create or link it from Odoo (MailDesk → Mailboxes)")
		}
	}
}

// decodeItem reads an outbox payload and sets the options the mailbox has
// now, so an admin's change applies to mail still waiting.
func decodeItem(raw []byte, m *store.Mailbox) (odoo.IngestItem, error) {
	var it odoo.IngestItem
	if err := json.Unmarshal(raw, &it); err != nil {
		return it, err
	}
	sent, backfill := it.Options.SentByMailDesk, it.Options.Backfill
	it.Options = ingestOptions(m)
	it.Options.SentByMailDesk, it.Options.Backfill = sent, backfill
	return it, nil
}

// ingestOptions are the mailbox's ingest options as they are now.
func ingestOptions(m *store.Mailbox) odoo.IngestOptions {
	o := odoo.IngestOptions{
		Mode: m.Mode, GatewayModel: m.GatewayModel, LogSentAsActivity: m.LogSentAsActivity,
		MainUserID: m.MainUserID, CreateContacts: m.CreateContacts,
	}
	if o.Mode == "" {
		o.Mode = odoo.ModeLog
	}
	return o
}

// ackRefused records Odoo's refusal of a whole (one-item) call as a refusal
// of its items and backs the mailbox off.
func (p *Pusher) ackRefused(mailboxID string, items []store.OutboxItem, msg string) {
	acks := make([]store.OutboxAck, 0, len(items))
	for _, it := range items {
		acks = append(acks, store.OutboxAck{Seq: it.Seq, Status: "error", Error: msg, RetryAt: p.cfg.Now().Add(p.backoff(it.Attempts + 1))})
		p.mItems.WithLabelValues("error").Inc()
	}
	if err := p.cfg.Store.AckOutbox(acks, p.cfg.FailLimit); err != nil {
		p.cfg.Log.Error().Err(err).Msg("pusher: record refused items")
	}
	p.allRefused(mailboxID, msg)
}

// adapt grows a mailbox's batch while its calls are fast and full, and
// halves it when a call took longer than the target.
func (p *Pusher) adapt(mailboxID string, n int, took time.Duration) {
	p.mu.Lock()
	defer p.mu.Unlock()
	b := p.boxLocked(mailboxID)
	switch {
	case took > p.cfg.TargetCall:
		b.batch = max(1, b.batch/2)
	case n >= b.batch && took < p.cfg.TargetCall/2:
		b.batch = min(p.cfg.MaxBatch, max(b.batch+1, b.batch*3/2))
	}
	p.mBatch.Set(float64(p.maxBatchLocked()))
}

func (p *Pusher) setBatch(mailboxID string, n int) {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.boxLocked(mailboxID).batch = n
	p.mBatch.Set(float64(p.maxBatchLocked()))
}

// backoff is a capped, jittered exponential delay for attempt n (1-based).
func (p *Pusher) backoff(n int) time.Duration {
	d := p.cfg.RetryBase
	for i := 1; i < n && d < p.cfg.RetryMax; i++ {
		d *= 2
	}
	d = min(d, p.cfg.RetryMax)
	return d/2 + rand.N(d/2+1)
}

// callFailed pauses delivery after a call-level failure and shows the
// reason on the mailboxes that wait. It returns the pause.
func (p *Pusher) callFailed(err error, mailboxes []string) time.Duration {
	reason := deliveryReason(err)
	label := "transient"
	if odoo.IsAuth(err) {
		label = "auth"
	}
	p.mCalls.WithLabelValues(label).Inc()
	p.mu.Lock()
	p.failures++
	// Odoo being down is nobody's item's fault: retry at least every minute
	// so delivery resumes soon after Odoo is back.
	d := min(p.backoff(p.failures), time.Minute)
	p.pauseTill = p.cfg.Now().Add(d)
	p.lastErr = reason
	p.mu.Unlock()
	p.cfg.Log.Warn().Str("reason", reason).Dur("retry_in", d).Msg("pusher: delivery to Odoo paused")
	if mailboxes == nil {
		ms, _ := p.cfg.Store.Mailboxes()
		for _, m := range ms {
			if holds(p.cfg.Owner, m.ID) {
				mailboxes = append(mailboxes, m.ID)
			}
		}
	}
	for _, id := range mailboxes {
		p.setDelivery(id, true, reason)
	}
	return d
}

func (p *Pusher) callOK(mailboxID string) {
	p.mu.Lock()
	p.failures = 0
	p.lastErr = ""
	p.pauseTill = time.Time{}
	b := p.boxLocked(mailboxID)
	b.failures, b.retryAt = 0, time.Time{}
	p.mu.Unlock()
	p.setDelivery(mailboxID, false, "")
}

// setDelivery records on the mailbox whether delivery waits and why; it
// writes only when something changes.
func (p *Pusher) setDelivery(mailboxID string, delayed bool, reason string) {
	m, err := p.cfg.Store.Mailbox(mailboxID)
	if err != nil {
		return
	}
	d := m.Delivery
	if d.Delayed == delayed && d.Reason == reason && (delayed || !d.LastOKAt.IsZero() && p.cfg.Now().Sub(d.LastOKAt) < time.Minute) {
		return
	}
	_, _ = updateStatus(p.cfg.Store, mailboxID, func(m *store.MailboxStatus) error {
		now := p.cfg.Now().UTC()
		if delayed && !m.Delivery.Delayed {
			m.Delivery.Since = now
		}
		if !delayed {
			m.Delivery.Since = time.Time{}
			m.Delivery.LastOKAt = now
		} else {
			m.Delivery.LastError = reason
		}
		m.Delivery.Delayed = delayed
		m.Delivery.Reason = reason
		return nil
	})
}

// deliveryReason says in Odoo's terms why delivery waits.
func deliveryReason(err error) string {
	var be *Error
	if errors.As(err, &be) {
		return be.Message
	}
	switch odoo.KindOf(err) {
	case odoo.KindAuth:
		return "Odoo refused MailDesk's API key (revoked or expired): press \"Pair with Odoo\" again in Settings → MailDesk; mail waits and is delivered once paired"
	case odoo.KindTransient:
		return "Odoo is unreachable or busy (" + err.Error() + "); mail waits and is delivered when Odoo answers again"
	case odoo.KindMissing:
		return "Odoo does not know maildesk.mailbox.maildesk_ingest: install or upgrade the MailDesk addon in Odoo"
	default:
		return "Odoo refused the delivery: " + err.Error()
	}
}

// deliverNotices hands waiting notices (sign in again, ...) to Odoo.
func (p *Pusher) deliverNotices(ctx context.Context) error {
	ns, err := p.cfg.Store.Notices()
	if err != nil || len(ns) == 0 {
		return err
	}
	client, err := p.odooClient()
	if err != nil {
		return err
	}
	for _, n := range ns {
		if !holds(p.cfg.Owner, n.MailboxID) {
			continue // its holder delivers it
		}
		m, err := p.cfg.Store.Mailbox(n.MailboxID)
		if err != nil {
			_ = p.cfg.Store.DeleteNotice(n.Seq) // mailbox deleted
			continue
		}
		if m.OdooID == 0 {
			continue
		}
		cctx, cancel := context.WithTimeout(ctx, p.cfg.CallTimeout)
		err = client.Notify(cctx, m.OdooID, []odoo.Notice{{Kind: n.Kind, Mailbox: m.ID, Email: m.Email, Reason: n.Reason}})
		cancel()
		if err != nil {
			if odoo.IsTransient(err) || odoo.IsAuth(err) {
				return err
			}
			p.cfg.Log.Error().Err(err).Str("mailbox", m.ID).Str("kind", n.Kind).Msg("pusher: Odoo refused a notice; it stays queued")
			continue
		}
		_ = p.cfg.Store.DeleteNotice(n.Seq)
	}
	return nil
}

// outboxCollector exports the outbox backlog at scrape time.
type outboxCollector struct{ st OutboxStatter }

var (
	descBacklog = prometheus.NewDesc("maildesk_outbox_items", "Items waiting in the outbox for Odoo, per mailbox.", []string{"mailbox"}, nil)
	descFailing = prometheus.NewDesc("maildesk_outbox_failing_items", "Outbox items with at least one failed attempt, per mailbox.", []string{"mailbox"}, nil)
	descFailed  = prometheus.NewDesc("maildesk_outbox_failed_items", "Outbox items Odoo refused the same way FailLimit times, kept until mailbox.retry_failed, per mailbox.", []string{"mailbox"}, nil)
)

func (c outboxCollector) Describe(ch chan<- *prometheus.Desc) {
	ch <- descBacklog
	ch <- descFailing
	ch <- descFailed
}

func (c outboxCollector) Collect(ch chan<- prometheus.Metric) {
	if c.st == nil {
		return
	}
	stats, err := c.st.OutboxStats()
	if err != nil {
		return
	}
	for id, s := range stats {
		ch <- prometheus.MustNewConstMetric(descBacklog, prometheus.GaugeValue, float64(s.Items), id)
		ch <- prometheus.MustNewConstMetric(descFailing, prometheus.GaugeValue, float64(s.Failing), id)
		ch <- prometheus.MustNewConstMetric(descFailed, prometheus.GaugeValue, float64(s.Failed), id)
	}
}
