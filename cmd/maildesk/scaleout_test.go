package main

import (
	"bufio"
	"bytes"
	"context"
	"crypto/tls"
	"crypto/x509"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	neturl "net/url"
	"os"
	"os/exec"
	"os/signal"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/rs/zerolog"

	"github.com/maildesk/maildesk/bridge/odoosim"
	"github.com/maildesk/maildesk/graphsync/m365sim"
	"github.com/maildesk/maildesk/store/pgstore/pgtest"
)

// Several sidecars on one PostgreSQL, as real processes: the test binary
// started again with MAILDESK_TEST_NODE naming a JSON file runs `serve`'s
// own wiring (buildApp, serveOn) with Microsoft pointed at the test's
// simulator.

const testNodeEnv = "MAILDESK_TEST_NODE"

type testNodeConfig struct {
	Store    string        `json:"store"`
	Dir      string        `json:"dir"`
	KeyFile  string        `json:"key_file"`
	Secret   string        `json:"secret_file"`
	NodeID   string        `json:"node_id"`
	LeaseTTL time.Duration `json:"lease_ttl"`
	Graph    string        `json:"graph"`
	CA       string        `json:"ca"`
}

// runTestNode runs this process as a sidecar node when the environment
// says so; ok is false otherwise.
func runTestNode() (code int, ok bool) {
	path := os.Getenv(testNodeEnv)
	if path == "" {
		return 0, false
	}
	var c testNodeConfig
	raw, err := os.ReadFile(path)
	if err == nil {
		err = json.Unmarshal(raw, &c)
	}
	if err != nil {
		fmt.Fprintln(os.Stderr, "test node:", err)
		return 2, true
	}
	cfg := Config{Listen: "127.0.0.1:0", DataDir: c.Dir, KeyFile: c.KeyFile, SharedSecretFile: c.Secret, Store: c.Store,
		LogLevel: "info", LogFormat: "json", MaxBodyBytes: 64 << 20, ShutdownGrace: 2 * time.Second,
		Lease: LeaseConfig{NodeID: c.NodeID, TTL: c.LeaseTTL}}
	key, secret, err := prepareDataDir(cfg, io.Discard)
	if err != nil {
		fmt.Fprintln(os.Stderr, "test node:", err)
		return 1, true
	}
	pool := x509.NewCertPool()
	pool.AppendCertsFromPEM([]byte(c.CA))
	// Log times to the nanosecond: the tests read when a node did what it
	// logged (testNode.loggedAt).
	zerolog.TimeFieldFormat = time.RFC3339Nano
	a, err := buildApp(cfg, newLogger(cfg, os.Stderr), key, secret, func(a *App) error {
		a.Simulate = true
		a.Microsoft = &Microsoft{GraphBaseURL: c.Graph, TLS: &tls.Config{RootCAs: pool, MinVersion: tls.VersionTLS12}}
		a.System.SetMode(true, c.Graph)
		return nil
	})
	if err != nil {
		fmt.Fprintln(os.Stderr, "test node:", err)
		return 1, true
	}
	ln, err := net.Listen("tcp", cfg.Listen)
	if err != nil {
		fmt.Fprintln(os.Stderr, "test node:", err)
		return 1, true
	}
	fmt.Printf("LISTEN %s\n", ln.Addr())
	ctx, stop := signal.NotifyContext(context.Background(), syscall.SIGTERM, os.Interrupt)
	defer stop()
	if err := a.serveOn(ctx, ln, io.Discard); err != nil {
		fmt.Fprintln(os.Stderr, "test node:", err)
		return 1, true
	}
	return 0, true
}

// cluster is the test's world: the simulator, the Odoo stand-in, one
// PostgreSQL schema, and the sidecar nodes.
type cluster struct {
	t      *testing.T
	sim    *m365sim.Sim
	od     *odoosim.Server
	url    string // the schema's URL
	db     *pgx.Conn
	dir    string
	secret string
	ttl    time.Duration
	nodes  map[string]*testNode
	want   map[string]bool   // every generated message's Graph id
	boxes  []string          // sidecar mailbox ids
	upn    map[string]string // sidecar mailbox id → user
}

type testNode struct {
	id     string
	cmd    *exec.Cmd
	rc     *rpcClient
	base   string
	stderr *bytes.Buffer
	mu     sync.Mutex
	done   chan struct{}
}

func newCluster(t *testing.T, ttl time.Duration) *cluster {
	url, schema := pgtest.FreshSchema(t)
	sim, err := m365sim.New(m365sim.Options{Seed: 7, TimeScale: 1, Throttle: true})
	if err != nil {
		t.Fatal(err)
	}
	if err := sim.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { sim.Close() })
	od := odoosim.New(odoosim.Options{Version: 18})
	if err := od.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(od.Close)
	dir := t.TempDir()
	secret := strings.Repeat("s3cret-", 4)
	if err := os.WriteFile(filepath.Join(dir, "shared-secret"), []byte(secret+"\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	db, err := pgx.Connect(context.Background(), url)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { db.Close(context.Background()) })
	if _, err := db.Exec(context.Background(), "SET search_path = "+pgx.Identifier{schema}.Sanitize()); err != nil {
		t.Fatal(err)
	}
	c := &cluster{t: t, sim: sim, od: od, url: url, db: db, dir: dir, secret: secret, ttl: ttl, nodes: map[string]*testNode{}, want: map[string]bool{}, upn: map[string]string{}}
	t.Cleanup(c.stopAll)
	return c
}

// start runs a node whose PostgreSQL is storeURL (the cluster's, or a
// proxy's) and waits until it listens.
func (c *cluster) start(id, storeURL string) *testNode {
	t := c.t
	t.Helper()
	dir := filepath.Join(c.dir, id)
	if err := os.MkdirAll(dir, 0o700); err != nil {
		t.Fatal(err)
	}
	cfg := testNodeConfig{Store: storeURL, Dir: dir, KeyFile: filepath.Join(c.dir, "maildesk.key"), Secret: filepath.Join(c.dir, "shared-secret"),
		NodeID: id, LeaseTTL: c.ttl, Graph: c.sim.GraphBaseURL(), CA: string(c.sim.CAPEM())}
	raw, _ := json.Marshal(cfg)
	path := filepath.Join(dir, "node.json")
	if err := os.WriteFile(path, raw, 0o600); err != nil {
		t.Fatal(err)
	}
	cmd := exec.Command(os.Args[0], "-test.run=^$")
	cmd.Env = append(os.Environ(), testNodeEnv+"="+path)
	n := &testNode{id: id, cmd: cmd, stderr: &bytes.Buffer{}, done: make(chan struct{})}
	cmd.Stderr = &lockedWriter{mu: &n.mu, w: n.stderr}
	out, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	go func() { _ = cmd.Wait(); close(n.done) }()
	lines := make(chan string, 1)
	go func() {
		sc := bufio.NewScanner(out)
		for sc.Scan() {
			if strings.HasPrefix(sc.Text(), "LISTEN ") {
				lines <- strings.TrimPrefix(sc.Text(), "LISTEN ")
			}
		}
	}()
	select {
	case addr := <-lines:
		n.base = "http://" + addr
	case <-n.done:
		t.Fatalf("node %s exited before listening: %s", id, n.log())
	case <-time.After(2 * time.Minute):
		t.Fatalf("node %s did not listen", id)
	}
	n.rc = &rpcClient{url: n.base, secret: c.secret, http: &http.Client{Timeout: time.Minute}, uid: 2}
	c.nodes[id] = n
	return n
}

type lockedWriter struct {
	mu *sync.Mutex
	w  io.Writer
}

func (l *lockedWriter) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.w.Write(p)
}

func (n *testNode) log() string {
	n.mu.Lock()
	defer n.mu.Unlock()
	s := n.stderr.String()
	if len(s) > 4000 {
		s = "…" + s[len(s)-4000:]
	}
	return s
}

// loggedAt is the time of the node's first JSON log line since since whose
// message contains msg (the node logs with nanoseconds).
func (n *testNode) loggedAt(msg string, since time.Time) (time.Time, bool) {
	n.mu.Lock()
	all := n.stderr.String()
	n.mu.Unlock()
	for _, line := range strings.Split(all, "\n") {
		var l struct {
			Time    time.Time `json:"time"`
			Message string    `json:"message"`
		}
		if json.Unmarshal([]byte(line), &l) == nil && !l.Time.Before(since) && strings.Contains(l.Message, msg) {
			return l.Time, true
		}
	}
	return time.Time{}, false
}

func (n *testNode) kill() {
	_ = n.cmd.Process.Signal(syscall.SIGKILL)
	<-n.done
}

func (c *cluster) stopAll() {
	for _, n := range c.nodes {
		_ = n.cmd.Process.Signal(syscall.SIGTERM)
	}
	for _, n := range c.nodes {
		select {
		case <-n.done:
		case <-time.After(10 * time.Second):
			n.kill()
		}
	}
}

// pair sends Odoo's Settings → MailDesk (the Azure app, the pairing).
func (c *cluster) pair(ctx context.Context, n *testNode) {
	app := m365sim.DefaultApp()
	if err := n.rc.callWith(ctx, "settings.set", map[string]any{
		"azure": map[string]any{"tenant": c.sim.Tenant(), "client_id": app.ClientID, "client_secret": app.ClientSecret,
			"redirect_uri": n.base + "/oauth/callback", "authority": c.sim.URL()},
		"odoo": map[string]any{"url": c.od.URL(), "db": c.od.DB(), "login": c.od.TechLogin(), "api_key": c.od.APIKey(), "protocol": "jsonrpc"},
	}, nil); err != nil {
		c.t.Fatalf("settings.set: %v", err)
	}
}

// mailboxes generates n mailboxes of per messages each and creates and
// connects them through the real OAuth flow, each through the next node
// (any node answers RPC).
func (c *cluster) mailboxes(ctx context.Context, n, per int, via ...*testNode) {
	t := c.t
	for i := 0; i < n; i++ {
		upn := fmt.Sprintf("user%03d@%s", i, c.sim.Domain())
		c.sim.GenerateMailbox(upn, per, m365sim.GenOptions{NoSamples: true, AttachmentRate: -1,
			Start: time.Now().Add(-20 * 24 * time.Hour), End: time.Now().Add(-time.Hour)})
		for _, f := range []string{"inbox", "sentitems"} {
			for _, m := range c.sim.Messages(upn, f) {
				c.want[m.ID] = true
			}
		}
		rc := via[i%len(via)].rc
		var mb struct {
			ID string `json:"id"`
		}
		if err := rc.callWith(ctx, "mailbox.create", map[string]any{
			"email": upn, "kind": "personal", "owner_uid": 2, "user_ids": []int64{2}, "main_user_id": 2,
			"mode": "log", "backfill_days": 30, "create_contacts": true, "folders": []string{"inbox", "sentitems"},
		}, &mb); err != nil {
			t.Fatalf("mailbox.create: %v", err)
		}
		c.boxes = append(c.boxes, mb.ID)
		c.upn[mb.ID] = upn
		oid := c.od.CreateMailbox(mb.ID, upn)
		if err := rc.callWith(ctx, "mailbox.update", map[string]any{"mailbox_id": mb.ID, "odoo_id": oid}, nil); err != nil {
			t.Fatalf("mailbox.update: %v", err)
		}
		var conn struct {
			AuthURL string `json:"auth_url"`
		}
		if err := rc.callWith(ctx, "mailbox.connect", map[string]any{"mailbox_id": mb.ID}, &conn); err != nil {
			t.Fatalf("mailbox.connect: %v", err)
		}
		redirect, err := c.sim.SignIn(ctx, conn.AuthURL, upn)
		if err != nil {
			t.Fatalf("sign in: %v", err)
		}
		q := redirect.Query()
		if err := rc.callWith(ctx, "oauth.complete", map[string]any{"code": q.Get("code"), "state": q.Get("state")}, nil); err != nil {
			t.Fatalf("oauth.complete: %v", err)
		}
	}
}

// delivered counts each generated message in Odoo, and the copies on one
// record beyond the first (dup).
func (c *cluster) delivered() (got map[string]int, dup int) {
	got = map[string]int{}
	type onRecord struct {
		id, model string
		res       int64
	}
	posted := map[onRecord]int{}
	for _, m := range c.od.Messages() {
		if m.GraphID != "" {
			got[m.GraphID]++
			posted[onRecord{m.GraphID, m.Model, m.ResID}]++
		}
	}
	for _, n := range posted {
		dup += n - 1
	}
	return got, dup
}

// pending counts the messages of the given mailboxes not in Odoo yet.
func (c *cluster) pending(mailboxes []string, got map[string]int) int {
	n := 0
	for _, id := range mailboxes {
		upn := c.upn[id]
		for _, f := range []string{"inbox", "sentitems"} {
			for _, m := range c.sim.Messages(upn, f) {
				if got[m.ID] == 0 {
					n++
				}
			}
		}
	}
	return n
}

func (c *cluster) heldBy(ctx context.Context) map[string][]string {
	rows, err := c.db.Query(ctx, "SELECT holder, mailbox_id FROM leases WHERE expires_at > now() ORDER BY mailbox_id")
	if err != nil {
		c.t.Fatal(err)
	}
	defer rows.Close()
	out := map[string][]string{}
	for rows.Next() {
		var h, id string
		if err := rows.Scan(&h, &id); err != nil {
			c.t.Fatal(err)
		}
		out[h] = append(out[h], id)
	}
	return out
}

// waitCond polls cond until it holds; limit bounds a stuck test, it is no
// timing guess.
func waitCond(t *testing.T, limit time.Duration, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(limit)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("waited %s for %s", limit, what)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// metric reads one sample of a node's /metrics (-1 when missing).
func (n *testNode) metric(name, labels string) float64 {
	resp, err := http.Get(n.base + "/metrics")
	if err != nil {
		return -1
	}
	defer resp.Body.Close()
	body, _ := io.ReadAll(resp.Body)
	re := regexp.MustCompile(`(?m)^` + regexp.QuoteMeta(name+labels) + ` (\S+)$`)
	m := re.FindSubmatch(body)
	if m == nil {
		return -1
	}
	v, _ := strconv.ParseFloat(string(m[1]), 64)
	return v
}

// Three sidecars on one PostgreSQL sync simulated mailboxes; one is
// SIGKILLed mid-backfill, after Odoo got mail from its mailboxes: its
// mailboxes move to the other two (the lease table says; how long after
// the kill is a printed figure, the goal being 30 s), and every message
// reaches the Odoo stand-in exactly once. make test runs 45
// mailboxes with a 3 s lease TTL; MAILDESK_LONG=1 runs the 300
// mailboxes with the default TTL (15 s).
func TestScaleOutThreeNodesSurviveSIGKILL(t *testing.T) {
	t.Parallel()
	boxes, per, ttl := 45, 16, 3*time.Second
	if os.Getenv("MAILDESK_LONG") == "1" {
		boxes, per, ttl = 300, 20, 15*time.Second
	}
	ctx, cancel := context.WithTimeout(context.Background(), 8*time.Minute)
	defer cancel()
	c := newCluster(t, ttl)
	a := c.start("node-a", c.url)
	b := c.start("node-b", c.url)
	v := c.start("node-c", c.url)
	c.pair(ctx, a)
	// Odoo is away while the mailboxes connect, and then takes its time
	// per item: the backfills (sync and delivery) are under way when
	// node-c is killed.
	if err := c.od.SetDown(true); err != nil {
		t.Fatal(err)
	}
	c.od.SetItemCost(10 * time.Millisecond)
	start := time.Now()
	c.mailboxes(ctx, boxes, per, a, b, v)
	total := len(c.want)
	t.Logf("%d mailboxes (%d messages) created and connected in %.1fs", boxes, total, time.Since(start).Seconds())
	// Each node works its share.
	waitCond(t, 2*time.Minute, "a fair share of leases on each node", func() bool {
		h := c.heldBy(ctx)
		share, sum := (boxes+2)/3, 0
		for _, n := range []string{"node-a", "node-b", "node-c"} {
			if len(h[n]) == 0 || len(h[n]) > share {
				return false
			}
			sum += len(h[n])
		}
		return sum == boxes
	})
	if err := c.od.SetDown(false); err != nil {
		t.Fatal(err)
	}
	// Kill node c mid-backfill, after observed progress: Odoo got a fifth
	// of the mail, and mail of node-c's mailboxes is still on its way.
	var victims []string
	pending := 0
	waitCond(t, 3*time.Minute, "progress with node-c's mailboxes not done", func() bool {
		victims = c.heldBy(ctx)["node-c"]
		got, _ := c.delivered()
		pending = c.pending(victims, got)
		return len(victims) > 0 && len(got) >= total/5 && pending > 0
	})
	got, _ := c.delivered()
	acqBefore := a.metric("maildesk_lease_acquisitions_total", `{node="node-a"}`) + b.metric("maildesk_lease_acquisitions_total", `{node="node-b"}`)
	killed := time.Now()
	v.kill()
	t.Logf("SIGKILLed node-c holding %d mailboxes (%d of their messages not in Odoo yet) with %d of %d messages in Odoo", len(victims), pending, len(got), total)
	var took time.Duration
	waitCond(t, 2*time.Minute, "node-c's mailboxes held by the others", func() bool {
		h := c.heldBy(ctx)
		moved := 0
		for _, id := range victims {
			for _, n := range []string{"node-a", "node-b"} {
				for _, x := range h[n] {
					if x == id {
						moved++
					}
				}
			}
		}
		took = time.Since(killed)
		return moved == len(victims)
	})
	// A figure, not an assertion (the goal is 30 s with the default 15 s
	// TTL; here the TTL is 3 s): how fast a busy machine runs the
	// survivors' renewals is no property of the code. The 2-minute bound
	// above only ends a stuck test.
	t.Logf("node-c's %d mailboxes moved to node-a and node-b %.1fs after the kill (lease TTL %s; goal: within 30 s)", len(victims), took.Seconds(), ttl)
	// A node counts its acquisitions after its renewal's transaction
	// committed, so the lease table can show the takeover before the
	// counters do (on a busy machine the renewing goroutine waits between
	// the two), and a scrape can fail: polled until they count it, the
	// bound only ends a stuck test.
	for deadline := time.Now().Add(2 * time.Minute); ; time.Sleep(20 * time.Millisecond) {
		acqAfter := a.metric("maildesk_lease_acquisitions_total", `{node="node-a"}`) + b.metric("maildesk_lease_acquisitions_total", `{node="node-b"}`)
		if acqAfter-acqBefore >= float64(len(victims)) {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("lease acquisitions on the survivors went from %v to %v, want %d more", acqBefore, acqAfter, len(victims))
		}
	}
	for deadline := time.Now().Add(2 * time.Minute); ; time.Sleep(20 * time.Millisecond) {
		alive := a.metric("maildesk_nodes_alive", "")
		if alive == 2 {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("maildesk_nodes_alive on node-a: %v", alive)
		}
	}
	waitCond(t, 5*time.Minute, "every message in Odoo", func() bool { got, _ := c.delivered(); return len(got) >= total })
	got, dup := c.delivered()
	lost := 0
	for id := range c.want {
		if got[id] == 0 {
			lost++
		}
	}
	if lost != 0 || dup != 0 {
		t.Fatalf("after the takeover: %d of %d messages lost, %d delivered twice on a record", lost, total, dup)
	}
	t.Logf("%d messages of %d mailboxes in Odoo exactly once", total, boxes)
	var h struct {
		Components map[string]struct {
			Status string `json:"status"`
			Detail string `json:"detail"`
		} `json:"components"`
	}
	if err := b.rc.call(ctx, "system.health", &h); err != nil {
		t.Fatal(err)
	}
	if l := h.Components["leases"]; l.Status != "ok" || !strings.Contains(l.Detail, "node-a") || !strings.Contains(l.Detail, "node-b") {
		t.Fatalf("leases in system.health: %+v", l)
	}
}

// tcpProxy forwards to PostgreSQL until cut: then it closes every
// connection and refuses new ones (a node partitioned from PostgreSQL).
type tcpProxy struct {
	ln    net.Listener
	to    string
	mu    sync.Mutex
	conns []net.Conn
	cut   bool
}

func newTCPProxy(t *testing.T, to string) *tcpProxy {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	p := &tcpProxy{ln: ln, to: to}
	t.Cleanup(p.Cut)
	go func() {
		for {
			in, err := ln.Accept()
			if err != nil {
				return
			}
			out, err := net.DialTimeout("tcp", to, 5*time.Second)
			if err != nil {
				in.Close()
				continue
			}
			p.mu.Lock()
			if p.cut {
				p.mu.Unlock()
				in.Close()
				out.Close()
				continue
			}
			p.conns = append(p.conns, in, out)
			p.mu.Unlock()
			go func() { _, _ = io.Copy(out, in); out.Close() }()
			go func() { _, _ = io.Copy(in, out); in.Close() }()
		}
	}()
	return p
}

// Cut ends every connection through the proxy and refuses new ones.
func (p *tcpProxy) Cut() {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.cut = true
	p.ln.Close()
	for _, c := range p.conns {
		c.Close()
	}
	p.conns = nil
}

// A node that loses PostgreSQL stops working its mailboxes before its
// leases expire in the database (it knows its own deadline), and the
// other node takes them over once they expired.
func TestScaleOutPartitionedNodeStopsBeforeLeasesExpire(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
	defer cancel()
	ttl := 3 * time.Second
	c := newCluster(t, ttl)
	u, err := neturl.Parse(c.url)
	if err != nil {
		t.Fatal(err)
	}
	proxy := newTCPProxy(t, u.Host)
	viaProxy := strings.Replace(c.url, u.Host, proxy.ln.Addr().String(), 1)
	p := c.start("node-p", viaProxy)
	c.pair(ctx, p)
	c.mailboxes(ctx, 6, 4, p)
	waitCond(t, time.Minute, "node-p holding every mailbox", func() bool { return len(c.heldBy(ctx)["node-p"]) == 6 })
	q := c.start("node-q", c.url)
	waitCond(t, time.Minute, "the two nodes sharing the mailboxes", func() bool {
		h := c.heldBy(ctx)
		return len(h["node-p"]) == 3 && len(h["node-q"]) == 3
	})
	if held := p.metric("maildesk_lease_local_held", `{node="node-p"}`); held != 3 {
		t.Fatalf("node-p counts %v leases", held)
	}
	cut := time.Now()
	proxy.Cut()
	// The earliest moment node-p's leases may be taken: the database's
	// expiry as node-p last renewed them (it cannot renew any more).
	var expires time.Time
	if err := c.db.QueryRow(ctx, "SELECT min(expires_at) FROM leases WHERE holder = 'node-p'").Scan(&expires); err != nil {
		t.Fatal(err)
	}
	waitCond(t, time.Minute, "node-p to stop counting its leases", func() bool {
		return p.metric("maildesk_lease_local_held", `{node="node-p"}`) == 0
	})
	// When node-p stopped is what it logged when its local deadline passed
	// (it then cancels its mailboxes' work), not when this test's poll of
	// /metrics came back: on a busy machine that poll lags by more than the
	// margin, a third of the TTL.
	var stopped time.Time
	waitCond(t, time.Minute, "node-p's log that it stops working its mailboxes", func() bool {
		var ok bool
		stopped, ok = p.loggedAt("leases: not renewed in time", cut)
		return ok
	})
	if !stopped.Before(expires) {
		t.Fatalf("node-p stopped working its mailboxes at %s, after its leases expired at %s", stopped.Format(time.StampMilli), expires.Format(time.StampMilli))
	}
	t.Logf("node-p stopped %s before its leases expired", expires.Sub(stopped).Round(time.Millisecond))
	if lost := p.metric("maildesk_lease_losses_total", `{node="node-p"}`); lost < 3 {
		t.Fatalf("node-p's lease losses: %v", lost)
	}
	waitCond(t, time.Minute, "node-q taking over every mailbox", func() bool { return len(c.heldBy(ctx)["node-q"]) == 6 })
	waitCond(t, 3*time.Minute, "every message in Odoo", func() bool { got, _ := c.delivered(); return len(got) >= len(c.want) })
	if _, dup := c.delivered(); dup != 0 {
		t.Fatalf("%d messages delivered twice on a record", dup)
	}
	_ = q
}
