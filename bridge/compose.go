package bridge

import (
	"context"
	"encoding/base64"
	"strings"
	"time"

	"github.com/maildesk/maildesk/graphsync"
	"github.com/maildesk/maildesk/store"
)

// The inbox's composer: drafts kept in the mailbox's Drafts folder through
// Graph, resumable from Odoo and from Outlook, and sent from there.
//
// A draft is saved as MIME built here (buildMIME), with the Message-Id the
// addon gives (Odoo's) and the attachments it names copied from Graph
// (forward: the original's; a later save: the previous draft's). Graph keeps
// a MIME draft's own Message-Id, which Graph's createForward/createReply
// would not: they make an Exchange Message-Id and Odoo's threading and
// duplicate checks (by Message-Id) would lose the mail. A MIME draft cannot
// be PATCHed, so a later save makes a new draft and removes the one it
// replaces.
//
// A sent draft is not marked as sent by MailDesk: its Sent Items copy is
// delivered to Odoo by sync and logged by the mailbox's rules like any
// mail sent from Outlook; Odoo's duplicate check (Message-Id) keeps it to
// one posting even if the addon posted it itself.

// AttachmentRef names an attachment of a message in the same mailbox.
type AttachmentRef struct {
	MessageID    string `json:"message_id"`
	AttachmentID string `json:"attachment_id"`
}

// DraftParams are message.save_draft's params: the structured fields of
// message.send (mime_base64 is not taken), plus the draft it replaces and
// attachments to copy from Graph.
type DraftParams struct {
	SendParams
	// DraftID is the draft this save replaces ("" for a new draft). It must
	// be a draft of the mailbox; it is removed once the new one is saved.
	DraftID string `json:"draft_id"`
	// CopyAttachments are attachments of messages of the mailbox to put on
	// the draft as they are (forward, or the previous draft's).
	CopyAttachments []AttachmentRef `json:"copy_attachments"`
}

// DraftResult is message.save_draft's answer.
type DraftResult struct {
	DraftID           string `json:"draft_id"`
	InternetMessageID string `json:"internet_message_id"`
	SavedAt           string `json:"saved_at"`
	// Attachments are the new draft's (a later save copies them by these ids).
	Attachments []AttachmentInfo `json:"attachments"`
}

// SendDraftParams are message.send_draft's params.
type SendDraftParams struct {
	MailboxID string `json:"mailbox_id"`
	DraftID   string `json:"draft_id"`
	UserLogin string `json:"user_login"`
	UserName  string `json:"user_name"`
}

// maxCopied bounds the attachments one save copies from Graph.
const maxCopied = 50

// SaveDraft answers message.save_draft.
func (s *Sender) SaveDraft(ctx context.Context, a Actor, p DraftParams) (DraftResult, error) {
	m, err := s.loadForSend(a, p.SendParams)
	if err != nil {
		return DraftResult{}, err
	}
	if err := sendable(m); err != nil {
		return DraftResult{}, err
	}
	if p.MIMEBase64 != "" {
		return DraftResult{}, Invalid("message.save_draft takes the message fields (to, cc, bcc, subject, body_html, attachments), not mime_base64")
	}
	if id := strings.TrimSpace(p.MessageID); id != "" && !validMessageID(id) {
		return DraftResult{}, Invalid("The Message-Id %q is malformed (expected <local@domain>)", id)
	}
	if len(p.CopyAttachments) > maxCopied {
		return DraftResult{}, Invalid("A draft can copy at most %d attachments, not %d", maxCopied, len(p.CopyAttachments))
	}
	gm, err := s.cfg.Graph.Mailbox(m.ID, m.Email)
	if err != nil {
		return DraftResult{}, Internal(err)
	}
	cctx, cancel := context.WithTimeout(ctx, s.cfg.Timeout)
	defer cancel()
	if p.DraftID != "" {
		old, err := gm.GetMessage(cctx, p.DraftID)
		if err != nil {
			return DraftResult{}, graphFailure(m, err)
		}
		if !old.IsDraft {
			return DraftResult{}, Invalid("Message %s of %s is not a draft: only drafts can be saved over", p.DraftID, m.Email)
		}
	}
	for i, ref := range p.CopyAttachments {
		if ref.MessageID == "" || ref.AttachmentID == "" {
			return DraftResult{}, Invalid("copy_attachments[%d] needs message_id and attachment_id", i)
		}
		at, err := gm.GetAttachment(cctx, ref.MessageID, ref.AttachmentID)
		if err != nil {
			if graphsync.IsNotFound(err) {
				return DraftResult{}, NotFound("Attachment %s of message %s is no longer in %s", ref.AttachmentID, ref.MessageID, m.Email)
			}
			return DraftResult{}, graphFailure(m, err)
		}
		if at.Data == nil {
			return DraftResult{}, Errorf(KindUser, "not_copyable", "Attachment %q is a link to a file, not a file: attach the file itself", at.Name)
		}
		p.Attachments = append(p.Attachments, SendAttachment{Name: at.Name, ContentType: at.ContentType,
			DataBase64: base64.StdEncoding.EncodeToString(at.Data), ContentID: at.ContentID, IsInline: at.IsInline})
	}
	if strings.TrimSpace(p.BodyHTML) == "" {
		p.BodyHTML = "<p></p>" // a MIME message needs a body part
	}
	noRecipients := len(p.To)+len(p.Cc)+len(p.Bcc) == 0
	if noRecipients {
		// A draft may have none yet; the MIME builder wants one: build
		// with the mailbox itself, then take the To header out.
		p.To = []string{m.Email}
	}
	raw, err := buildMIME(m, p.SendParams)
	if err != nil {
		return DraftResult{}, err
	}
	if noRecipients {
		raw = dropHeader(raw, "To")
	}
	if limit := s.maxBytes(m); int64(len(raw)) > limit {
		return DraftResult{}, Errorf(KindUser, "too_large", "The draft is %s and mailbox %s accepts at most %s per message: send large files as links", mb(int64(len(raw))), m.Email, mb(limit))
	}
	out, err := graphsync.Split(raw)
	if err != nil {
		return DraftResult{}, Errorf(KindUser, "too_large", "The draft cannot be saved in Microsoft 365: %s", strings.TrimPrefix(err.Error(), "graphsync: "))
	}
	d, err := gm.CreateDraft(cctx, out, s.cfg.Uploads.For(m.ID))
	detail := s.who(p.SendParams, map[string]any{"draft_id": d.ID, "replaces": p.DraftID, "bytes": len(raw), "copied_attachments": len(p.CopyAttachments)})
	if err != nil {
		detail["result"] = "failed"
		s.auditAs(a, "message.save_draft", m.ID, detail)
		return DraftResult{}, mapGraphError(m, err)
	}
	detail["result"] = "saved"
	s.auditAs(a, "message.save_draft", m.ID, detail)
	if p.DraftID != "" && p.DraftID != d.ID {
		if err := gm.PurgeDraft(cctx, p.DraftID); err != nil && !graphsync.IsNotFound(err) {
			s.cfg.Log.Warn().Err(err).Str("mailbox", m.ID).Msg("draft: the replaced draft was not removed")
		}
	}
	res := DraftResult{DraftID: d.ID, InternetMessageID: d.InternetMessageID, SavedAt: s.cfg.Now().UTC().Format(time.RFC3339), Attachments: []AttachmentInfo{}}
	if len(p.Attachments) > 0 {
		atts, err := gm.ListAttachments(cctx, d.ID, false)
		if err != nil {
			return res, graphFailure(m, err)
		}
		for _, at := range atts {
			res.Attachments = append(res.Attachments, attachmentInfo(at))
		}
	}
	return res, nil
}

// SendDraft answers message.send_draft: Graph sends the saved draft as it
// is. A draft is sent once: a second call for the same draft answers the
// first call's answer.
func (s *Sender) SendDraft(ctx context.Context, a Actor, p SendDraftParams) (SendResult, error) {
	sp := SendParams{MailboxID: p.MailboxID, UserLogin: p.UserLogin, UserName: p.UserName}
	m, err := s.loadForSend(a, sp)
	if err != nil {
		return SendResult{}, err
	}
	if err := sendable(m); err != nil {
		return SendResult{}, err
	}
	if p.DraftID == "" {
		return SendResult{}, Invalid("Parameter draft_id is required")
	}
	key := "draft:" + p.DraftID
	if len(key) > 400 {
		return SendResult{}, Invalid("draft_id is too long")
	}
	res, done, err := s.claimOnce(m, key, "", func(store.SendRecord) error {
		return Errorf(KindUser, "send_in_progress", "This draft is being sent (or an attempt was interrupted): look in Sent Items of %s before sending it again", m.Email)
	})
	if done {
		return res, err
	}
	res, err = s.sendDraft(ctx, a, m, sp, p.DraftID)
	s.recordOutcome(m, key, "", res, err)
	if err == nil && s.cfg.AfterSend != nil {
		// Sync soon, so the Sent Items copy reaches Odoo's records quickly.
		s.cfg.AfterSend(m.ID)
	}
	return res, err
}

func (s *Sender) sendDraft(ctx context.Context, a Actor, m store.Mailbox, sp SendParams, draftID string) (SendResult, error) {
	detail := s.who(sp, map[string]any{"draft_id": draftID, "path": "draft_send"})
	if err := s.deniedBefore(a, m, detail); err != nil {
		return SendResult{}, err
	}
	gm, err := s.cfg.Graph.Mailbox(m.ID, m.Email)
	if err != nil {
		return SendResult{}, Internal(err)
	}
	cctx, cancel := context.WithTimeout(ctx, s.cfg.Timeout)
	defer cancel()
	d, err := gm.GetMessage(cctx, draftID)
	if err != nil {
		return SendResult{}, graphFailure(m, err)
	}
	if !d.IsDraft {
		return SendResult{}, Invalid("Message %s of %s is not a draft (it may have been sent already)", draftID, m.Email)
	}
	detail["internet_message_id"] = d.InternetMessageID
	if err := gm.SendDraft(cctx, draftID); err != nil {
		e := mapGraphError(m, err)
		if e.Code == "send_as_denied" {
			s.remember(m.ID, rightMemo{mode: "denied", delegate: delegateOf(m)})
		}
		detail["result"], detail["code"] = "failed", e.Code
		s.audit(a, m.ID, detail)
		return SendResult{}, e
	}
	res := SendResult{InternetMessageID: d.InternetMessageID, QueuedAt: s.cfg.Now().UTC().Format(time.RFC3339), SentAs: SentAsSelf}
	if m.Kind == "shared" {
		res.SentAs = SentAsUnknown
		if mode := s.learnSentAs(cctx, gm, m, draftID); mode != "" {
			res.SentAs = mode
		}
	}
	detail["result"], detail["sent_as"] = "sent", res.SentAs
	s.audit(a, m.ID, detail)
	return res, nil
}

func validMessageID(id string) bool {
	return strings.HasPrefix(id, "<") && strings.HasSuffix(id, ">") && strings.Contains(id, "@") && !strings.ContainsAny(id, " \r\n")
}

// maxBytes is the largest message the mailbox sends.
func (s *Sender) maxBytes(m store.Mailbox) int64 {
	limit := m.MaxMessageBytes
	if limit <= 0 {
		if st, err := s.cfg.Store.Settings(); err == nil {
			limit = st.Defaults.MaxMessageBytes
		}
	}
	if limit <= 0 {
		limit = 35 << 20
	}
	return limit
}

func (s *Sender) auditAs(a Actor, action, mailboxID string, detail map[string]any) {
	auditAction(s.cfg.Store, s.cfg.Log, a, action, mailboxID, detail)
}

// dropHeader removes every header called name (with its folded lines) from
// the top header block of raw.
func dropHeader(raw []byte, name string) []byte {
	end := headerBlockEnd(raw)
	if end < 0 {
		return raw
	}
	lines := strings.SplitAfter(string(raw[:end]), "\n")
	var out strings.Builder
	skip := false
	for _, l := range lines {
		if l != "" && (l[0] == ' ' || l[0] == '\t') {
			if !skip {
				out.WriteString(l)
			}
			continue
		}
		k, _, _ := strings.Cut(l, ":")
		skip = strings.EqualFold(strings.TrimSpace(k), name)
		if !skip {
			out.WriteString(l)
		}
	}
	return append([]byte(out.String()), raw[end:]...)
}
