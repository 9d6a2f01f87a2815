package bench

import (
	"bufio"
	"bytes"
	"context"
	"crypto/tls"
	"crypto/x509"
	"encoding/json"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"runtime/pprof"
	"strconv"
	"strings"
	"sync/atomic"
	"syscall"
	"time"

	"github.com/rs/zerolog"

	"github.com/maildesk/maildesk/bridge"
	"github.com/maildesk/maildesk/graphsync"
	"github.com/maildesk/maildesk/internal/recovery"
	"github.com/maildesk/maildesk/store"
)

// ChildEnv names the environment variable that makes a process a bench
// child: its value is the path of the child's configuration (a JSON file:
// thousands of tokens do not fit in one environment variable).
const ChildEnv = "MAILDESK_BENCH_CHILD"

// childConfig is what the parent tells the child.
type childConfig struct {
	Mode     string            `json:"mode"` // backfill | fleet | sidecar
	DB       string            `json:"db"`
	Graph    string            `json:"graph"`
	CA       string            `json:"ca"`
	Tokens   map[string]string `json:"tokens"` // mailbox id → access token
	Mailbox  string            `json:"mailbox,omitempty"`
	Poll     time.Duration     `json:"poll,omitempty"`
	Duration time.Duration     `json:"duration,omitempty"`
	// FastRetry shortens Graph's retry delays (chaos: faults are many).
	FastRetry bool `json:"fast_retry,omitempty"`
	// Node is a scale-out node's PostgreSQL and leases (scaleout.go).
	Node *nodeConfig `json:"node,omitempty"`
}

// childStats is the child's last line: its own CPU time and peak RSS.
type childStats struct {
	CPU    float64 `json:"cpu_s"`  // user+system seconds (whole run, or the window in fleet)
	MaxRSS int64   `json:"rss_kb"` // peak resident set
	Rounds int64   `json:"rounds"` // sync rounds in the window (fleet)
	Window float64 `json:"window_s"`
	Errors int64   `json:"errors"` // failed rounds
	// Leases of a scale-out node: held at the window's end, and claimed,
	// lost and released in the window (scaleout.go).
	Held     int   `json:"held,omitempty"`
	Acquired int64 `json:"acquired,omitempty"`
	Lost     int64 `json:"lost,omitempty"`
	Released int64 `json:"released,omitempty"`
	// StartChurn is the claims, losses and releases before the window.
	StartChurn int64 `json:"start_churn,omitempty"`
}

type mapTokens map[string]string

func (m mapTokens) Token(_ context.Context, id string) (string, error) { return m[id], nil }

// IsChild says whether this process was started as a bench child.
func IsChild() bool { return os.Getenv(ChildEnv) != "" }

// Child runs the sidecar side of a scenario in this process (started by
// the parent through Options.Self) and returns its exit code. It prints
// "READY" when measuring starts and "STATS {json}" at the end.
func Child(ctx context.Context, stdout io.Writer) int {
	var cfg childConfig
	raw, err := os.ReadFile(os.Getenv(ChildEnv))
	if err == nil {
		err = json.Unmarshal(raw, &cfg)
	}
	if err != nil {
		fmt.Fprintln(os.Stderr, "bench child:", err)
		return 2
	}
	if err := runChild(ctx, cfg, stdout); err != nil {
		fmt.Fprintln(os.Stderr, "bench child:", err)
		return 1
	}
	return 0
}

// cpuAndRSS returns this process's CPU time and its peak RSS in KB. The
// peak comes from /proc/self/status (VmHWM): getrusage's ru_maxrss keeps
// the parent's peak across fork and exec.
func cpuAndRSS() (time.Duration, int64) {
	var ru syscall.Rusage
	_ = syscall.Getrusage(syscall.RUSAGE_SELF, &ru)
	cpu := time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
	var hwm int64
	if b, err := os.ReadFile("/proc/self/status"); err == nil {
		for _, l := range strings.Split(string(b), "\n") {
			if f := strings.Fields(l); len(f) >= 2 && f[0] == "VmHWM:" {
				hwm, _ = strconv.ParseInt(f[1], 10, 64)
			}
		}
	}
	return cpu, hwm
}

// childSyncer is the Graph client and the sync engine over st, as
// cmd/maildesk wires them (sync.go), with the parent's tokens.
func childSyncer(cfg childConfig, st bridge.CursorStore) (*bridge.Syncer, error) {
	pool := x509.NewCertPool()
	pool.AppendCertsFromPEM([]byte(cfg.CA))
	gc := graphsync.Config{BaseURL: cfg.Graph, Tokens: mapTokens(cfg.Tokens),
		Transport: graphsync.NewTransport(&tls.Config{RootCAs: pool, MinVersion: tls.VersionTLS12})}
	if cfg.FastRetry {
		gc.Retry = graphsync.RetryOptions{BaseDelay: 10 * time.Millisecond, MaxDelay: 200 * time.Millisecond}
	}
	g, err := graphsync.New(gc)
	if err != nil {
		return nil, err
	}
	return bridge.NewSyncer(bridge.SyncConfig{Store: st, Graph: g, Log: zerolog.Nop(), LazyCursor: true, QuietIdle: true})
}

// fleetScheduler is the scheduler polling every cfg.Poll over st, counting
// rounds and failed rounds; more adds Owner and Forward (scale-out nodes).
func fleetScheduler(cfg childConfig, st bridge.DueStore, sy *bridge.Syncer, grp *recovery.Group, more bridge.SchedulerConfig) (*bridge.Scheduler, *atomic.Int64, *atomic.Int64, error) {
	var rounds, errs atomic.Int64
	sched, err := bridge.NewScheduler(bridge.SchedulerConfig{Store: st, PollInterval: cfg.Poll, Recovery: grp,
		BackoffBase: min(cfg.Poll, 30*time.Second), BackoffMax: max(cfg.Poll, time.Second),
		Owner: more.Owner, Forward: more.Forward,
		Sync: func(ctx context.Context, id string) (bridge.RoundResult, error) {
			r, err := sy.SyncMailbox(ctx, id)
			rounds.Add(1)
			if err != nil {
				errs.Add(1)
			}
			return r, err
		}})
	return sched, &rounds, &errs, err
}

func runChild(ctx context.Context, cfg childConfig, stdout io.Writer) error {
	if cfg.Mode == "node" {
		return runNode(ctx, cfg, stdout)
	}
	st, err := store.Open(cfg.DB, benchKey(), store.Options{Timeout: 10 * time.Second})
	if err != nil {
		return err
	}
	defer st.Close()
	sy, err := childSyncer(cfg, st)
	if err != nil {
		return err
	}
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	switch cfg.Mode {
	case "backfill":
		var errs int64
		for i := 0; ; i++ {
			res, err := sy.SyncMailbox(ctx, cfg.Mailbox)
			if err != nil {
				errs++
				if errs > 20 {
					return err
				}
				continue
			}
			if !res.More {
				break
			}
		}
		cpu, rss := cpuAndRSS()
		return printStats(stdout, childStats{CPU: cpu.Seconds(), MaxRSS: rss, Errors: errs})
	case "fleet", "sidecar":
	default:
		return fmt.Errorf("unknown mode %q", cfg.Mode)
	}
	grp := recovery.New(zerolog.Nop(), nil)
	sched, rounds, errs, err := fleetScheduler(cfg, st, sy, grp, bridge.SchedulerConfig{})
	if err != nil {
		return err
	}
	done := make(chan struct{})
	go func() { _ = sched.Run(ctx); close(done) }()
	if cfg.Mode == "sidecar" {
		p := bridge.NewPusher(bridge.PusherConfig{Store: st, Log: zerolog.Nop(), Group: grp,
			RetryBase: 50 * time.Millisecond, RetryMax: 500 * time.Millisecond, CallTimeout: 10 * time.Second})
		go p.Run(ctx)
		fmt.Fprintln(stdout, "READY")
		<-ctx.Done() // runs until the parent kills it
		<-done
		return nil
	}
	// fleet: wait until every mailbox has finished its backfill (the
	// child's own pacing), so no first-sync round falls into the window.
	for {
		mbs, err := st.Mailboxes()
		if err != nil {
			return err
		}
		ready := 0
		for _, m := range mbs {
			if !m.LastSuccessAt.IsZero() && m.Progress.Finished {
				ready++
			}
		}
		if ready == len(mbs) {
			break
		}
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-time.After(200 * time.Millisecond):
		}
	}
	stopProfile := profile()
	cpu0, _ := cpuAndRSS()
	r0, e0 := rounds.Load(), errs.Load()
	t0 := time.Now()
	fmt.Fprintln(stdout, "READY")
	select {
	case <-ctx.Done():
		return ctx.Err()
	case <-time.After(cfg.Duration): // the measured window: idle polling
	}
	cpu1, rss := cpuAndRSS()
	stopProfile()
	stats := childStats{CPU: (cpu1 - cpu0).Seconds(), MaxRSS: rss, Rounds: rounds.Load() - r0, Window: time.Since(t0).Seconds(), Errors: errs.Load() - e0}
	cancel()
	<-done
	return printStats(stdout, stats)
}

// ProfileEnv names a directory: the fleet child then writes cpu.pprof (the
// measured window) and heap.pprof (at its end) there.
const ProfileEnv = "MAILDESK_BENCH_PROFILE_DIR"

func profile() (stop func()) {
	dir := os.Getenv(ProfileEnv)
	if dir == "" {
		return func() {}
	}
	f, err := os.Create(filepath.Join(dir, "cpu.pprof"))
	if err != nil {
		return func() {}
	}
	_ = pprof.StartCPUProfile(f)
	return func() {
		pprof.StopCPUProfile()
		f.Close()
		if h, err := os.Create(filepath.Join(dir, "heap.pprof")); err == nil {
			_ = pprof.WriteHeapProfile(h)
			h.Close()
		}
	}
}

func printStats(w io.Writer, s childStats) error {
	b, _ := json.Marshal(s)
	_, err := fmt.Fprintf(w, "STATS %s\n", b)
	return err
}

func benchKey() []byte { return bytes.Repeat([]byte{7}, store.KeySize) }

// child is a running child process and the lines it printed.
type child struct {
	cmd    *exec.Cmd
	lines  chan string
	stderr bytes.Buffer
}

func startChild(o Options, cfg childConfig) (*child, error) {
	raw, _ := json.Marshal(cfg)
	path := filepath.Join(filepath.Dir(cfg.DB), "child.json")
	if err := os.WriteFile(path, raw, 0o600); err != nil {
		return nil, err
	}
	cmd, err := o.selfCmd([]string{ChildEnv + "=" + path})
	if err != nil {
		return nil, err
	}
	c := &child{cmd: cmd, lines: make(chan string, 64)}
	out, err := cmd.StdoutPipe()
	if err != nil {
		return nil, err
	}
	cmd.Stderr = &c.stderr
	if err := cmd.Start(); err != nil {
		return nil, err
	}
	go func() {
		sc := bufio.NewScanner(out)
		for sc.Scan() {
			c.lines <- sc.Text()
		}
		close(c.lines)
	}()
	return c, nil
}

// waitLine waits for a line with prefix; it fails when the child exits first.
func (c *child) waitLine(ctx context.Context, prefix string) (string, error) {
	for {
		select {
		case <-ctx.Done():
			return "", ctx.Err()
		case l, ok := <-c.lines:
			if !ok {
				err := c.cmd.Wait()
				return "", fmt.Errorf("child exited (%v) before %q: %s", err, prefix, strings.TrimSpace(c.stderr.String()))
			}
			if strings.HasPrefix(l, prefix) {
				return l, nil
			}
		}
	}
}

func (c *child) stats(ctx context.Context) (childStats, error) {
	l, err := c.waitLine(ctx, "STATS ")
	if err != nil {
		return childStats{}, err
	}
	var s childStats
	err = json.Unmarshal([]byte(strings.TrimPrefix(l, "STATS ")), &s)
	_ = c.cmd.Wait()
	return s, err
}

func (c *child) kill() {
	_ = c.cmd.Process.Kill()
	for range c.lines {
	}
	_ = c.cmd.Wait()
}
