package bridge

import (
	"bytes"
	"context"
	"crypto/rand"
	"encoding/base64"
	"encoding/hex"
	"errors"
	"fmt"
	"net/http"
	"net/mail"
	"strings"
	"sync"
	"time"
	"unicode/utf8"

	"github.com/jhillyerd/enmime"
	"github.com/rs/zerolog"

	"github.com/maildesk/maildesk/graphsync"
	"github.com/maildesk/maildesk/store"
)

// Ways a message went out (SendResult.SentAs).
const (
	SentAsSelf     = "self"      // a personal mailbox sent its own mail
	SentAsSendAs   = "send_as"   // a delegate sent as the shared address (Send As)
	SentAsOnBehalf = "on_behalf" // a delegate sent on behalf of the shared address
	SentAsUnknown  = "unknown"   // shared mailbox; Graph did not let us see which right applied
)

// SenderConfig builds a Sender. Zero fields take defaults.
type SenderConfig struct {
	Store     Store
	Graph     *graphsync.Client
	Mailboxes *Mailboxes // the visibility check
	// Uploads keeps Graph's upload budget per mailbox (default: Graph's
	// 150 MB per 5 minutes).
	Uploads *graphsync.UploadBudgets
	Log     zerolog.Logger
	Now     func() time.Time
	// RightsTTL is how long the outcome of a shared mailbox's send (denied,
	// Send As or Send on Behalf) is remembered (default 1 h). A denial is
	// answered without calling Microsoft while remembered.
	RightsTTL time.Duration
	// Timeout bounds one send, uploads included (default 10 min).
	Timeout time.Duration
	// AfterSend, when set, is told the mailbox of each sent draft (the
	// scheduler's kick: the Sent Items copy then reaches Odoo soon).
	AfterSend func(mailboxID string)
}

// Sender answers message.send: checks, idempotency, then Graph.
type Sender struct {
	cfg SenderConfig

	mu       sync.Mutex
	inflight map[string]chan struct{} // mailbox/request id of sends under way; closed when done
	rights   map[string]rightMemo     // by mailbox id
}

// rightMemo is what Exchange said about a delegate's rights on a shared
// mailbox. Graph has no API to list Exchange mailbox permissions with
// delegated scopes (Graph docs outlook-send-mail-from-other-user.md), so the
// only honest way to know is to try and remember the outcome.
type rightMemo struct {
	mode     string // SentAsSendAs, SentAsOnBehalf, or "denied"
	delegate string
	at       time.Time
}

// NewSender checks cfg and builds a Sender.
func NewSender(cfg SenderConfig) (*Sender, error) {
	if cfg.Store == nil || cfg.Graph == nil || cfg.Mailboxes == nil {
		return nil, errors.New("bridge: sender needs a store, a Graph client and the mailboxes")
	}
	if cfg.Uploads == nil {
		cfg.Uploads = graphsync.NewUploadBudgets(0, 0, nil)
	}
	if cfg.Now == nil {
		cfg.Now = time.Now
	}
	if cfg.RightsTTL <= 0 {
		cfg.RightsTTL = time.Hour
	}
	if cfg.Timeout <= 0 {
		cfg.Timeout = 10 * time.Minute
	}
	return &Sender{cfg: cfg, inflight: map[string]chan struct{}{}, rights: map[string]rightMemo{}}, nil
}

// SendAttachment is an attachment of a structured message.send.
type SendAttachment struct {
	Name        string `json:"name"`
	ContentType string `json:"content_type"`
	DataBase64  string `json:"data_base64"`
	ContentID   string `json:"content_id"`
	IsInline    bool   `json:"is_inline"`
}

// SendParams are message.send's params: mailbox_id, request_id, and either
// mime_base64 (Odoo's raw message) or the structured fields.
type SendParams struct {
	MailboxID string `json:"mailbox_id"`
	// RequestID is the client's idempotency key: a retried call with the
	// same id answers the first answer and sends nothing.
	RequestID  string `json:"request_id"`
	MIMEBase64 string `json:"mime_base64"`

	To          []string         `json:"to"`
	Cc          []string         `json:"cc"`
	Bcc         []string         `json:"bcc"`
	Subject     string           `json:"subject"`
	BodyHTML    string           `json:"body_html"`
	Attachments []SendAttachment `json:"attachments"`
	InReplyTo   string           `json:"in_reply_to"`
	References  string           `json:"references"`
	// MessageID is the Message-Id of a structured message (Odoo's, so
	// replies thread back to its record); "" makes one.
	MessageID string `json:"message_id"`

	// UserLogin and UserName name the Odoo user of context.uid (the one who
	// sends) for the audit; they grant nothing.
	UserLogin string `json:"user_login"`
	UserName  string `json:"user_name"`
}

// SendResult is message.send's answer.
type SendResult struct {
	InternetMessageID string `json:"internet_message_id"`
	QueuedAt          string `json:"queued_at"` // RFC 3339 UTC: when Microsoft accepted it (202, queued, not yet delivered)
	SentAs            string `json:"sent_as"`   // self | send_as | on_behalf | unknown
}

func (p *SendParams) structured() bool {
	return len(p.To)+len(p.Cc)+len(p.Bcc)+len(p.Attachments) > 0 || p.Subject != "" || p.BodyHTML != "" || p.InReplyTo != "" || p.References != ""
}

// checked is a message that passed every check before Graph.
type checked struct {
	raw        []byte
	msgID      string
	recipients int
}

// Send answers message.send.
//
// Only the Odoo user who sends (context.uid) counts: the mailbox's owner and
// assigned users may send, anyone else only when the mailbox allows everyone
// (anyone_may_send). Seeing the mailbox (main user, MailDesk admin) is not
// enough. The addon checks the same rule before calling; this is the second
// line.
func (s *Sender) Send(ctx context.Context, a Actor, p SendParams) (SendResult, error) {
	m, err := s.loadForSend(a, p)
	if err != nil {
		return SendResult{}, err
	}
	if len(p.RequestID) > 200 {
		return SendResult{}, Invalid("request_id is longer than 200 characters")
	}
	if err := sendable(m); err != nil {
		return SendResult{}, err
	}
	msg, err := s.check(m, p)
	if err != nil {
		s.audit(a, m.ID, s.who(p, map[string]any{"request_id": p.RequestID, "result": "refused", "code": AsError(err).Code}))
		return SendResult{}, err
	}

	// Idempotency: one send per request id.
	key := m.ID + "/" + p.RequestID
	if p.RequestID != "" {
		// A concurrent call with the same request id waits for the first
		// one, then answers what it answered.
		for {
			s.mu.Lock()
			wait, busy := s.inflight[key]
			if !busy {
				s.inflight[key] = make(chan struct{})
			}
			s.mu.Unlock()
			if !busy {
				break
			}
			select {
			case <-wait:
			case <-ctx.Done():
				return SendResult{}, Errorf(KindUser, "send_in_progress", "This message (request %s) is being sent right now; wait for that attempt to finish", p.RequestID)
			}
		}
		defer func() {
			s.mu.Lock()
			close(s.inflight[key])
			delete(s.inflight, key)
			s.mu.Unlock()
		}()
		res, done, err := s.claimOnce(m, p.RequestID, msg.msgID, func(rec store.SendRecord) error {
			// Not under way here: an earlier attempt was cut off (the
			// sidecar stopped) after it may have reached Microsoft.
			return Errorf(KindUser, "send_interrupted", "An earlier attempt to send this message (request %s, %s) was interrupted and may have gone out: check Sent Items of %s before sending it again with a new request", p.RequestID, rec.InternetMessageID, m.Email)
		})
		if done {
			return res, err
		}
	}
	res, err := s.deliver(ctx, a, m, p, msg)
	if p.RequestID != "" {
		s.recordOutcome(m, p.RequestID, msg.msgID, res, err)
	}
	return res, err
}

// deniedBefore refuses (audited) a shared mailbox whose delegate Exchange
// refused Send As within RightsTTL; nil otherwise.
func (s *Sender) deniedBefore(a Actor, m store.Mailbox, detail map[string]any) error {
	if m.Kind != "shared" {
		return nil
	}
	memo, ok := s.memo(m.ID)
	if !ok || memo.mode != "denied" {
		return nil
	}
	e := sendAsDenied(m, memo.delegate)
	detail["result"], detail["code"], detail["remembered"] = "refused", e.Code, true
	s.audit(a, m.ID, detail)
	return e
}

// learnSentAs reads a shared mailbox's sent draft back to see whether
// Exchange used Send As or Send on Behalf, remembers it and returns it
// ("" when the copy could not be read).
func (s *Sender) learnSentAs(ctx context.Context, gm *graphsync.Mailbox, m store.Mailbox, draftID string) string {
	c, err := gm.GetSentCopy(ctx, draftID)
	if err != nil {
		s.cfg.Log.Warn().Err(err).Str("mailbox", m.ID).Msg("send: could not read the sent copy to see which right Exchange used")
		return ""
	}
	mode := SentAsSendAs
	if c.OnBehalf() {
		mode = SentAsOnBehalf
	}
	s.remember(m.ID, rightMemo{mode: mode, delegate: delegateOf(m)})
	return mode
}

// claimOnce claims request key of mailbox m for one attempt. done is true
// when an earlier attempt answers instead: sent (its answer), under way or
// cut off (interrupted's error). A failed attempt is tried again.
func (s *Sender) claimOnce(m store.Mailbox, key, msgID string, interrupted func(store.SendRecord) error) (SendResult, bool, error) {
	rec, claimed, err := s.cfg.Store.ClaimSend(m.ID, store.SendRecord{RequestID: key, InternetMessageID: msgID, Status: "sending"})
	if err != nil {
		return SendResult{}, true, Internal(err)
	}
	if claimed {
		return SendResult{}, false, nil
	}
	switch rec.Status {
	case "sent":
		return SendResult{InternetMessageID: rec.InternetMessageID, QueuedAt: rec.QueuedAt.UTC().Format(time.RFC3339), SentAs: rec.SentAs}, true, nil
	case "sending":
		return SendResult{}, true, interrupted(rec)
	}
	// failed: nothing went out; try again under the same key.
	rec.Status, rec.Error, rec.InternetMessageID = "sending", "", msgID
	if err := s.cfg.Store.PutSend(m.ID, rec); err != nil {
		return SendResult{}, true, Internal(err)
	}
	return SendResult{}, false, nil
}

// recordOutcome stores how the attempt of request key ended.
func (s *Sender) recordOutcome(m store.Mailbox, key, msgID string, res SendResult, err error) {
	rec := store.SendRecord{RequestID: key, InternetMessageID: msgID, Status: "sent", SentAs: res.SentAs}
	if err != nil {
		rec.Status, rec.Error = "failed", AsError(err).Code
	} else {
		if res.InternetMessageID != "" {
			rec.InternetMessageID = res.InternetMessageID
		}
		rec.QueuedAt, _ = time.Parse(time.RFC3339Nano, res.QueuedAt)
	}
	if perr := s.cfg.Store.PutSend(m.ID, rec); perr != nil && err == nil {
		s.cfg.Log.Error().Err(perr).Str("mailbox", m.ID).Msg("send: record the outcome")
	}
}

// deliver sends a checked message through Graph.
func (s *Sender) deliver(ctx context.Context, a Actor, m store.Mailbox, p SendParams, msg checked) (SendResult, error) {
	detail := s.who(p, map[string]any{"request_id": p.RequestID, "internet_message_id": msg.msgID, "recipients": msg.recipients, "bytes": len(msg.raw)})
	// Checked after the request id, so a retry of a message that went out
	// still gets its first answer.
	if err := s.deniedBefore(a, m, detail); err != nil {
		return SendResult{}, err
	}
	// Recorded before sending, so a Sent Items copy synced at any time is
	// recognised and not delivered to Odoo a second time.
	if err := s.cfg.Store.MarkSentByUs(m.ID, msg.msgID); err != nil {
		return SendResult{}, Internal(err)
	}
	out, err := graphsync.Split(msg.raw)
	if err != nil {
		e := Errorf(KindUser, "too_large", "The message cannot be sent through Microsoft 365: %s", strings.TrimPrefix(err.Error(), "graphsync: "))
		detail["result"], detail["code"] = "refused", e.Code
		s.audit(a, m.ID, detail)
		return SendResult{}, e
	}
	memo, known := s.memo(m.ID)
	if m.Kind == "shared" && !known && len(out.Large) == 0 {
		// Send the first message of a shared mailbox as a draft: the sent
		// draft's id then shows whether Exchange used Send As or Send on
		// Behalf (sender vs from), which sendMail does not tell.
		out.Draft = true
	}
	gm, err := s.cfg.Graph.Mailbox(m.ID, m.Email)
	if err != nil {
		return SendResult{}, Internal(err)
	}
	cctx, cancel := context.WithTimeout(ctx, s.cfg.Timeout)
	defer cancel()
	st, err := gm.Send(cctx, out, s.cfg.Uploads.For(m.ID))
	detail["path"], detail["graph_requests"] = st.Path, st.Requests
	if st.Chunks > 0 {
		detail["upload_chunks"], detail["uploaded_bytes"] = st.Chunks, st.Uploaded
	}
	if err != nil {
		e := s.graphError(m, err)
		if e.Code == "send_as_denied" {
			s.remember(m.ID, rightMemo{mode: "denied", delegate: delegateOf(m)})
		}
		detail["result"], detail["code"] = "failed", e.Code
		s.audit(a, m.ID, detail)
		if e.Kind == KindInternal {
			s.cfg.Log.Error().Err(err).Str("mailbox", m.ID).Msg("send failed")
		}
		return SendResult{}, e
	}
	res := SendResult{InternetMessageID: msg.msgID, QueuedAt: s.cfg.Now().UTC().Format(time.RFC3339), SentAs: SentAsSelf}
	if id := st.DraftInternetID; id != "" && id != msg.msgID {
		// Exchange gave the draft a Message-Id of its own: recipients see
		// that one, so answer it and recognise its Sent Items copy too.
		if err := s.cfg.Store.MarkSentByUs(m.ID, id); err != nil {
			s.cfg.Log.Error().Err(err).Str("mailbox", m.ID).Msg("send: mark the rewritten Message-Id")
		}
		s.cfg.Log.Warn().Str("mailbox", m.ID).Str("ours", msg.msgID).Str("graph", id).Msg("send: Microsoft 365 replaced the message's Message-Id")
		detail["message_id_rewritten_to"] = id
		res.InternetMessageID = id
	}
	if m.Kind == "shared" {
		res.SentAs = SentAsUnknown
		if known {
			res.SentAs = memo.mode
		}
		if st.DraftID != "" {
			if mode := s.learnSentAs(cctx, gm, m, st.DraftID); mode != "" {
				res.SentAs = mode
			}
		}
	}
	detail["result"], detail["sent_as"] = "sent", res.SentAs
	s.audit(a, m.ID, detail)
	return res, nil
}

// loadForSend returns the mailbox if the acting Odoo user may send through
// it: MissingError when there is no such mailbox, AccessError (forbidden,
// audited) when the user is neither its owner nor an assigned user and the
// mailbox does not allow everyone.
func (s *Sender) loadForSend(a Actor, p SendParams) (store.Mailbox, error) {
	if p.MailboxID == "" {
		return store.Mailbox{}, Invalid("Parameter mailbox_id is required")
	}
	m, err := s.cfg.Store.Mailbox(p.MailboxID)
	if err != nil {
		if errors.Is(err, store.ErrNotFound) {
			return store.Mailbox{}, NotFound("Mailbox %s does not exist (it may have been deleted)", p.MailboxID)
		}
		return store.Mailbox{}, Internal(err)
	}
	if MaySend(&m, a.UID) {
		return m, nil
	}
	var e *Error
	if a.UID <= 0 {
		e = Forbidden("Sending through mailbox %s needs the Odoo user who sends (context.uid): update the MailDesk addon", m.Email)
	} else {
		e = Forbidden("Odoo user %s may not send as %s: only the mailbox's owner and its assigned users may. Ask a MailDesk administrator to add the user to the mailbox's users, or to allow anyone to send from this address (Anyone may send from this address)", userLabel(a, p), m.Email)
	}
	s.audit(a, m.ID, s.who(p, map[string]any{"request_id": p.RequestID, "result": "refused", "code": e.Code}))
	return store.Mailbox{}, e
}

// who adds the sending Odoo user's login and name (when the addon gave
// them) to an audit detail.
func (s *Sender) who(p SendParams, detail map[string]any) map[string]any {
	if l := strings.TrimSpace(p.UserLogin); l != "" {
		detail["user_login"] = clip(l, 100)
	}
	if n := strings.TrimSpace(p.UserName); n != "" {
		detail["user_name"] = clip(n, 100)
	}
	return detail
}

func userLabel(a Actor, p SendParams) string {
	label := fmt.Sprintf("#%d", a.UID)
	if l := strings.TrimSpace(p.UserLogin); l != "" {
		label = fmt.Sprintf("%s (#%d)", clip(l, 100), a.UID)
	}
	return label
}

func clip(s string, n int) string {
	if len(s) <= n {
		return s
	}
	for n > 0 && !utf8.RuneStart(s[n]) {
		n--
	}
	return s[:n]
}

func delegateOf(m store.Mailbox) string {
	for _, d := range []string{m.ConnectedAs, m.SignInEmail} {
		if d != "" {
			return d
		}
	}
	return "the signed-in delegate"
}

func sendAsDenied(m store.Mailbox, delegate string) *Error {
	return Errorf(KindUser, "send_as_denied", "%s may not send as %s: ask the Exchange admin for Send As or Send on Behalf on %s (Exchange admin center → Recipients → Mailboxes → %s → Delegation)", delegate, m.Email, m.Email, m.Email)
}

func (s *Sender) memo(mailboxID string) (rightMemo, bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	r, ok := s.rights[mailboxID]
	if !ok || s.cfg.Now().Sub(r.at) > s.cfg.RightsTTL {
		return rightMemo{}, false
	}
	return r, true
}

func (s *Sender) remember(mailboxID string, r rightMemo) {
	r.at = s.cfg.Now()
	s.mu.Lock()
	s.rights[mailboxID] = r
	s.mu.Unlock()
}

// Forget drops what the sender remembers about a mailbox's send rights (the
// admin changed them, or the mailbox was reconnected).
func (s *Sender) Forget(mailboxID string) {
	s.mu.Lock()
	delete(s.rights, mailboxID)
	s.mu.Unlock()
}

// sendable refuses mailboxes that cannot send now.
func sendable(m store.Mailbox) error {
	switch {
	case Syncable(m.State):
		return nil
	case m.State == StateReauthRequired:
		return Errorf(KindUser, "reauth_required", "Mailbox %s needs its owner to sign in again (Connect) before it can send", m.Email)
	default:
		return Errorf(KindUser, "not_connected", "Mailbox %s is %s: connect it before sending", m.Email, m.State)
	}
}

// check builds the raw message and runs every check that needs no Graph
// call: MIME and addresses, From, recipient count, size. It adds a
// Message-Id when the message has none.
func (s *Sender) check(m store.Mailbox, p SendParams) (checked, error) {
	var raw []byte
	switch {
	case p.MIMEBase64 != "" && p.structured():
		return checked{}, Invalid("Give either mime_base64 or the structured fields (to, cc, bcc, subject, body_html, attachments, in_reply_to, references), not both")
	case p.MIMEBase64 != "":
		b, err := base64.StdEncoding.DecodeString(strings.Map(dropSpace, p.MIMEBase64))
		if err != nil || len(b) == 0 {
			return checked{}, Invalid("mime_base64 is not valid base64")
		}
		raw = b
	case p.structured():
		b, err := buildMIME(m, p)
		if err != nil {
			return checked{}, err
		}
		raw = b
	default:
		return checked{}, Invalid("Nothing to send: give mime_base64 or the message fields (to, subject, body_html...)")
	}
	settings, err := s.cfg.Store.Settings()
	if err != nil {
		return checked{}, Internal(err)
	}
	limit := s.maxBytes(m)
	maxRcpt := settings.Defaults.MaxRecipients
	if maxRcpt <= 0 {
		maxRcpt = 500
	}
	// Size first: it needs no parsing.
	if int64(len(raw)) > limit {
		return checked{}, Errorf(KindUser, "too_large", "The message is %s and mailbox %s accepts at most %s per message (Exchange counts the encoded size, attachments included): send large files as links", mb(int64(len(raw))), m.Email, mb(limit))
	}
	hdrEnd := headerBlockEnd(raw)
	if hdrEnd < 0 {
		return checked{}, Invalid("The message is not valid MIME: no blank line after its headers")
	}
	msg, err := mail.ReadMessage(bytes.NewReader(raw))
	if err != nil {
		return checked{}, Invalid("The message is not valid MIME: %v", err)
	}
	env, err := enmime.ReadEnvelope(bytes.NewReader(raw))
	if err != nil {
		return checked{}, Invalid("The message is not valid MIME: %v", err)
	}
	for _, e := range env.Errors {
		if e.Severe {
			return checked{}, Invalid("The message is not valid MIME: %s", e.Error())
		}
	}
	from, err := msg.Header.AddressList("From")
	if err != nil || len(from) != 1 || !ValidEmail(from[0].Address) {
		return checked{}, Invalid("The message needs exactly one valid From address, not %q", msg.Header.Get("From"))
	}
	if !strings.EqualFold(from[0].Address, m.Email) {
		return checked{}, Errorf(KindUser, "sender_not_allowed", "The message is from %s, but mailbox %s can only send as %s: set the outgoing mail server's FROM filter (or the sender) to %s", from[0].Address, m.Email, m.Email, m.Email)
	}
	seen := map[string]bool{}
	for _, h := range []string{"To", "Cc", "Bcc"} {
		if strings.TrimSpace(msg.Header.Get(h)) == "" {
			continue
		}
		list, err := msg.Header.AddressList(h)
		if err != nil {
			return checked{}, Invalid("The %s header holds a malformed address: %v", h, err)
		}
		for _, ad := range list {
			if !ValidEmail(ad.Address) {
				return checked{}, Invalid("%q in %s is not a valid e-mail address", ad.Address, h)
			}
			seen[strings.ToLower(ad.Address)] = true
		}
	}
	if len(seen) == 0 {
		return checked{}, Invalid("The message has no recipients (To, Cc or Bcc)")
	}
	if len(seen) > maxRcpt {
		return checked{}, Errorf(KindUser, "too_many_recipients", "The message has %d recipients; Exchange accepts at most %d per message: split the list or use a mailing list", len(seen), maxRcpt)
	}
	id := strings.TrimSpace(msg.Header.Get("Message-Id"))
	if id == "" {
		id = newMessageID(m.Email)
		raw = append([]byte("Message-ID: "+id+"\r\n"), raw...)
	} else if !strings.HasPrefix(id, "<") || !strings.HasSuffix(id, ">") || !strings.Contains(id, "@") {
		return checked{}, Invalid("The Message-Id %q is malformed (expected <local@domain>)", id)
	}
	return checked{raw: raw, msgID: id, recipients: len(seen)}, nil
}

func dropSpace(r rune) rune {
	if r == '\r' || r == '\n' || r == ' ' || r == '\t' {
		return -1
	}
	return r
}

func headerBlockEnd(raw []byte) int {
	if i := bytes.Index(raw, []byte("\r\n\r\n")); i >= 0 {
		return i
	}
	return bytes.Index(raw, []byte("\n\n"))
}

func mb(n int64) string {
	return fmt.Sprintf("%.1f MB", float64(n)/(1<<20))
}

// newMessageID makes a Message-Id in the mailbox's domain.
func newMessageID(email string) string {
	b := make([]byte, 12)
	_, _ = rand.Read(b)
	domain := "maildesk.invalid"
	if at := strings.LastIndexByte(email, '@'); at >= 0 && at+1 < len(email) {
		domain = email[at+1:]
	}
	return "<maildesk." + hex.EncodeToString(b) + "@" + domain + ">"
}

// buildMIME turns structured params into MIME, From the mailbox.
func buildMIME(m store.Mailbox, p SendParams) ([]byte, error) {
	b := enmime.Builder().From("", m.Email).Subject(p.Subject).HTML([]byte(p.BodyHTML))
	var bcc []string // enmime leaves Bcc out of the header; Graph's MIME send reads it there
	for _, list := range []struct {
		name string
		in   []string
		add  func(enmime.MailBuilder, string, string) enmime.MailBuilder
	}{
		{"to", p.To, enmime.MailBuilder.To},
		{"cc", p.Cc, enmime.MailBuilder.CC},
		{"bcc", p.Bcc, enmime.MailBuilder.BCC},
	} {
		for _, s := range list.in {
			a, err := mail.ParseAddress(s)
			if err != nil || !ValidEmail(a.Address) {
				return nil, Invalid("%q in %s is not a valid e-mail address", s, list.name)
			}
			b = list.add(b, a.Name, a.Address)
			if list.name == "bcc" {
				bcc = append(bcc, a.String())
			}
		}
	}
	if len(bcc) > 0 {
		b = b.Header("Bcc", strings.Join(bcc, ", "))
	}
	for i, a := range p.Attachments {
		data, err := base64.StdEncoding.DecodeString(strings.Map(dropSpace, a.DataBase64))
		if err != nil {
			return nil, Invalid("attachments[%d] (%s): data_base64 is not valid base64", i, a.Name)
		}
		if a.Name == "" {
			return nil, Invalid("attachments[%d] needs a name", i)
		}
		ct := a.ContentType
		if ct == "" {
			ct = "application/octet-stream"
		}
		if a.IsInline {
			b = b.AddInline(data, ct, a.Name, a.ContentID)
		} else {
			b = b.AddAttachment(data, ct, a.Name)
		}
	}
	for _, h := range []struct{ name, val string }{{"In-Reply-To", p.InReplyTo}, {"References", p.References}} {
		if v := strings.TrimSpace(h.val); v != "" {
			if strings.ContainsAny(v, "\r\n") {
				return nil, Invalid("%s must be one line", h.name)
			}
			b = b.Header(h.name, v)
		}
	}
	id := strings.TrimSpace(p.MessageID)
	if id == "" {
		id = newMessageID(m.Email)
	} else if !validMessageID(id) {
		return nil, Invalid("The Message-Id %q is malformed (expected <local@domain>)", id)
	}
	b = b.Header("Message-ID", id)
	root, err := b.Build()
	if err != nil {
		return nil, Invalid("Cannot build the message: %v", err)
	}
	var buf bytes.Buffer
	if err := root.Encode(&buf); err != nil {
		return nil, Internal(fmt.Errorf("bridge: encode MIME: %w", err))
	}
	return buf.Bytes(), nil
}

// graphError maps a failed Graph call to what the Odoo user sees.
func (s *Sender) graphError(m store.Mailbox, err error) *Error {
	return mapGraphError(m, err)
}

func mapGraphError(m store.Mailbox, err error) *Error {
	var be *Error
	switch {
	case errors.As(err, &be):
		return be
	case graphsync.IsReauth(err):
		return &Error{Kind: KindUser, Code: "reauth_required", Message: fmt.Sprintf("Mailbox %s needs its owner to sign in again (Connect)", m.Email), Err: err}
	case graphsync.IsSendAsDenied(err):
		e := sendAsDenied(m, delegateOf(m))
		if m.Kind != "shared" {
			e.Message = fmt.Sprintf("Microsoft 365 refused to send from %s as the signed-in user %s: the mailbox owner must sign in again with the mailbox's own account", m.Email, delegateOf(m))
		}
		e.Err = err
		return e
	case errors.Is(err, context.DeadlineExceeded):
		return &Error{Kind: KindUser, Code: "graph_error", Message: "Microsoft 365 did not answer in time; try again later", Err: err}
	}
	status := graphsync.StatusOf(err)
	code, msg := graphsync.CodeOf(err)
	switch {
	case status == http.StatusTooManyRequests:
		return &Error{Kind: KindUser, Code: "throttled", Message: fmt.Sprintf("Microsoft 365 is throttling mailbox %s; try again in a few minutes", m.Email), Err: err}
	case status == http.StatusForbidden:
		return &Error{Kind: KindUser, Code: "graph_error", Message: fmt.Sprintf("Microsoft 365 refused access to mailbox %s (%s): check the mailbox permissions in Exchange and the app's consent", m.Email, orDash(code)), Err: err}
	case status >= 400:
		detail := strings.TrimSpace(code + ": " + msg)
		return &Error{Kind: KindUser, Code: "graph_error", Message: fmt.Sprintf("Microsoft 365 refused the request for %s (%d %s)", m.Email, status, strings.Trim(detail, ": ")), Err: err}
	}
	return &Error{Kind: KindUser, Code: "graph_error", Message: fmt.Sprintf("Microsoft 365 could not be reached for %s; try again later", m.Email), Err: err}
}

func orDash(s string) string {
	if s == "" {
		return "-"
	}
	return s
}

func (s *Sender) audit(a Actor, mailboxID string, detail map[string]any) {
	auditAction(s.cfg.Store, s.cfg.Log, a, "message.send", mailboxID, detail)
}

// auditAction writes an audit entry (never bodies or secrets).
func auditAction(st Store, log zerolog.Logger, a Actor, action, mailboxID string, detail map[string]any) {
	name := "odoo"
	if a.UID == 0 {
		name = "sidecar"
	}
	if err := st.Audit(store.AuditEntry{UID: a.UID, Actor: name, Action: action, MailboxID: mailboxID, Detail: detail}); err != nil {
		log.Error().Err(err).Str("action", action).Str("mailbox", mailboxID).Msg("audit entry not written")
	}
}
