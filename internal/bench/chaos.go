package bench

import (
	"context"
	"fmt"
	"math/rand"
	"time"

	"github.com/maildesk/maildesk/graphsync/m365sim"
)

// runChaos backfills a mailbox into the Odoo stand-in through a sidecar
// child process (store, sync engine, scheduler, pusher) while Graph
// injects faults (20 % of requests: 503, reset connections, 429 bursts,
// expired delta tokens, short pages), the sidecar is SIGKILLed o.Kills
// times — each time after Odoo got more mail than before, at a random
// moment after that — and Odoo is down for 3 s once. At the end every
// message must be in Odoo (lost 0) and none twice on a record (dup 0).
func runChaos(ctx context.Context, o Options) (Result, error) {
	n := max(min(o.Messages/4, 500), 100)
	r := Result{Note: fmt.Sprintf("%d msgs, %d kills, Graph faults 20%%, Odoo down 3 s", n, o.Kills)}
	e, err := newEnv(o, 20*time.Millisecond)
	if err != nil {
		return r, err
	}
	defer e.close()
	if err := e.withOdoo(0); err != nil {
		return r, err
	}
	upn := "chaos@" + e.sim.Domain()
	e.sim.GenerateMailbox(upn, n, m365sim.GenOptions{NoSamples: true, MaxAttachment: 64 << 10})
	if _, err := e.mailbox(upn); err != nil {
		return r, err
	}
	cfg, err := e.childConfig("sidecar")
	if err != nil {
		return r, err
	}
	cfg.Poll, cfg.FastRetry = time.Second, true
	e.closeStore()
	want := map[string]bool{}
	for _, f := range []string{"inbox", "sentitems"} {
		for _, m := range e.sim.Messages(upn, f) {
			want[m.ID] = true
		}
	}
	e.sim.InjectFaults(m365sim.FaultOptions{Rate: 0.2})
	rnd := rand.New(rand.NewSource(o.Seed))
	all := func() bool { return len(e.delivered()) >= len(want) }
	kills, outage := 0, false
	for kills < o.Kills && !all() {
		c, err := startChild(o, cfg)
		if err != nil {
			return r, err
		}
		if _, err := c.waitLine(ctx, "READY"); err != nil {
			return r, err
		}
		if kills == o.Kills/2 && !outage {
			// Odoo goes away for 3 s while the sidecar works.
			outage = true
			if err := e.od.SetDown(true); err != nil {
				c.kill()
				return r, err
			}
			time.Sleep(3 * time.Second) // the outage itself
			if err := e.od.SetDown(false); err != nil {
				c.kill()
				return r, err
			}
		}
		// Kill after observed progress, at a random moment after it.
		seen := len(e.delivered())
		err = waitFor(ctx, 2*time.Minute, "progress before a kill", func() bool { return all() || len(e.delivered()) > seen })
		if err != nil {
			c.kill()
			return r, err
		}
		time.Sleep(time.Duration(rnd.Int63n(int64(300 * time.Millisecond))))
		c.kill()
		kills++
	}
	e.sim.InjectFaults(m365sim.FaultOptions{})
	c, err := startChild(o, cfg)
	if err != nil {
		return r, err
	}
	waitErr := waitFor(ctx, 3*time.Minute, "every message in Odoo", all)
	c.kill()
	got := e.delivered()
	lost := 0
	for id := range want {
		if got[id] == 0 {
			lost++
		}
	}
	dup := 0
	type onRecord struct {
		id, model string
		res       int64
	}
	posted := map[onRecord]int{}
	for _, m := range e.od.Messages() {
		if m.GraphID != "" {
			posted[onRecord{m.GraphID, m.Model, m.ResID}]++
		}
	}
	for _, c := range posted {
		dup += c - 1
	}
	st := e.sim.Stats("") // injected faults are counted in the totals
	r.add("messages", float64(len(want)))
	r.add("kills", float64(kills))
	r.add("graph_faults", float64(st.Faults))
	r.add("lost", float64(lost))
	r.add("dup", float64(dup))
	if waitErr != nil && lost == 0 {
		return r, waitErr
	}
	return r, nil
}
