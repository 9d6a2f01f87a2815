package bridge_test

import (
	"context"
	"encoding/base64"
	"errors"
	"strings"
	"testing"

	"github.com/rs/zerolog"

	"github.com/maildesk/maildesk/bridge"
	"github.com/maildesk/maildesk/bridge/odoo"
	"github.com/maildesk/maildesk/graphsync/m365sim"
)

func TestMessageIndexRPCs(t *testing.T) {
	r := newRig(t, rigOpts{})
	upn := "gina@" + r.sim.Domain()
	r.sim.GenerateMailbox(upn, 60, m365sim.GenOptions{MaxAttachment: 8 << 10, NoSamples: true})
	raw := "From: Mallory <mallory@example.com>\r\nTo: " + upn + "\r\nSubject: scripted\r\nMessage-ID: <evil-1@example.com>\r\n" +
		"MIME-Version: 1.0\r\nContent-Type: multipart/mixed; boundary=b1\r\n\r\n--b1\r\nContent-Type: text/html; charset=utf-8\r\n\r\n" +
		`<p onclick="steal()">Hi<script>alert(1)</script><img src="https://tracker.example.com/p.gif"><a href="javascript:x()">l</a></p>` +
		"\r\n--b1\r\nContent-Type: application/pdf\r\nContent-Disposition: attachment; filename=\"q.pdf\"\r\nContent-Transfer-Encoding: base64\r\n\r\n" +
		base64.StdEncoding.EncodeToString([]byte("%PDF-1.4 hello")) + "\r\n--b1--\r\n"
	evilID, err := r.sim.DeliverMIME(upn, "inbox", []byte(raw))
	if err != nil {
		t.Fatal(err)
	}
	id := r.mailbox(upn, odoo.ModeLog, 0)
	r.syncUntilDone(id, 0)

	boxes := bridge.NewMailboxes(r.st, zerolog.Nop())
	svc := bridge.NewMessages(r.st, boxes, r.graph, 1<<20)
	owner := bridge.Actor{UID: 2}

	if _, err := svc.FolderList(bridge.Actor{UID: 99}, bridge.FolderListParams{MailboxID: id}); bridge.AsError(err).Code != "forbidden" {
		t.Fatalf("a stranger listed folders: %v", err)
	}
	folders, err := svc.FolderList(owner, bridge.FolderListParams{MailboxID: id})
	if err != nil {
		t.Fatal(err)
	}
	inbox := r.sim.Messages(upn, "inbox")
	if len(folders) != 2 || folders[0].WellKnown != "inbox" || folders[0].Total != int64(len(inbox)) {
		t.Fatalf("folders %+v, inbox holds %d", folders, len(inbox))
	}

	// Page through the inbox, newest first, without gaps or repeats.
	seen := map[string]bool{}
	cursor := ""
	for pages := 0; ; pages++ {
		res, err := svc.MessageList(owner, bridge.MessageListParams{MailboxID: id, Folder: "inbox", Limit: 7, Cursor: cursor})
		if err != nil {
			t.Fatal(err)
		}
		for i, m := range res.Messages {
			if seen[m.ID] {
				t.Fatalf("message %s listed twice", m.ID)
			}
			seen[m.ID] = true
			if i > 0 && m.ReceivedAt.After(res.Messages[i-1].ReceivedAt) {
				t.Fatal("not newest first")
			}
		}
		if res.NextCursor == "" {
			break
		}
		cursor = res.NextCursor
	}
	if len(seen) != len(inbox) {
		t.Fatalf("listed %d of %d", len(seen), len(inbox))
	}
	if res, err := svc.MessageList(owner, bridge.MessageListParams{MailboxID: id, Folder: "inbox", Query: "scripted"}); err != nil || len(res.Messages) != 1 {
		t.Fatalf("query: %v %+v", err, res)
	}
	if _, err := svc.MessageList(owner, bridge.MessageListParams{MailboxID: id, Limit: 500}); bridge.AsError(err).Code != "invalid_params" {
		t.Fatalf("limit 500 accepted: %v", err)
	}

	ctx := context.Background()
	before := r.sim.Stats(upn).Requests
	d, err := svc.MessageGet(ctx, owner, bridge.MessageGetParams{MailboxID: id, MessageID: evilID})
	if err != nil {
		t.Fatal(err)
	}
	for _, bad := range []string{"<script", "onclick", "javascript:", ` src="https://tracker`} {
		if strings.Contains(d.BodyHTML, bad) {
			t.Fatalf("sanitised body still has %q: %s", bad, d.BodyHTML)
		}
	}
	if !strings.Contains(d.BodyHTML, `data-remote-src="https://tracker.example.com/p.gif"`) {
		t.Fatalf("remote image not kept as data-remote-src: %s", d.BodyHTML)
	}
	if d.Headers["message-id"] != "<evil-1@example.com>" || len(d.Attachments) != 1 || d.Attachments[0].Name != "q.pdf" {
		t.Fatalf("detail %+v", d)
	}
	// Cached: a second get costs no Graph request.
	mid := r.sim.Stats(upn).Requests
	if _, err := svc.MessageGet(ctx, owner, bridge.MessageGetParams{MailboxID: id, MessageID: evilID}); err != nil {
		t.Fatal(err)
	}
	if r.sim.Stats(upn).Requests != mid || mid == before {
		t.Fatalf("requests: %d before, %d after first get, %d after second", before, mid, r.sim.Stats(upn).Requests)
	}
	att, err := svc.MessageAttachment(ctx, owner, bridge.MessageAttachmentParams{MailboxID: id, MessageID: evilID, AttachmentID: d.Attachments[0].ID})
	if err != nil {
		t.Fatal(err)
	}
	if b, _ := base64.StdEncoding.DecodeString(att.DataBase64); string(b) != "%PDF-1.4 hello" || att.Name != "q.pdf" {
		t.Fatalf("attachment %q %q", att.Name, b)
	}
	_, err = svc.MessageGet(ctx, owner, bridge.MessageGetParams{MailboxID: id, MessageID: "nope"})
	var be *bridge.Error
	if !errors.As(err, &be) || be.Code != "not_found" {
		t.Fatalf("unknown message: %v", err)
	}
}
