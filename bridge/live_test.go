package bridge_test

import (
	"context"
	"fmt"
	"sync"
	"testing"
	"time"

	"github.com/rs/zerolog"

	"github.com/maildesk/maildesk/bridge"
	"github.com/maildesk/maildesk/bridge/odoosim"
	"github.com/maildesk/maildesk/graphsync/m365sim"
)

// liveNotices are the inbox notices odoosim received, in order.
func liveNotices(osim *odoosim.Server) []map[string]any {
	var out []map[string]any
	for _, n := range osim.Notices() {
		if n["kind"] == "new_mail" || n["kind"] == "unread" {
			out = append(out, n)
		}
	}
	return out
}

// waitNotices waits until odoosim holds want inbox notices.
func waitNotices(t *testing.T, osim *odoosim.Server, want int, within time.Duration) []map[string]any {
	t.Helper()
	deadline := time.Now().Add(within)
	for {
		got := liveNotices(osim)
		if len(got) >= want {
			return got
		}
		if time.Now().After(deadline) {
			t.Fatalf("%d inbox notices after %s, want %d: %v", len(got), within, want, got)
		}
		time.Sleep(2 * time.Millisecond)
	}
}

// liveClock is the notice window's clock, moved by the test: the window's
// coalescing is then decided by the test's steps, never by how fast a busy
// machine runs the sync rounds.
type liveClock struct {
	mu  sync.Mutex
	now time.Time
}

func (c *liveClock) Now() time.Time { c.mu.Lock(); defer c.mu.Unlock(); return c.now }
func (c *liveClock) Add(d time.Duration) {
	c.mu.Lock()
	c.now = c.now.Add(d)
	c.mu.Unlock()
}

// noticeWait bounds a wait for a notice that must come; it only ends a stuck
// test (the condition, not the time, is what the test checks).
const noticeWait = 2 * time.Minute

// New mail reaches Odoo as one new_mail notice per mailbox per window, right
// after the round that indexed it; a backfill tells nothing.
func TestLiveNewMailNotice(t *testing.T) {
	e, osim, m := odooEnv(t)
	// 40 old messages: the backfill of the first rounds.
	e.sim.GenerateMailbox(m.Email, 40, m365sim.GenOptions{MaxAttachment: 4 << 10, NoSamples: true,
		End: time.Now().Add(-2 * time.Hour).Truncate(time.Second), Start: time.Now().Add(-20 * 24 * time.Hour)})
	window := 400 * time.Millisecond
	clock := &liveClock{now: time.Now()}
	live := bridge.NewLive(bridge.LiveConfig{Store: e.st, Log: zerolog.Nop(), Window: window, Now: clock.Now})
	ctx, cancel := context.WithCancel(context.Background())
	t.Cleanup(cancel)
	go live.Run(ctx)
	var err error
	var mu sync.Mutex
	var indexed time.Time // when the syncer reported new mail indexed
	onInbox := func(id string, n int) {
		if n > 0 {
			mu.Lock()
			indexed = time.Now()
			mu.Unlock()
		}
		live.InboxChanged(id, n)
	}
	e.syncer, err = bridge.NewSyncer(bridge.SyncConfig{Store: e.st, Graph: e.graph, Log: zerolog.Nop(), OnInbox: onInbox})
	if err != nil {
		t.Fatal(err)
	}
	e.sync(m.ID)
	if len(e.outbox(m.ID)) < 30 {
		t.Fatalf("backfill queued %d items", len(e.outbox(m.ID)))
	}
	if got := liveNotices(osim); len(got) != 0 {
		t.Fatalf("the backfill told Odoo %v", got)
	}

	// One new mail: told at once (no window has begun), with the inbox's
	// unread count.
	deliver(t, e, m.Email, "inbox", "From: Carl <carl@customer.example>\r\nTo: "+m.Email+"\r\nSubject: new 1\r\n")
	e.sync(m.ID)
	got := waitNotices(t, osim, 1, noticeWait)
	mu.Lock()
	took := time.Since(indexed) // an upper bound: measured after the notice arrived
	mu.Unlock()
	n := got[0]
	if n["kind"] != "new_mail" || n["mailbox"] != m.ID || n["email"] != m.Email || n["folder"] != "inbox" ||
		fmt.Sprint(n["count"]) != "1" || fmt.Sprint(n["odoo_mailbox_id"]) != fmt.Sprint(m.OdooID) {
		t.Fatalf("first notice %v: want new_mail, count 1 (the backfill tells nothing)", n)
	}
	mb, _ := e.st.Mailbox(m.ID)
	if fmt.Sprint(n["unread"]) != fmt.Sprint(mb.Counts.Unread) || mb.Counts.Unread == 0 {
		t.Fatalf("notice unread %v, counts.unread %d", n["unread"], mb.Counts.Unread)
	}
	// How long this takes is maildesk bench's latency scenario's figure; here
	// it is only logged.
	t.Logf("new mail indexed → maildesk_notify received by Odoo in %s", took)

	// Three more in three rounds while the window since the first notice
	// lasts: nothing is told until it has passed, then one notice, count 3.
	for i := 2; i <= 4; i++ {
		deliver(t, e, m.Email, "inbox", fmt.Sprintf("From: Carl <carl@customer.example>\r\nTo: %s\r\nSubject: new %d\r\n", m.Email, i))
		e.sync(m.ID)
	}
	if got := liveNotices(osim); len(got) != 1 {
		t.Fatalf("notices %v inside the window: want only the first", got)
	}
	clock.Add(window)
	live.InboxChanged(m.ID, 0) // wakes Run to look at the clock again
	got = waitNotices(t, osim, 2, noticeWait)
	if len(got) != 2 || got[1]["kind"] != "new_mail" || fmt.Sprint(got[1]["count"]) != "3" {
		t.Fatalf("notices %v: want a second one with count 3", got)
	}

	// Read in Outlook: an unread notice with the new count, no new mail.
	for _, msg := range e.sim.Messages(m.Email, "inbox") {
		e.sim.MarkRead(m.Email, msg.ID, true)
	}
	clock.Add(window)
	e.sync(m.ID)
	got = waitNotices(t, osim, 3, noticeWait)
	if got[2]["kind"] != "unread" || fmt.Sprint(got[2]["count"]) != "0" || fmt.Sprint(got[2]["unread"]) != "0" {
		t.Fatalf("third notice %v: want unread 0", got[2])
	}
}

// Odoo down: the notice is told again with the next one, counts summed.
func TestLiveNoticeRetried(t *testing.T) {
	e, osim, m := odooEnv(t)
	clock := &liveClock{now: time.Now()}
	window := 50 * time.Millisecond
	live := bridge.NewLive(bridge.LiveConfig{Store: e.st, Log: zerolog.Nop(), Window: window, Now: clock.Now})
	ctx, cancel := context.WithCancel(context.Background())
	t.Cleanup(cancel)
	osim.FailNext(1, odoosim.FaultHTTP500)
	before := osim.Calls()
	live.InboxChanged(m.ID, 2)
	go live.Run(ctx)
	deadline := time.Now().Add(noticeWait)
	for osim.Calls() == before {
		if time.Now().After(deadline) {
			t.Fatal("Live never called Odoo")
		}
		time.Sleep(time.Millisecond)
	}
	// The clock stands still, so the retry waits for the window: the next
	// change joins it, whatever the machine's speed.
	live.InboxChanged(m.ID, 1)
	clock.Add(window)
	live.InboxChanged(m.ID, 0)
	got := waitNotices(t, osim, 1, noticeWait)
	if fmt.Sprint(got[0]["count"]) != "3" {
		t.Fatalf("notice %v: want count 3", got[0])
	}
}
