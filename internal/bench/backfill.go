package bench

import (
	"context"
	"fmt"
	"time"

	"github.com/maildesk/maildesk/graphsync/m365sim"
)

// graphBudget is Graph's limit per app and mailbox: 10,000 requests per
// 10 minutes (shared/FACTS.md, throttling).
const graphBudget = 10000.0

// runBackfill backfills one mailbox of o.Messages (30 % with attachments of
// up to 1 MiB) at o.Latency with Graph's limits on. The sync engine runs in
// a child process, configured as cmd/maildesk configures it.
func runBackfill(ctx context.Context, o Options) (Result, error) {
	r := Result{Note: fmt.Sprintf("%d msgs, %v latency", o.Messages, o.Latency)}
	e, err := newEnv(o, o.Latency)
	if err != nil {
		return r, err
	}
	defer e.close()
	upn := "backfill@" + e.sim.Domain()
	e.sim.GenerateMailbox(upn, o.Messages, m365sim.GenOptions{MaxAttachment: 1 << 20, NoSamples: true})
	m, err := e.mailbox(upn)
	if err != nil {
		return r, err
	}
	cfg, err := e.childConfig("backfill")
	if err != nil {
		return r, err
	}
	cfg.Mailbox = m.ID
	e.closeStore()
	before := e.sim.Stats(upn)
	start := time.Now()
	c, err := startChild(o, cfg)
	if err != nil {
		return r, err
	}
	s, err := c.stats(ctx)
	if err != nil {
		c.kill()
		return r, err
	}
	el := time.Since(start)
	after := e.sim.Stats(upn)
	if err := e.open(); err != nil {
		return r, err
	}
	n, lost, dup, err := e.outboxOnce(m.ID, upn)
	if err != nil {
		return r, err
	}
	reqs := float64(after.Requests - before.Requests)
	msgs := float64(max(n, 1))
	r.add("messages", float64(n))
	r.add("msg_per_s", float64(n)/el.Seconds())
	r.add("req_per_msg", reqs/msgs)
	r.add("budget_share", reqs/el.Seconds()*600/graphBudget)
	r.add("throttled_429", float64(after.Throttled-before.Throttled))
	r.add("cpu_s_per_1k", s.CPU/msgs*1000)
	r.add("rss_mb", float64(s.MaxRSS)/1024)
	r.add("lost", float64(lost))
	r.add("dup", float64(dup))
	return r, nil
}

// runFleet connects o.Mailboxes idle mailboxes (two messages each) and
// measures the sidecar (child process: store, syncer, scheduler) while it
// polls them every o.Poll for o.Duration, after every mailbox's first round.
// The simulator answers at once here: latency changes no CPU figure and
// would only make the first rounds slow.
func runFleet(ctx context.Context, o Options) (Result, error) {
	r := Result{Note: fmt.Sprintf("%d mailboxes, poll %v, %v", o.Mailboxes, o.Poll, o.Duration)}
	e, err := newEnv(o, 0)
	if err != nil {
		return r, err
	}
	defer e.close()
	for k := 0; k < o.Mailboxes; k++ {
		upn := fmt.Sprintf("idle%05d@%s", k, e.sim.Domain())
		e.sim.GenerateMailbox(upn, 2, m365sim.GenOptions{NoSamples: true, AttachmentRate: -1})
		if _, err := e.mailbox(upn); err != nil {
			return r, err
		}
	}
	cfg, err := e.childConfig("fleet")
	if err != nil {
		return r, err
	}
	cfg.Poll, cfg.Duration = o.Poll, o.Duration
	e.closeStore()
	c, err := startChild(o, cfg)
	if err != nil {
		return r, err
	}
	if _, err := c.waitLine(ctx, "READY"); err != nil {
		c.kill()
		return r, err
	}
	before := e.sim.Stats("")
	s, err := c.stats(ctx)
	if err != nil {
		c.kill()
		return r, err
	}
	after := e.sim.Stats("")
	win := max(s.Window, 0.001)
	r.add("mailboxes", float64(o.Mailboxes))
	r.add("cpu_pct", s.CPU/win*100)
	r.add("rss_mb", float64(s.MaxRSS)/1024)
	r.add("rounds_per_s", float64(s.Rounds)/win)
	r.add("req_per_mailbox_h", float64(after.Requests-before.Requests)/float64(o.Mailboxes)/win*3600)
	r.add("failed_rounds", float64(s.Errors))
	r.add("throttled_429", float64(after.Throttled-before.Throttled))
	// Why (the simulator's reasons): the app's 2,000 requests/s over all
	// mailboxes, or 4 requests in flight on one mailbox.
	r.add("429_app_rate", float64(after.ThrottledApp-before.ThrottledApp))
	r.add("429_concurrency", float64(after.ThrottledConc-before.ThrottledConc))
	return r, nil
}
