package bridge_test

import (
	"context"
	"errors"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/rs/zerolog"

	"github.com/maildesk/maildesk/bridge"
	"github.com/maildesk/maildesk/store"
)

// mailbox.redeliver: mail Odoo could not route (or kept back) goes to Odoo
// again at the start of the next round, fetched from Graph again, so Odoo's
// current rules route it; nothing is queued twice, counts stay right, and
// what Odoo still excludes stays excluded.
func TestRedeliverRoutesKeptBackMailAgain(t *testing.T) {
	e, osim, m := odooEnv(t)
	var unrouted []string
	for _, subj := range []string{"offer", "price", "delivery date"} {
		unrouted = append(unrouted, deliver(t, e, m.Email, "inbox",
			"From: Dan <dan@prospect.example>\r\nTo: "+m.Email+"\r\nSubject: "+subj+"\r\nMessage-Id: <"+subj[:3]+"@prospect.example>\r\n"))
	}
	private := deliver(t, e, m.Email, "inbox", "From: Dan <dan@prospect.example>\r\nTo: "+m.Email+
		"\r\nSubject: personal\r\nMessage-Id: <pers@prospect.example>\r\nSensitivity: Private\r\n")
	e.sync(m.ID)
	p := bridge.NewPusher(bridge.PusherConfig{Store: e.st, Log: zerolog.Nop(), Registry: prometheus.NewRegistry(),
		RetryBase: time.Millisecond, RetryMax: 5 * time.Millisecond})
	if n, err := p.DeliverOnce(context.Background()); err != nil || n != 4 {
		t.Fatalf("first delivery: %d %v", n, err)
	}
	for _, id := range unrouted {
		if idx, _ := e.st.Message(m.ID, id); idx.Delivery != store.DeliveryUnrouted {
			t.Fatalf("before: %s is %q, want unrouted (Odoo knows no Dan)", id, idx.Delivery)
		}
	}

	// Dan becomes a contact; the admin asks for the past mail to be routed again.
	dan := osim.AddPartner("Dan", "dan@prospect.example")
	sched, err := bridge.NewScheduler(bridge.SchedulerConfig{Store: e.st, Sync: e.syncer.SyncMailbox})
	if err != nil {
		t.Fatal(err)
	}
	ctl := bridge.NewSyncControl(e.st, bridge.NewMailboxes(e.st, zerolog.Nop()), sched)
	if _, err := ctl.Redeliver(anna, bridge.RedeliverParams{MailboxID: m.ID, Statuses: []string{"posted"}}); !isKind(err, bridge.KindValidation) {
		t.Fatalf("status posted: %v, want invalid", err)
	}
	res, err := ctl.Redeliver(anna, bridge.RedeliverParams{MailboxID: m.ID})
	if err != nil || !res.Queued || res.Messages != 4 {
		t.Fatalf("redeliver: %+v %v (want 4 messages: 3 unrouted, 1 excluded)", res, err)
	}
	if st, _ := e.st.OutboxStats(); st[m.ID].Items != 0 {
		t.Fatalf("the request queued %d items itself; the syncer does it", st[m.ID].Items)
	}
	// A second request before the round: one redelivery.
	if _, err := ctl.Redeliver(anna, bridge.RedeliverParams{MailboxID: m.ID, Days: 2}); err != nil {
		t.Fatal(err)
	}
	e.sync(m.ID)
	if st, _ := e.st.OutboxStats(); st[m.ID].Items != 4 {
		t.Fatalf("after the round: %d items queued, want 4", st[m.ID].Items)
	}
	if mb, _ := e.st.Mailbox(m.ID); mb.Redeliver != nil {
		t.Fatalf("request still pending after the round: %+v", mb.Redeliver)
	}
	// Asked again while the items wait: nothing is queued twice.
	if _, err := ctl.Redeliver(anna, bridge.RedeliverParams{MailboxID: m.ID}); err != nil {
		t.Fatal(err)
	}
	e.sync(m.ID)
	if st, _ := e.st.OutboxStats(); st[m.ID].Items != 4 {
		t.Fatalf("asked twice: %d items queued, want 4", st[m.ID].Items)
	}

	if n, err := p.DeliverOnce(context.Background()); err != nil || n != 4 {
		t.Fatalf("redelivery: %d %v", n, err)
	}
	mails := 0
	for _, msg := range osim.MessagesOn("res.partner", dan) {
		if msg.GraphID != "" {
			mails++
		}
	}
	if mails != 3 {
		t.Fatalf("%d mails on Dan's contact, want 3", mails)
	}
	for _, id := range unrouted {
		if idx, _ := e.st.Message(m.ID, id); idx.Delivery != store.DeliveryPosted {
			t.Fatalf("after: %s is %q, want posted", id, idx.Delivery)
		}
	}
	if idx, _ := e.st.Message(m.ID, private); idx.Delivery != store.DeliveryExcluded || idx.DeliveryError == "" {
		t.Fatalf("private mail: %q %q, want still excluded with its reason", idx.Delivery, idx.DeliveryError)
	}
	mb, _ := e.st.Mailbox(m.ID)
	c := mb.Counts
	if c.Delivered != 3 || c.Unrouted != 0 || c.Excluded != 1 || c.Queued-c.Delivered-c.Unrouted-c.Excluded-c.Failed != 0 {
		t.Fatalf("counts %+v: each message counted once, nothing pending", c)
	}
	entries, _, err := e.st.AuditList(m.ID, 50, 0)
	if err != nil {
		t.Fatal(err)
	}
	audited := 0
	for _, a := range entries {
		if a.Action == "mailbox.redeliver" && a.UID == anna.UID {
			audited++
		}
	}
	if audited != 3 {
		t.Fatalf("%d mailbox.redeliver audit entries, want 3", audited)
	}
}

func isKind(err error, kind bridge.Kind) bool {
	var be *bridge.Error
	return errors.As(err, &be) && be.Kind == kind
}
