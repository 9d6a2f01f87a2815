package store

import (
	"fmt"
	"testing"
	"time"
)

// Odoo's "excluded" answer takes the item out of the outbox like unrouted,
// counts it apart, and keeps Odoo's reason on the index entry.
func TestAckOutboxExcluded(t *testing.T) {
	s, _ := openTest(t)
	mb, _ := s.CreateMailbox(Mailbox{MailboxConfig: MailboxConfig{Email: "a@b.c"}})
	it := msg("m1", "inbox", 1)
	it.Message.Sensitivity, it.Message.InReplyTo, it.Message.References = "private", "<p@x>", []string{"<r@x>", "<p@x>"}
	_, _ = s.ApplyPage(mb.ID, Page{Folder: "inbox", Items: []PageItem{it}})
	items, _ := s.DueOutbox(time.Now(), 10, 0, nil)
	if err := s.AckOutbox([]OutboxAck{{Seq: items[0].Seq, Status: DeliveryExcluded, Error: "not logged: private (Outlook sensitivity)"}}, 2); err != nil {
		t.Fatal(err)
	}
	if due, _ := s.DueOutbox(time.Now().Add(24*time.Hour), 10, 0, nil); len(due) != 0 {
		t.Fatalf("excluded item still due: %+v", due)
	}
	m, _ := s.Message(mb.ID, "m1")
	if m.Delivery != DeliveryExcluded || m.DeliveryError != "not logged: private (Outlook sensitivity)" {
		t.Fatalf("index entry %+v", m)
	}
	if m.Sensitivity != "private" || m.InReplyTo != "<p@x>" || len(m.References) != 2 {
		t.Fatalf("index lost sensitivity or threading: %+v", m)
	}
	got, _ := s.Mailbox(mb.ID)
	if got.Counts.Excluded != 1 || got.Counts.Delivered != 0 || got.Counts.Unrouted != 0 || got.Counts.Failed != 0 {
		t.Fatalf("counts %+v", got.Counts)
	}
}

// RecentMessages spans folders, newest first, stops at since and caps.
func TestRecentMessages(t *testing.T) {
	s, _ := openTest(t)
	mb, _ := s.CreateMailbox(Mailbox{MailboxConfig: MailboxConfig{Email: "a@b.c"}})
	for _, f := range []string{"inbox", "sentitems", "inbox2"} {
		var items []PageItem
		for i := 0; i < 10; i++ {
			items = append(items, msg(fmt.Sprintf("%s-%d", f, i), f, 1000+i*10+len(f)))
		}
		_, _ = s.ApplyPage(mb.ID, Page{Folder: f, Items: items})
	}
	_, _ = s.ApplyPage(mb.ID, Page{Folder: "inbox", Removed: []string{"inbox-9"}})
	since := time.Unix(1050, 0)
	all, total, err := s.RecentMessages(mb.ID, since, 0, nil)
	if err != nil {
		t.Fatal(err)
	}
	// Received at or after since and not removed (inbox-9 was).
	want := 0
	for _, f := range []string{"inbox", "sentitems", "inbox2"} {
		for i := 0; i < 10; i++ {
			if at := 1000 + i*10 + len(f); at >= 1050 && !(f == "inbox" && i == 9) {
				want++
			}
		}
	}
	if total != want || len(all) != want {
		t.Fatalf("%d/%d messages, want %d", len(all), total, want)
	}
	for i := 1; i < len(all); i++ {
		if all[i].ReceivedAt.After(all[i-1].ReceivedAt) {
			t.Fatalf("not newest first at %d", i)
		}
	}
	for _, m := range all {
		if m.ReceivedAt.Before(since) || m.ID == "inbox-9" {
			t.Fatalf("%s should not be listed", m.ID)
		}
	}
	some, total2, _ := s.RecentMessages(mb.ID, since, 4, nil)
	if len(some) != 4 || total2 != want || some[0].ID != all[0].ID {
		t.Fatalf("limit: %d of %d", len(some), total2)
	}
}

// An entry indexed before sensitivity and threading ids were kept gets them
// from a later page with the content (a resync); nothing is queued again.
func TestApplyPageFillsSensitivityOfOlderEntries(t *testing.T) {
	s, _ := openTest(t)
	mb, _ := s.CreateMailbox(Mailbox{MailboxConfig: MailboxConfig{Email: "a@b.c"}})
	_, _ = s.ApplyPage(mb.ID, Page{Folder: "inbox", Items: []PageItem{msg("m1", "inbox", 1)}})
	again := msg("m1", "inbox", 1)
	again.Payload = nil
	again.Message.Sensitivity, again.Message.InReplyTo, again.Message.References = "confidential", "<p@x>", []string{"<p@x>"}
	r, err := s.ApplyPage(mb.ID, Page{Folder: "inbox", Items: []PageItem{again}})
	if err != nil || r.Queued != 0 || r.Known != 1 {
		t.Fatalf("replay: %+v %v", r, err)
	}
	m, _ := s.Message(mb.ID, "m1")
	if m.Sensitivity != "confidential" || m.InReplyTo != "<p@x>" || len(m.References) != 1 {
		t.Fatalf("entry %+v", m)
	}
}
