package bridge

import (
	"bytes"
	"context"
	"encoding/base64"
	"encoding/json"
	"errors"
	"net/mail"
	"strings"

	"github.com/maildesk/maildesk/graphsync"
	"github.com/maildesk/maildesk/store"
)

// SearchParams are message.search's params.
type SearchParams struct {
	MailboxID string `json:"mailbox_id"`
	// Query is Graph's $search text: words (in from, subject and body) and
	// KQL properties (from:, to:, cc:, participants:, subject:, body:,
	// attachment:). Empty: the folder as Microsoft 365 holds it now,
	// newest first (drafts, folders MailDesk does not sync).
	Query string `json:"query"`
	// Folder limits the search to one folder ("" = the whole mailbox).
	Folder string `json:"folder"`
	Limit  int    `json:"limit"`
	Cursor string `json:"cursor"`
}

// SearchHit is one message message.search found.
type SearchHit struct {
	MessageSummary
	FolderID string `json:"folder_id"`
	IsDraft  bool   `json:"is_draft"`
	// Indexed is true when the message is in MailDesk's index as well (the
	// synced window); the inbox then merges it with its local result.
	Indexed bool `json:"indexed"`
}

// SearchResult is message.search's answer.
type SearchResult struct {
	Messages   []SearchHit `json:"messages"`
	NextCursor string      `json:"next_cursor"`
	// Capped is true when Graph's 1,000-result limit of one $search was
	// reached: narrower words find the rest.
	Capped bool `json:"capped"`
}

// searchCursor binds Graph's next page link to the mailbox it belongs to.
type searchCursor struct {
	Mailbox string `json:"m"`
	Link    string `json:"l"`
	Seen    int    `json:"n"`
}

// Search answers message.search: it asks Microsoft 365 (Graph $search, or
// the folder's list when Query is empty), so it finds mail outside the
// synced window and words past the index's 160-character snippet.
func (s *Messages) Search(ctx context.Context, a Actor, p SearchParams) (SearchResult, error) {
	mb, err := s.boxes.Load(a, p.MailboxID)
	if err != nil {
		return SearchResult{}, err
	}
	if !Syncable(mb.State) {
		return SearchResult{}, Errorf(KindUser, "not_connected", "Mailbox %s is %s: connect it to search Microsoft 365", mb.Email, mb.State)
	}
	if p.Limit < 0 || p.Limit > 100 {
		return SearchResult{}, Invalid("limit must be between 1 and 100")
	}
	if p.Limit == 0 {
		p.Limit = 25
	}
	q := strings.TrimSpace(p.Query)
	if len(q) > 500 {
		return SearchResult{}, Invalid("The search text is longer than 500 characters")
	}
	folder := p.Folder
	if folder != "" {
		f, ok := NormalizeFolder(folder)
		if !ok {
			return SearchResult{}, Invalid("Unknown folder %q: use inbox, sentitems, drafts, deleteditems, archive or a folder id", p.Folder)
		}
		folder = f
	}
	if q == "" && folder == "" {
		return SearchResult{}, Invalid("Give the words to search for, or a folder to list")
	}
	lq := graphsync.ListQuery{Folder: folder, Search: q, Top: p.Limit}
	var cur searchCursor
	if p.Cursor != "" {
		b, err := base64.RawURLEncoding.DecodeString(p.Cursor)
		if err != nil || json.Unmarshal(b, &cur) != nil || cur.Mailbox != mb.ID || cur.Link == "" {
			return SearchResult{}, Invalid("The cursor is not valid for this mailbox; start the search again without one")
		}
		lq.Link = cur.Link
	}
	gm, err := s.graph.Mailbox(mb.ID, mb.Email)
	if err != nil {
		return SearchResult{}, Internal(err)
	}
	ctx, cancel := context.WithTimeout(ctx, s.timeout)
	defer cancel()
	page, err := gm.ListMessages(ctx, lq)
	if err != nil {
		if graphsync.StatusOf(err) == 400 {
			code, msg := graphsync.CodeOf(err)
			return SearchResult{}, Invalid("Microsoft 365 did not accept the search %q (%s: %s)", q, code, msg)
		}
		return SearchResult{}, graphFailure(mb, err)
	}
	out := SearchResult{Messages: make([]SearchHit, 0, len(page.Messages))}
	for _, gmsg := range page.Messages {
		sm := indexEntry(gmsg.FolderID, gmsg, false)
		hit := SearchHit{FolderID: gmsg.FolderID, IsDraft: gmsg.IsDraft}
		if known, err := s.st.Message(mb.ID, gmsg.ID); err == nil && known.Delivery != store.DeliveryNone {
			// The index knows it: its Odoo references and folder name.
			sm.OdooRefs, sm.Folder, sm.Delivery, sm.DeliveryError = known.OdooRefs, known.Folder, known.Delivery, known.DeliveryError
			hit.Indexed = true
		} else if err != nil && !errors.Is(err, store.ErrNotFound) {
			return SearchResult{}, Internal(err)
		}
		hit.MessageSummary = summary(sm)
		out.Messages = append(out.Messages, hit)
	}
	seen := cur.Seen + len(out.Messages)
	if page.NextLink != "" {
		if q != "" && seen >= graphsync.MaxSearchResults {
			out.Capped = true
		} else {
			b, _ := json.Marshal(searchCursor{Mailbox: mb.ID, Link: page.NextLink, Seen: seen})
			out.NextCursor = base64.RawURLEncoding.EncodeToString(b)
		}
	} else if q != "" && seen >= graphsync.MaxSearchResults {
		out.Capped = true
	}
	return out, nil
}

// loadLive is loadMessage for a message the index may not hold (a search
// result beyond the synced window, a draft): the mailbox's visibility
// rule applies as in loadMessage, and Microsoft 365 must know the message
// in that mailbox.
func (s *Messages) loadLive(ctx context.Context, a Actor, mailboxID, id string) (store.Mailbox, store.Message, error) {
	mb, m, err := s.loadMessage(a, mailboxID, id)
	var be *Error
	if err == nil || !errors.As(err, &be) || be.Kind != KindMissing || mb.ID == "" {
		return mb, m, err
	}
	gm, gerr := s.graph.Mailbox(mb.ID, mb.Email)
	if gerr != nil {
		return mb, m, Internal(gerr)
	}
	ctx, cancel := context.WithTimeout(ctx, s.timeout)
	defer cancel()
	gmsg, gerr := gm.GetMessage(ctx, id)
	if gerr != nil {
		if graphsync.IsNotFound(gerr) || graphsync.StatusOf(gerr) == 400 {
			return mb, m, err
		}
		return mb, m, graphFailure(mb, gerr)
	}
	return mb, indexEntry(gmsg.FolderID, gmsg, false), nil
}

func attachmentInfo(at graphsync.Attachment) AttachmentInfo {
	return AttachmentInfo{ID: at.ID, Name: at.Name, ContentType: at.ContentType, Size: at.Size, IsInline: at.IsInline, ContentID: at.ContentID}
}

// draftHeaders reads a draft's Message-Id, In-Reply-To and References from
// its MIME into h (lower-case names).
func draftHeaders(ctx context.Context, gm *graphsync.Mailbox, id string, h map[string]string) error {
	raw, err := gm.GetMIME(ctx, id)
	if err != nil {
		return err
	}
	msg, err := mail.ReadMessage(bytes.NewReader(raw))
	if err != nil {
		return nil // no readable header block: nothing to thread on
	}
	for _, name := range []string{"Message-Id", "In-Reply-To", "References"} {
		if v := strings.TrimSpace(msg.Header.Get(name)); v != "" {
			h[strings.ToLower(name)] = v
		}
	}
	return nil
}
