package odoosim

import (
	"encoding/base64"
	"testing"

	"github.com/maildesk/maildesk/bridge/odoo"
)

// Private and confidential mail is answered excluded with the reason, raw
// MIME items too; a targeted item (Log to record) of the same mail posts.
func TestIngestExcludesPrivateMail(t *testing.T) {
	r := newRig(t, 18)
	ada := r.s.AddPartner("Ada", "ada@example.com")
	before := len(r.s.MessagesOn("res.partner", ada))
	priv := item("g1", "<p1@ex>", "ada@example.com", "private")
	priv.Sensitivity = "private"
	conf := odoo.IngestItem{GraphID: "g2", Mailbox: "mbx_1", Folder: "inbox", Direction: "in", InternetMessageID: "<p2@ex>",
		ReceivedAt: "2026-11-02T09:14:03Z", Sensitivity: "confidential", Options: odoo.IngestOptions{Mode: odoo.ModeGateway},
		MIMEBase64: base64.StdEncoding.EncodeToString([]byte("From: ada@example.com\r\nSubject: c\r\nMessage-ID: <p2@ex>\r\nSensitivity: Company-Confidential\r\n\r\nx\r\n"))}
	pers := item("g3", "<p3@ex>", "ada@example.com", "personal")
	pers.Sensitivity = "personal"
	res := r.ingest(priv, conf, pers)
	for i, want := range []string{odoo.StatusExcluded, odoo.StatusExcluded, odoo.StatusPosted} {
		if res[i].Status != want {
			t.Fatalf("item %d: %+v, want %s", i, res[i], want)
		}
	}
	if res[0].Error != "not logged: private (Outlook sensitivity)" || len(res[0].Records) != 0 || len(res[0].OdooMessageIDs) != 0 {
		t.Fatalf("excluded answer: %+v", res[0])
	}
	if n := len(r.s.MessagesOn("res.partner", ada)) - before; n != 1 {
		t.Fatalf("%d messages on the partner, want the personal one only", n)
	}
	priv.Target = &odoo.Target{Model: "res.partner", ResID: ada}
	if res = r.ingest(priv); res[0].Status != odoo.StatusPosted {
		t.Fatalf("log to record of private mail: %+v", res[0])
	}
}
