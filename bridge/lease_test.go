package bridge_test

import (
	"bytes"
	"context"
	"fmt"
	"path/filepath"
	"sync"
	"testing"
	"time"

	"github.com/maildesk/maildesk/bridge"
	"github.com/maildesk/maildesk/store"
)

// fakeOwner holds the mailboxes in its set.
type fakeOwner struct {
	mu   sync.Mutex
	ids  map[string]bool
	hook []func()
}

func (o *fakeOwner) Holds(id string) (int64, bool) {
	o.mu.Lock()
	defer o.mu.Unlock()
	return 1, o.ids[id]
}

func (o *fakeOwner) OnChange(fn func()) {
	o.mu.Lock()
	defer o.mu.Unlock()
	o.hook = append(o.hook, fn)
}

func (o *fakeOwner) set(ids ...string) {
	o.mu.Lock()
	o.ids = map[string]bool{}
	for _, id := range ids {
		o.ids[id] = true
	}
	hooks := o.hook
	o.mu.Unlock()
	for _, fn := range hooks {
		fn()
	}
}

// The scheduler syncs only the mailboxes this node holds; a kick for
// another node's mailbox is forwarded (and its due time stored); a lost
// lease cancels the mailbox's running round; a gained one joins the queue.
func TestSchedulerWorksOnlyHeldMailboxes(t *testing.T) {
	st, err := store.Open(filepath.Join(t.TempDir(), "m.db"), bytes.Repeat([]byte{1}, store.KeySize), store.Options{NoSync: true})
	if err != nil {
		t.Fatal(err)
	}
	defer st.Close()
	var ids []string
	for i := 0; i < 4; i++ {
		m, err := st.CreateMailbox(store.Mailbox{MailboxConfig: store.MailboxConfig{Email: fmt.Sprintf("u%d@contoso.com", i), Folders: []string{"inbox"}}, MailboxStatus: store.MailboxStatus{State: bridge.StateConnected}})
		if err != nil {
			t.Fatal(err)
		}
		ids = append(ids, m.ID)
	}
	owner := &fakeOwner{}
	owner.set(ids[0], ids[1])
	var mu sync.Mutex
	calls := map[string]int{}
	var forwarded []string
	cancelled := make(chan string, 4)
	sched, err := bridge.NewScheduler(bridge.SchedulerConfig{Store: st, Owner: owner, PollInterval: time.Hour,
		Forward: func(id string) error { mu.Lock(); forwarded = append(forwarded, id); mu.Unlock(); return nil },
		Sync: func(ctx context.Context, id string) (bridge.RoundResult, error) {
			mu.Lock()
			calls[id]++
			mu.Unlock()
			if id == ids[1] {
				<-ctx.Done() // a long backfill, until the lease is lost
				cancelled <- id
				return bridge.RoundResult{}, ctx.Err()
			}
			return bridge.RoundResult{}, nil
		}})
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() { _ = sched.Run(ctx); close(done) }()
	defer func() { cancel(); <-done }()
	count := func(id string) int { mu.Lock(); defer mu.Unlock(); return calls[id] }
	waitFor(t, "the held mailboxes' rounds", func() bool { return count(ids[0]) == 1 && sched.Busy(ids[1]) })
	// Another node's mailbox: forwarded, not synced here.
	if err := sched.Kick(ids[2]); err != nil {
		t.Fatal(err)
	}
	mu.Lock()
	fw := append([]string(nil), forwarded...)
	mu.Unlock()
	if len(fw) != 1 || fw[0] != ids[2] {
		t.Fatalf("forwarded %v, want [%s]", fw, ids[2])
	}
	if due, _ := st.DueTimes(); due[ids[2]].After(time.Now()) {
		t.Fatalf("the forwarded kick's due time is not in the store: %v", due[ids[2]])
	}
	// ids[1] is lost, ids[2] gained.
	owner.set(ids[0], ids[2])
	select {
	case id := <-cancelled:
		if id != ids[1] {
			t.Fatalf("cancelled %s", id)
		}
	case <-time.After(time.Minute):
		t.Fatal("the lost mailbox's round was not cancelled")
	}
	waitFor(t, "the gained mailbox's round", func() bool { return count(ids[2]) == 1 })
	sched.KickLocal(ids[3]) // not held: nothing
	sched.KickLocal(ids[0])
	waitFor(t, "the held mailbox's kicked round", func() bool { return count(ids[0]) == 2 })
	if count(ids[3]) != 0 || count(ids[1]) != 1 {
		t.Fatalf("rounds of mailboxes not held: %v", calls)
	}
}
