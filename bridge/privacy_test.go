package bridge_test

import (
	"context"
	"encoding/base64"
	"encoding/json"
	"strings"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/rs/zerolog"

	"github.com/maildesk/maildesk/bridge"
	"github.com/maildesk/maildesk/bridge/odoo"
	"github.com/maildesk/maildesk/bridge/odoosim"
	"github.com/maildesk/maildesk/graphsync/m365sim"
	"github.com/maildesk/maildesk/store"
)

// odooEnv is a sendEnv paired with a simulated Odoo 18, and anna's
// connected mailbox linked to its Odoo record there.
func odooEnv(t *testing.T) (*sendEnv, *odoosim.Server, store.Mailbox) {
	e := newSendEnv(t)
	osim := odoosim.New(odoosim.Options{Version: 18})
	if err := osim.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(osim.Close)
	set := store.DefaultSettings()
	set.Odoo = store.OdooSettings{URL: osim.URL(), DB: osim.DB(), Login: osim.TechLogin(), APIKey: osim.APIKey(), Protocol: "jsonrpc"}
	if err := e.st.SaveSettings(set); err != nil {
		t.Fatal(err)
	}
	m := e.mailbox("anna@contoso.com", "personal", "anna@contoso.com", 0)
	oid := osim.CreateMailbox(m.ID, m.Email)
	m, err := bridge.SetConfig(e.st, m.ID, func(mb *store.MailboxConfig) { mb.OdooID = oid; mb.BackfillDays = 30 })
	if err != nil {
		t.Fatal(err)
	}
	return e, osim, m
}

func deliver(t *testing.T, e *sendEnv, to, folder, headers string) string {
	t.Helper()
	id, err := e.sim.DeliverMIME(to, folder, []byte(headers+"Content-Type: text/plain; charset=utf-8\r\n\r\nhello\r\n"))
	if err != nil {
		t.Fatal(err)
	}
	return id
}

// Sensitivity and threading ride from the delta page onto the index and every
// ingest item; Odoo's "excluded" answer is done (not retried), counted and
// shown with its reason; Log to record of the excluded mail still lands.
func TestExcludedPrivateMailAndLogToRecord(t *testing.T) {
	e, osim, m := odooEnv(t)
	reg := prometheus.NewRegistry()
	carl := osim.AddPartner("Carl", "carl@customer.example")
	normal := deliver(t, e, m.Email, "inbox", "From: Carl <carl@customer.example>\r\nTo: "+m.Email+"\r\nSubject: offer\r\nMessage-Id: <n1@customer.example>\r\n")
	private := deliver(t, e, m.Email, "inbox", "From: Carl <carl@customer.example>\r\nTo: "+m.Email+"\r\nSubject: my health\r\nMessage-Id: <p1@customer.example>\r\n"+
		"In-Reply-To: <n1@customer.example>\r\nReferences: <r0@customer.example> <n1@customer.example>\r\nSensitivity: Private\r\n")
	e.sync(m.ID)

	items := map[string]odoo.IngestItem{}
	due, _ := e.st.DueOutbox(time.Now().Add(time.Hour), 100, 0, nil)
	for _, it := range due {
		var ii odoo.IngestItem
		if err := json.Unmarshal(it.Payload, &ii); err != nil {
			t.Fatal(err)
		}
		items[it.GraphID] = ii
	}
	if items[normal].Sensitivity != "normal" || items[private].Sensitivity != "private" {
		t.Fatalf("item sensitivity: normal %q, private %q", items[normal].Sensitivity, items[private].Sensitivity)
	}
	idx, _ := e.st.Message(m.ID, private)
	if idx.Sensitivity != "private" || idx.InReplyTo != "<n1@customer.example>" || strings.Join(idx.References, " ") != "<r0@customer.example> <n1@customer.example>" {
		t.Fatalf("index entry %+v", idx)
	}

	p := bridge.NewPusher(bridge.PusherConfig{Store: e.st, Log: zerolog.Nop(), Registry: reg, RetryBase: time.Millisecond, RetryMax: 5 * time.Millisecond})
	if n, err := p.DeliverOnce(context.Background()); err != nil || n != 2 {
		t.Fatalf("deliver: %d %v", n, err)
	}
	if st, _ := e.st.OutboxStats(); st[m.ID].Items != 0 {
		t.Fatalf("%d items left in the outbox: excluded must be done", st[m.ID].Items)
	}
	idx, _ = e.st.Message(m.ID, private)
	if idx.Delivery != store.DeliveryExcluded || idx.DeliveryError != "not logged: private (Outlook sensitivity)" {
		t.Fatalf("excluded index entry: %q %q", idx.Delivery, idx.DeliveryError)
	}
	mb, _ := e.st.Mailbox(m.ID)
	if mb.Counts.Excluded != 1 || mb.Counts.Delivered != 1 || mb.Delivery.Delayed {
		t.Fatalf("counts %+v delivery %+v", mb.Counts, mb.Delivery)
	}
	if got := pushItems(t, reg, "excluded"); got != 1 {
		t.Fatalf("maildesk_push_items_total{status=excluded} = %v", got)
	}
	msgs := bridge.NewMessages(e.st, bridge.NewMailboxes(e.st, zerolog.Nop()), e.graph, 1<<20)
	list, err := msgs.MessageList(anna, bridge.MessageListParams{MailboxID: m.ID})
	if err != nil {
		t.Fatal(err)
	}
	shown := map[string]bridge.MessageSummary{}
	for _, s := range list.Messages {
		shown[s.ID] = s
	}
	if s := shown[private]; s.Delivery != "excluded" || s.DeliveryError == "" || s.Sensitivity != "private" {
		t.Fatalf("message.list shows %+v", s)
	}
	if s := shown[normal]; s.Delivery != "posted" || s.DeliveryError != "" {
		t.Fatalf("message.list shows %+v", s)
	}
	if n, _ := p.DeliverOnce(context.Background()); n != 0 {
		t.Fatalf("excluded item retried: %d", n)
	}

	// The owner logs the private mail to Carl after all.
	if _, err := e.actions.LogToRecord(context.Background(), anna, bridge.LogParams{MailboxID: m.ID, MessageID: private, Model: "res.partner", ResID: carl}); err != nil {
		t.Fatal(err)
	}
	if n, err := p.DeliverOnce(context.Background()); err != nil || n != 1 {
		t.Fatalf("deliver log to record: %d %v", n, err)
	}
	var on []string
	for _, msg := range osim.MessagesOn("res.partner", carl) {
		if msg.GraphID != "" {
			on = append(on, msg.MessageID)
		}
	}
	if strings.Join(on, " ") != "<n1@customer.example> <p1@customer.example>" {
		t.Fatalf("mail on Carl: %v", on)
	}
	idx, _ = e.st.Message(m.ID, private)
	if idx.Delivery != store.DeliveryPosted || idx.DeliveryError != "" || len(idx.OdooRefs) != 1 {
		t.Fatalf("after log to record: %+v", idx)
	}
}

// pushItems reads maildesk_push_items_total{status} from reg.
func pushItems(t *testing.T, reg *prometheus.Registry, status string) float64 {
	t.Helper()
	mfs, err := reg.Gather()
	if err != nil {
		t.Fatal(err)
	}
	v := 0.0
	for _, mf := range mfs {
		if mf.GetName() != "maildesk_push_items_total" {
			continue
		}
		for _, mt := range mf.GetMetric() {
			for _, l := range mt.GetLabel() {
				if l.GetName() == "status" && l.GetValue() == status {
					v = mt.GetCounter().GetValue()
				}
			}
		}
	}
	return v
}

// Raw-MIME (gateway) items carry sensitivity too.
func TestGatewayItemsCarrySensitivity(t *testing.T) {
	r := newRig(t, rigOpts{})
	upn := "support@" + r.sim.Domain()
	r.sim.GenerateMailbox(upn, 20, m365sim.GenOptions{AttachmentRate: -1, NoSamples: true})
	conf := r.sim.Messages(upn, "inbox")[0].ID
	r.sim.SetSensitivity(upn, conf, "confidential")
	id := r.mailbox(upn, odoo.ModeGateway, 0)
	r.syncUntilDone(id, 0)
	for gid, it := range r.outbox(id) {
		want := "normal"
		if gid == conf {
			want = "confidential"
		}
		if it.MIMEBase64 == "" || it.Sensitivity != want {
			t.Fatalf("item %s: sensitivity %q (want %q), mime %d bytes", gid, it.Sensitivity, want, len(it.MIMEBase64))
		}
		if raw, _ := base64.StdEncoding.DecodeString(it.MIMEBase64); gid == conf && !strings.Contains(string(raw), "Sensitivity: Company-Confidential") {
			t.Fatal("the MIME lacks the Sensitivity header")
		}
	}
}

// mailbox.preview_items: the indexed mail of the window, newest first, each
// the envelope of the item the pusher sends for it (no body, MIME or
// attachments), with no Graph request; the message.list guard applies.
func TestPreviewItemsMatchWhatThePusherSends(t *testing.T) {
	e, _, m := odooEnv(t)
	old := time.Now().Add(-40 * 24 * time.Hour)
	e.sim.GenerateMailbox(m.Email, 12, m365sim.GenOptions{NoSamples: true, AttachmentRate: 1, MaxAttachment: 4 << 10, Start: old.Add(-time.Hour), End: old})
	e.sim.GenerateMailbox(m.Email, 30, m365sim.GenOptions{NoSamples: true, AttachmentRate: 0.5, MaxAttachment: 4 << 10, PrivateRate: 0.2,
		Start: time.Now().Add(-10 * 24 * time.Hour), End: time.Now().Add(-time.Hour)})
	if _, err := bridge.SetConfig(e.st, m.ID, func(mb *store.MailboxConfig) { mb.BackfillDays = 0 }); err != nil {
		t.Fatal(err)
	}
	e.sync(m.ID)
	due, _ := e.st.DueOutbox(time.Now().Add(time.Hour), 1000, 0, nil)
	pushed := map[string]odoo.IngestItem{}
	mb, _ := e.st.Mailbox(m.ID)
	for _, it := range due {
		var ii odoo.IngestItem
		if err := json.Unmarshal(it.Payload, &ii); err != nil {
			t.Fatal(err)
		}
		pushed[it.GraphID] = ii
	}
	msgs := bridge.NewMessages(e.st, bridge.NewMailboxes(e.st, zerolog.Nop()), e.graph, 1<<20)
	before := e.rt.count()
	res, err := msgs.PreviewItems(anna, bridge.PreviewParams{MailboxID: m.ID, Days: 30})
	if err != nil {
		t.Fatal(err)
	}
	if n := e.rt.count() - before; n != 0 {
		t.Fatalf("the preview made %d Graph requests", n)
	}
	if res.Total != 30 || len(res.Items) != 30 || res.Truncated {
		t.Fatalf("preview of 30 days: %d items of %d (truncated %v), want the 30 recent ones", len(res.Items), res.Total, res.Truncated)
	}
	private := 0
	for i, it := range res.Items {
		if i > 0 && it.ReceivedAt > res.Items[i-1].ReceivedAt {
			t.Fatalf("not newest first at %d", i)
		}
		if it.BodyHTML != "" || it.MIMEBase64 != "" || len(it.Attachments) != 0 {
			t.Fatalf("preview item %s carries content", it.GraphID)
		}
		if it.Sensitivity == "private" {
			private++
		}
		want, ok := pushed[it.GraphID]
		if !ok {
			t.Fatalf("preview item %s was never queued", it.GraphID)
		}
		want.Options = it.Options // the pusher sets the mailbox's options at push time
		want.BodyHTML, want.Attachments = "", nil
		for k := range want.Headers {
			if k != "message-id" && k != "in-reply-to" && k != "references" {
				delete(want.Headers, k)
			}
		}
		a, _ := json.Marshal(it)
		b, _ := json.Marshal(want)
		if string(a) != string(b) {
			t.Fatalf("preview item differs from the pushed one:\npreview %s\npushed  %s", a, b)
		}
		if it.Options.Mode != mb.Mode || it.Options.MainUserID != mb.MainUserID {
			t.Fatalf("options %+v", it.Options)
		}
	}
	if private == 0 {
		t.Fatal("no private mail in the preview")
	}
	// Default window: backfill_days 0 (all mail) previews 3650 days; limit truncates.
	all, err := msgs.PreviewItems(anna, bridge.PreviewParams{MailboxID: m.ID, Limit: 5})
	if err != nil || all.Total != 42 || len(all.Items) != 5 || !all.Truncated || all.Items[0].GraphID != res.Items[0].GraphID {
		t.Fatalf("default window: %d of %d, truncated %v, %v", len(all.Items), all.Total, all.Truncated, err)
	}
	for _, bad := range []bridge.PreviewParams{{MailboxID: m.ID, Days: 3651}, {MailboxID: m.ID, Days: -1}, {MailboxID: m.ID, Limit: 5001}} {
		if _, err := msgs.PreviewItems(anna, bad); bridge.AsError(err).Code == "" || err == nil {
			t.Fatalf("%+v accepted", bad)
		}
	}
	if _, err := msgs.PreviewItems(bridge.Actor{UID: 99}, bridge.PreviewParams{MailboxID: m.ID}); bridge.AsError(err).Code != "forbidden" {
		t.Fatalf("a stranger previewed: %v", err)
	}
	if _, err := msgs.PreviewItems(bridge.Actor{Admin: true}, bridge.PreviewParams{MailboxID: m.ID, Days: 1}); err != nil {
		t.Fatalf("the bridge/admin caller: %v", err)
	}
}
