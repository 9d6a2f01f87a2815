package bench

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/rs/zerolog"

	"github.com/maildesk/maildesk/bridge"
	"github.com/maildesk/maildesk/graphsync/m365sim"
	"github.com/maildesk/maildesk/internal/recovery"
	"github.com/maildesk/maildesk/store"
	"github.com/maildesk/maildesk/store/pgstore"
)

// nodeConfig is a scale-out node: its PostgreSQL schema, name and lease
// TTL, and how many nodes run (it measures once all of them are alive).
type nodeConfig struct {
	URL    string        `json:"url"`
	Schema string        `json:"schema"`
	ID     string        `json:"id"`
	TTL    time.Duration `json:"ttl"`
	Nodes  int           `json:"nodes"`
}

// runScaleOut runs the fleet (o.Mailboxes idle mailboxes polled every
// o.Poll) on one PostgreSQL with 1, 2 and 3 sidecar nodes sharing the
// mailboxes through leases, each node a child process (store, leases,
// sync engine, scheduler, as cmd/maildesk wires them). Each node measures
// o.Duration once every node is alive, every mailbox has a holder and the
// node's mailboxes finished their first sync. Per node count it reports
// the nodes' CPU and peak memory together per 1,000 mailboxes, the busiest
// node's CPU, and the lease churn: claims, losses and releases in the
// window (steady state) and until it (start-up and rebalancing).
// PostgreSQL's own CPU is not counted.
func runScaleOut(ctx context.Context, o Options) (Result, error) {
	r := Result{Note: fmt.Sprintf("%d mailboxes, 1-3 nodes, poll %v, %v", o.Mailboxes, o.Poll, o.Duration)}
	if o.Postgres == "" {
		return r, errors.New("scaleout needs a PostgreSQL: --postgres postgres://user@host:port/db (it creates and drops a schema of its own)")
	}
	e, err := newEnv(o, 0)
	if err != nil {
		return r, err
	}
	defer e.close()
	upns := make([]string, o.Mailboxes)
	for k := range upns {
		upns[k] = fmt.Sprintf("idle%05d@%s", k, e.sim.Domain())
		e.sim.GenerateMailbox(upns[k], 2, m365sim.GenOptions{NoSamples: true, AttachmentRate: -1})
	}
	per1k := float64(o.Mailboxes) / 1000
	for nodes := 1; nodes <= 3; nodes++ {
		stats, err := scaleOutOnce(ctx, o, e, upns, nodes)
		if err != nil {
			return r, fmt.Errorf("%d nodes: %w", nodes, err)
		}
		var cpu, rss, busiest float64
		var churn, start int64
		for _, s := range stats {
			pct := s.CPU / max(s.Window, 0.001) * 100
			cpu += pct
			busiest = max(busiest, pct)
			rss += float64(s.MaxRSS) / 1024
			churn += s.Acquired + s.Lost + s.Released
			start += s.StartChurn
		}
		p := fmt.Sprintf("n%d_", nodes)
		r.add(p+"cpu_pct_per_1k", cpu/per1k)
		r.add(p+"rss_mb_per_1k", rss/per1k)
		r.add(p+"busiest_node_cpu_pct", busiest)
		r.add(p+"lease_churn_window", float64(churn))
		r.add(p+"lease_churn_start", float64(start))
	}
	return r, nil
}

// scaleOutOnce runs the fleet on a fresh schema with n nodes and returns
// each node's figures.
func scaleOutOnce(ctx context.Context, o Options, e *env, upns []string, n int) ([]childStats, error) {
	b := make([]byte, 6)
	_, _ = rand.Read(b)
	schema := "bench_" + hex.EncodeToString(b)
	pg, err := pgstore.Open(o.Postgres, benchKey(), pgstore.Options{Schema: schema})
	if err != nil {
		return nil, err
	}
	defer dropSchema(o.Postgres, schema)
	toks := map[string]string{}
	for _, upn := range upns {
		m, err := pg.CreateMailbox(store.Mailbox{
			MailboxConfig: store.MailboxConfig{Email: upn, Kind: "personal", Mode: "log", BackfillDays: 3650,
				Folders: []string{"inbox", "sentitems"}, OwnerUID: 2, MainUserID: 2, CreateContacts: true},
			MailboxStatus: store.MailboxStatus{State: bridge.StateConnected}})
		if err != nil {
			pg.Close()
			return nil, err
		}
		e.toks.add(m.ID, upn)
		if toks[m.ID], err = e.toks.Token(ctx, m.ID); err != nil {
			pg.Close()
			return nil, err
		}
	}
	pg.Close()
	var kids []*child
	defer func() {
		for _, c := range kids {
			c.kill()
		}
	}()
	for i := 0; i < n; i++ {
		dir := filepath.Join(e.dir, fmt.Sprintf("%s-node%d", schema, i))
		if err := os.MkdirAll(dir, 0o700); err != nil {
			return nil, err
		}
		cfg := childConfig{Mode: "node", DB: filepath.Join(dir, "unused"), Graph: e.sim.GraphBaseURL(), CA: string(e.sim.CAPEM()), Tokens: toks,
			Poll: o.Poll, Duration: o.Duration,
			Node: &nodeConfig{URL: o.Postgres, Schema: schema, ID: fmt.Sprintf("node%d", i+1), TTL: 15 * time.Second, Nodes: n}}
		c, err := startChild(o, cfg)
		if err != nil {
			return nil, err
		}
		kids = append(kids, c)
	}
	var out []childStats
	for _, c := range kids {
		s, err := c.stats(ctx)
		if err != nil {
			return nil, err
		}
		out = append(out, s)
	}
	kids = nil
	return out, nil
}

func dropSchema(url, schema string) {
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	if conn, err := pgx.Connect(ctx, url); err == nil {
		_, _ = conn.Exec(ctx, "DROP SCHEMA "+pgx.Identifier{schema}.Sanitize()+" CASCADE")
		conn.Close(ctx)
	}
}

// runNode is a scale-out node: leases on PostgreSQL, the store they fence,
// the sync engine and the scheduler working only held mailboxes, kicks
// between nodes by NOTIFY (as cmd/maildesk wires them; no pusher, as in
// the fleet scenario).
func runNode(ctx context.Context, cfg childConfig, stdout io.Writer) error {
	nc := cfg.Node
	pg, err := pgstore.Open(nc.URL, benchKey(), pgstore.Options{Schema: nc.Schema})
	if err != nil {
		return err
	}
	defer pg.Close()
	l, err := pg.NewLeases(pgstore.LeaseOptions{NodeID: nc.ID, TTL: nc.TTL})
	if err != nil {
		return err
	}
	work := l.Fence()
	sy, err := childSyncer(cfg, work)
	if err != nil {
		return err
	}
	sched, rounds, errs, err := fleetScheduler(cfg, work, sy, recovery.New(zerolog.Nop(), nil),
		bridge.SchedulerConfig{Owner: l, Forward: func(id string) error { return l.Send("kick", id) }})
	if err != nil {
		return err
	}
	l.OnMessage(func(kind, id string) {
		if kind == "kick" {
			sched.KickLocal(id)
		}
	})
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	leasesDone, schedDone := make(chan struct{}), make(chan struct{})
	go func() { l.Run(ctx); close(leasesDone) }()
	go func() { _ = sched.Run(ctx); close(schedDone) }()
	defer func() { cancel(); <-schedDone; <-leasesDone }()
	// Settled: every node alive, every mailbox held within the fair share,
	// and this node's mailboxes through their first sync.
	for !nodeSettled(ctx, pg, l, nc.Nodes) {
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-time.After(500 * time.Millisecond):
		}
	}
	c0 := l.Counts()
	cpu0, _ := cpuAndRSS()
	r0, e0 := rounds.Load(), errs.Load()
	t0 := time.Now()
	fmt.Fprintln(stdout, "READY")
	select {
	case <-ctx.Done():
		return ctx.Err()
	case <-time.After(cfg.Duration):
	}
	cpu1, rss := cpuAndRSS()
	c1 := l.Counts()
	return printStats(stdout, childStats{CPU: (cpu1 - cpu0).Seconds(), MaxRSS: rss, Rounds: rounds.Load() - r0, Window: time.Since(t0).Seconds(),
		Errors: errs.Load() - e0, Held: l.Held(), Acquired: c1.Acquired - c0.Acquired, Lost: c1.Lost - c0.Lost, Released: c1.Released - c0.Released,
		StartChurn: c0.Acquired + c0.Lost + c0.Released})
}

func nodeSettled(ctx context.Context, pg *pgstore.Store, l *pgstore.Leases, want int) bool {
	qctx, cancel := context.WithTimeout(ctx, 10*time.Second)
	defer cancel()
	nodes, unheld, err := pg.Membership(qctx)
	if err != nil || unheld > 0 {
		return false
	}
	alive, total, mine := 0, 0, -1
	for _, n := range nodes {
		if n.Alive {
			alive++
			total += n.Leases
		}
		if n.ID == l.NodeID() {
			mine = n.Leases
		}
	}
	if alive != want || mine != l.Held() {
		return false
	}
	share := (total + want - 1) / want
	for _, n := range nodes {
		if n.Alive && n.Leases > share {
			return false
		}
	}
	mbs, err := pg.Mailboxes()
	if err != nil {
		return false
	}
	for _, m := range mbs {
		if _, ok := l.Holds(m.ID); ok && (m.LastSuccessAt.IsZero() || !m.Progress.Finished) {
			return false
		}
	}
	return true
}
