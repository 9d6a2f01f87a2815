package bridge_test

import (
	"bufio"
	"bytes"
	"context"
	"crypto/tls"
	"crypto/x509"
	"encoding/json"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/rs/zerolog"

	"github.com/maildesk/maildesk/bridge"
	"github.com/maildesk/maildesk/bridge/odoo"
	"github.com/maildesk/maildesk/graphsync"
	"github.com/maildesk/maildesk/graphsync/m365sim"
	"github.com/maildesk/maildesk/internal/recovery"
	"github.com/maildesk/maildesk/store"
)

// mapTokens hands out tokens the parent process got, by mailbox id.
type mapTokens map[string]string

func (m mapTokens) Token(_ context.Context, id string) (string, error) { return m[id], nil }

// TestIdleChild is the sidecar side of BenchmarkIdleMailboxes: store,
// syncer and scheduler, without the simulator, so its CPU and memory can be
// measured on their own. It does nothing unless started by the benchmark.
func TestIdleChild(t *testing.T) {
	if os.Getenv("MAILDESK_IDLE_CHILD") != "1" {
		t.Skip("child process of BenchmarkIdleMailboxes")
	}
	pool := x509.NewCertPool()
	pool.AppendCertsFromPEM([]byte(os.Getenv("MAILDESK_IDLE_CA")))
	raw, err := os.ReadFile(os.Getenv("MAILDESK_IDLE_TOKENS"))
	if err != nil {
		t.Fatal(err)
	}
	toks := mapTokens{}
	if err := json.Unmarshal(raw, &toks); err != nil {
		t.Fatal(err)
	}
	st, err := store.Open(os.Getenv("MAILDESK_IDLE_DB"), bytes.Repeat([]byte{7}, store.KeySize), store.Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer st.Close()
	g, err := graphsync.New(graphsync.Config{BaseURL: os.Getenv("MAILDESK_IDLE_GRAPH"),
		Transport: graphsync.NewTransport(&tls.Config{RootCAs: pool, MinVersion: tls.VersionTLS12}), Tokens: toks})
	if err != nil {
		t.Fatal(err)
	}
	sy, err := bridge.NewSyncer(bridge.SyncConfig{Store: st, Graph: g, Log: zerolog.Nop(), LazyCursor: true, QuietIdle: true})
	if err != nil {
		t.Fatal(err)
	}
	poll, _ := strconv.Atoi(os.Getenv("MAILDESK_IDLE_POLL_S"))
	dur, _ := strconv.Atoi(os.Getenv("MAILDESK_IDLE_DURATION_S"))
	grp := recovery.New(zerolog.Nop(), nil)
	sched, err := bridge.NewScheduler(bridge.SchedulerConfig{Store: st, Sync: sy.SyncMailbox, PollInterval: time.Duration(poll) * time.Second, Recovery: grp})
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() { _ = sched.Run(ctx); close(done) }()
	for {
		mbs, err := st.Mailboxes()
		if err != nil {
			t.Fatal(err)
		}
		ready := 0
		for _, m := range mbs {
			if !m.LastSuccessAt.IsZero() {
				ready++
			}
		}
		if ready == len(mbs) {
			break
		}
		time.Sleep(500 * time.Millisecond) // the child's own pacing, not a test wait
	}
	fmt.Println("READY")
	time.Sleep(time.Duration(dur) * time.Second) // the measured window: idle polling
	mbs, _ := st.Mailboxes()
	for _, m := range mbs {
		if m.State == bridge.StateError {
			t.Errorf("mailbox %s failed: %s", m.Email, m.Error)
		}
	}
	cancel()
	<-done
	fmt.Println("DONE", grp.Panics())
}

func procCPU(pid int) (time.Duration, error) {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
	if err != nil {
		return 0, err
	}
	s := string(b)
	f := strings.Fields(s[strings.LastIndexByte(s, ')')+2:])
	ut, _ := strconv.ParseInt(f[11], 10, 64)
	stt, _ := strconv.ParseInt(f[12], 10, 64)
	return time.Duration(ut+stt) * time.Second / 100, nil // USER_HZ = 100
}

func procRSS(pid int) int64 {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/status", pid))
	if err != nil {
		return 0
	}
	for _, l := range strings.Split(string(b), "\n") {
		if strings.HasPrefix(l, "VmRSS:") {
			kb, _ := strconv.ParseInt(strings.Fields(l)[1], 10, 64)
			return kb << 10
		}
	}
	return 0
}

// BenchmarkIdleMailboxes connects MAILDESK_BENCH_MAILBOXES (default 2,000)
// mailboxes with no new mail and measures the sidecar side (a child
// process: store, syncer, scheduler) while it polls every 60 s for
// MAILDESK_BENCH_IDLE_S seconds (default 120; the acceptance asks for 600):
// CPU share of one core and peak RSS. The simulator runs in this process.
func BenchmarkIdleMailboxes(b *testing.B) {
	n := envInt("MAILDESK_BENCH_MAILBOXES", 2000)
	dur := envInt("MAILDESK_BENCH_IDLE_S", 120)
	for i := 0; i < b.N; i++ {
		sim, err := m365sim.New(m365sim.Options{Seed: 3, TimeScale: 1, Throttle: true})
		if err != nil {
			b.Fatal(err)
		}
		if err := sim.Start(); err != nil {
			b.Fatal(err)
		}
		dir := b.TempDir()
		dbPath := filepath.Join(dir, "idle.db")
		st, err := store.Open(dbPath, bytes.Repeat([]byte{7}, store.KeySize), store.Options{NoSync: true})
		if err != nil {
			b.Fatal(err)
		}
		toks := newSimTokens(sim)
		tokMap := map[string]string{}
		for k := 0; k < n; k++ {
			upn := fmt.Sprintf("idle%04d@%s", k, sim.Domain())
			sim.GenerateMailbox(upn, 2, m365sim.GenOptions{NoSamples: true, AttachmentRate: -1})
			m, err := st.CreateMailbox(store.Mailbox{MailboxConfig: store.MailboxConfig{Email: upn, Kind: "personal", Mode: odoo.ModeLog, BackfillDays: 30, Folders: []string{"inbox", "sentitems"}}, MailboxStatus: store.MailboxStatus{State: bridge.StateConnected}})
			if err != nil {
				b.Fatal(err)
			}
			toks.add(m.ID, upn)
			tok, err := toks.Token(context.Background(), m.ID)
			if err != nil {
				b.Fatal(err)
			}
			tokMap[m.ID] = tok
		}
		st.Close()
		tf := filepath.Join(dir, "tokens.json")
		tb, _ := json.Marshal(tokMap)
		if err := os.WriteFile(tf, tb, 0o600); err != nil {
			b.Fatal(err)
		}
		args := []string{"-test.run=^TestIdleChild$", "-test.count=1", "-test.v", fmt.Sprintf("-test.timeout=%ds", dur+900)}
		if p := os.Getenv("MAILDESK_BENCH_CHILD_CPUPROFILE"); p != "" {
			args = append(args, "-test.cpuprofile="+p)
		}
		cmd := exec.Command(os.Args[0], args...)
		cmd.Env = append(os.Environ(), "MAILDESK_IDLE_CHILD=1", "MAILDESK_IDLE_CA="+string(sim.CAPEM()), "MAILDESK_IDLE_DB="+dbPath,
			"MAILDESK_IDLE_GRAPH="+sim.GraphBaseURL(), "MAILDESK_IDLE_TOKENS="+tf, "MAILDESK_IDLE_POLL_S=60",
			fmt.Sprintf("MAILDESK_IDLE_DURATION_S=%d", dur))
		out, _ := cmd.StdoutPipe()
		cmd.Stderr = os.Stderr
		b.ResetTimer()
		started := time.Now()
		if err := cmd.Start(); err != nil {
			b.Fatal(err)
		}
		pid := cmd.Process.Pid
		sc := bufio.NewScanner(out)
		var cpu0 time.Duration
		var t0 time.Time
		var peak int64
		stop := make(chan struct{})
		go func() {
			tk := time.NewTicker(time.Second)
			defer tk.Stop()
			for {
				select {
				case <-stop:
					return
				case <-tk.C:
					if r := procRSS(pid); r > peak {
						peak = r
					}
				}
			}
		}()
		var cpu1 time.Duration
		var t1 time.Time
		var log []string
		for sc.Scan() {
			line := sc.Text()
			log = append(log, line)
			if line == "READY" {
				cpu0, _ = procCPU(pid)
				t0 = time.Now()
				b.Logf("%d mailboxes synced once in %v; measuring %d s of idle polling", n, t0.Sub(started).Round(time.Millisecond), dur)
			}
			if strings.HasPrefix(line, "DONE") {
				cpu1, _ = procCPU(pid)
				t1 = time.Now()
			}
		}
		err = cmd.Wait()
		close(stop)
		if err != nil || t0.IsZero() || t1.IsZero() {
			b.Fatalf("child: %v\n%s", err, strings.Join(log, "\n"))
		}
		share := (cpu1 - cpu0).Seconds() / t1.Sub(t0).Seconds()
		st2 := sim.Stats("")
		b.ReportMetric(share*100, "cpu%")
		b.ReportMetric(float64(peak)/(1<<20), "rss_MB")
		b.Logf("%d idle mailboxes polled every 60 s for %v: %.2f%% of one core, peak RSS %.1f MB; Graph requests in total %d, 429s %d",
			n, t1.Sub(t0).Round(time.Second), share*100, float64(peak)/(1<<20), st2.Requests, st2.Throttled)
		_ = sim.Close()
	}
}
