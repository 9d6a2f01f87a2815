package bridge_test

import (
	"bytes"
	"context"
	"crypto/tls"
	"crypto/x509"
	"math/rand"
	"os"
	"os/exec"
	"path/filepath"
	"syscall"
	"testing"
	"time"

	"github.com/rs/zerolog"

	"github.com/maildesk/maildesk/bridge"
	"github.com/maildesk/maildesk/bridge/odoo"
	"github.com/maildesk/maildesk/graphsync"
	"github.com/maildesk/maildesk/graphsync/m365sim"
	"github.com/maildesk/maildesk/store"
)

// fixedToken hands out the token the parent process got.
type fixedToken string

func (f fixedToken) Token(context.Context, string) (string, error) { return string(f), nil }

// TestChaosChild is the child process of TestChaosKillDuringBackfill: it
// syncs one mailbox until the backfill is done. It does nothing unless
// started by that test.
func TestChaosChild(t *testing.T) {
	if os.Getenv("MAILDESK_CHAOS_CHILD") != "1" {
		t.Skip("child process of TestChaosKillDuringBackfill")
	}
	pool := x509.NewCertPool()
	pool.AppendCertsFromPEM([]byte(os.Getenv("MAILDESK_CHAOS_CA")))
	st, err := store.Open(os.Getenv("MAILDESK_CHAOS_DB"), bytes.Repeat([]byte{7}, store.KeySize), store.Options{Timeout: 10 * time.Second})
	if err != nil {
		t.Fatal(err)
	}
	defer st.Close()
	g, err := graphsync.New(graphsync.Config{BaseURL: os.Getenv("MAILDESK_CHAOS_GRAPH"),
		Transport: graphsync.NewTransport(&tls.Config{RootCAs: pool, MinVersion: tls.VersionTLS12}),
		Tokens:    fixedToken(os.Getenv("MAILDESK_CHAOS_TOKEN")),
		Retry:     graphsync.RetryOptions{BaseDelay: 10 * time.Millisecond, MaxDelay: 100 * time.Millisecond}})
	if err != nil {
		t.Fatal(err)
	}
	sy, err := bridge.NewSyncer(bridge.SyncConfig{Store: st, Graph: g, Log: zerolog.Nop(), PageSize: 15, BackfillPageSize: 15, BackfillSlice: time.Hour})
	if err != nil {
		t.Fatal(err)
	}
	id := os.Getenv("MAILDESK_CHAOS_MAILBOX")
	for i := 0; i < 100; i++ {
		res, err := sy.SyncMailbox(context.Background(), id)
		if err != nil {
			t.Fatal(err)
		}
		if !res.More {
			return
		}
	}
	t.Fatal("backfill did not finish")
}

// TestChaosKillDuringBackfill kills the syncing process (SIGKILL) at 12
// random moments of a backfill (30 under make test-long, MAILDESK_LONG=1);
// each restart resumes from the store, and at the end every message is in
// the outbox exactly once.
func TestChaosKillDuringBackfill(t *testing.T) {
	runs := 12
	if os.Getenv("MAILDESK_LONG") == "1" {
		runs = 30
	}
	if testing.Short() {
		t.Skipf("re-executes the test binary %d times", runs+1)
	}
	sim, err := m365sim.New(m365sim.Options{Seed: 9, TimeScale: 1, Throttle: true, Latency: 20 * time.Millisecond})
	if err != nil {
		t.Fatal(err)
	}
	if err := sim.Start(); err != nil {
		t.Fatal(err)
	}
	defer sim.Close()
	upn := "chaos@" + sim.Domain()
	sim.GenerateMailbox(upn, 1500, m365sim.GenOptions{MaxAttachment: 8 << 10, NoSamples: true})

	dbPath := filepath.Join(t.TempDir(), "chaos.db")
	st, err := store.Open(dbPath, bytes.Repeat([]byte{7}, store.KeySize), store.Options{})
	if err != nil {
		t.Fatal(err)
	}
	mb, err := st.CreateMailbox(store.Mailbox{MailboxConfig: store.MailboxConfig{Email: upn, Kind: "personal", Mode: odoo.ModeLog, Folders: []string{"inbox", "sentitems"}}, MailboxStatus: store.MailboxStatus{State: bridge.StateConnected}})
	if err != nil {
		t.Fatal(err)
	}
	st.Close()
	toks := newSimTokens(sim)
	toks.add(mb.ID, upn)

	// run starts a child; with afterPages > 0 it kills the child (SIGKILL)
	// once the simulator has answered afterPages more requests (pages carry
	// their attachments: one request a page), then
	// after a short random extra delay, so kills land between and inside
	// page writes. Waiting on the simulator's counters instead of the wall
	// clock keeps this meaningful on a busy machine, where starting the
	// child alone can take longer than any fixed delay.
	run := func(afterPages int64, extra time.Duration) (killed bool) {
		tok, err := toks.Token(context.Background(), mb.ID)
		if err != nil {
			t.Fatal(err)
		}
		cmd := exec.Command(os.Args[0], "-test.run=^TestChaosChild$", "-test.count=1")
		cmd.Env = append(os.Environ(), "MAILDESK_CHAOS_CHILD=1", "MAILDESK_CHAOS_CA="+string(sim.CAPEM()),
			"MAILDESK_CHAOS_DB="+dbPath, "MAILDESK_CHAOS_GRAPH="+sim.GraphBaseURL(), "MAILDESK_CHAOS_TOKEN="+tok,
			"MAILDESK_CHAOS_MAILBOX="+mb.ID)
		var out bytes.Buffer
		cmd.Stdout, cmd.Stderr = &out, &out
		if err := cmd.Start(); err != nil {
			t.Fatal(err)
		}
		done := make(chan error, 1)
		go func() { done <- cmd.Wait() }()
		if afterPages > 0 {
			want := sim.Stats(upn).Requests + afterPages
			tick := time.NewTicker(time.Millisecond)
			defer tick.Stop()
			for sim.Stats(upn).Requests < want {
				select {
				case err := <-done:
					if err != nil {
						t.Fatalf("child failed: %v\n%s", err, out.String())
					}
					return false
				case <-tick.C:
				}
			}
			select {
			case err := <-done:
				if err != nil {
					t.Fatalf("child failed: %v\n%s", err, out.String())
				}
				return false
			case <-time.After(extra):
				_ = cmd.Process.Signal(syscall.SIGKILL)
				<-done
				return true
			}
		}
		if err := <-done; err != nil {
			t.Fatalf("child failed: %v\n%s", err, out.String())
		}
		return false
	}
	queued := func() int {
		st, err := store.Open(dbPath, bytes.Repeat([]byte{7}, store.KeySize), store.Options{})
		if err != nil {
			t.Fatal(err)
		}
		defer st.Close()
		items, err := st.DueOutbox(time.Now().Add(time.Hour), 1<<30, 0, nil)
		if err != nil {
			t.Fatal(err)
		}
		return len(items)
	}
	rng := rand.New(rand.NewSource(1))
	kills, progressed, last := 0, 0, 0
	for i := 0; i < runs; i++ {
		// Two folders sync side by side, each with a delta request before
		// its first listing page: by the fifth request one folder has its
		// first page.
		if run(int64(5+rng.Intn(4)), time.Duration(rng.Intn(10))*time.Millisecond) {
			kills++
		}
		if n := queued(); n > last {
			progressed++
			last = n
		}
	}
	run(0, 0) // to the end
	st, err = store.Open(dbPath, bytes.Repeat([]byte{7}, store.KeySize), store.Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer st.Close()
	r := &rig{t: t, sim: sim, st: st}
	r.checkExactlyOnce(mb.ID, upn)
	m, _ := st.Mailbox(mb.ID)
	if !m.Progress.Finished {
		t.Fatalf("progress %+v", m.Progress)
	}
	if progressed < runs/3 {
		t.Fatalf("only %d of %d killed runs wrote anything before the kill", progressed, runs)
	}
	if kills < runs*2/3 {
		t.Fatalf("only %d of %d runs were killed mid-backfill: the test did not test much", kills, runs)
	}
	t.Logf("%d kills mid-backfill (%d after progress); %d messages exactly once", kills, progressed, len(sim.Messages(upn, "inbox"))+len(sim.Messages(upn, "sentitems")))
}
