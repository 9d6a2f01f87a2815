package bridge

import (
	"bytes"
	"context"
	"fmt"
	"path/filepath"
	"sync"
	"testing"
	"time"

	"github.com/maildesk/maildesk/store"
)

// countingDue counts the due-time writes that reach the store.
type countingDue struct {
	*store.Store
	mu     sync.Mutex
	writes []int // mailboxes per SetDue/SetDueMany transaction
}

func (c *countingDue) SetDue(id string, at time.Time) error {
	c.mu.Lock()
	c.writes = append(c.writes, 1)
	c.mu.Unlock()
	return c.Store.SetDue(id, at)
}

func (c *countingDue) SetDueMany(due map[string]time.Time) error {
	if len(due) > 0 {
		c.mu.Lock()
		c.writes = append(c.writes, len(due))
		c.mu.Unlock()
	}
	return c.Store.SetDueMany(due)
}

func (c *countingDue) takeWrites() []int {
	c.mu.Lock()
	defer c.mu.Unlock()
	w := c.writes
	c.writes = nil
	return w
}

// An idle fleet's launches write no due time of their own: writeAhead has
// put, in one transaction, a due time past each coming attempt into the
// store, so a crash still never repeats an attempt. The queue keeps the
// real due times (a rescan does not take the times written ahead for them),
// and a kick or a time written by someone else is honoured.
func TestSchedulerWritesDueTimesAhead(t *testing.T) {
	st, err := store.Open(filepath.Join(t.TempDir(), "m.db"), bytes.Repeat([]byte{1}, store.KeySize), store.Options{NoSync: true})
	if err != nil {
		t.Fatal(err)
	}
	defer st.Close()
	const n = 20
	var ids []string
	for i := 0; i < n; i++ {
		m, err := st.CreateMailbox(store.Mailbox{MailboxConfig: store.MailboxConfig{Email: fmt.Sprintf("a%d@contoso.com", i), Folders: []string{"inbox"}},
			MailboxStatus: store.MailboxStatus{State: StateConnected}})
		if err != nil {
			t.Fatal(err)
		}
		ids = append(ids, m.ID)
	}
	cs := &countingDue{Store: st}
	var mu sync.Mutex
	t0 := time.Unix(1_800_000_000, 0)
	clock := t0
	now := func() time.Time { mu.Lock(); defer mu.Unlock(); return clock }
	advance := func(d time.Duration) { mu.Lock(); clock = clock.Add(d); mu.Unlock() }
	var violations []string
	rounds := map[string]int{}
	s, err := NewScheduler(SchedulerConfig{Store: cs, Workers: n, PollInterval: time.Minute, Now: now,
		Sync: func(_ context.Context, id string) (RoundResult, error) {
			due, err := st.DueTimes()
			mu.Lock()
			defer mu.Unlock()
			rounds[id]++
			if err != nil || due[id].Before(clock.Add(30*time.Second)) {
				violations = append(violations, fmt.Sprintf("%s attempted at %v with %v in the store (%v)", id, clock, due[id], err))
			}
			return RoundResult{}, nil
		}})
	if err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	s.rescan()
	if w := cs.takeWrites(); len(w) != 1 || w[0] != n {
		t.Fatalf("first rescan: due-time writes %v, want one of %d mailboxes", w, n)
	}

	cycle := func(label string, at time.Time) {
		t.Helper()
		s.writeAhead(now())
		if w := cs.takeWrites(); len(w) != 1 || w[0] != n {
			t.Fatalf("%s: writeAhead wrote %v, want one transaction of %d", label, w, n)
		}
		// A rescan between the write ahead and the launches keeps the
		// queue's times: the store's are for the attempt after.
		s.rescan()
		for _, id := range ids {
			if q, _ := s.due.queuedAt(id); !q.Equal(at) {
				t.Fatalf("%s: %s queued at %v after a rescan, want %v", label, id, q, at)
			}
		}
		s.launch(ctx)
		s.wg.Wait()
		if w := cs.takeWrites(); len(w) != 0 {
			t.Fatalf("%s: launches wrote due times %v, want none (written ahead)", label, w)
		}
	}
	cycle("first round", t0)
	advance(time.Minute)
	cycle("second round", t0.Add(time.Minute))
	mu.Lock()
	for _, id := range ids {
		if rounds[id] != 2 {
			violations = append(violations, fmt.Sprintf("%s ran %d rounds, want 2", id, rounds[id]))
		}
	}
	mu.Unlock()

	// A kick writes its own time; its launch then writes the next one.
	advance(10 * time.Second)
	if err := s.Kick(ids[0]); err != nil {
		t.Fatal(err)
	}
	if w := cs.takeWrites(); len(w) != 1 {
		t.Fatalf("kick: writes %v", w)
	}
	s.launch(ctx)
	s.wg.Wait()
	if w := cs.takeWrites(); len(w) != 1 || w[0] != 1 {
		t.Fatalf("kicked launch: writes %v, want one of 1 mailbox", w)
	}
	// A time written by someone else (a kick forwarded by another node)
	// replaces the queue's at the next rescan.
	other := now().Add(5 * time.Second)
	if err := st.SetDue(ids[1], other); err != nil {
		t.Fatal(err)
	}
	s.rescan()
	if q, _ := s.due.queuedAt(ids[1]); !q.Equal(other) {
		t.Fatalf("forwarded due time: queued at %v, want %v", q, other)
	}
	mu.Lock()
	defer mu.Unlock()
	if len(violations) > 0 {
		t.Fatalf("%d violations: %v", len(violations), violations)
	}
}

// within lists the current entries due by a time, and no stale ones.
func TestDueQueueWithin(t *testing.T) {
	t0 := time.Unix(1_700_000_000, 0)
	var q dueQueue
	due := map[string]time.Time{}
	for i := 0; i < 200; i++ {
		due[fmt.Sprint("m", i)] = t0.Add(time.Duration(i) * time.Second)
	}
	q.reset(due, nil)
	q.set("m3", t0.Add(time.Hour))       // moved out: its old entry is stale
	q.set("m150", t0.Add(2*time.Second)) // moved in
	got := map[string]bool{}
	for _, e := range q.within(t0.Add(9 * time.Second)) {
		if got[e.id] {
			t.Fatalf("%s listed twice", e.id)
		}
		got[e.id] = true
	}
	want := map[string]bool{"m150": true}
	for i := 0; i <= 9; i++ {
		if i != 3 {
			want[fmt.Sprint("m", i)] = true
		}
	}
	if fmt.Sprint(got) != fmt.Sprint(want) {
		t.Fatalf("within: %v, want %v", got, want)
	}
}
