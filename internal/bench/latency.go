package bench

import (
	"context"
	"fmt"
	"math/rand"
	"net/http"
	"net/http/httptest"
	"time"

	"github.com/rs/zerolog"

	"github.com/maildesk/maildesk/bridge"
	"github.com/maildesk/maildesk/graphsync/m365sim"
	"github.com/maildesk/maildesk/internal/recovery"
)

// sidecar is the sync engine, scheduler and pusher in this process, wired
// as cmd/maildesk wires them (sync.go, pusher.go).
type sidecar struct {
	sched  *bridge.Scheduler
	pusher *bridge.Pusher
	stop   func()
}

func (e *env) startSidecar(poll time.Duration, notify bool) (*sidecar, error) {
	g, err := e.graph()
	if err != nil {
		return nil, err
	}
	sy, err := bridge.NewSyncer(bridge.SyncConfig{Store: e.st, Graph: g, Log: zerolog.Nop(), LazyCursor: true, QuietIdle: true})
	if err != nil {
		return nil, err
	}
	grp := recovery.New(zerolog.Nop(), nil)
	sc := &sidecar{pusher: bridge.NewPusher(bridge.PusherConfig{Store: e.st, Log: zerolog.Nop(), Group: grp})}
	ctx, cancel := context.WithCancel(context.Background())
	var covered func(string) bool
	var stopSrv func()
	startNotifier := func() {}
	if notify {
		// Graph posts to the handler's URL, known once it listens.
		var n *bridge.Notifier
		srv := httptest.NewTLSServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { n.NotifyHandler().ServeHTTP(w, r) }))
		stopSrv = srv.Close
		n, err = bridge.NewNotifier(bridge.NotifierConfig{Store: e.st, Graph: g, Log: zerolog.Nop(),
			Kick: func(id string) error { return sc.sched.Kick(id) }, NotifyURL: srv.URL + "/graph/notify"})
		if err != nil {
			cancel()
			srv.Close()
			return nil, err
		}
		covered = n.Covered
		startNotifier = func() { go n.Run(ctx) }
	}
	sc.sched, err = bridge.NewScheduler(bridge.SchedulerConfig{Store: e.st, Sync: sy.SyncMailbox, PollInterval: poll,
		Recovery: grp, Log: zerolog.Nop(), Covered: covered})
	if err != nil {
		cancel()
		return nil, err
	}
	startNotifier()
	done := make(chan struct{}, 2)
	go func() { _ = sc.sched.Run(ctx); done <- struct{}{} }()
	go func() { sc.pusher.Run(ctx); done <- struct{}{} }()
	sc.stop = func() {
		cancel()
		<-done
		<-done
		if stopSrv != nil {
			stopSrv()
		}
	}
	return sc, nil
}

// delivered says which Graph ids reached the Odoo stand-in.
func (e *env) delivered() map[string]int {
	seen := map[string]int{}
	for _, m := range e.od.Messages() {
		if m.GraphID != "" {
			seen[m.GraphID]++
		}
	}
	return seen
}

// waitFor polls cond every 10 ms until it holds or ctx ends.
func waitFor(ctx context.Context, limit time.Duration, what string, cond func() bool) error {
	ctx, cancel := context.WithTimeout(ctx, limit)
	defer cancel()
	for !cond() {
		select {
		case <-ctx.Done():
			return fmt.Errorf("waited %v for %s", limit, what)
		case <-time.After(10 * time.Millisecond):
		}
	}
	return nil
}

func newMail(upn string, i int) []byte {
	return []byte(fmt.Sprintf("From: Zoë Müller <zoe.mueller@example.de>\r\nTo: %s\r\nSubject: latency probe %d\r\n"+
		"Message-ID: <probe-%d-%d@example.de>\r\nDate: %s\r\nContent-Type: text/plain; charset=utf-8\r\n\r\nprobe %d\r\n",
		upn, i, i, time.Now().UnixNano(), time.Now().UTC().Format(time.RFC1123Z), i))
}

// runLatency measures new mail → Odoo stand-in: a mail arrives in the
// simulator's Inbox at a random moment, and the clock stops when the
// stand-in has it. With polling every o.LatencyPoll, and with change
// notifications (the scheduler then polls only as a safety net).
func runLatency(ctx context.Context, o Options) (Result, error) {
	r := Result{Note: fmt.Sprintf("%d mails each, poll %v, %v Graph latency", o.Samples, o.LatencyPoll, o.Latency)}
	for _, mode := range []string{"poll", "notify"} {
		lat, err := latencyRun(ctx, o, mode == "notify")
		if err != nil {
			return r, fmt.Errorf("%s: %w", mode, err)
		}
		p50, p95, p99 := percentiles(lat)
		r.add(mode+"_p50_ms", p50)
		r.add(mode+"_p95_ms", p95)
		r.add(mode+"_p99_ms", p99)
	}
	return r, nil
}

func latencyRun(ctx context.Context, o Options, notify bool) ([]time.Duration, error) {
	e, err := newEnv(o, o.Latency)
	if err != nil {
		return nil, err
	}
	defer e.close()
	if err := e.withOdoo(0); err != nil {
		return nil, err
	}
	upn := "latency@" + e.sim.Domain()
	e.sim.GenerateMailbox(upn, 10, m365sim.GenOptions{NoSamples: true, AttachmentRate: -1})
	if _, err := e.mailbox(upn); err != nil {
		return nil, err
	}
	sc, err := e.startSidecar(o.LatencyPoll, notify)
	if err != nil {
		return nil, err
	}
	defer sc.stop()
	want := len(e.sim.Messages(upn, "inbox")) + len(e.sim.Messages(upn, "sentitems"))
	if err := waitFor(ctx, 2*time.Minute, "the first backfill to reach Odoo", func() bool { return len(e.delivered()) >= want }); err != nil {
		return nil, err
	}
	if notify {
		if err := waitFor(ctx, time.Minute, "a subscription", func() bool { return len(e.sim.Subscriptions()) > 0 }); err != nil {
			return nil, err
		}
	}
	rnd := rand.New(rand.NewSource(o.Seed))
	var lat []time.Duration
	for i := 0; i < o.Samples; i++ {
		// Arrive at a random phase of the poll cycle.
		select {
		case <-ctx.Done():
			return nil, ctx.Err()
		case <-time.After(time.Duration(rnd.Int63n(int64(o.LatencyPoll)))):
		}
		t0 := time.Now()
		id, err := e.sim.DeliverMIME(upn, "inbox", newMail(upn, i))
		if err != nil {
			return nil, err
		}
		if err := waitFor(ctx, 5*o.LatencyPoll+time.Minute, "a new mail in Odoo", func() bool { return e.delivered()[id] > 0 }); err != nil {
			return nil, err
		}
		lat = append(lat, time.Since(t0))
	}
	return lat, nil
}

// runPush fills the outbox by backfilling a generated mailbox (real
// payloads, 30 % with attachments of up to 256 KiB), then lets the pusher
// drain it into the stand-in answering after o.OdooLatency per call.
func runPush(ctx context.Context, o Options) (Result, error) {
	r := Result{Note: fmt.Sprintf("%d items, Odoo latency %v", o.Items, o.OdooLatency)}
	e, err := newEnv(o, 0)
	if err != nil {
		return r, err
	}
	defer e.close()
	if err := e.withOdoo(o.OdooLatency); err != nil {
		return r, err
	}
	upn := "push@" + e.sim.Domain()
	m, _, _, err := e.synced(ctx, upn, o.Items, 256<<10)
	if err != nil {
		return r, err
	}
	queued, _, _, err := e.outboxOnce(m.ID, upn)
	if err != nil {
		return r, err
	}
	p := bridge.NewPusher(bridge.PusherConfig{Store: e.st, Log: zerolog.Nop()})
	pctx, cancel := context.WithCancel(ctx)
	done := make(chan struct{})
	start := time.Now()
	go func() { p.Run(pctx); close(done) }()
	err = waitFor(ctx, 10*time.Minute, "the outbox to drain", func() bool {
		st, err := e.st.OutboxStats()
		return err == nil && st[m.ID].Items == 0
	})
	el := time.Since(start)
	cancel()
	<-done
	if err != nil {
		return r, err
	}
	calls := e.od.IngestCalls()
	r.add("items", float64(queued))
	r.add("items_per_s", float64(queued)/el.Seconds())
	r.add("calls", float64(calls.Calls))
	r.add("items_per_call", float64(calls.Items)/float64(max(calls.Calls, 1)))
	return r, nil
}
