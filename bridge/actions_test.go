package bridge_test

import (
	"context"
	"crypto/rand"
	"errors"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/rs/zerolog"

	"github.com/maildesk/maildesk/bridge"
	"github.com/maildesk/maildesk/store"
)

// inbox delivers n messages to anna's inbox, syncs, and returns their ids.
func (e *sendEnv) inbox(m store.Mailbox, n int) []string {
	e.t.Helper()
	var ids []string
	for i := 0; i < n; i++ {
		raw := fmt.Sprintf("From: Carl <carl@customer.example>\r\nTo: %s\r\nSubject: question %d\r\nMessage-Id: <q%d@customer.example>\r\n\r\nhello %d\r\n", m.Email, i, i, i)
		id, err := e.sim.DeliverMIME(m.Email, "inbox", []byte(raw))
		if err != nil {
			e.t.Fatal(err)
		}
		ids = append(ids, id)
	}
	e.sync(m.ID)
	return ids
}

func TestMarkReadAndMove(t *testing.T) {
	e := newSendEnv(t)
	m := e.mailbox("anna@contoso.com", "personal", "anna@contoso.com", 0)
	ids := e.inbox(m, 25)
	ctx := context.Background()

	before := e.rt.count()
	ok, err := e.actions.MarkRead(ctx, anna, bridge.MarkReadParams{MailboxID: m.ID, MessageIDs: ids})
	if err != nil || !ok {
		t.Fatalf("mark_read: %v %v", ok, err)
	}
	if n := e.rt.count() - before; n != 2 {
		t.Errorf("25 messages took %d Graph requests, want 2 $batch envelopes", n)
	}
	for _, mi := range e.sim.Messages(m.Email, "inbox") {
		if !mi.IsRead {
			t.Fatalf("%s unread in Microsoft 365", mi.ID)
		}
	}
	for _, id := range ids {
		if msg, _ := e.st.Message(m.ID, id); !msg.IsRead {
			t.Fatalf("%s unread in the index", id)
		}
	}
	f := false
	if _, err := e.actions.MarkRead(ctx, anna, bridge.MarkReadParams{MailboxID: m.ID, MessageIDs: ids[:1], Read: &f}); err != nil {
		t.Fatal(err)
	}
	if msg, _ := e.st.Message(m.ID, ids[0]); msg.IsRead {
		t.Fatal("read=false did not clear the flag")
	}

	res, err := e.actions.Move(ctx, anna, bridge.MoveParams{MailboxID: m.ID, MessageIDs: ids[:3], Folder: "Archive"})
	if err != nil || res.Moved != 3 {
		t.Fatalf("move: %+v %v", res, err)
	}
	if got := len(e.sim.Messages(m.Email, "archive")); got != 3 {
		t.Fatalf("%d messages in Archive", got)
	}
	if got := len(e.sim.Messages(m.Email, "inbox")); got != 22 {
		t.Fatalf("%d messages left in the inbox", got)
	}
	for _, id := range ids[:3] {
		if msg, _ := e.st.Message(m.ID, id); msg.Folder != "archive" {
			t.Fatalf("%s indexed in %q", id, msg.Folder)
		}
	}
	// A message deleted in Outlook meanwhile: the others still move.
	e.sim.Delete(m.Email, ids[3])
	_, err = e.actions.Move(ctx, anna, bridge.MoveParams{MailboxID: m.ID, MessageIDs: ids[3:5], Folder: "deleteditems"})
	var be *bridge.Error
	if !errors.As(err, &be) || be.Kind != bridge.KindUser || !strings.Contains(be.Message, "1 message(s) moved") {
		t.Fatalf("partial move: %v", err)
	}
	if msg, _ := e.st.Message(m.ID, ids[4]); msg.Folder != "deleteditems" {
		t.Fatalf("moved message indexed in %q", msg.Folder)
	}

	// Refusals change nothing and call nobody.
	before = e.rt.count()
	for name, call := range map[string]func() error{
		"other user": func() error {
			_, err := e.actions.MarkRead(ctx, bridge.Actor{UID: 99}, bridge.MarkReadParams{MailboxID: m.ID, MessageIDs: ids})
			return err
		},
		"unknown id": func() error {
			_, err := e.actions.MarkRead(ctx, anna, bridge.MarkReadParams{MailboxID: m.ID, MessageIDs: []string{"nope"}})
			return err
		},
		"no ids": func() error {
			_, err := e.actions.Move(ctx, anna, bridge.MoveParams{MailboxID: m.ID, Folder: "inbox"})
			return err
		},
		"bad folder": func() error {
			_, err := e.actions.Move(ctx, anna, bridge.MoveParams{MailboxID: m.ID, MessageIDs: ids, Folder: "../x"})
			return err
		},
		"bad model": func() error {
			_, err := e.actions.LogToRecord(ctx, anna, bridge.LogParams{MailboxID: m.ID, MessageID: ids[5], Model: "Res Partner", ResID: 7})
			return err
		},
		"bad res_id": func() error {
			_, err := e.actions.LogToRecord(ctx, anna, bridge.LogParams{MailboxID: m.ID, MessageID: ids[5], Model: "res.partner"})
			return err
		},
		"other logger": func() error {
			_, err := e.actions.LogToRecord(ctx, bridge.Actor{UID: 99}, bridge.LogParams{MailboxID: m.ID, MessageID: ids[5], Model: "res.partner", ResID: 7})
			return err
		},
	} {
		if err := call(); err == nil {
			t.Errorf("%s: accepted", name)
		}
	}
	if n := e.rt.count() - before; n != 0 {
		t.Fatalf("refused calls made %d Graph requests", n)
	}
	entries, _, _ := e.st.AuditList(m.ID, 50, 0)
	actions := map[string]int{}
	for _, en := range entries {
		actions[en.Action]++
	}
	if actions["message.mark_read"] != 2 || actions["message.move"] != 2 {
		t.Fatalf("audit %v", actions)
	}
}

func TestLogToRecordQueuesTargetedItem(t *testing.T) {
	e := newSendEnv(t)
	m := e.mailbox("anna@contoso.com", "personal", "anna@contoso.com", 0)
	att := make([]byte, 2048)
	_, _ = rand.Read(att)
	raw := odooReply("carl@customer.example", m.Email, "<carl-9@customer.example>", att)
	id, err := e.sim.DeliverMIME(m.Email, "inbox", raw)
	if err != nil {
		t.Fatal(err)
	}
	e.sync(m.ID)
	queuedBefore := len(e.outbox(m.ID))
	res, err := e.actions.LogToRecord(context.Background(), anna, bridge.LogParams{MailboxID: m.ID, MessageID: id, Model: "crm.lead", ResID: 42})
	if err != nil {
		t.Fatal(err)
	}
	if !res.Queued || res.OutboxSeq == 0 || res.InternetID != "<carl-9@customer.example>" || e.kicks != 1 {
		t.Fatalf("answer %+v, kicks %d", res, e.kicks)
	}
	items := e.outbox(m.ID)
	if len(items) != queuedBefore+1 {
		t.Fatalf("%d outbox items, want %d", len(items), queuedBefore+1)
	}
	it := items[len(items)-1]
	if it.Target == nil || it.Target.Model != "crm.lead" || it.Target.ResID != 42 || it.GraphID != id || it.Direction != "in" {
		t.Fatalf("item %+v target %+v", it, it.Target)
	}
	if it.Headers["in-reply-to"] != "<orig-7@customer.example>" || len(it.Attachments) != 1 || it.Attachments[0].Name != "offer.pdf" {
		t.Fatalf("item lost headers or attachments: %v, %d attachments", it.Headers, len(it.Attachments))
	}
	// Gone in Outlook: a MissingError, nothing queued.
	e.sim.Delete(m.Email, id)
	_, err = e.actions.LogToRecord(context.Background(), anna, bridge.LogParams{MailboxID: m.ID, MessageID: id, Model: "crm.lead", ResID: 42})
	var be *bridge.Error
	if !errors.As(err, &be) || be.Kind != bridge.KindMissing {
		t.Fatalf("deleted message: %v", err)
	}
	if len(e.outbox(m.ID)) != queuedBefore+1 {
		t.Fatal("queued a deleted message")
	}
}

// TestLogToRecordReachesTheRecordInOdoo runs log_to_record through the
// pusher into the Odoo stand-in: the message lands on the chosen record.
func TestLogToRecordReachesTheRecordInOdoo(t *testing.T) {
	e, osim, m := odooEnv(t)
	partner := osim.AddPartner("Someone Else", "someone@elsewhere.example")
	// Not synced yet: Odoo has never seen it.
	id, err := e.sim.DeliverMIME(m.Email, "inbox", odooReply("carl@customer.example", m.Email, "<carl-10@customer.example>", nil))
	if err != nil {
		t.Fatal(err)
	}
	if _, err := e.actions.LogToRecord(context.Background(), anna, bridge.LogParams{MailboxID: m.ID, MessageID: id, Model: "res.partner", ResID: partner}); err != nil {
		t.Fatal(err)
	}
	p := bridge.NewPusher(bridge.PusherConfig{Store: e.st, Log: zerolog.Nop(), RetryBase: time.Millisecond, RetryMax: 5 * time.Millisecond})
	if n, err := p.DeliverOnce(context.Background()); err != nil || n != 1 {
		t.Fatalf("deliver: %d %v", n, err)
	}
	msgs := osim.MessagesOn("res.partner", partner)
	var got []string
	for _, msg := range msgs {
		if msg.GraphID != "" {
			got = append(got, msg.MessageID)
		}
	}
	if len(got) != 1 || got[0] != "<carl-10@customer.example>" {
		t.Fatalf("mail on the partner: %v", got)
	}
	if n, _ := e.st.OutboxStats(); n[m.ID].Items != 0 {
		t.Fatalf("%d items left in the outbox", n[m.ID].Items)
	}
}
