package bridge_test

import (
	"context"
	"encoding/base64"
	"fmt"
	"testing"

	"github.com/rs/zerolog"

	"github.com/maildesk/maildesk/bridge"
)

// The inbox's actions on many messages: flag, delete (to Deleted Items, as
// Outlook does), archive, move to a subfolder no one syncs; Microsoft 365
// and the index agree afterwards, and the folder counts follow.
func TestInboxActionsKeepIndexAndCounts(t *testing.T) {
	e := newSendEnv(t)
	m := e.mailbox("anna@contoso.com", "personal", "anna@contoso.com", 0)
	ids := e.inbox(m, 12)
	ctx := context.Background()
	msgs := bridge.NewMessages(e.st, bridge.NewMailboxes(e.st, zerolog.Nop()), e.graph, 1<<20)

	// Flag 5 (one $batch), then clear one.
	before := e.rt.count()
	if ok, err := e.actions.Flag(ctx, anna, bridge.FlagParams{MailboxID: m.ID, MessageIDs: ids[:5]}); err != nil || !ok {
		t.Fatalf("flag: %v %v", ok, err)
	}
	if n := e.rt.count() - before; n != 1 {
		t.Errorf("flagging 5 took %d Graph requests, want 1 $batch", n)
	}
	off := false
	if _, err := e.actions.Flag(ctx, anna, bridge.FlagParams{MailboxID: m.ID, MessageIDs: ids[:1], Flagged: &off}); err != nil {
		t.Fatal(err)
	}
	flagged := map[string]string{}
	for _, mi := range e.sim.Messages(m.Email, "inbox") {
		flagged[mi.ID] = mi.FlagStatus
	}
	list, err := msgs.MessageList(anna, bridge.MessageListParams{MailboxID: m.ID, Folder: "inbox", Limit: 50})
	if err != nil {
		t.Fatal(err)
	}
	for _, row := range list.Messages {
		want := row.ID == ids[1] || row.ID == ids[2] || row.ID == ids[3] || row.ID == ids[4]
		if row.Flagged != want || (flagged[row.ID] == "flagged") != want {
			t.Fatalf("%s: listed flagged=%v, Microsoft 365 %q, want flagged=%v", row.ID, row.Flagged, flagged[row.ID], want)
		}
	}

	// Delete 3, archive 2, move 2 to a subfolder of the inbox (by id).
	sub, err := e.sim.AddFolder(m.Email, "inbox", "Customers")
	if err != nil {
		t.Fatal(err)
	}
	for _, mv := range []struct {
		ids    []string
		folder string
	}{{ids[0:3], "deleteditems"}, {ids[3:5], "archive"}, {ids[5:7], sub}} {
		if res, err := e.actions.Move(ctx, anna, bridge.MoveParams{MailboxID: m.ID, MessageIDs: mv.ids, Folder: mv.folder}); err != nil || res.Moved != len(mv.ids) {
			t.Fatalf("move to %s: %+v %v", mv.folder, res, err)
		}
	}
	if got := len(e.sim.Messages(m.Email, "deleteditems")); got != 3 {
		t.Fatalf("%d in Deleted Items", got)
	}
	if got := len(e.sim.Messages(m.Email, "archive")); got != 2 {
		t.Fatalf("%d in Archive", got)
	}
	if got := len(e.sim.Messages(m.Email, sub)); got != 2 {
		t.Fatalf("%d in Customers", got)
	}
	counts, err := e.st.FolderCounts(m.ID)
	if err != nil {
		t.Fatal(err)
	}
	if counts["inbox"].Total != 5 || counts["deleteditems"].Total != 3 || counts["archive"].Total != 2 || counts[sub].Total != 2 {
		t.Fatalf("index counts %+v", counts)
	}
	folders, err := msgs.FolderList(anna, bridge.FolderListParams{MailboxID: m.ID})
	if err != nil || folders[0].Total != 5 || folders[0].Unread != 5 {
		t.Fatalf("folder.list after the moves: %+v %v", folders, err)
	}
	// The next sync round agrees with what the actions wrote.
	e.sync(m.ID)
	if again, _ := e.st.FolderCounts(m.ID); again["inbox"] != counts["inbox"] {
		t.Fatalf("after a sync round the inbox counts %+v, before %+v", again["inbox"], counts["inbox"])
	}
	list, err = msgs.MessageList(anna, bridge.MessageListParams{MailboxID: m.ID, Folder: "archive"})
	if err != nil || len(list.Messages) != 2 || !list.Messages[0].Flagged {
		t.Fatalf("archive lists %+v %v", list.Messages, err)
	}
}

// A message deleted in Outlook meanwhile: message.get and
// message.attachment answer the typed not-found (message_deleted), the
// index forgets it and the folder's count follows; an action on it leaves
// it out of the index too.
func TestMessageDeletedInOutlook(t *testing.T) {
	e := newSendEnv(t)
	m := e.mailbox("anna@contoso.com", "personal", "anna@contoso.com", 0)
	raw := "From: Carl <carl@customer.example>\r\nTo: anna@contoso.com\r\nSubject: with file\r\nMessage-Id: <att@customer.example>\r\n" +
		"MIME-Version: 1.0\r\nContent-Type: multipart/mixed; boundary=b1\r\n\r\n--b1\r\nContent-Type: text/plain\r\n\r\nsee file\r\n" +
		"--b1\r\nContent-Type: application/pdf\r\nContent-Disposition: attachment; filename=\"q.pdf\"\r\nContent-Transfer-Encoding: base64\r\n\r\n" +
		base64.StdEncoding.EncodeToString([]byte("%PDF-1.4 hello")) + "\r\n--b1--\r\n"
	withFile, err := e.sim.DeliverMIME(m.Email, "inbox", []byte(raw))
	if err != nil {
		t.Fatal(err)
	}
	ids := e.inbox(m, 3)
	ctx := context.Background()
	msgs := bridge.NewMessages(e.st, bridge.NewMailboxes(e.st, zerolog.Nop()), e.graph, 0) // no cache: every read asks Graph

	d, err := msgs.MessageGet(ctx, anna, bridge.MessageGetParams{MailboxID: m.ID, MessageID: withFile})
	if err != nil || len(d.Attachments) != 1 {
		t.Fatalf("message.get: %+v %v", d.Attachments, err)
	}
	attID := d.Attachments[0].ID

	e.sim.Delete(m.Email, withFile) // deleted for good in Outlook
	e.sim.Delete(m.Email, ids[0])
	_, err = msgs.MessageAttachment(ctx, anna, bridge.MessageAttachmentParams{MailboxID: m.ID, MessageID: withFile, AttachmentID: attID})
	if be := bridge.AsError(err); be == nil || be.Code != bridge.CodeMessageDeleted || be.Kind != bridge.KindMissing {
		t.Fatalf("attachment of a deleted message: %v", err)
	}
	_, err = msgs.MessageGet(ctx, anna, bridge.MessageGetParams{MailboxID: m.ID, MessageID: ids[0]})
	if be := bridge.AsError(err); be == nil || be.Code != bridge.CodeMessageDeleted || be.Message != "This message was deleted in Outlook (mailbox anna@contoso.com)" {
		t.Fatalf("message.get of a deleted message: %v", err)
	}
	list, err := msgs.MessageList(anna, bridge.MessageListParams{MailboxID: m.ID, Folder: "inbox"})
	if err != nil || len(list.Messages) != 2 {
		t.Fatalf("the inbox lists %d after two deletions in Outlook (%v)", len(list.Messages), err)
	}
	for _, row := range list.Messages {
		if row.ID == withFile || row.ID == ids[0] {
			t.Fatalf("%s still listed", row.ID)
		}
	}
	if c, _ := e.st.FolderCounts(m.ID); c["inbox"].Total != 2 {
		t.Fatalf("inbox count %+v", c["inbox"])
	}

	// Marking read a message that is gone: the others are marked, it leaves the index.
	e.sim.Delete(m.Email, ids[1])
	if _, err := e.actions.MarkRead(ctx, anna, bridge.MarkReadParams{MailboxID: m.ID, MessageIDs: ids[1:]}); err == nil {
		t.Fatal("a partial mark_read answered no error")
	}
	if c, _ := e.st.FolderCounts(m.ID); c["inbox"].Total != 1 || c["inbox"].Unread != 0 {
		t.Fatalf("inbox count after the partial mark_read %+v", c["inbox"])
	}
}

// message.list's query and unread_only skip entries on their stored JSON
// before decoding them (bbolt); the answers are those of the full check.
func TestMessageListQueryPrefilter(t *testing.T) {
	e := newSendEnv(t)
	m := e.mailbox("anna@contoso.com", "personal", "anna@contoso.com", 0)
	for i, subj := range []string{"Offer ÄBC for Müller", "Re: <urgent> & \"quoted\"", "plain question", "Tab\there"} {
		raw := fmt.Sprintf("From: Carl Østergaard <carl@customer.example>\r\nTo: %s\r\nSubject: %s\r\nMessage-Id: <p%d@customer.example>\r\n\r\nbody %d\r\n", m.Email, subj, i, i)
		if _, err := e.sim.DeliverMIME(m.Email, "inbox", []byte(raw)); err != nil {
			t.Fatal(err)
		}
	}
	e.sync(m.ID)
	msgs := bridge.NewMessages(e.st, bridge.NewMailboxes(e.st, zerolog.Nop()), e.graph, 0)
	first, err := msgs.MessageList(anna, bridge.MessageListParams{MailboxID: m.ID, Folder: "inbox"})
	if err != nil || len(first.Messages) != 4 {
		t.Fatal(first, err)
	}
	var rest []string
	for _, row := range first.Messages[1:] {
		rest = append(rest, row.ID)
	}
	if _, err := e.actions.MarkRead(context.Background(), anna, bridge.MarkReadParams{MailboxID: m.ID, MessageIDs: rest}); err != nil {
		t.Fatal(err)
	}
	for q, want := range map[string]int{
		"äbc": 1, "MÜLLER": 1, "offer müller": 0, "<urgent> &": 1, `"quoted"`: 1, "østergaard": 4, "carl@customer.example": 4,
		"question ørsted": 0, "tab\there": 1, "no such": 0, "for müller carl": 1,
	} {
		res, err := msgs.MessageList(anna, bridge.MessageListParams{MailboxID: m.ID, Folder: "inbox", Query: q})
		if err != nil || len(res.Messages) != want {
			t.Errorf("query %q: %d messages, want %d (%v)", q, len(res.Messages), want, err)
		}
	}
	res, err := msgs.MessageList(anna, bridge.MessageListParams{MailboxID: m.ID, Folder: "inbox", UnreadOnly: true})
	if err != nil || len(res.Messages) != 1 || res.Messages[0].ID != first.Messages[0].ID {
		t.Fatalf("unread only: %+v %v", res.Messages, err)
	}
}
