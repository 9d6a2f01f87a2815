package odoosim

import (
	"context"
	"encoding/base64"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/maildesk/maildesk/bridge/odoo"
)

type rig struct {
	t   *testing.T
	s   *Server
	c   *odoo.Client
	mbx int64
}

func newRig(t *testing.T, version int) *rig {
	t.Helper()
	s := New(Options{Version: version, DB: "md"})
	if err := s.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(s.Close)
	c, err := odoo.New(odoo.Config{URL: s.URL(), DB: s.DB(), Login: s.TechLogin(), APIKey: s.APIKey(), Timeout: 10 * time.Second})
	if err != nil {
		t.Fatal(err)
	}
	return &rig{t: t, s: s, c: c, mbx: s.CreateMailbox("mbx_1", "me@corp.example")}
}

func (r *rig) ingest(items ...odoo.IngestItem) []odoo.IngestResult {
	r.t.Helper()
	res, err := r.c.Ingest(context.Background(), r.mbx, items)
	if err != nil {
		r.t.Fatalf("ingest: %v", err)
	}
	return res
}

func item(graphID, msgID, fromEmail, subject string) odoo.IngestItem {
	return odoo.IngestItem{GraphID: graphID, Mailbox: "mbx_1", Folder: "inbox", Direction: "in", InternetMessageID: msgID,
		ReceivedAt: "2026-11-02T09:14:03Z", Subject: subject, From: &odoo.Address{Name: "Sender", Email: fromEmail},
		To: []odoo.Address{{Email: "me@corp.example"}}, Headers: map[string]string{"message-id": msgID},
		BodyHTML: "<p>" + subject + "</p>", Options: odoo.IngestOptions{Mode: odoo.ModeLog}}
}

func reply(graphID, msgID, fromEmail, subject, inReplyTo, refs string) odoo.IngestItem {
	it := item(graphID, msgID, fromEmail, subject)
	if inReplyTo != "" {
		it.Headers["in-reply-to"] = inReplyTo
	}
	if refs != "" {
		it.Headers["references"] = refs
	}
	return it
}

func ref(model string, id int64) odoo.RecordRef { return odoo.RecordRef{Model: model, ID: id} }

func TestIngestRules(t *testing.T) {
	for _, v := range []int{17, 18, 19} {
		t.Run(fmt.Sprint(v), func(t *testing.T) { testIngestRules(t, v) })
	}
}

func testIngestRules(t *testing.T, version int) {
	r := newRig(t, version)
	ada := r.s.AddPartner("Ada Lovelace", "Ada Lovelace <ADA@Example.com>")
	bob := r.s.AddPartner("Bob", "bob@example.com")

	// new mail from a known sender lands on the sender's partner (normalised e-mail)
	res := r.ingest(item("g1", "<m1@ex>", "ada@example.com", "Hello"))
	if res[0].Status != odoo.StatusPosted || len(res[0].Records) != 1 || res[0].Records[0] != ref("res.partner", ada) || len(res[0].OdooMessageIDs) != 1 {
		t.Fatalf("new mail: %+v", res[0])
	}
	msgs := r.s.MessagesOn("res.partner", ada)
	last := msgs[len(msgs)-1]
	if last.MessageID != "<m1@ex>" || last.GraphID != "g1" || last.Subject != "Hello" || last.AuthorID != ada || last.Date != "2026-11-02 09:14:03" {
		t.Errorf("posted message = %+v", last)
	}

	// duplicates: same item, same Message-Id with another graph id, same graph id with another Message-Id
	for _, it := range []odoo.IngestItem{item("g1", "<m1@ex>", "ada@example.com", "Hello"),
		item("g1-other", "<m1@ex>", "ada@example.com", "Hello"), item("g1", "<other@ex>", "ada@example.com", "Hello")} {
		res = r.ingest(it)
		if res[0].Status != odoo.StatusDuplicate || len(res[0].OdooMessageIDs) != 1 || res[0].Records[0] != ref("res.partner", ada) {
			t.Errorf("duplicate %s/%s: %+v", it.GraphID, it.InternetMessageID, res[0])
		}
	}

	// a reply from someone else (unknown) goes on the thread's record by In-Reply-To, and by References
	res = r.ingest(reply("g2", "<m2@ex>", "stranger@else.example", "Re: Hello", "<m1@ex>", ""),
		reply("g3", "<m3@ex>", "bob@example.com", "changed subject", "", "<zzz@nowhere> <m2@ex>"))
	for i, x := range res {
		if x.Status != odoo.StatusPosted || x.Records[0] != ref("res.partner", ada) {
			t.Errorf("reply %d: %+v", i, x)
		}
	}

	// unknown sender: unrouted; with create_contacts a partner is created
	res = r.ingest(item("g4", "<m4@ex>", "new@else.example", "Who?"))
	if res[0].Status != odoo.StatusUnrouted || len(res[0].Records) != 0 {
		t.Errorf("unknown sender: %+v", res[0])
	}
	it := item("g5", "<m5@ex>", "carol@else.example", "Hi")
	it.From.Name = "Carol"
	it.Options.CreateContacts = true
	res = r.ingest(it)
	carol := r.s.PartnerByEmail("carol@else.example")
	if res[0].Status != odoo.StatusPosted || carol == 0 || res[0].Records[0] != ref("res.partner", carol) {
		t.Errorf("create contact: %+v (partner %d)", res[0], carol)
	}

	// sent mail: on the recipients' partners, and a done "Email – Outbox" activity for the main user
	main := r.s.AddUser("Main User", "main", "main@corp.example")
	out := odoo.IngestItem{GraphID: "g6", Mailbox: "mbx_1", Folder: "sentitems", Direction: "out", InternetMessageID: "<m6@corp>",
		ReceivedAt: "2026-11-03T10:00:00Z", Subject: "Offer", From: &odoo.Address{Email: "me@corp.example"},
		To: []odoo.Address{{Email: "bob@example.com"}}, Cc: []odoo.Address{{Email: "ada@example.com"}, {Email: "me@corp.example"}},
		BodyHTML: "<p>offer</p>", Options: odoo.IngestOptions{Mode: odoo.ModeLog, LogSentAsActivity: true, MainUserID: main}}
	res = r.ingest(out)
	if res[0].Status != odoo.StatusPosted || len(res[0].Records) != 2 || res[0].Records[0] != ref("res.partner", bob) ||
		res[0].Records[1] != ref("res.partner", ada) || res[0].ActivityID == 0 {
		t.Fatalf("sent mail: %+v", res[0])
	}
	var act *Activity
	for _, a := range r.s.Activities() {
		if a.ID == int64(res[0].ActivityID) {
			a := a
			act = &a
		}
	}
	if act == nil || act.TypeName != OutboxActivityType || !act.Done || act.UserID != main || act.ResModel != "res.partner" || act.ResID != bob || act.Summary != "Offer" {
		t.Errorf("activity = %+v", act)
	}
	// sent through MailDesk: Odoo has it, no activity
	out2 := out
	out2.GraphID, out2.InternetMessageID = "g7", "<m7@corp>"
	out2.Options.SentByMailDesk = true
	res = r.ingest(out2)
	if res[0].Status != odoo.StatusPosted || res[0].ActivityID != 0 {
		t.Errorf("sent by maildesk: %+v", res[0])
	}

	// bob answers the mail sent to bob and ada: it goes on bob's contact, not ada's
	res = r.ingest(reply("g6r", "<m6r@ex>", "bob@example.com", "Re: Offer", "<m6@corp>", "<m6@corp>"))
	if res[0].Status != odoo.StatusPosted || len(res[0].Records) != 1 || res[0].Records[0] != ref("res.partner", bob) {
		t.Errorf("reply to a mail logged on two contacts: %+v", res[0])
	}
	// a Message-Id without angle brackets is the same Message-Id
	res = r.ingest(item("g1-bare", "m1@ex", "ada@example.com", "Hello"))
	if res[0].Status != odoo.StatusDuplicate {
		t.Errorf("bare Message-Id: %+v", res[0])
	}

	// target: log on a chosen record
	tgt := item("g8", "<m8@ex>", "nobody@else.example", "Filed")
	tgt.Target = &odoo.Target{Model: "res.partner", ResID: bob}
	res = r.ingest(tgt)
	if res[0].Status != odoo.StatusPosted || res[0].Records[0] != ref("res.partner", bob) {
		t.Errorf("target: %+v", res[0])
	}

	// one bad item never fails the batch
	bad1 := item("", "<b1@ex>", "ada@example.com", "no graph id")
	bad2 := item("g9", "<b2@ex>", "ada@example.com", "bad mime")
	bad2.MIMEBase64 = "!!!not base64"
	bad3 := item("g10", "<b3@ex>", "ada@example.com", "bad direction")
	bad3.Direction = "sideways"
	res = r.ingest(bad1, item("g11", "<m11@ex>", "ada@example.com", "fine"), bad2, bad3)
	if len(res) != 4 || res[0].Status != odoo.StatusError || res[1].Status != odoo.StatusPosted ||
		res[2].Status != odoo.StatusError || res[3].Status != odoo.StatusError || res[2].Error == "" {
		t.Errorf("bad items: %+v", res)
	}
	st := r.s.IngestCalls()
	if st.Calls != 13 || st.Items != 17 {
		t.Errorf("ingest stats = %+v", st)
	}
}

func TestIngestGateway(t *testing.T) {
	r := newRig(t, 18)
	opts := odoo.IngestOptions{Mode: odoo.ModeGateway, GatewayModel: "crm.lead"}
	first := item("g1", "<q1@ex>", "prospect@else.example", "Quote please")
	first.Options = opts
	res := r.ingest(first)
	if res[0].Status != odoo.StatusPosted || res[0].Records[0].Model != "crm.lead" {
		t.Fatalf("gateway new: %+v", res[0])
	}
	lead := res[0].Records[0].ID
	leads := r.s.Records("crm.lead")
	if len(leads) != 1 || leads[0]["name"] != "Quote please" {
		t.Errorf("leads = %v", leads)
	}
	rep := reply("g2", "<q2@ex>", "prospect@else.example", "Re: Quote please", "<q1@ex>", "<q1@ex>")
	rep.Options = opts
	second := item("g3", "<q3@ex>", "other@else.example", "Another")
	second.Options = opts
	res = r.ingest(rep, second)
	if res[0].Records[0] != ref("crm.lead", lead) {
		t.Errorf("gateway reply: %+v", res[0])
	}
	if res[1].Records[0].Model != "crm.lead" || res[1].Records[0].ID == lead {
		t.Errorf("gateway second conversation: %+v", res[1])
	}
	if n := len(r.s.MessagesOn("crm.lead", lead)); n != 2 {
		t.Errorf("messages on lead = %d, want 2", n)
	}
	bad := item("g4", "<q4@ex>", "x@else.example", "x")
	bad.Options = odoo.IngestOptions{Mode: odoo.ModeGateway, GatewayModel: "helpdesk.ticket"}
	if res := r.ingest(bad); res[0].Status != odoo.StatusError {
		t.Errorf("unknown gateway model: %+v", res[0])
	}
}

func TestIngestMIME(t *testing.T) {
	r := newRig(t, 19)
	ada := r.s.AddPartner("Ada", "ada@example.com")
	// an 8-bit KOI8-R body and an attachment: the reason MIME travels base64-encoded
	koi8 := []byte{0xf0, 0xd2, 0xc9, 0xd7, 0xc5, 0xd4} // "Привет" in KOI8-R
	raw := "From: Ada <ada@example.com>\r\nTo: me@corp.example\r\nSubject: =?utf-8?q?Gr=C3=BC=C3=9Fe?=\r\n" +
		"Message-ID: <mime1@ex>\r\nMIME-Version: 1.0\r\nContent-Type: multipart/mixed; boundary=XX\r\n\r\n" +
		"--XX\r\nContent-Type: text/plain; charset=koi8-r\r\nContent-Transfer-Encoding: 8bit\r\n\r\n" + string(koi8) + "\r\n" +
		"--XX\r\nContent-Type: application/pdf; name=a.pdf\r\nContent-Disposition: attachment; filename=a.pdf\r\nContent-Transfer-Encoding: base64\r\n\r\n" +
		base64.StdEncoding.EncodeToString([]byte("%PDF-1.4 fake")) + "\r\n--XX--\r\n"
	it := odoo.IngestItem{GraphID: "gm1", Mailbox: "mbx_1", Folder: "inbox", Direction: "in", ReceivedAt: "2026-11-02T09:14:03Z",
		MIMEBase64: base64.StdEncoding.EncodeToString([]byte(raw)), Options: odoo.IngestOptions{Mode: odoo.ModeLog}}
	res := r.ingest(it)
	if res[0].Status != odoo.StatusPosted || res[0].Records[0] != ref("res.partner", ada) {
		t.Fatalf("mime: %+v", res[0])
	}
	msgs := r.s.MessagesOn("res.partner", ada)
	m := msgs[len(msgs)-1]
	if m.Subject != "Grüße" || !strings.Contains(m.Body, "Привет") || m.MessageID != "<mime1@ex>" || len(m.AttachmentIDs) != 1 {
		t.Errorf("parsed message = %+v", m)
	}
	// Message-Id from the MIME headers makes the same mail a duplicate under another graph id
	it.GraphID = "gm2"
	if res := r.ingest(it); res[0].Status != odoo.StatusDuplicate {
		t.Errorf("mime duplicate: %+v", res[0])
	}
}

func TestNotify(t *testing.T) {
	r := newRig(t, 18)
	if err := r.c.Notify(context.Background(), r.mbx, []odoo.Notice{{Kind: "reauth_required", Mailbox: "mbx_1", Email: "me@corp.example",
		Extra: map[string]any{"since": "2026-11-02T09:00:00Z"}}}); err != nil {
		t.Fatal(err)
	}
	n := r.s.Notices()
	if len(n) != 1 || n[0]["kind"] != "reauth_required" || n[0]["since"] != "2026-11-02T09:00:00Z" || n[0]["odoo_mailbox_id"] != r.mbx {
		t.Errorf("notices = %v", n)
	}
	if err := r.c.Notify(context.Background(), 999, nil); odoo.KindOf(err) != odoo.KindMissing {
		t.Errorf("notify unknown mailbox: %v", err)
	}
}

// TestPartnerEmailChange: the partner match follows writes to res.partner.email.
func TestPartnerEmailChange(t *testing.T) {
	r := newRig(t, 18)
	bob := r.s.AddPartner("Bob", "bob@old.example")
	if res := r.ingest(item("g1", "<e1@ex>", "bob@old.example", "one")); res[0].Records[0] != ref("res.partner", bob) {
		t.Fatalf("old address: %+v", res[0])
	}
	if err := r.c.Call(context.Background(), "res.partner", "write", []int64{bob}, map[string]any{"vals": map[string]any{"email": "Bob <BOB@new.example>"}}, nil); err != nil {
		t.Fatal(err)
	}
	res := r.ingest(item("g2", "<e2@ex>", "bob@new.example", "two"), item("g3", "<e3@ex>", "bob@old.example", "three"))
	if res[0].Status != odoo.StatusPosted || res[0].Records[0] != ref("res.partner", bob) || res[1].Status != odoo.StatusUnrouted {
		t.Errorf("after email change: %+v", res)
	}
}
