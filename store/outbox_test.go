package store

import (
	"fmt"
	"strings"
	"testing"
	"time"
)

func TestDueOutboxByMailboxGivesEachMailboxItsOwnBatch(t *testing.T) {
	s, _ := openTest(t)
	a, _ := s.CreateMailbox(Mailbox{Email: "a@b.c"})
	b, _ := s.CreateMailbox(Mailbox{Email: "b@b.c"})
	c, _ := s.CreateMailbox(Mailbox{Email: "c@b.c"})
	var items []PageItem
	for i := 0; i < 30; i++ {
		items = append(items, msg(fmt.Sprintf("a%02d", i), "inbox", i))
	}
	_, _ = s.ApplyPage(a.ID, Page{Folder: "inbox", Items: items}) // A queued first, many
	_, _ = s.ApplyPage(b.ID, Page{Folder: "inbox", Items: []PageItem{msg("b1", "inbox", 1), msg("b2", "inbox", 2)}})
	_, _ = s.ApplyPage(c.ID, Page{Folder: "inbox", Items: []PageItem{msg("c1", "inbox", 1)}})
	limit := func(id string) int {
		if id == a.ID {
			return 5
		}
		return 1
	}
	got, err := s.DueOutboxByMailbox(time.Now(), limit, 0, func(id string) bool { return id == c.ID })
	if err != nil {
		t.Fatal(err)
	}
	per := map[string][]string{}
	for _, g := range got {
		for _, it := range g.Items {
			if it.MailboxID != g.MailboxID || len(it.Payload) == 0 {
				t.Fatalf("item %+v in batch of %s", it, g.MailboxID)
			}
			per[g.MailboxID] = append(per[g.MailboxID], it.GraphID)
		}
	}
	if len(got) != 2 || strings.Join(per[a.ID], ",") != "a00,a01,a02,a03,a04" || strings.Join(per[b.ID], ",") != "b1" || per[c.ID] != nil {
		t.Fatalf("batches %v", per)
	}
	// Byte cap per mailbox: at least one item each.
	got, _ = s.DueOutboxByMailbox(time.Now(), func(string) int { return 100 }, 1, nil)
	for _, g := range got {
		if len(g.Items) != 1 {
			t.Fatalf("byte cap: %s got %d items", g.MailboxID, len(g.Items))
		}
	}
}

func TestRefusedItemFailsAfterLimitAndRetryFailedRequeues(t *testing.T) {
	s, _ := openTest(t)
	mb, _ := s.CreateMailbox(Mailbox{Email: "a@b.c"})
	_, _ = s.ApplyPage(mb.ID, Page{Folder: "inbox", Items: []PageItem{msg("m1", "inbox", 1), msg("m2", "inbox", 2)}})
	items, _ := s.DueOutbox(time.Now(), 10, 0, nil)
	refuse := func(seq uint64, reason string) {
		t.Helper()
		if err := s.AckOutbox([]OutboxAck{{Seq: seq, Status: "error", Error: reason, RetryAt: time.Now()}}, 3); err != nil {
			t.Fatal(err)
		}
	}
	// m1: two refusals, then another reason: the count starts again.
	refuse(items[0].Seq, "boom")
	refuse(items[0].Seq, "boom")
	refuse(items[0].Seq, "bang")
	refuse(items[0].Seq, "bang")
	if st, _ := s.OutboxStats(); st[mb.ID].Failed != 0 {
		t.Fatalf("failed before 3 same refusals: %+v", st)
	}
	refuse(items[0].Seq, "bang")
	st, _ := s.OutboxStats()
	if st[mb.ID].Failed != 1 || st[mb.ID].Items != 2 {
		t.Fatalf("after 3 same refusals: %+v", st)
	}
	due, _ := s.DueOutbox(time.Now().Add(24*time.Hour), 10, 0, nil)
	if len(due) != 1 || due[0].GraphID != "m2" {
		t.Fatalf("a failed item is still due: %+v", due)
	}
	if _, ok := s.NextOutboxDue(func(id string) bool { return false }); !ok {
		t.Fatal("m2 not due")
	}
	got, _ := s.Mailbox(mb.ID)
	if got.Counts.Failed != 1 || got.Delivery.FailedReason != "bang" || got.Delivery.FailedAt.IsZero() {
		t.Fatalf("mailbox %+v %+v", got.Counts, got.Delivery)
	}
	if m, _ := s.Message(mb.ID, "m1"); m.Delivery != DeliveryFailed || m.DeliveryError != "bang" {
		t.Fatalf("index %+v", m)
	}
	// m2 with a fresh reason each time still fails, after FailAfterAttempts*3.
	for i := 0; i < FailAfterAttempts*3; i++ {
		refuse(items[1].Seq, fmt.Sprint("reason ", i))
	}
	if st, _ := s.OutboxStats(); st[mb.ID].Failed != 2 {
		t.Fatalf("changing reasons retried forever: %+v", st)
	}
	// A late error answer for a failed item changes nothing.
	refuse(items[1].Seq, "late")
	if f, _ := s.FailedOutbox(mb.ID); len(f) != 2 || f[1].Attempts != FailAfterAttempts*3 {
		t.Fatalf("failed items %+v", f)
	}

	n, err := s.RetryFailed(mb.ID)
	if err != nil || n != 2 {
		t.Fatalf("retry failed: %d %v", n, err)
	}
	due, _ = s.DueOutbox(time.Now().Add(time.Second), 10, 0, nil)
	if len(due) != 2 || due[0].Attempts != 0 || due[0].SameErrors != 0 || due[0].Failed {
		t.Fatalf("requeued %+v", due)
	}
	got, _ = s.Mailbox(mb.ID)
	if got.Counts.Failed != 0 || got.Delivery.FailedReason != "" {
		t.Fatalf("mailbox after retry %+v %+v", got.Counts, got.Delivery)
	}
	if m, _ := s.Message(mb.ID, "m1"); m.Delivery != DeliveryQueued || m.DeliveryError != "" {
		t.Fatalf("index after retry %+v", m)
	}
	// Fail: an item no retry can help fails at once.
	if err := s.AckOutbox([]OutboxAck{{Seq: items[0].Seq, Status: "error", Error: "unreadable", Fail: true}}, 3); err != nil {
		t.Fatal(err)
	}
	if st, _ := s.OutboxStats(); st[mb.ID].Failed != 1 {
		t.Fatalf("Fail ack: %+v", st)
	}
	if n, _ := s.RetryFailed(mb.ID); n != 1 {
		t.Fatalf("second retry requeued %d", n)
	}
	if _, err := s.RetryFailed("mbx_nope"); err == nil {
		t.Fatal("retry on an unknown mailbox succeeded")
	}
}
