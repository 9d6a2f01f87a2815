package bridge_test

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/jhillyerd/enmime"
	"github.com/rs/zerolog"

	"github.com/maildesk/maildesk/bridge"
	"github.com/maildesk/maildesk/graphsync/m365sim"
	"github.com/maildesk/maildesk/store"
)

// mailWithAttachment is a customer's mail with a PDF, as it arrives.
func mailWithAttachment(to, msgID, subject, body string, date time.Time, pdf []byte) []byte {
	var b bytes.Buffer
	fmt.Fprintf(&b, "From: Carl Customer <carl@customer.example>\r\nTo: %s\r\nSubject: %s\r\nMessage-ID: %s\r\n", to, subject, msgID)
	fmt.Fprintf(&b, "Date: %s\r\nMIME-Version: 1.0\r\nContent-Type: multipart/mixed; boundary=\"b1\"\r\n\r\n", date.Format(time.RFC1123Z))
	fmt.Fprintf(&b, "--b1\r\nContent-Type: text/html; charset=utf-8\r\n\r\n<p>%s</p>\r\n", body)
	if pdf != nil {
		b.WriteString("--b1\r\nContent-Type: application/pdf; name=\"offer.pdf\"\r\nContent-Disposition: attachment; filename=\"offer.pdf\"\r\nContent-Transfer-Encoding: base64\r\n\r\n")
		b.WriteString(b64(pdf) + "\r\n")
	}
	b.WriteString("--b1--\r\n")
	return b.Bytes()
}

func findSent(t *testing.T, e *sendEnv, upn, msgID string) m365sim.SentMessage {
	t.Helper()
	for _, s := range e.sim.Sent(upn) {
		if s.InternetMessageID == msgID {
			return s
		}
	}
	t.Fatalf("%s was not sent (sent: %d)", msgID, len(e.sim.Sent(upn)))
	return m365sim.SentMessage{}
}

func attachmentsOf(t *testing.T, raw []byte) map[string]string {
	t.Helper()
	env, err := enmime.ReadEnvelope(bytes.NewReader(raw))
	if err != nil {
		t.Fatal(err)
	}
	out := map[string]string{}
	for _, a := range env.Attachments {
		out[a.FileName] = string(a.Content)
	}
	return out
}

// A draft saved from Odoo, saved again, resumed and sent: one draft at a
// time in Drafts, Odoo's Message-Id kept, attachments kept, sent once, and
// its Sent Items copy goes to Odoo once, like mail sent from Outlook.
func TestComposeDraftRoundTrip(t *testing.T) {
	e := newSendEnv(t)
	m := e.mailbox("anna@contoso.com", "personal", "anna@contoso.com", 0)
	ctx := context.Background()
	const odooID = "<1733.123456789-openerp-maildesk-1@odoo.contoso.com>"
	first, err := e.sender.SaveDraft(ctx, anna, bridge.DraftParams{SendParams: bridge.SendParams{MailboxID: m.ID,
		To: []string{"Carl <carl@customer.example>"}, Bcc: []string{"Boss <boss@contoso.com>"}, Subject: "Offer 42", BodyHTML: "<p>Draft one</p>",
		MessageID: odooID, InReplyTo: "<orig-7@customer.example>", References: "<orig-7@customer.example>",
		Attachments: []bridge.SendAttachment{{Name: "terms.txt", ContentType: "text/plain", DataBase64: b64([]byte("terms v1"))}}}})
	if err != nil {
		t.Fatal(err)
	}
	drafts := e.sim.Messages("anna@contoso.com", "drafts")
	if len(drafts) != 1 || drafts[0].ID != first.DraftID || drafts[0].InternetMessageID != odooID || !drafts[0].IsDraft {
		t.Fatalf("drafts after the first save: %+v (answer %+v)", drafts, first)
	}
	if len(first.Attachments) != 1 || first.Attachments[0].Name != "terms.txt" {
		t.Fatalf("the saved draft's attachments: %+v", first.Attachments)
	}

	// Resumed: the composer opens the draft (not in the index: Graph).
	msgs := bridge.NewMessages(e.st, bridge.NewMailboxes(e.st, zerolog.Nop()), e.graph, 1<<20)
	got, err := msgs.MessageGet(ctx, anna, bridge.MessageGetParams{MailboxID: m.ID, MessageID: first.DraftID})
	if err != nil {
		t.Fatal(err)
	}
	if got.Subject != "Offer 42" || !strings.Contains(got.BodyHTML, "Draft one") || got.Headers["in-reply-to"] != "<orig-7@customer.example>" || got.Headers["message-id"] != odooID {
		t.Fatalf("the draft as the composer reads it: subject %q body %q headers %v", got.Subject, got.BodyHTML, got.Headers)
	}
	if len(got.Bcc) != 1 || got.Bcc[0].Email != "boss@contoso.com" || got.Bcc[0].Name != "Boss" {
		t.Fatalf("the draft's Bcc as the composer reads it: %+v", got.Bcc)
	}

	// Saved again over it, keeping its attachment.
	second, err := e.sender.SaveDraft(ctx, anna, bridge.DraftParams{SendParams: bridge.SendParams{MailboxID: m.ID,
		To: []string{"carl@customer.example"}, Cc: []string{"dora@customer.example"}, Subject: "Offer 42", BodyHTML: "<p>Draft two</p>",
		MessageID: odooID, InReplyTo: "<orig-7@customer.example>"}, DraftID: first.DraftID,
		CopyAttachments: []bridge.AttachmentRef{{MessageID: first.DraftID, AttachmentID: first.Attachments[0].ID}}})
	if err != nil {
		t.Fatal(err)
	}
	drafts = e.sim.Messages("anna@contoso.com", "drafts")
	if len(drafts) != 1 || drafts[0].ID != second.DraftID || second.DraftID == first.DraftID {
		t.Fatalf("drafts after the second save: %+v", drafts)
	}
	if del := e.sim.Messages("anna@contoso.com", "deleteditems"); len(del) != 0 {
		t.Fatalf("a replaced draft went to Deleted Items: %+v", del)
	}

	res, err := e.sender.SendDraft(ctx, anna, bridge.SendDraftParams{MailboxID: m.ID, DraftID: second.DraftID})
	if err != nil {
		t.Fatal(err)
	}
	if res.InternetMessageID != odooID {
		t.Fatalf("sent as %q, want Odoo's %q", res.InternetMessageID, odooID)
	}
	sent := findSent(t, e, "anna@contoso.com", odooID)
	if atts := attachmentsOf(t, sent.MIME); atts["terms.txt"] != "terms v1" {
		t.Fatalf("sent attachments %v", atts)
	}
	if sent.Header.Get("In-Reply-To") != "<orig-7@customer.example>" || !strings.Contains(string(sent.MIME), "Draft two") {
		t.Fatalf("sent In-Reply-To %q", sent.Header.Get("In-Reply-To"))
	}
	if left := e.sim.Messages("anna@contoso.com", "drafts"); len(left) != 0 {
		t.Fatalf("drafts after sending: %+v", left)
	}
	// Sent once: a repeated call answers the first answer.
	again, err := e.sender.SendDraft(ctx, anna, bridge.SendDraftParams{MailboxID: m.ID, DraftID: second.DraftID})
	if err != nil || again.InternetMessageID != odooID || len(e.sim.Sent("anna@contoso.com")) != 1 {
		t.Fatalf("second send: %+v %v, sent %d", again, err, len(e.sim.Sent("anna@contoso.com")))
	}

	// Logged like mail sent from Outlook: its Sent Items copy is one item.
	e.sync(m.ID)
	var items int
	for _, it := range e.outbox(m.ID) {
		if it.InternetMessageID == odooID {
			items++
			if it.Direction != "out" || it.Folder != "sentitems" {
				t.Fatalf("item %+v", it)
			}
		}
	}
	if items != 1 {
		t.Fatalf("%d outbox items for the sent draft, want 1", items)
	}
	e.sync(m.ID)
	if n := len(e.outbox(m.ID)); n != 1 {
		t.Fatalf("%d outbox items after a second sync", n)
	}
}

// Forward keeps the original's attachments: the sidecar copies them from
// Graph into the draft, which carries Odoo's Message-Id.
func TestComposeForwardKeepsAttachments(t *testing.T) {
	e := newSendEnv(t)
	m := e.mailbox("anna@contoso.com", "personal", "anna@contoso.com", 0)
	ctx := context.Background()
	pdf := bytes.Repeat([]byte("%PDF-1.4 offer "), 400)
	orig, err := e.sim.DeliverMIME("anna@contoso.com", "inbox", mailWithAttachment("anna@contoso.com", "<offer@customer.example>", "Offer", "see the offer", time.Now(), pdf))
	if err != nil {
		t.Fatal(err)
	}
	e.sync(m.ID)
	msgs := bridge.NewMessages(e.st, bridge.NewMailboxes(e.st, zerolog.Nop()), e.graph, 1<<20)
	d, err := msgs.MessageGet(ctx, anna, bridge.MessageGetParams{MailboxID: m.ID, MessageID: orig})
	if err != nil || len(d.Attachments) != 1 {
		t.Fatalf("original: %+v %v", d.Attachments, err)
	}
	const odooID = "<fwd.1-openerp-maildesk-1@odoo.contoso.com>"
	saved, err := e.sender.SaveDraft(ctx, anna, bridge.DraftParams{SendParams: bridge.SendParams{MailboxID: m.ID,
		To: []string{"dora@partner.example"}, Subject: "Fwd: Offer", BodyHTML: "<p>FYI</p>", MessageID: odooID},
		CopyAttachments: []bridge.AttachmentRef{{MessageID: orig, AttachmentID: d.Attachments[0].ID}}})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := e.sender.SendDraft(ctx, anna, bridge.SendDraftParams{MailboxID: m.ID, DraftID: saved.DraftID}); err != nil {
		t.Fatal(err)
	}
	sent := findSent(t, e, "anna@contoso.com", odooID)
	if atts := attachmentsOf(t, sent.MIME); atts["offer.pdf"] != string(pdf) {
		t.Fatalf("forward lost the attachment: %d attachments", len(atts))
	}
	// The original is untouched.
	if in := e.sim.Messages("anna@contoso.com", "inbox"); len(in) != 1 || in[0].ID != orig {
		t.Fatalf("inbox %+v", in)
	}
}

// Forward keeps the original's inline images (cid: parts): the image the
// original carries, copied from Graph with its Content-ID, and an image the
// addon sends inline (the composer's data: image made a cid: part by Odoo)
// are both inline parts of the draft and of the sent mail, and the body
// still points at them.
func TestComposeForwardKeepsInlineImages(t *testing.T) {
	e := newSendEnv(t)
	m := e.mailbox("anna@contoso.com", "personal", "anna@contoso.com", 0)
	ctx := context.Background()
	logo := append([]byte("\x89PNG\r\n\x1a\n"), bytes.Repeat([]byte("logo"), 200)...)
	var raw bytes.Buffer
	fmt.Fprintf(&raw, "From: Carl Customer <carl@customer.example>\r\nTo: anna@contoso.com\r\nSubject: Our new logo\r\n")
	fmt.Fprintf(&raw, "Message-ID: <logo@customer.example>\r\nDate: %s\r\nMIME-Version: 1.0\r\n", time.Now().Format(time.RFC1123Z))
	raw.WriteString("Content-Type: multipart/related; boundary=\"r1\"\r\n\r\n--r1\r\nContent-Type: text/html; charset=utf-8\r\n\r\n")
	raw.WriteString("<p>Here it is: <img src=\"cid:logo.1@customer.example\"></p>\r\n--r1\r\n")
	raw.WriteString("Content-Type: image/png; name=\"logo.png\"\r\nContent-ID: <logo.1@customer.example>\r\nContent-Disposition: inline; filename=\"logo.png\"\r\n")
	raw.WriteString("Content-Transfer-Encoding: base64\r\n\r\n" + b64(logo) + "\r\n--r1--\r\n")
	orig, err := e.sim.DeliverMIME("anna@contoso.com", "inbox", raw.Bytes())
	if err != nil {
		t.Fatal(err)
	}
	e.sync(m.ID)
	msgs := bridge.NewMessages(e.st, bridge.NewMailboxes(e.st, zerolog.Nop()), e.graph, 1<<20)
	d, err := msgs.MessageGet(ctx, anna, bridge.MessageGetParams{MailboxID: m.ID, MessageID: orig})
	if err != nil || len(d.Attachments) != 1 || !d.Attachments[0].IsInline || d.Attachments[0].ContentID != "logo.1@customer.example" {
		t.Fatalf("the original's inline image: %+v %v", d.Attachments, err)
	}
	if !strings.Contains(d.BodyHTML, "cid:logo.1@customer.example") {
		t.Fatalf("the original's body lost its cid: reference: %s", d.BodyHTML)
	}
	pasted := append([]byte("GIF89a"), bytes.Repeat([]byte("x"), 100)...)
	const odooID = "<fwd.inline-openerp-maildesk-1@odoo.contoso.com>"
	saved, err := e.sender.SaveDraft(ctx, anna, bridge.DraftParams{SendParams: bridge.SendParams{MailboxID: m.ID,
		To: []string{"dora@partner.example"}, Subject: "Fwd: Our new logo", MessageID: odooID,
		BodyHTML: `<p>FYI <img src="cid:maildesk-inline-1@odoo"></p><blockquote><p>Here it is: <img src="cid:logo.1@customer.example"></p></blockquote>`,
		Attachments: []bridge.SendAttachment{{Name: "image1.gif", ContentType: "image/gif", DataBase64: b64(pasted),
			ContentID: "maildesk-inline-1@odoo", IsInline: true}}},
		CopyAttachments: []bridge.AttachmentRef{{MessageID: orig, AttachmentID: d.Attachments[0].ID}}})
	if err != nil {
		t.Fatal(err)
	}
	// The draft in Drafts, as Outlook (and the composer, reopening it) reads it.
	draft, err := msgs.MessageGet(ctx, anna, bridge.MessageGetParams{MailboxID: m.ID, MessageID: saved.DraftID})
	if err != nil {
		t.Fatal(err)
	}
	inline := map[string]string{}
	for _, at := range draft.Attachments {
		if at.IsInline {
			inline[at.ContentID] = at.ContentType
		}
	}
	if inline["logo.1@customer.example"] != "image/png" || inline["maildesk-inline-1@odoo"] != "image/gif" || len(saved.Attachments) != 2 {
		t.Fatalf("the draft's inline images: %+v (saved %+v)", draft.Attachments, saved.Attachments)
	}
	for _, ref := range []string{"cid:logo.1@customer.example", "cid:maildesk-inline-1@odoo"} {
		if !strings.Contains(draft.BodyHTML, ref) {
			t.Fatalf("the draft's body lost %s: %s", ref, draft.BodyHTML)
		}
	}
	if _, err := e.sender.SendDraft(ctx, anna, bridge.SendDraftParams{MailboxID: m.ID, DraftID: saved.DraftID}); err != nil {
		t.Fatal(err)
	}
	sent := findSent(t, e, "anna@contoso.com", odooID)
	env, err := enmime.ReadEnvelope(bytes.NewReader(sent.MIME))
	if err != nil {
		t.Fatal(err)
	}
	got := map[string][]byte{}
	for _, p := range env.Inlines {
		got[strings.Trim(p.ContentID, "<>")] = p.Content
	}
	if !bytes.Equal(got["logo.1@customer.example"], logo) || !bytes.Equal(got["maildesk-inline-1@odoo"], pasted) {
		t.Fatalf("the sent mail's inline parts: %d (%d attachments)", len(env.Inlines), len(env.Attachments))
	}
	if !strings.Contains(env.HTML, "cid:logo.1@customer.example") || !strings.Contains(env.HTML, "cid:maildesk-inline-1@odoo") {
		t.Fatalf("the sent body lost its cid: references: %s", env.HTML)
	}
}

// A draft written in Outlook opens in the composer and, saved from Odoo,
// is replaced by one with Odoo's Message-Id.
func TestComposeOutlookDraftResumes(t *testing.T) {
	e := newSendEnv(t)
	m := e.mailbox("anna@contoso.com", "personal", "anna@contoso.com", 0)
	ctx := context.Background()
	tok, err := e.toks.Token(ctx, m.ID)
	if err != nil {
		t.Fatal(err)
	}
	body := `{"subject":"From Outlook","body":{"contentType":"HTML","content":"<p>typed in Outlook<img src=\"https://tracker.example/p.gif\"></p>"},"toRecipients":[{"emailAddress":{"address":"carl@customer.example"}}]}`
	req, _ := http.NewRequest(http.MethodPost, e.sim.GraphBaseURL()+"/users/anna@contoso.com/messages", strings.NewReader(body))
	req.Header.Set("Authorization", "Bearer "+tok)
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("Prefer", `IdType="ImmutableId"`)
	resp, err := e.sim.Client().Do(req)
	if err != nil {
		t.Fatal(err)
	}
	var created struct {
		ID string `json:"id"`
	}
	_ = json.NewDecoder(resp.Body).Decode(&created)
	resp.Body.Close()
	if resp.StatusCode != 201 || created.ID == "" {
		t.Fatalf("Outlook draft: %d", resp.StatusCode)
	}
	msgs := bridge.NewMessages(e.st, bridge.NewMailboxes(e.st, zerolog.Nop()), e.graph, 1<<20)
	got, err := msgs.MessageGet(ctx, anna, bridge.MessageGetParams{MailboxID: m.ID, MessageID: created.ID})
	if err != nil {
		t.Fatal(err)
	}
	if got.Subject != "From Outlook" || !strings.Contains(got.BodyHTML, "typed in Outlook") || len(got.To) != 1 {
		t.Fatalf("Outlook draft in the composer: %+v", got.MessageSummary)
	}
	const odooID = "<resumed-openerp-maildesk-1@odoo.contoso.com>"
	saved, err := e.sender.SaveDraft(ctx, anna, bridge.DraftParams{SendParams: bridge.SendParams{MailboxID: m.ID,
		To: []string{"carl@customer.example"}, Subject: got.Subject, BodyHTML: got.BodyHTML + "<p>and in Odoo</p>", MessageID: odooID},
		DraftID: created.ID})
	if err != nil {
		t.Fatal(err)
	}
	drafts := e.sim.Messages("anna@contoso.com", "drafts")
	if len(drafts) != 1 || drafts[0].ID != saved.DraftID || drafts[0].InternetMessageID != odooID {
		t.Fatalf("drafts %+v", drafts)
	}
}

// Only users who may send as the mailbox save or send its drafts; a
// draft_id that is not a draft is refused and left alone.
func TestComposeRefusals(t *testing.T) {
	e := newSendEnv(t)
	m := e.mailbox("anna@contoso.com", "personal", "anna@contoso.com", 0)
	ctx := context.Background()
	stranger := bridge.Actor{UID: 9}
	_, err := e.sender.SaveDraft(ctx, stranger, bridge.DraftParams{SendParams: bridge.SendParams{MailboxID: m.ID, To: []string{"x@y.example"}, Subject: "no"}})
	if codeOfErr(err) != "forbidden" || !strings.Contains(err.Error(), "may not send as anna@contoso.com") {
		t.Fatalf("stranger's draft: %v", err)
	}
	if n := len(e.sim.Messages("anna@contoso.com", "drafts")); n != 0 {
		t.Fatalf("%d drafts after a refusal", n)
	}
	saved, err := e.sender.SaveDraft(ctx, anna, bridge.DraftParams{SendParams: bridge.SendParams{MailboxID: m.ID, To: []string{"x@y.example"}, Subject: "mine"}})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := e.sender.SendDraft(ctx, stranger, bridge.SendDraftParams{MailboxID: m.ID, DraftID: saved.DraftID}); codeOfErr(err) != "forbidden" {
		t.Fatalf("stranger's send: %v", err)
	}
	if len(e.sim.Sent("anna@contoso.com")) != 0 {
		t.Fatal("a refused send went out")
	}
	in, err := e.sim.DeliverMIME("anna@contoso.com", "inbox", mailWithAttachment("anna@contoso.com", "<keep@customer.example>", "Keep", "keep me", time.Now(), nil))
	if err != nil {
		t.Fatal(err)
	}
	_, err = e.sender.SaveDraft(ctx, anna, bridge.DraftParams{SendParams: bridge.SendParams{MailboxID: m.ID, Subject: "x"}, DraftID: in})
	if codeOfErr(err) != "invalid_params" {
		t.Fatalf("saving over a received mail: %v", err)
	}
	if _, err := e.sender.SendDraft(ctx, anna, bridge.SendDraftParams{MailboxID: m.ID, DraftID: in}); codeOfErr(err) != "invalid_params" {
		t.Fatalf("sending a received mail as a draft: %v", err)
	}
	if got := e.sim.Messages("anna@contoso.com", "inbox"); len(got) != 1 {
		t.Fatalf("the received mail was touched: %+v", got)
	}
	_, err = e.sender.SaveDraft(ctx, anna, bridge.DraftParams{SendParams: bridge.SendParams{MailboxID: m.ID, Subject: "x", MessageID: "not-an-id"}})
	if codeOfErr(err) != "invalid_params" {
		t.Fatalf("bad Message-Id: %v", err)
	}
}

// Search asks Microsoft 365: it finds mail outside the synced window and
// words past the index's snippet, by sender, recipient, subject and body.
func TestSearchBeyondSyncedWindow(t *testing.T) {
	e := newSendEnv(t)
	m := e.mailbox("anna@contoso.com", "personal", "anna@contoso.com", 0)
	if _, err := e.st.UpdateMailboxConfig(m.ID, func(c *store.MailboxConfig, _ store.MailboxStatus) (*store.AuditEntry, error) {
		c.BackfillDays = 30
		return nil, nil
	}); err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	long := strings.Repeat("filler words here ", 20) + "zebracrossing mentioned late"
	old := time.Now().AddDate(-2, 0, 0)
	oldID, err := e.sim.DeliverMIMEAt("anna@contoso.com", "inbox", mailWithAttachment("anna@contoso.com", "<old@customer.example>", "Ancient contract", long, old, nil), old)
	if err != nil {
		t.Fatal(err)
	}
	var recent []string // newest sent first
	for i := 0; i < 3; i++ {
		id, err := e.sim.DeliverMIME("anna@contoso.com", "inbox", mailWithAttachment("anna@contoso.com", fmt.Sprintf("<new-%d@customer.example>", i), fmt.Sprintf("Contract %d", i), "recent", time.Now().Add(-time.Duration(i)*time.Hour), nil))
		if err != nil {
			t.Fatal(err)
		}
		recent = append(recent, id)
	}
	e.sync(m.ID)
	msgs := bridge.NewMessages(e.st, bridge.NewMailboxes(e.st, zerolog.Nop()), e.graph, 1<<20)
	local, err := msgs.MessageList(anna, bridge.MessageListParams{MailboxID: m.ID, Folder: "inbox", Query: "zebracrossing"})
	if err != nil || len(local.Messages) != 0 {
		t.Fatalf("the index should not know the old mail: %+v %v", local.Messages, err)
	}
	res, err := msgs.Search(ctx, anna, bridge.SearchParams{MailboxID: m.ID, Query: "zebracrossing"})
	if err != nil {
		t.Fatal(err)
	}
	if len(res.Messages) != 1 || res.Messages[0].ID != oldID || res.Messages[0].Indexed || res.Messages[0].Subject != "Ancient contract" {
		t.Fatalf("search: %+v", res.Messages)
	}
	// It opens although the index does not hold it.
	d, err := msgs.MessageGet(ctx, anna, bridge.MessageGetParams{MailboxID: m.ID, MessageID: oldID})
	if err != nil || !strings.Contains(d.BodyHTML, "zebracrossing") {
		t.Fatalf("open the found mail: %v", err)
	}
	// KQL properties, newest first, pages through a cursor.
	res, err = msgs.Search(ctx, anna, bridge.SearchParams{MailboxID: m.ID, Query: "from:carl subject:contract", Limit: 2})
	if err != nil || len(res.Messages) != 2 || res.NextCursor == "" || !res.Messages[0].Indexed {
		t.Fatalf("page 1: %+v %v", res, err)
	}
	if res.Messages[0].ID != recent[0] || res.Messages[1].ID != recent[1] {
		t.Fatalf("not sorted by sent date, newest first: %s, %s", res.Messages[0].Subject, res.Messages[1].Subject)
	}
	page2, err := msgs.Search(ctx, anna, bridge.SearchParams{MailboxID: m.ID, Query: "from:carl subject:contract", Limit: 2, Cursor: res.NextCursor})
	if err != nil || len(page2.Messages) != 2 || page2.NextCursor != "" || page2.Messages[1].ID != oldID {
		t.Fatalf("page 2: %+v %v", page2, err)
	}
	if r, _ := msgs.Search(ctx, anna, bridge.SearchParams{MailboxID: m.ID, Query: "to:nobody@else.example"}); len(r.Messages) != 0 {
		t.Fatalf("to: matched %d", len(r.Messages))
	}
	// A cursor of another mailbox is refused.
	other := e.mailbox("bert@contoso.com", "personal", "bert@contoso.com", 0)
	if _, err := msgs.Search(ctx, anna, bridge.SearchParams{MailboxID: other.ID, Query: "contract", Cursor: res.NextCursor}); codeOfErr(err) != "invalid_params" {
		t.Fatalf("foreign cursor: %v", err)
	}
	// Someone who may not see the mailbox finds nothing.
	if _, err := msgs.Search(ctx, bridge.Actor{UID: 9}, bridge.SearchParams{MailboxID: m.ID, Query: "contract"}); codeOfErr(err) != "forbidden" {
		t.Fatalf("stranger's search: %v", err)
	}
	// Drafts listed from Microsoft 365 (the folder is not synced).
	if _, err := e.sender.SaveDraft(ctx, anna, bridge.DraftParams{SendParams: bridge.SendParams{MailboxID: m.ID, Subject: "Unfinished"}}); err != nil {
		t.Fatal(err)
	}
	dl, err := msgs.Search(ctx, anna, bridge.SearchParams{MailboxID: m.ID, Folder: "drafts"})
	if err != nil || len(dl.Messages) != 1 || !dl.Messages[0].IsDraft || dl.Messages[0].Subject != "Unfinished" {
		t.Fatalf("drafts: %+v %v", dl.Messages, err)
	}
}

// A shared mailbox's draft goes out with the delegate's Exchange right:
// refused without Send As (remembered), Send As once granted.
func TestComposeSharedMailboxDraft(t *testing.T) {
	e := newSendEnv(t)
	e.sim.AddUser("anna@contoso.com", "Anna Example")
	e.sim.AddSharedMailbox("sales@contoso.com", "Sales", m365sim.Grant{User: "anna@contoso.com", FullAccess: true})
	m := e.mailbox("sales@contoso.com", "shared", "anna@contoso.com", 0)
	ctx := context.Background()
	saved, err := e.sender.SaveDraft(ctx, anna, bridge.DraftParams{SendParams: bridge.SendParams{MailboxID: m.ID,
		To: []string{"carl@customer.example"}, Subject: "From sales", BodyHTML: "<p>Hi</p>", MessageID: "<s1-openerp-x@odoo.contoso.com>"}})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := e.sender.SendDraft(ctx, anna, bridge.SendDraftParams{MailboxID: m.ID, DraftID: saved.DraftID}); codeOfErr(err) != "send_as_denied" {
		t.Fatalf("without Send As: %v", err)
	}
	before := e.rt.count()
	if _, err := e.sender.SendDraft(ctx, anna, bridge.SendDraftParams{MailboxID: m.ID, DraftID: saved.DraftID}); codeOfErr(err) != "send_as_denied" || e.rt.count() != before {
		t.Fatalf("remembered denial: %v, %d requests", err, e.rt.count()-before)
	}
	e.sim.Grant("sales@contoso.com", m365sim.Grant{User: "anna@contoso.com", FullAccess: true, SendAs: true})
	e.sender.Forget(m.ID)
	res, err := e.sender.SendDraft(ctx, anna, bridge.SendDraftParams{MailboxID: m.ID, DraftID: saved.DraftID})
	if err != nil || res.SentAs != bridge.SentAsSendAs || res.InternetMessageID != "<s1-openerp-x@odoo.contoso.com>" {
		t.Fatalf("with Send As: %+v %v", res, err)
	}
}

// The simulator's hostile sample, read through the sidecar as the reading
// pane and the composer's quote get it: nothing in it can run or submit.
// (Remote images stay in the HTML: Odoo blocks them until allowed, and the
// frame's CSP refuses them; see the addon's tests.)
func TestMessageGetDisarmsTheHostileSample(t *testing.T) {
	e := newSendEnv(t)
	m := e.mailbox("anna@contoso.com", "personal", "anna@contoso.com", 0)
	id, err := e.sim.DeliverMIME("anna@contoso.com", "inbox", m365sim.HostileMIME("anna@contoso.com", "<hostile@x.example>", time.Now()))
	if err != nil {
		t.Fatal(err)
	}
	e.sync(m.ID)
	msgs := bridge.NewMessages(e.st, bridge.NewMailboxes(e.st, zerolog.Nop()), e.graph, 1<<20)
	d, err := msgs.MessageGet(context.Background(), anna, bridge.MessageGetParams{MailboxID: m.ID, MessageID: id})
	if err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(d.BodyHTML, "your invoice is overdue") {
		t.Fatalf("the text is gone: %s", d.BodyHTML)
	}
	body := strings.ToLower(d.BodyHTML)
	for _, bad := range []string{"<script", "onload", "onerror", "onmouseover", "javascript:", "<iframe", "<object", "<embed",
		"<form", "formaction", "http-equiv", "<link", "@import", "<svg", "maildeskpwned"} {
		if strings.Contains(body, bad) {
			t.Errorf("message.get's body still has %q: %s", bad, d.BodyHTML)
		}
	}
}
