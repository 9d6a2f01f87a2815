package graphsync_test

import (
	"bytes"
	"context"
	"strings"
	"testing"

	"github.com/maildesk/maildesk/graphsync"
	"github.com/maildesk/maildesk/graphsync/m365sim"
)

// An Outlook "forward as attachment": the supplier's mail rides as a
// message/rfc822 part, which Exchange stores as an itemAttachment.
const innerMail = "From: =?utf-8?q?J=C3=BCrgen?= <juergen@supplier.example>\r\n" +
	"To: carl@customer.example\r\n" +
	"Subject: =?utf-8?q?Rechnung_4711_f=C3=BCr_M=C3=B6bel?=\r\n" +
	"Message-ID: <inner-1@supplier.example>\r\n" +
	"Date: Fri, 30 Oct 2026 08:00:00 +0000\r\n" +
	"MIME-Version: 1.0\r\n" +
	"Content-Type: text/plain; charset=utf-8\r\n\r\n" +
	"Anbei die Rechnung.\r\n"

func forwardWithItem(subject string) []byte {
	return []byte("From: Carl <carl@customer.example>\r\n" +
		"To: anna@contoso.example\r\n" +
		"Subject: " + subject + "\r\n" +
		"MIME-Version: 1.0\r\n" +
		"Content-Type: multipart/mixed; boundary=\"OUT\"\r\n\r\n" +
		"--OUT\r\nContent-Type: text/html; charset=utf-8\r\n\r\n<p>See the mail below.</p>\r\n" +
		"--OUT\r\nContent-Type: application/pdf; name=\"spec.pdf\"\r\nContent-Disposition: attachment; filename=\"spec.pdf\"\r\n" +
		"Content-Transfer-Encoding: base64\r\n\r\nJVBERi0xLjQK\r\n" +
		"--OUT\r\nContent-Type: message/rfc822\r\nContent-Disposition: attachment\r\n\r\n" + innerMail +
		"--OUT--\r\n")
}

// TestItemAttachmentsComeAsEML: forwarded e-mails attached to a message
// (Graph itemAttachment, no contentBytes) are fetched as MIME through
// .../attachments/{id}/$value and become message/rfc822 attachments named
// "<subject>.eml" — through graphsync's msgraph-sdk-go request adapter
// against the simulator, in $batch as the sync does and one by one as the
// inbox does.
func TestItemAttachmentsComeAsEML(t *testing.T) {
	sim := newSim(t, m365sim.Options{Seed: 3, TimeScale: 100})
	upn := "anna@" + sim.Domain()
	sim.GenerateMailbox(upn, 3, m365sim.GenOptions{NoSamples: true})
	toks := newSimTokens(sim)
	toks.add("mbx_a", upn)
	c := newClient(t, sim, toks, 100)
	m, err := c.Mailbox("mbx_a", upn)
	if err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	var msgs []*graphsync.Message
	for i := 0; i < 23; i++ { // more than one $batch of item downloads
		id, err := sim.DeliverMIME(upn, "inbox", forwardWithItem("FW: Rechnung "+strings.Repeat("x", i)))
		if err != nil {
			t.Fatal(err)
		}
		msg, err := m.GetMessage(ctx, id)
		if err != nil {
			t.Fatal(err)
		}
		msg.Full = true
		if !msg.NeedsAttachments() {
			t.Fatalf("message %s: hasAttachments is false", id)
		}
		msgs = append(msgs, msg)
	}
	before := sim.Stats(upn)
	if err := m.FetchAttachments(ctx, msgs, 2); err != nil {
		t.Fatal(err)
	}
	after := sim.Stats(upn)
	for _, msg := range msgs {
		var pdf, eml *graphsync.Attachment
		for i := range msg.Attachments {
			switch a := &msg.Attachments[i]; a.Kind {
			case "file":
				pdf = a
			case "item":
				eml = a
			}
		}
		if pdf == nil || eml == nil || len(msg.Attachments) != 2 {
			t.Fatalf("message %s: attachments %+v, want the PDF and the attached e-mail", msg.ID, msg.Attachments)
		}
		if eml.Name != "Rechnung 4711 für Möbel.eml" || eml.ContentType != "message/rfc822" {
			t.Fatalf("attached e-mail named %q, type %q", eml.Name, eml.ContentType)
		}
		if !bytes.Contains(eml.Data, []byte("Message-ID: <inner-1@supplier.example>")) ||
			!bytes.Contains(eml.Data, []byte("Anbei die Rechnung.")) || eml.Size != int64(len(eml.Data)) {
			t.Fatalf("attached e-mail bytes: %q", eml.Data)
		}
		if string(pdf.Data) != "%PDF-1.4\n" {
			t.Fatalf("file attachment bytes: %q", pdf.Data)
		}
	}
	// 23 attachment lists (2 envelopes) + 23 item downloads (2 envelopes).
	if got := after.Batches - before.Batches; got != 4 {
		t.Fatalf("%d $batch envelopes, want 4", got)
	}

	// One by one (the inbox's download of an attachment).
	list, err := m.ListAttachments(ctx, msgs[0].ID, false)
	if err != nil {
		t.Fatal(err)
	}
	var itemID string
	for _, a := range list {
		if a.Kind == "item" {
			itemID = a.ID
		}
	}
	if itemID == "" {
		t.Fatalf("list shows no item attachment: %+v", list)
	}
	a, err := m.GetAttachment(ctx, msgs[0].ID, itemID)
	if err != nil {
		t.Fatal(err)
	}
	if a.Name != "Rechnung 4711 für Möbel.eml" || a.ContentType != "message/rfc822" || !bytes.Contains(a.Data, []byte("<inner-1@supplier.example>")) {
		t.Fatalf("GetAttachment: %q %q %q", a.Name, a.ContentType, a.Data)
	}
}

func TestEMLName(t *testing.T) {
	for in, want := range map[string]string{
		"Rechnung 4711":                   "Rechnung 4711.eml",
		"Re: a/b\\c: *what?* <x> | \"y\"": "Re a b c what x y.eml",
		"  ":                              "Forwarded message.eml",
		"already.eml":                     "already.eml",
		"line\r\nbreak\t.":                "line break.eml",
		strings.Repeat("é", 200):          strings.Repeat("é", 120) + ".eml",
	} {
		if got := graphsync.EMLName(in); got != want {
			t.Errorf("EMLName(%q) = %q, want %q", in, got, want)
		}
	}
}
