package bridge_test

import (
	"bytes"
	"encoding/base64"
	"testing"

	"github.com/maildesk/maildesk/bridge/odoo"
)

// A customer forwards a supplier's mail "as attachment": Exchange keeps it
// as an itemAttachment (no bytes in the attachment list). In log mode the
// ingest item must carry it as a message/rfc822 attachment named
// "<subject>.eml", next to the ordinary file attachment.
func TestLogModeKeepsForwardedMailAsEML(t *testing.T) {
	r := newRig(t, rigOpts{})
	upn := "anna@" + r.sim.Domain()
	inner := "From: =?utf-8?q?J=C3=BCrgen?= <juergen@supplier.example>\r\n" +
		"To: carl@customer.example\r\n" +
		"Subject: =?utf-8?q?Rechnung_4711_f=C3=BCr_M=C3=B6bel?=\r\n" +
		"Message-ID: <inner-1@supplier.example>\r\n" +
		"Content-Type: text/plain; charset=utf-8\r\n\r\nAnbei die Rechnung.\r\n"
	raw := "From: Carl <carl@customer.example>\r\nTo: " + upn + "\r\nSubject: FW: Rechnung\r\n" +
		"Message-ID: <fw-1@customer.example>\r\nMIME-Version: 1.0\r\n" +
		"Content-Type: multipart/mixed; boundary=\"OUT\"\r\n\r\n" +
		"--OUT\r\nContent-Type: text/html; charset=utf-8\r\n\r\n<p>See below.</p>\r\n" +
		"--OUT\r\nContent-Type: application/pdf; name=\"spec.pdf\"\r\nContent-Disposition: attachment; filename=\"spec.pdf\"\r\n" +
		"Content-Transfer-Encoding: base64\r\n\r\nJVBERi0xLjQK\r\n" +
		"--OUT\r\nContent-Type: message/rfc822\r\nContent-Disposition: attachment\r\n\r\n" + inner + "--OUT--\r\n"
	r.sim.AddUser(upn, "Anna")
	gid, err := r.sim.DeliverMIME(upn, "inbox", []byte(raw))
	if err != nil {
		t.Fatal(err)
	}
	id := r.mailbox(upn, odoo.ModeLog, 0)
	r.syncUntilDone(id, 0)
	it, ok := r.outbox(id)[gid]
	if !ok {
		t.Fatalf("the forward never reached the outbox")
	}
	var eml, pdf *odoo.Attachment
	for i := range it.Attachments {
		switch a := &it.Attachments[i]; a.ContentType {
		case "message/rfc822":
			eml = a
		case "application/pdf":
			pdf = a
		}
	}
	if eml == nil || pdf == nil {
		t.Fatalf("attachments %+v: want the PDF and the forwarded mail", it.Attachments)
	}
	if eml.Name != "Rechnung 4711 für Möbel.eml" || eml.IsInline {
		t.Fatalf("forwarded mail named %q (inline %v)", eml.Name, eml.IsInline)
	}
	data, err := base64.StdEncoding.DecodeString(eml.DataBase64)
	if err != nil || !bytes.Contains(data, []byte("Message-ID: <inner-1@supplier.example>")) {
		t.Fatalf("forwarded mail bytes %q (%v)", data, err)
	}
}
