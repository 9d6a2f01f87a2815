package bridge_test

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"path/filepath"
	"sync"
	"testing"
	"time"

	"github.com/rs/zerolog"

	"github.com/maildesk/maildesk/bridge"
	"github.com/maildesk/maildesk/bridge/odoo"
	"github.com/maildesk/maildesk/graphsync/m365sim"
	"github.com/maildesk/maildesk/internal/recovery"
	"github.com/maildesk/maildesk/store"
)

func waitFor(t *testing.T, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(2 * time.Minute) // a bound for a stuck test, not a timing guess: a busy 2-core machine needs more than 20 s
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(2 * time.Millisecond)
	}
}

func TestSchedulerRules(t *testing.T) {
	st, err := store.Open(filepath.Join(t.TempDir(), "m.db"), bytes.Repeat([]byte{1}, store.KeySize), store.Options{NoSync: true})
	if err != nil {
		t.Fatal(err)
	}
	defer st.Close()
	var ids []string
	for i := 0; i < 6; i++ {
		m, err := st.CreateMailbox(store.Mailbox{MailboxConfig: store.MailboxConfig{Email: fmt.Sprintf("u%d@contoso.com", i), Folders: []string{"inbox"}}, MailboxStatus: store.MailboxStatus{State: bridge.StateConnected}})
		if err != nil {
			t.Fatal(err)
		}
		ids = append(ids, m.ID)
	}
	off, _ := st.CreateMailbox(store.Mailbox{MailboxConfig: store.MailboxConfig{Email: "off@contoso.com"}, MailboxStatus: store.MailboxStatus{State: bridge.StateDisconnected}})

	var mu sync.Mutex
	running := map[string]int{}
	calls := map[string]int{}
	maxParallel, parallel := 0, 0
	var violations []string
	release := make(chan struct{})
	sync1 := func(ctx context.Context, id string) (bridge.RoundResult, error) {
		due, _ := st.DueTimes()
		mu.Lock()
		if !due[id].After(time.Now()) {
			violations = append(violations, "next due time not written before the attempt of "+id)
		}
		running[id]++
		if running[id] > 1 {
			violations = append(violations, "two rounds at once for "+id)
		}
		parallel++
		maxParallel = max(maxParallel, parallel)
		calls[id]++
		n := calls[id]
		mu.Unlock()
		defer func() {
			mu.Lock()
			running[id]--
			parallel--
			mu.Unlock()
		}()
		if id == off.ID {
			return bridge.RoundResult{Skipped: true}, nil
		}
		switch {
		case id == ids[0] && n == 1:
			<-release // hold one round so kicks arrive while it runs
		case id == ids[1] && n < 3:
			return bridge.RoundResult{More: true}, nil // backfill slices: again at once
		case id == ids[2]:
			return bridge.RoundResult{}, errors.New("graph down")
		}
		return bridge.RoundResult{}, nil
	}
	grp := recovery.New(zerolog.Nop(), nil)
	// The backoff (5 to 10 hours) is far longer than any run of this test,
	// however busy the machine: a second round of the failing mailbox is a
	// scheduler bug, never a slow test.
	sched, err := bridge.NewScheduler(bridge.SchedulerConfig{Store: st, Sync: sync1, Workers: 3, PollInterval: time.Hour,
		BackoffBase: 10 * time.Hour, BackoffMax: 20 * time.Hour, Recovery: grp})
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- sched.Run(ctx) }()

	waitFor(t, "every connected mailbox synced once", func() bool {
		mu.Lock()
		defer mu.Unlock()
		for _, id := range ids {
			if calls[id] == 0 {
				return false
			}
		}
		return calls[ids[1]] >= 3
	})
	// Kicks for the held mailbox do not start a second round.
	for i := 0; i < 5; i++ {
		if err := sched.Kick(ids[0]); err != nil {
			t.Fatal(err)
		}
	}
	time.Sleep(20 * time.Millisecond) // give a (wrong) second round the chance to start; the check is below
	close(release)
	waitFor(t, "the kicked mailbox to run again", func() bool {
		mu.Lock()
		defer mu.Unlock()
		return calls[ids[0]] >= 2
	})
	// The failing mailbox is backed off: due between 5 and 10 hours ahead
	// (not the poll interval's 1 hour written before the attempt).
	waitFor(t, "backoff written", func() bool {
		due, _ := st.DueTimes()
		d := time.Until(due[ids[2]])
		return d > 4*time.Hour && d <= 10*time.Hour
	})
	cancel()
	select {
	case err := <-done:
		if err != nil {
			t.Fatal(err)
		}
	case <-time.After(2 * time.Minute):
		t.Fatal("scheduler did not stop on cancel")
	}
	mu.Lock()
	defer mu.Unlock()
	if len(violations) > 0 {
		t.Fatal(violations)
	}
	if maxParallel > 3 {
		t.Fatalf("%d rounds in parallel with 3 workers", maxParallel)
	}
	if calls[off.ID] != 0 {
		t.Fatalf("a disconnected mailbox was synced %d times", calls[off.ID])
	}
	if calls[ids[2]] != 1 {
		t.Fatalf("the failing mailbox ran %d times within its backoff", calls[ids[2]])
	}
	if grp.Panics() != 0 {
		t.Fatal("panics in scheduler goroutines")
	}
}

func TestBackoffIsJitteredAndCapped(t *testing.T) {
	seen := map[time.Duration]bool{}
	for i := 0; i < 50; i++ {
		d := bridge.Backoff(time.Second, time.Minute, 3)
		if d < 2*time.Second || d > 4*time.Second {
			t.Fatalf("backoff after 3 failures %v, want 2-4 s", d)
		}
		seen[d] = true
		if d := bridge.Backoff(time.Second, time.Minute, 40); d < 30*time.Second || d > time.Minute {
			t.Fatalf("capped backoff %v", d)
		}
	}
	if len(seen) < 10 {
		t.Fatal("backoff is not jittered")
	}
}

// TestSchedulerWithSyncerAndNewMail runs the real loop against the
// simulator: three mailboxes backfill, new mail and a kick reach the outbox
// exactly once.
func TestSchedulerWithSyncerAndNewMail(t *testing.T) {
	r := newRig(t, rigOpts{throttle: true, slice: 50 * time.Millisecond})
	var upns, ids []string
	for _, u := range []string{"hana", "ivo", "jan"} {
		upn := u + "@" + r.sim.Domain()
		r.sim.GenerateMailbox(upn, 150, m365sim.GenOptions{MaxAttachment: 8 << 10, NoSamples: true})
		upns = append(upns, upn)
		ids = append(ids, r.mailbox(upn, odoo.ModeLog, 0))
	}
	grp := recovery.New(zerolog.Nop(), nil)
	sched, err := bridge.NewScheduler(bridge.SchedulerConfig{Store: r.st, Sync: r.sync.SyncMailbox, Workers: 2, PollInterval: time.Hour, Recovery: grp})
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() { _ = sched.Run(ctx); close(done) }()
	defer func() { cancel(); <-done }()
	finished := func(id string) bool {
		m, err := r.st.Mailbox(id)
		return err == nil && m.Progress.Finished && m.State == bridge.StateConnected
	}
	for _, id := range ids {
		waitFor(t, "backfill of "+id, func() bool { return finished(id) })
	}
	for i := range ids {
		r.checkExactlyOnce(ids[i], upns[i])
	}
	raw := "From: k@example.com\r\nTo: " + upns[1] + "\r\nSubject: kick\r\nMessage-ID: <kick@example.com>\r\nContent-Type: text/plain\r\n\r\nx\r\n"
	gid, err := r.sim.DeliverMIME(upns[1], "inbox", []byte(raw))
	if err != nil {
		t.Fatal(err)
	}
	if err := sched.Kick(ids[1]); err != nil {
		t.Fatal(err)
	}
	waitFor(t, "the new message in the outbox", func() bool {
		_, err := r.st.Message(ids[1], gid)
		return err == nil
	})
	r.checkExactlyOnce(ids[1], upns[1])
	if grp.Panics() != 0 {
		t.Fatal("panics")
	}
}

// A round that panics is recovered and counted; the worker that ran it goes
// on with other rounds (with one worker, nothing else would run), and the
// mailbox is not left busy: it runs again when kicked.
func TestSchedulerRoundPanicKeepsTheWorker(t *testing.T) {
	st, err := store.Open(filepath.Join(t.TempDir(), "m.db"), bytes.Repeat([]byte{1}, store.KeySize), store.Options{NoSync: true})
	if err != nil {
		t.Fatal(err)
	}
	defer st.Close()
	var ids []string
	for _, u := range []string{"panic", "calm"} {
		m, err := st.CreateMailbox(store.Mailbox{MailboxConfig: store.MailboxConfig{Email: u + "@contoso.com", Folders: []string{"inbox"}}, MailboxStatus: store.MailboxStatus{State: bridge.StateConnected}})
		if err != nil {
			t.Fatal(err)
		}
		ids = append(ids, m.ID)
	}
	var mu sync.Mutex
	calls := map[string]int{}
	count := func(id string) int { mu.Lock(); defer mu.Unlock(); return calls[id] }
	grp := recovery.New(zerolog.Nop(), nil)
	sched, err := bridge.NewScheduler(bridge.SchedulerConfig{Store: st, Workers: 1, PollInterval: time.Hour, Recovery: grp,
		Sync: func(_ context.Context, id string) (bridge.RoundResult, error) {
			mu.Lock()
			calls[id]++
			n := calls[id]
			mu.Unlock()
			if id == ids[0] && n == 1 {
				panic("a bug in a round")
			}
			return bridge.RoundResult{}, nil
		}})
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() { _ = sched.Run(ctx); close(done) }()
	waitFor(t, "both first rounds", func() bool { return count(ids[0]) == 1 && count(ids[1]) == 1 })
	waitFor(t, "the panic counted", func() bool { return grp.Panics() == 1 })
	waitFor(t, "the panicked mailbox no longer busy", func() bool { return !sched.Busy(ids[0]) })
	if err := sched.Kick(ids[0]); err != nil {
		t.Fatal(err)
	}
	if err := sched.Kick(ids[1]); err != nil {
		t.Fatal(err)
	}
	waitFor(t, "second rounds on the one worker", func() bool { return count(ids[0]) == 2 && count(ids[1]) == 2 })
	cancel()
	select {
	case <-done:
	case <-time.After(2 * time.Minute):
		t.Fatal("scheduler did not stop on cancel")
	}
	if grp.Panics() != 1 {
		t.Fatalf("%d panics counted, want 1", grp.Panics())
	}
}
