package bridge_test

import (
	"bytes"
	"context"
	"crypto/rand"
	"crypto/sha256"
	"crypto/tls"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"net/url"
	"os"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/jhillyerd/enmime"
	"github.com/rs/zerolog"

	"github.com/maildesk/maildesk/bridge"
	"github.com/maildesk/maildesk/bridge/odoo"
	"github.com/maildesk/maildesk/graphsync"
	"github.com/maildesk/maildesk/graphsync/m365sim"
	"github.com/maildesk/maildesk/store"
)

// delegateTokens signs in the mailbox's delegate (the owner for personal
// mailboxes) with the shared-mailbox scopes too.
type delegateTokens struct {
	sim   *m365sim.Sim
	mu    sync.Mutex
	users map[string]string
	toks  map[string]string
}

func (t *delegateTokens) add(mailboxID, upn string) {
	t.mu.Lock()
	t.users[mailboxID] = upn
	t.mu.Unlock()
}

func (t *delegateTokens) Token(ctx context.Context, mailboxID string) (string, error) {
	t.mu.Lock()
	defer t.mu.Unlock()
	if tok := t.toks[mailboxID]; tok != "" {
		return tok, nil
	}
	upn := t.users[mailboxID]
	if upn == "" {
		return "", &graphsync.ReauthError{MailboxID: mailboxID, Code: "no_token"}
	}
	app := m365sim.DefaultApp()
	scope := "https://graph.microsoft.com/Mail.ReadWrite https://graph.microsoft.com/Mail.Send https://graph.microsoft.com/Mail.ReadWrite.Shared https://graph.microsoft.com/Mail.Send.Shared offline_access openid profile"
	vb := make([]byte, 32)
	_, _ = rand.Read(vb)
	verifier := base64.RawURLEncoding.EncodeToString(vb)
	sum := sha256.Sum256([]byte(verifier))
	redirect := "http://127.0.0.1:1/cb"
	q := url.Values{"client_id": {app.ClientID}, "response_type": {"code"}, "redirect_uri": {redirect},
		"scope": {scope}, "state": {"s"}, "code_challenge": {base64.RawURLEncoding.EncodeToString(sum[:])},
		"code_challenge_method": {"S256"}}
	loc, err := t.sim.SignIn(ctx, t.sim.AuthorityURL()+"/oauth2/v2.0/authorize?"+q.Encode(), upn)
	if err != nil {
		return "", err
	}
	form := url.Values{"client_id": {app.ClientID}, "client_secret": {app.ClientSecret}, "scope": {scope},
		"grant_type": {"authorization_code"}, "code": {loc.Query().Get("code")}, "redirect_uri": {redirect}, "code_verifier": {verifier}}
	resp, err := t.sim.Client().PostForm(t.sim.AuthorityURL()+"/oauth2/v2.0/token", form)
	if err != nil {
		return "", err
	}
	defer resp.Body.Close()
	var body struct {
		Access string `json:"access_token"`
		Error  string `json:"error"`
	}
	if err := json.NewDecoder(resp.Body).Decode(&body); err != nil || body.Access == "" {
		return "", fmt.Errorf("token: %d %s %v", resp.StatusCode, body.Error, err)
	}
	t.toks[mailboxID] = body.Access
	return body.Access, nil
}

// countingRT records every request that leaves the Graph client.
type countingRT struct {
	base http.RoundTripper
	mu   sync.Mutex
	reqs []seenReq
}

type seenReq struct {
	method, path string
	size         int64
}

func (c *countingRT) RoundTrip(r *http.Request) (*http.Response, error) {
	c.mu.Lock()
	c.reqs = append(c.reqs, seenReq{r.Method, r.URL.Path, r.ContentLength})
	c.mu.Unlock()
	return c.base.RoundTrip(r)
}

func (c *countingRT) count() int {
	c.mu.Lock()
	defer c.mu.Unlock()
	return len(c.reqs)
}

func (c *countingRT) since(n int) []seenReq {
	c.mu.Lock()
	defer c.mu.Unlock()
	return append([]seenReq(nil), c.reqs[n:]...)
}

type sendEnv struct {
	t       testing.TB
	sim     *m365sim.Sim
	st      *store.Store
	rt      *countingRT
	toks    *delegateTokens
	graph   *graphsync.Client
	sender  *bridge.Sender
	actions *bridge.Actions
	syncer  *bridge.Syncer
	kicks   int
}

var anna = bridge.Actor{UID: 2}

func newSendEnv(t testing.TB) *sendEnv {
	t.Helper()
	r := newRig(t, rigOpts{})
	e := &sendEnv{t: t, sim: r.sim, st: r.st}
	tr := graphsync.NewTransport(&tls.Config{RootCAs: r.sim.CertPool(), MinVersion: tls.VersionTLS12})
	t.Cleanup(tr.CloseIdleConnections) // runs before the simulator closes, which waits for open connections
	e.rt = &countingRT{base: tr}
	e.toks = &delegateTokens{sim: r.sim, users: map[string]string{}, toks: map[string]string{}}
	var err error
	e.graph, err = graphsync.New(graphsync.Config{BaseURL: r.sim.GraphBaseURL(), Transport: e.rt, Tokens: e.toks,
		Retry: graphsync.RetryOptions{BaseDelay: 5 * time.Millisecond, MaxDelay: 300 * time.Millisecond}})
	if err != nil {
		t.Fatal(err)
	}
	mbx := bridge.NewMailboxes(r.st, zerolog.Nop())
	e.sender, err = bridge.NewSender(bridge.SenderConfig{Store: r.st, Graph: e.graph, Mailboxes: mbx, Log: zerolog.Nop()})
	if err != nil {
		t.Fatal(err)
	}
	e.actions, err = bridge.NewActions(bridge.ActionsConfig{Store: r.st, Graph: e.graph, Mailboxes: mbx, Log: zerolog.Nop(), Kick: func() { e.kicks++ }})
	if err != nil {
		t.Fatal(err)
	}
	e.syncer, err = bridge.NewSyncer(bridge.SyncConfig{Store: r.st, Graph: e.graph, Log: zerolog.Nop()})
	if err != nil {
		t.Fatal(err)
	}
	return e
}

// mailbox creates a connected mailbox; delegate signs in (the owner for a
// personal mailbox).
func (e *sendEnv) mailbox(email, kind, delegate string, maxBytes int64) store.Mailbox {
	e.t.Helper()
	if kind == "personal" {
		e.sim.AddUser(email, "Anna Example")
	}
	m, err := e.st.CreateMailbox(store.Mailbox{MailboxConfig: store.MailboxConfig{Email: email, Kind: kind, SignInEmail: delegate, Mode: "log", Folders: []string{"inbox", "sentitems"}, OwnerUID: 2, MainUserID: 2, UserIDs: []int64{2}, OdooID: 1, MaxMessageBytes: maxBytes, LogSentAsActivity: true}, MailboxStatus: store.MailboxStatus{ConnectedAs: delegate, State: bridge.StateConnected}})
	if err != nil {
		e.t.Fatal(err)
	}
	e.toks.add(m.ID, delegate)
	return m
}

func (e *sendEnv) sync(id string) {
	e.t.Helper()
	for i := 0; i < 100; i++ {
		res, err := e.syncer.SyncMailbox(context.Background(), id)
		if err != nil {
			e.t.Fatal(err)
		}
		if !res.More {
			return
		}
	}
	e.t.Fatal("sync did not finish")
}

func (e *sendEnv) outbox(mailboxID string) []odoo.IngestItem {
	e.t.Helper()
	items, err := e.st.DueOutbox(time.Now().Add(24*time.Hour), 1<<30, 0, nil)
	if err != nil {
		e.t.Fatal(err)
	}
	var out []odoo.IngestItem
	for _, it := range items {
		if it.MailboxID != mailboxID {
			continue
		}
		var ii odoo.IngestItem
		if err := json.Unmarshal(it.Payload, &ii); err != nil {
			e.t.Fatal(err)
		}
		out = append(out, ii)
	}
	return out
}

// odooReply is a reply as Odoo builds it: its own Message-Id, In-Reply-To,
// References, multipart/mixed with an alternative body.
func odooReply(from, to, msgID string, attachment []byte) []byte {
	var b bytes.Buffer
	fmt.Fprintf(&b, "From: \"Anna Example\" <%s>\r\nTo: %s\r\nSubject: Re: Offer 42\r\n", from, to)
	fmt.Fprintf(&b, "Message-Id: %s\r\nIn-Reply-To: <orig-7@customer.example>\r\nReferences: <root-1@customer.example> <orig-7@customer.example>\r\n", msgID)
	b.WriteString("Date: Sun, 22 Nov 2026 09:00:00 +0000\r\nMIME-Version: 1.0\r\nContent-Type: multipart/mixed; boundary=\"===odoo-mix==\"\r\n\r\n")
	b.WriteString("--===odoo-mix==\r\nContent-Type: multipart/alternative; boundary=\"===odoo-alt==\"\r\n\r\n")
	b.WriteString("--===odoo-alt==\r\nContent-Type: text/plain; charset=\"utf-8\"\r\nContent-Transfer-Encoding: quoted-printable\r\n\r\nThank you, here is the offer.\r\n")
	b.WriteString("--===odoo-alt==\r\nContent-Type: text/html; charset=\"utf-8\"\r\nContent-Transfer-Encoding: quoted-printable\r\n\r\n<p>Thank you, here is the offer.</p>\r\n--===odoo-alt==--\r\n")
	if attachment != nil {
		b.WriteString("--===odoo-mix==\r\nContent-Type: application/pdf; name=\"offer.pdf\"\r\nContent-Transfer-Encoding: base64\r\nContent-Disposition: attachment; filename=\"offer.pdf\"\r\n\r\n")
		enc := base64.StdEncoding.EncodeToString(attachment)
		for len(enc) > 76 {
			b.WriteString(enc[:76] + "\r\n")
			enc = enc[76:]
		}
		b.WriteString(enc + "\r\n")
	}
	b.WriteString("--===odoo-mix==--\r\n")
	return b.Bytes()
}

func b64(raw []byte) string { return base64.StdEncoding.EncodeToString(raw) }

func codeOfErr(err error) string {
	var be *bridge.Error
	if errors.As(err, &be) {
		return be.Code
	}
	return ""
}

func TestSendReplyKeepsThreadingAndSentCopyIsNotQueued(t *testing.T) {
	e := newSendEnv(t)
	m := e.mailbox("anna@contoso.com", "personal", "anna@contoso.com", 0)
	const id = "<offer-42.reply@odoo.contoso.com>"
	res, err := e.sender.Send(context.Background(), anna, bridge.SendParams{MailboxID: m.ID, RequestID: "req-1",
		MIMEBase64: b64(odooReply("anna@contoso.com", "Carl <carl@customer.example>", id, nil))})
	if err != nil {
		t.Fatal(err)
	}
	if res.InternetMessageID != id || res.SentAs != bridge.SentAsSelf || res.QueuedAt == "" {
		t.Fatalf("answer %+v", res)
	}
	sent := e.sim.Sent("anna@contoso.com")
	if len(sent) != 1 {
		t.Fatalf("simulator saw %d sends, want 1", len(sent))
	}
	s := sent[0]
	if s.Via != "sendMail/mime" {
		t.Errorf("sent via %s, want one MIME sendMail", s.Via)
	}
	for h, want := range map[string]string{"Message-Id": id, "In-Reply-To": "<orig-7@customer.example>", "References": "<root-1@customer.example> <orig-7@customer.example>"} {
		if got := s.Header.Get(h); got != want {
			t.Errorf("sent %s = %q, want %q", h, got, want)
		}
	}
	// A mail sent from Outlook lands in Sent Items too: it must be queued,
	// ours must not.
	outlook := []byte("From: anna@contoso.com\r\nTo: dora@customer.example\r\nSubject: from Outlook\r\nMessage-Id: <outlook-1@contoso.com>\r\n\r\nhi\r\n")
	if _, err := e.sim.DeliverMIME("anna@contoso.com", "sentitems", outlook); err != nil {
		t.Fatal(err)
	}
	e.sync(m.ID)
	var queued []string
	for _, it := range e.outbox(m.ID) {
		queued = append(queued, it.InternetMessageID)
		if it.InternetMessageID == id {
			t.Fatalf("the Sent Items copy of %s was queued for Odoo again", id)
		}
	}
	if len(queued) != 1 || queued[0] != "<outlook-1@contoso.com>" {
		t.Fatalf("queued %v, want only the Outlook mail", queued)
	}
	copyMsg, err := e.st.Message(m.ID, s.SavedID)
	if err != nil {
		t.Fatal(err)
	}
	if copyMsg.Delivery != store.DeliverySentByUs {
		t.Fatalf("Sent Items copy delivery %q, want %q", copyMsg.Delivery, store.DeliverySentByUs)
	}
	// Audited, without the body.
	entries, _, err := e.st.AuditList(m.ID, 10, 0)
	if err != nil {
		t.Fatal(err)
	}
	found := false
	for _, en := range entries {
		if en.Action == "message.send" {
			found = true
			raw, _ := json.Marshal(en)
			if en.Detail["result"] != "sent" || bytes.Contains(raw, []byte("here is the offer")) {
				t.Fatalf("audit entry %s", raw)
			}
		}
	}
	if !found {
		t.Fatal("send not audited")
	}
}

func TestSendAddsMissingMessageID(t *testing.T) {
	e := newSendEnv(t)
	m := e.mailbox("anna@contoso.com", "personal", "anna@contoso.com", 0)
	raw := []byte("From: anna@contoso.com\r\nTo: carl@customer.example\r\nSubject: no id\r\n\r\nbody\r\n")
	res, err := e.sender.Send(context.Background(), anna, bridge.SendParams{MailboxID: m.ID, MIMEBase64: b64(raw)})
	if err != nil {
		t.Fatal(err)
	}
	if !strings.HasSuffix(res.InternetMessageID, "@contoso.com>") {
		t.Fatalf("generated id %q", res.InternetMessageID)
	}
	if got := e.sim.Sent("anna@contoso.com")[0].Header.Get("Message-Id"); got != res.InternetMessageID {
		t.Fatalf("sent Message-Id %q, answered %q", got, res.InternetMessageID)
	}
}

func TestSendStructured(t *testing.T) {
	e := newSendEnv(t)
	m := e.mailbox("anna@contoso.com", "personal", "anna@contoso.com", 0)
	res, err := e.sender.Send(context.Background(), anna, bridge.SendParams{MailboxID: m.ID, RequestID: "s-1",
		To: []string{"Carl <carl@customer.example>"}, Bcc: []string{"audit@contoso.com"}, Subject: "Your offer",
		BodyHTML: "<p>Hello</p>", InReplyTo: "<orig-7@customer.example>", References: "<orig-7@customer.example>",
		Attachments: []bridge.SendAttachment{{Name: "a.txt", ContentType: "text/plain", DataBase64: b64([]byte("hello file"))}}})
	if err != nil {
		t.Fatal(err)
	}
	s := e.sim.Sent("anna@contoso.com")[0]
	if s.InternetMessageID != res.InternetMessageID || s.Header.Get("In-Reply-To") != "<orig-7@customer.example>" {
		t.Fatalf("sent %q in-reply-to %q, answered %q", s.InternetMessageID, s.Header.Get("In-Reply-To"), res.InternetMessageID)
	}
	if len(s.Bcc) != 1 || s.Bcc[0] != "audit@contoso.com" {
		t.Fatalf("bcc %v", s.Bcc)
	}
	env, err := enmime.ReadEnvelope(bytes.NewReader(s.MIME))
	if err != nil || len(env.Attachments) != 1 || string(env.Attachments[0].Content) != "hello file" {
		t.Fatalf("attachment not sent: %v", err)
	}
}

func TestSendLargeAttachmentGoesThroughUploadSession(t *testing.T) {
	e := newSendEnv(t)
	m := e.mailbox("anna@contoso.com", "personal", "anna@contoso.com", 100<<20)
	// 10 MB: three upload chunks; make test-long (MAILDESK_LONG=1) sends
	// 40 MB, over Exchange's default 35 MB, which this mailbox allows.
	size := 10 << 20
	if os.Getenv("MAILDESK_LONG") == "1" {
		size = 40 << 20
	}
	att := make([]byte, size)
	_, _ = rand.Read(att)
	const id = "<big-1@odoo.contoso.com>"
	before := e.rt.count()
	res, err := e.sender.Send(context.Background(), anna, bridge.SendParams{MailboxID: m.ID, RequestID: "big-1",
		MIMEBase64: b64(odooReply("anna@contoso.com", "carl@customer.example", id, att))})
	if err != nil {
		t.Fatal(err)
	}
	if res.InternetMessageID != id {
		t.Fatalf("answer %+v", res)
	}
	chunks, maxChunk, other := 0, int64(0), 0
	for _, r := range e.rt.since(before) {
		if r.method == http.MethodPut && strings.HasPrefix(r.path, "/upload/") {
			chunks++
			maxChunk = max(maxChunk, r.size)
			continue
		}
		other++
		if r.size > graphsync.MaxRequestBody {
			t.Errorf("%s %s carried %d bytes, over Graph's 4 MB", r.method, r.path, r.size)
		}
	}
	want := (len(att) + graphsync.UploadChunk - 1) / graphsync.UploadChunk
	if chunks != want || maxChunk > 4_000_000 {
		t.Fatalf("%d chunks (largest %d bytes), want %d of at most 4 MB", chunks, maxChunk, want)
	}
	if other != 3 { // draft, createUploadSession, send
		t.Errorf("%d other Graph requests, want 3", other)
	}
	t.Logf("%d MB attachment: %d chunks of at most %d bytes, %d other requests", size>>20, chunks, maxChunk, other)
	sent := e.sim.Sent("anna@contoso.com")
	if len(sent) != 1 || sent[0].Via != "draft/send" || sent[0].InternetMessageID != id {
		t.Fatalf("sent %+v", sent)
	}
	if sent[0].Header.Get("In-Reply-To") != "<orig-7@customer.example>" {
		t.Errorf("In-Reply-To lost: %q", sent[0].Header.Get("In-Reply-To"))
	}
	env, err := enmime.ReadEnvelope(bytes.NewReader(sent[0].MIME))
	if err != nil || len(env.Attachments) != 1 || !bytes.Equal(env.Attachments[0].Content, att) || env.Attachments[0].FileName != "offer.pdf" {
		t.Fatalf("the attachment did not arrive whole (err %v)", err)
	}
}

func TestSendLimitsCheckedBeforeGraph(t *testing.T) {
	e := newSendEnv(t)
	m := e.mailbox("anna@contoso.com", "personal", "anna@contoso.com", 35<<20)
	ctx := context.Background()
	stats := e.sim.Stats("anna@contoso.com")
	before := e.rt.count()

	big := make([]byte, 36<<20)
	_, err := e.sender.Send(ctx, anna, bridge.SendParams{MailboxID: m.ID, RequestID: "r-big", MIMEBase64: b64(odooReply("anna@contoso.com", "carl@customer.example", "<big@x.example>", big)[:36<<20])})
	if codeOfErr(err) != "too_large" || !strings.Contains(err.Error(), "35.0 MB") {
		t.Fatalf("36 MB: %v", err)
	}

	var to []string
	for i := 0; i < 501; i++ {
		to = append(to, fmt.Sprintf("r%03d@customer.example", i))
	}
	raw := []byte("From: anna@contoso.com\r\nTo: " + strings.Join(to, ", ") + "\r\nSubject: many\r\nMessage-Id: <many@x.example>\r\n\r\nhi\r\n")
	_, err = e.sender.Send(ctx, anna, bridge.SendParams{MailboxID: m.ID, RequestID: "r-many", MIMEBase64: b64(raw)})
	var be *bridge.Error
	if !errors.As(err, &be) || be.Kind != bridge.KindUser || be.Code != "too_many_recipients" || !strings.Contains(be.Message, "501") {
		t.Fatalf("501 recipients: %v", err)
	}

	for name, raw := range map[string]string{
		"bad to":      "From: anna@contoso.com\r\nTo: carl@@customer\r\nSubject: x\r\n\r\nhi\r\n",
		"no from":     "To: carl@customer.example\r\nSubject: x\r\n\r\nhi\r\n",
		"no rcpt":     "From: anna@contoso.com\r\nSubject: x\r\n\r\nhi\r\n",
		"no body sep": "From: anna@contoso.com\r\nTo: carl@customer.example\r\nSubject: x",
		"bad id":      "From: anna@contoso.com\r\nTo: carl@customer.example\r\nMessage-Id: nonsense\r\n\r\nhi\r\n",
	} {
		_, err := e.sender.Send(ctx, anna, bridge.SendParams{MailboxID: m.ID, MIMEBase64: b64([]byte(raw))})
		if !errors.As(err, &be) || be.Kind != bridge.KindValidation {
			t.Errorf("%s: %v, want a ValidationError", name, err)
		}
	}
	_, err = e.sender.Send(ctx, anna, bridge.SendParams{MailboxID: m.ID, MIMEBase64: "%%%"})
	if !errors.As(err, &be) || be.Kind != bridge.KindValidation {
		t.Errorf("bad base64: %v", err)
	}
	_, err = e.sender.Send(ctx, anna, bridge.SendParams{MailboxID: m.ID, MIMEBase64: b64([]byte("From: boss@contoso.com\r\nTo: carl@customer.example\r\n\r\nhi\r\n"))})
	if codeOfErr(err) != "sender_not_allowed" {
		t.Errorf("foreign From: %v", err)
	}
	_, err = e.sender.Send(ctx, bridge.Actor{UID: 99}, bridge.SendParams{MailboxID: m.ID, MIMEBase64: b64(raw)})
	if !errors.As(err, &be) || be.Kind != bridge.KindAccess {
		t.Errorf("other user: %v", err)
	}

	if n := e.rt.count() - before; n != 0 {
		t.Fatalf("%d Graph requests for refused messages", n)
	}
	if after := e.sim.Stats("anna@contoso.com"); after != stats || len(e.sim.Sent("anna@contoso.com")) != 0 {
		t.Fatalf("simulator stats changed: %+v -> %+v", stats, after)
	}

	// 500 recipients are fine.
	raw = []byte("From: anna@contoso.com\r\nTo: " + strings.Join(to[:500], ", ") + "\r\nSubject: many\r\nMessage-Id: <many@x.example>\r\n\r\nhi\r\n")
	if _, err := e.sender.Send(ctx, anna, bridge.SendParams{MailboxID: m.ID, RequestID: "r-500", MIMEBase64: b64(raw)}); err != nil {
		t.Fatalf("500 recipients: %v", err)
	}
}

func TestSendRetriedRequestSendsOnce(t *testing.T) {
	e := newSendEnv(t)
	m := e.mailbox("anna@contoso.com", "personal", "anna@contoso.com", 0)
	p := bridge.SendParams{MailboxID: m.ID, RequestID: "odoo-mail-77", MIMEBase64: b64(odooReply("anna@contoso.com", "carl@customer.example", "<m77@odoo.contoso.com>", nil))}
	// The first call and four retries race; then one more retry.
	var wg sync.WaitGroup
	answers := make([]bridge.SendResult, 5)
	errs := make([]error, 5)
	for i := range answers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			answers[i], errs[i] = e.sender.Send(context.Background(), anna, p)
		}()
	}
	wg.Wait()
	before := e.rt.count()
	last, err := e.sender.Send(context.Background(), anna, p)
	if err != nil || e.rt.count() != before {
		t.Fatalf("late retry: %v, %d Graph requests", err, e.rt.count()-before)
	}
	for i := range answers {
		if errs[i] != nil || answers[i] != last {
			t.Fatalf("call %d: %+v %v, want %+v", i, answers[i], errs[i], last)
		}
	}
	if n := len(e.sim.Sent("anna@contoso.com")); n != 1 {
		t.Fatalf("%d sends for one request id", n)
	}
	// A new request id is a new send.
	p.RequestID = "odoo-mail-78"
	if _, err := e.sender.Send(context.Background(), anna, p); err != nil {
		t.Fatal(err)
	}
	if n := len(e.sim.Sent("anna@contoso.com")); n != 2 {
		t.Fatalf("%d sends after a new request id", n)
	}
}

func TestSendSharedMailboxRights(t *testing.T) {
	e := newSendEnv(t)
	e.sim.AddUser("anna@contoso.com", "Anna Example")
	e.sim.AddSharedMailbox("sales@contoso.com", "Sales", m365sim.Grant{User: "anna@contoso.com", FullAccess: true})
	m := e.mailbox("sales@contoso.com", "shared", "anna@contoso.com", 0)
	ctx := context.Background()
	mime := func(n int) string {
		return b64(odooReply("sales@contoso.com", "carl@customer.example", fmt.Sprintf("<sales-%d@odoo.contoso.com>", n), nil))
	}
	_, err := e.sender.Send(ctx, anna, bridge.SendParams{MailboxID: m.ID, RequestID: "x1", MIMEBase64: mime(1)})
	var be *bridge.Error
	if !errors.As(err, &be) || be.Kind != bridge.KindUser || be.Code != "send_as_denied" ||
		!strings.Contains(be.Message, "anna@contoso.com may not send as sales@contoso.com") || !strings.Contains(be.Message, "Send As") {
		t.Fatalf("without Send As: %v", err)
	}
	if n := len(e.sim.Messages("sales@contoso.com", "drafts")); n != 0 {
		t.Errorf("%d drafts left behind", n)
	}
	// Remembered: refused again without asking Microsoft.
	before := e.rt.count()
	_, err = e.sender.Send(ctx, anna, bridge.SendParams{MailboxID: m.ID, RequestID: "x2", MIMEBase64: mime(2)})
	if codeOfErr(err) != "send_as_denied" || e.rt.count() != before {
		t.Fatalf("remembered denial: %v, %d requests", err, e.rt.count()-before)
	}
	// The admin grants Send As; the sidecar is told to forget.
	e.sim.Grant("sales@contoso.com", m365sim.Grant{User: "anna@contoso.com", FullAccess: true, SendAs: true})
	e.sender.Forget(m.ID)
	// The request that failed may be retried under its id.
	res, err := e.sender.Send(ctx, anna, bridge.SendParams{MailboxID: m.ID, RequestID: "x1", MIMEBase64: mime(1)})
	if err != nil {
		t.Fatal(err)
	}
	if res.SentAs != bridge.SentAsSendAs {
		t.Fatalf("sent_as %q", res.SentAs)
	}
	res, err = e.sender.Send(ctx, anna, bridge.SendParams{MailboxID: m.ID, RequestID: "x4", MIMEBase64: mime(4)})
	if err != nil || res.SentAs != bridge.SentAsSendAs {
		t.Fatalf("second send: %+v %v", res, err)
	}
	sent := e.sim.Sent("sales@contoso.com")
	if len(sent) != 2 || sent[0].Via != "draft/send" || sent[1].Via != "sendMail/mime" {
		t.Fatalf("sent %d (%v)", len(sent), sent)
	}
	// Their copies in the shared mailbox's Sent Items are recognised.
	e.sync(m.ID)
	if items := e.outbox(m.ID); len(items) != 0 {
		t.Fatalf("%d Sent Items copies queued for Odoo (first %s)", len(items), items[0].InternetMessageID)
	}
	if n := len(e.sim.Messages("sales@contoso.com", "sentitems")); n != 2 {
		t.Fatalf("%d messages in the shared Sent Items", n)
	}
	// Send As is taken away again: new sends are refused, but a retry of a
	// message that went out still gets its first answer, without Graph.
	e.sim.Grant("sales@contoso.com", m365sim.Grant{User: "anna@contoso.com", FullAccess: true})
	e.sender.Forget(m.ID)
	if _, err := e.sender.Send(ctx, anna, bridge.SendParams{MailboxID: m.ID, RequestID: "x5", MIMEBase64: mime(5)}); codeOfErr(err) != "send_as_denied" {
		t.Fatalf("after revoking: %v", err)
	}
	before = e.rt.count()
	again, err := e.sender.Send(ctx, anna, bridge.SendParams{MailboxID: m.ID, RequestID: "x4", MIMEBase64: mime(4)})
	if err != nil || again != res || e.rt.count() != before {
		t.Fatalf("retry of a sent request: %+v %v (%d requests), want %+v", again, err, e.rt.count()-before, res)
	}
	// The From must be the shared address.
	_, err = e.sender.Send(ctx, anna, bridge.SendParams{MailboxID: m.ID, MIMEBase64: b64(odooReply("anna@contoso.com", "carl@customer.example", "<x@y.example>", nil))})
	if codeOfErr(err) != "sender_not_allowed" {
		t.Fatalf("From the delegate: %v", err)
	}
}

func TestSendInterruptedRequestIsNotResent(t *testing.T) {
	e := newSendEnv(t)
	m := e.mailbox("anna@contoso.com", "personal", "anna@contoso.com", 0)
	// The sidecar stopped while a send was under way.
	if _, _, err := e.st.ClaimSend(m.ID, store.SendRecord{RequestID: "r-9", InternetMessageID: "<m9@odoo.contoso.com>", Status: "sending"}); err != nil {
		t.Fatal(err)
	}
	_, err := e.sender.Send(context.Background(), anna, bridge.SendParams{MailboxID: m.ID, RequestID: "r-9",
		MIMEBase64: b64(odooReply("anna@contoso.com", "carl@customer.example", "<m9@odoo.contoso.com>", nil))})
	if codeOfErr(err) != "send_interrupted" || !strings.Contains(err.Error(), "Sent Items") || e.rt.count() != 0 {
		t.Fatalf("interrupted: %v (%d requests)", err, e.rt.count())
	}
}
