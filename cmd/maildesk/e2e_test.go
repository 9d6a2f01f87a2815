package main

import (
	"context"
	"net/mail"
	"os"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/maildesk/maildesk/graphsync/m365sim"
)

// TestEndToEndSimulatorToOdoo runs the demo's flow and checks what landed
// where in the Odoo stand-in: mail on the sender's partner, replies on the
// thread's record, sent-from-Outlook mail as a done "Email – Outbox" activity
// of the main user, unknown senders unrouted, and nothing twice — also
// after the mailbox is deleted, created again and synced from scratch.
func TestEndToEndSimulatorToOdoo(t *testing.T) {
	t.Parallel()
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancel()
	d, err := startDemo(ctx, demoOptions{Messages: 160, Seed: 7, DataDir: t.TempDir(), MaxAttachment: 64 << 10})
	if err != nil {
		t.Fatal(err)
	}
	defer d.Close()
	if err := d.createAndConnect(ctx); err != nil {
		t.Fatal(err)
	}
	view, err := d.waitDelivered(ctx, false)
	if err != nil {
		t.Fatal(err)
	}
	inbox, sent := d.sim.Messages(d.owner, "inbox"), d.sim.Messages(d.owner, "sentitems")
	if view.Counts.Queued != int64(len(inbox)+len(sent)) {
		t.Fatalf("queued %d, the mailbox holds %d", view.Counts.Queued, len(inbox)+len(sent))
	}
	if view.Counts.Unrouted == 0 || view.Counts.Delivered == 0 {
		t.Fatalf("expected both delivered and unrouted mail: %+v", view.Counts)
	}

	// Each Graph message at most once in Odoo; where each landed.
	byGraph := map[string][]int64{} // graph id → odoo message ids
	recordOf := map[string]string{} // Message-Id → "model,id"
	for _, m := range d.od.Messages() {
		if m.GraphID == "" {
			continue
		}
		byGraph[m.GraphID] = append(byGraph[m.GraphID], m.ID)
		recordOf[m.MessageID] = m.Model + "," + itoa(m.ResID)
	}
	for g, ids := range byGraph {
		if len(ids) > 1 {
			t.Fatalf("graph message %s is in Odoo %d times", g, len(ids))
		}
	}
	if len(recordOf) != len(byGraph) {
		t.Fatalf("a Message-Id is in Odoo twice: %d synced messages, %d Message-Ids", len(byGraph), len(recordOf))
	}
	// Delivered counts posted and duplicate answers: a copy in Inbox and Sent
	// Items (mail to oneself) shares one Message-Id and is posted once.
	if shared := sharedIDs(append(append([]m365simMsg{}, toMsgs(inbox)...), toMsgs(sent)...)); int64(len(byGraph)) > view.Counts.Delivered || int64(len(byGraph)+shared) < view.Counts.Delivered {
		t.Fatalf("Odoo holds %d synced messages, the sidecar counts %d delivered (%d share a Message-Id)", len(byGraph), view.Counts.Delivered, shared)
	}
	// Incoming mail from a known contact that is not a reply lands on that
	// contact; replies land where their thread is.
	onPartner, onThread := 0, 0
	for _, m := range inbox {
		where, ok := recordOf[m.InternetMessageID]
		if !ok {
			continue
		}
		if parent, isReply := recordOf[m.InReplyTo]; isReply {
			if where != parent {
				t.Errorf("reply %s landed on %s, its thread is on %s", m.InternetMessageID, where, parent)
			}
			onThread++
			continue
		}
		a, err := mail.ParseAddress(m.From)
		if err != nil {
			continue
		}
		if pid := d.od.PartnerByEmail(a.Address); pid != 0 && where == "res.partner,"+itoa(pid) {
			onPartner++
		}
	}
	if onPartner == 0 || onThread == 0 {
		t.Fatalf("expected mail on senders' partners (%d) and replies on their threads (%d)", onPartner, onThread)
	}
	acts := 0
	for _, a := range d.od.Activities() {
		if strings.Contains(a.TypeName, "Outbox") {
			if !a.Done || a.UserID != d.mainUID {
				t.Fatalf("outbox activity %+v: want done, for the main user %d", a, d.mainUID)
			}
			acts++
		}
	}
	if acts == 0 {
		t.Fatal("no done Email – Outbox activity for sent-from-Outlook mail")
	}

	// From scratch: delete the mailbox (tokens, index, cursors), create it
	// again on the same Odoo record, connect, sync. Odoo must get nothing twice.
	total := len(d.od.Messages())
	if err := d.rc.callWith(ctx, "mailbox.delete", map[string]any{"mailbox_id": d.mailbox}, nil); err != nil {
		t.Fatal(err)
	}
	if err := d.createAndConnect(ctx); err != nil {
		t.Fatal(err)
	}
	view, err = d.waitDelivered(ctx, false)
	if err != nil {
		t.Fatal(err)
	}
	if view.Counts.Queued != int64(len(inbox)+len(sent)) {
		t.Fatalf("second sync queued %d, want %d", view.Counts.Queued, len(inbox)+len(sent))
	}
	if got := len(d.od.Messages()); got != total {
		t.Fatalf("after a sync from scratch Odoo holds %d messages, before %d", got, total)
	}
	if n := d.app.Group.Panics(); n != 0 {
		t.Fatalf("%d goroutine panics", n)
	}
}

// TestOdooDownDuringBackfill takes Odoo down in the middle of a 5,000-message
// backfill: the mailbox shows the delay while it lasts, nothing is lost,
// nothing arrives twice, and delivery resumes by itself.
func TestOdooDownDuringBackfill(t *testing.T) {
	t.Parallel()
	// 2,000 messages; make test-long (MAILDESK_LONG=1) runs 5,000.
	messages := 2000
	if os.Getenv("MAILDESK_LONG") == "1" {
		messages = 5000
	}
	if testing.Short() {
		t.Skipf("%d messages", messages)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
	defer cancel()
	d, err := startDemo(ctx, demoOptions{Messages: messages, Seed: 11, DataDir: t.TempDir(), MaxAttachment: 4 << 10, AttachmentRate: 0.1})
	if err != nil {
		t.Fatal(err)
	}
	defer d.Close()
	if err := d.createAndConnect(ctx); err != nil {
		t.Fatal(err)
	}
	waitFor(t, ctx, "the first delivery to Odoo", func() bool { return d.od.IngestCalls().Calls > 0 })
	if err := d.od.SetDown(true); err != nil {
		t.Fatal(err)
	}
	waitFor(t, ctx, "the mailbox to show the delay", func() bool {
		v, err := d.get(ctx)
		return err == nil && v.Delivery.Delayed && v.Delivery.Reason != ""
	})
	waitFor(t, ctx, "the backfill to finish while Odoo is down", func() bool {
		v, err := d.get(ctx)
		return err == nil && v.Progress.Finished
	})
	if err := d.od.SetDown(false); err != nil {
		t.Fatal(err)
	}
	view, err := d.waitDelivered(ctx, false)
	if err != nil {
		t.Fatal(err)
	}
	want := int64(len(d.sim.Messages(d.owner, "inbox")) + len(d.sim.Messages(d.owner, "sentitems")))
	if view.Counts.Queued != want || view.Counts.Delivered+view.Counts.Unrouted != want {
		t.Fatalf("counts %+v, the mailbox holds %d", view.Counts, want)
	}
	seen, ids := map[string]bool{}, map[string]bool{}
	for _, m := range d.od.Messages() {
		if m.GraphID == "" {
			continue
		}
		if seen[m.GraphID] || ids[m.MessageID] {
			t.Fatalf("message %s (%s) reached Odoo twice", m.GraphID, m.MessageID)
		}
		seen[m.GraphID], ids[m.MessageID] = true, true
	}
	all := append(toMsgs(d.sim.Messages(d.owner, "inbox")), toMsgs(d.sim.Messages(d.owner, "sentitems"))...)
	if n := int64(len(seen)); n > view.Counts.Delivered || n+int64(sharedIDs(all)) < view.Counts.Delivered {
		t.Fatalf("Odoo holds %d, delivered %d", len(seen), view.Counts.Delivered)
	}
	if view.Delivery.Delayed {
		t.Fatalf("the mailbox still shows a delay: %+v", view.Delivery)
	}
}

func waitFor(t *testing.T, ctx context.Context, what string, cond func() bool) {
	t.Helper()
	for !cond() {
		select {
		case <-ctx.Done():
			t.Fatalf("timed out waiting for %s", what)
		case <-time.After(20 * time.Millisecond):
		}
	}
}

func itoa(n int64) string { return strconv.FormatInt(n, 10) }

type m365simMsg struct{ id, messageID string }

func toMsgs(in []m365sim.MessageInfo) []m365simMsg {
	out := make([]m365simMsg, 0, len(in))
	for _, m := range in {
		out = append(out, m365simMsg{m.ID, m.InternetMessageID})
	}
	return out
}

// sharedIDs counts messages whose Message-Id another message also has.
func sharedIDs(ms []m365simMsg) int {
	n := map[string]int{}
	for _, m := range ms {
		n[m.messageID]++
	}
	shared := 0
	for _, c := range n {
		if c > 1 {
			shared += c - 1
		}
	}
	return shared
}
