package bridge

import (
	"bytes"
	"container/list"
	"context"
	"encoding/base64"
	"errors"
	"fmt"
	"html"
	"regexp"
	"strings"
	"sync"
	"time"
	"unicode"
	"unicode/utf8"

	"github.com/microcosm-cc/bluemonday"

	"github.com/maildesk/maildesk/graphsync"
	"github.com/maildesk/maildesk/store"
)

// Messages serves the message index and on-demand Graph fetches:
// folder.list, message.list, message.get, message.attachment. Bodies and
// attachments come from Graph when asked for and are kept in a cache bounded
// in bytes.
type Messages struct {
	st     Store
	boxes  *Mailboxes
	graph  *graphsync.Client
	cache  *byteCache
	policy *bluemonday.Policy
	// Timeout bounds each on-demand Graph fetch.
	timeout time.Duration
}

// NewMessages builds the message service; cacheBytes bounds the body and
// attachment cache (default 64 MiB).
func NewMessages(st Store, boxes *Mailboxes, graph *graphsync.Client, cacheBytes int64) *Messages {
	if cacheBytes <= 0 {
		cacheBytes = 64 << 20
	}
	return &Messages{st: st, boxes: boxes, graph: graph, cache: newByteCache(cacheBytes), policy: MailPolicy(), timeout: 30 * time.Second}
}

// MailPolicy is the sanitiser for mail HTML: bluemonday's UGC policy (no
// scripts, no event handlers, no forms, no iframes) plus inline styles and
// the layout attributes mail uses. Remote images are not loaded by the
// viewer: their src moves to data-remote-src so the addon can offer "show
// images"; cid: images stay for the addon to resolve from attachments.
func MailPolicy() *bluemonday.Policy {
	p := bluemonday.UGCPolicy()
	p.AllowStyling()
	p.AllowUnsafe(false)
	p.AllowAttrs("style").Globally()
	p.AllowAttrs("align", "valign", "bgcolor", "width", "height", "border", "cellpadding", "cellspacing", "colspan", "rowspan").Globally()
	p.AllowElements("font", "center")
	p.AllowAttrs("color", "face", "size").OnElements("font")
	p.AllowAttrs("data-remote-src").OnElements("img")
	p.AllowURLSchemes("http", "https", "mailto", "cid", "data")
	p.RequireNoReferrerOnLinks(true)
	p.AddTargetBlankToFullyQualifiedLinks(true)
	return p
}

var reRemoteImg = regexp.MustCompile(`(?i)(<img\b[^>]*?\s)src\s*=\s*("https?://[^"]*"|'https?://[^']*')`)

// SanitizeMailHTML makes mail HTML safe to show in Odoo.
func (s *Messages) SanitizeMailHTML(body string) string {
	body = reRemoteImg.ReplaceAllString(body, `${1}data-remote-src=$2`)
	return s.policy.Sanitize(body)
}

// FolderListParams are folder.list's params.
type FolderListParams struct {
	MailboxID string `json:"mailbox_id"`
	// All lists every folder of the mailbox in Microsoft 365, subfolders
	// included, instead of the synced ones (FolderTree).
	All bool `json:"all"`
}

// FolderView is one folder of folder.list.
type FolderView struct {
	ID        string `json:"id"`
	Name      string `json:"name"`
	WellKnown string `json:"well_known"`
	Unread    int64  `json:"unread"`
	Total     int64  `json:"total"`
	// With all: the parent folder's id, the display path from the top
	// ("Inbox/Clients"), the depth (0: top level) and whether it syncs.
	ParentID string `json:"parent_id,omitempty"`
	Path     string `json:"path,omitempty"`
	Depth    int    `json:"depth,omitempty"`
	Synced   bool   `json:"synced,omitempty"`
}

var folderNames = map[string]string{"inbox": "Inbox", "sentitems": "Sent Items", "drafts": "Drafts",
	"deleteditems": "Deleted Items", "archive": "Archive", "junkemail": "Junk Email"}

// FolderList lists the mailbox's synced folders with the index's counts.
func (s *Messages) FolderList(a Actor, p FolderListParams) ([]FolderView, error) {
	mb, err := s.boxes.Load(a, p.MailboxID)
	if err != nil {
		return nil, err
	}
	counts, err := s.st.FolderCounts(mb.ID)
	if err != nil {
		return nil, Internal(err)
	}
	out := make([]FolderView, 0, len(mb.Folders))
	for _, f := range mb.Folders {
		v := FolderView{ID: f, Name: folderNames[f], Total: counts[f].Total, Unread: counts[f].Unread}
		if v.Name != "" {
			v.WellKnown = f
		} else {
			v.Name = f
		}
		if c, err := s.st.Cursor(mb.ID, f); err == nil && c.FolderID != "" {
			v.ID = c.FolderID
		}
		out = append(out, v)
	}
	return out, nil
}

// MessageListParams are message.list's params.
type MessageListParams struct {
	MailboxID  string `json:"mailbox_id"`
	Folder     string `json:"folder"`
	Limit      int    `json:"limit"`
	Cursor     string `json:"cursor"`
	UnreadOnly bool   `json:"unread_only"`
	Query      string `json:"query"`
	// Address keeps the mail from, to or cc this address (exact, any case):
	// the mail with one contact (the partner's Emails button).
	Address string `json:"address"`
}

// MessageSummary is one row of message.list.
type MessageSummary struct {
	ID                string          `json:"id"`
	InternetMessageID string          `json:"internet_message_id"`
	ConversationID    string          `json:"conversation_id"`
	Subject           string          `json:"subject"`
	From              store.Address   `json:"from"`
	To                []store.Address `json:"to"`
	Cc                []store.Address `json:"cc"`
	ReceivedAt        time.Time       `json:"received_at"`
	IsRead            bool            `json:"is_read"`
	Flagged           bool            `json:"flagged"`
	HasAttachments    bool            `json:"has_attachments"`
	Snippet           string          `json:"snippet"`
	OdooRefs          []store.OdooRef `json:"odoo_refs"`
	// Delivery is the message's state towards Odoo (queued, posted,
	// duplicate, unrouted, excluded, failed, sent_by_maildesk);
	// DeliveryError is Odoo's reason for excluded and failed.
	Delivery      string `json:"delivery"`
	DeliveryError string `json:"delivery_error,omitempty"`
	// Sensitivity is Outlook's (normal, personal, private, confidential).
	Sensitivity string `json:"sensitivity,omitempty"`
}

// MessageListResult is message.list's answer.
type MessageListResult struct {
	Messages   []MessageSummary `json:"messages"`
	NextCursor string           `json:"next_cursor"`
}

func summary(m store.Message) MessageSummary {
	s := MessageSummary{ID: m.ID, InternetMessageID: m.InternetMessageID, ConversationID: m.ConversationID, Subject: m.Subject,
		From: m.From, To: m.To, Cc: m.Cc, ReceivedAt: m.ReceivedAt, IsRead: m.IsRead, Flagged: m.Flagged, HasAttachments: m.HasAttachments,
		Snippet: m.Snippet, OdooRefs: m.OdooRefs, Delivery: m.Delivery, DeliveryError: m.DeliveryError, Sensitivity: m.Sensitivity}
	if s.To == nil {
		s.To = []store.Address{}
	}
	if s.Cc == nil {
		s.Cc = []store.Address{}
	}
	if s.OdooRefs == nil {
		s.OdooRefs = []store.OdooRef{}
	}
	return s
}

// MessageList pages through a folder of the index, newest first.
func (s *Messages) MessageList(a Actor, p MessageListParams) (MessageListResult, error) {
	mb, err := s.boxes.Load(a, p.MailboxID)
	if err != nil {
		return MessageListResult{}, err
	}
	folder := p.Folder
	if folder == "" {
		folder = "inbox"
	}
	if f, ok := NormalizeFolder(folder); ok {
		folder = f
	} else {
		return MessageListResult{}, Invalid("Unknown folder %q: use inbox, sentitems, drafts, deleteditems, archive or a folder id", p.Folder)
	}
	if p.Limit < 0 || p.Limit > 200 {
		return MessageListResult{}, Invalid("limit must be between 1 and 200")
	}
	if p.Limit == 0 {
		p.Limit = 50
	}
	q := strings.ToLower(strings.TrimSpace(p.Query))
	with := withAddress(p.Address)
	keep := func(m *store.Message) bool {
		if m.Delivery == store.DeliveryNone || m.Removed {
			return false // known only from an update: no content to show
		}
		if p.UnreadOnly && m.IsRead {
			return false
		}
		if with != nil && !with(m) {
			return false
		}
		if q != "" && !strings.Contains(strings.ToLower(m.Subject+" "+m.From.Email+" "+m.From.Name+" "+m.Snippet), q) {
			return false
		}
		return true
	}
	var msgs []store.Message
	var next string
	if ms, ok := s.st.(rawMatcher); ok && (q != "" || p.UnreadOnly) {
		msgs, next, err = ms.ListMessagesMatching(mb.ID, folder, p.Limit, p.Cursor, rawPrefilter(q, p.UnreadOnly), keep)
	} else {
		msgs, next, err = s.st.ListMessages(mb.ID, folder, p.Limit, p.Cursor, keep)
	}
	if err != nil {
		if p.Cursor != "" {
			return MessageListResult{}, Invalid("The cursor is not valid for this folder; start again without one")
		}
		return MessageListResult{}, Internal(err)
	}
	out := MessageListResult{Messages: make([]MessageSummary, 0, len(msgs)), NextCursor: next}
	for _, m := range msgs {
		out.Messages = append(out.Messages, summary(m))
	}
	return out, nil
}

// rawMatcher is a store that can skip index entries on their stored JSON
// before decoding them (bbolt's); a search through 50,000 messages then
// decodes only the few that can match.
type rawMatcher interface {
	ListMessagesMatching(mailboxID, folder string, limit int, after string, raw func([]byte) bool, keep func(*store.Message) bool) ([]store.Message, string, error)
}

var _ rawMatcher = (*store.Store)(nil)

// rawPrefilter is a necessary condition of message.list's query and
// unread_only on an entry's stored JSON: each word of the query appears in
// it, any case (a word lies within one field, and JSON writes a field's
// text as is unless it holds characters it escapes: queries with those
// are not prefiltered); an unread entry says "is_read":false.
func rawPrefilter(q string, unreadOnly bool) func([]byte) bool {
	var words [][]byte
	if !strings.ContainsAny(q, "<>&\"\\\u2028\u2029") {
		for _, w := range strings.Fields(q) {
			if strings.IndexFunc(w, func(r rune) bool { return r < 0x20 }) >= 0 {
				words = nil
				break
			}
			words = append(words, []byte(w))
		}
	}
	unread := []byte(`"is_read":false`)
	var buf []byte // ListMessagesMatching calls it from one goroutine
	return func(raw []byte) bool {
		if unreadOnly && !bytes.Contains(raw, unread) {
			return false
		}
		if len(words) == 0 {
			return true
		}
		buf = appendLower(buf[:0], raw)
		for _, w := range words {
			if !bytes.Contains(buf, w) {
				return false
			}
		}
		return true
	}
}

// appendLower appends b lower-cased as strings.ToLower does, without a new
// allocation per call for ASCII.
func appendLower(dst, b []byte) []byte {
	for i := 0; i < len(b); {
		c := b[i]
		if c < utf8.RuneSelf {
			if 'A' <= c && c <= 'Z' {
				c += 'a' - 'A'
			}
			dst = append(dst, c)
			i++
			continue
		}
		r, n := utf8.DecodeRune(b[i:])
		dst = utf8.AppendRune(dst, unicode.ToLower(r))
		i += n
	}
	return dst
}

// MessageGetParams are message.get's params.
type MessageGetParams struct {
	MailboxID string `json:"mailbox_id"`
	MessageID string `json:"message_id"`
}

// AttachmentInfo describes an attachment in message.get.
type AttachmentInfo struct {
	ID          string `json:"id"`
	Name        string `json:"name"`
	ContentType string `json:"content_type"`
	Size        int64  `json:"size"`
	IsInline    bool   `json:"is_inline"`
	ContentID   string `json:"content_id,omitempty"`
}

// MessageDetail is message.get's answer.
type MessageDetail struct {
	MessageSummary
	Folder  string          `json:"folder"`
	ReplyTo []store.Address `json:"reply_to"`
	// Bcc: drafts and sent mail only (Graph's bccRecipients).
	Bcc         []store.Address   `json:"bcc"`
	Headers     map[string]string `json:"headers"`
	BodyHTML    string            `json:"body_html"`
	Attachments []AttachmentInfo  `json:"attachments"`
}

func (s *Messages) loadMessage(a Actor, mailboxID, id string) (store.Mailbox, store.Message, error) {
	mb, err := s.boxes.Load(a, mailboxID)
	if err != nil {
		return mb, store.Message{}, err
	}
	if id == "" {
		return mb, store.Message{}, Invalid("Parameter message_id is required")
	}
	m, err := s.st.Message(mb.ID, id)
	if err != nil || m.Delivery == store.DeliveryNone {
		if err == nil || errors.Is(err, store.ErrNotFound) {
			return mb, store.Message{}, NotFound("Message %s is not in mailbox %s", id, mb.Email)
		}
		return mb, store.Message{}, Internal(err)
	}
	return mb, m, nil
}

func graphFailure(mb store.Mailbox, err error) error {
	if graphsync.IsReauth(err) {
		return Errorf(KindUser, "reauth_required", "Mailbox %s needs its owner to sign in again.", mb.Email)
	}
	if graphsync.IsNotFound(err) {
		return NotFound("The message is no longer in mailbox %s (deleted or moved in Outlook)", mb.Email)
	}
	if graphsync.StatusOf(err) == 429 {
		return &Error{Kind: KindUser, Code: "throttled", Message: "Microsoft 365 is throttling this mailbox; try again in a minute", Err: err}
	}
	return &Error{Kind: KindUser, Code: "graph_error", Message: fmt.Sprintf("MailDesk could not read the message from Microsoft 365 for %s; try again later", mb.Email), Err: err}
}

// CodeMessageDeleted is the not_found of a message that was in the index
// but that Microsoft 365 no longer has (deleted in Outlook meanwhile).
const CodeMessageDeleted = "message_deleted"

// deleted takes a message Graph no longer has out of the index (lists and
// counts stop showing it) and answers the typed not-found of message.get
// and message.attachment.
func (s *Messages) deleted(mb store.Mailbox, m store.Message) error {
	if err := s.st.UpdateMessages(mb.ID, []string{m.ID}, func(msg *store.Message) { msg.Removed = true }); err != nil && !errors.Is(err, store.ErrNotFound) {
		return Internal(err)
	}
	return Errorf(KindMissing, CodeMessageDeleted, "This message was deleted in Outlook (mailbox %s)", mb.Email)
}

// MessageGet returns a message with its sanitised body and attachment list,
// read from Graph (cached).
func (s *Messages) MessageGet(ctx context.Context, a Actor, p MessageGetParams) (MessageDetail, error) {
	mb, m, err := s.loadLive(ctx, a, p.MailboxID, p.MessageID)
	if err != nil {
		return MessageDetail{}, err
	}
	key := "msg\x00" + mb.ID + "\x00" + m.ID
	if v, ok := s.cache.get(key); ok {
		d := v.(MessageDetail)
		d.MessageSummary = summary(m) // read flags and Odoo refs from the index
		return d, nil
	}
	gm, err := s.graph.Mailbox(mb.ID, mb.Email)
	if err != nil {
		return MessageDetail{}, Internal(err)
	}
	ctx, cancel := context.WithTimeout(ctx, s.timeout)
	defer cancel()
	gmsg, err := gm.GetMessage(ctx, m.ID)
	if err != nil {
		if graphsync.IsNotFound(err) {
			return MessageDetail{}, s.deleted(mb, m)
		}
		return MessageDetail{}, graphFailure(mb, err)
	}
	var atts []graphsync.Attachment
	if gmsg.HasAttachments || strings.Contains(strings.ToLower(gmsg.Body), "cid:") {
		if atts, err = gm.ListAttachments(ctx, m.ID, false); err != nil {
			return MessageDetail{}, graphFailure(mb, err)
		}
	}
	d := MessageDetail{MessageSummary: summary(m), Folder: m.Folder, ReplyTo: storeAddrs(gmsg.ReplyTo),
		Headers: map[string]string{}, Attachments: make([]AttachmentInfo, 0, len(atts))}
	if d.ReplyTo == nil {
		d.ReplyTo = []store.Address{}
	}
	if d.Bcc = storeAddrs(gmsg.Bcc); d.Bcc == nil {
		d.Bcc = []store.Address{}
	}
	for _, h := range gmsg.Headers {
		d.Headers[strings.ToLower(h.Name)] = h.Value
	}
	if gmsg.BodyType == "html" {
		d.BodyHTML = s.SanitizeMailHTML(gmsg.Body)
	} else {
		d.BodyHTML = "<pre>" + html.EscapeString(gmsg.Body) + "</pre>"
	}
	for _, at := range atts {
		d.Attachments = append(d.Attachments, attachmentInfo(at))
	}
	if gmsg.IsDraft && len(gmsg.Headers) == 0 {
		// Graph gives a draft no internetMessageHeaders: its threading
		// headers (a reply resumed in the composer) are in its MIME.
		if err := draftHeaders(ctx, gm, m.ID, d.Headers); err != nil {
			return MessageDetail{}, graphFailure(mb, err)
		}
	}
	size := int64(len(d.BodyHTML)) + 512
	for k, v := range d.Headers {
		size += int64(len(k) + len(v))
	}
	s.cache.put(key, d, size)
	return d, nil
}

// MessageAttachmentParams are message.attachment's params.
type MessageAttachmentParams struct {
	MailboxID    string `json:"mailbox_id"`
	MessageID    string `json:"message_id"`
	AttachmentID string `json:"attachment_id"`
}

// AttachmentData is message.attachment's answer.
type AttachmentData struct {
	Name        string `json:"name"`
	ContentType string `json:"content_type"`
	DataBase64  string `json:"data_base64"`
}

// MessageAttachment returns one attachment's bytes (cached).
func (s *Messages) MessageAttachment(ctx context.Context, a Actor, p MessageAttachmentParams) (AttachmentData, error) {
	mb, m, err := s.loadLive(ctx, a, p.MailboxID, p.MessageID)
	if err != nil {
		return AttachmentData{}, err
	}
	if p.AttachmentID == "" {
		return AttachmentData{}, Invalid("Parameter attachment_id is required")
	}
	key := "att\x00" + mb.ID + "\x00" + m.ID + "\x00" + p.AttachmentID
	if v, ok := s.cache.get(key); ok {
		return v.(AttachmentData), nil
	}
	gm, err := s.graph.Mailbox(mb.ID, mb.Email)
	if err != nil {
		return AttachmentData{}, Internal(err)
	}
	ctx, cancel := context.WithTimeout(ctx, s.timeout)
	defer cancel()
	at, err := gm.GetAttachment(ctx, m.ID, p.AttachmentID)
	if err != nil {
		if graphsync.IsNotFound(err) {
			// The attachment, or its whole message, is gone: ask which.
			if _, gerr := gm.GetMessage(ctx, m.ID); graphsync.IsNotFound(gerr) {
				return AttachmentData{}, s.deleted(mb, m)
			}
			return AttachmentData{}, NotFound("Attachment %s is not on message %s", p.AttachmentID, m.ID)
		}
		return AttachmentData{}, graphFailure(mb, err)
	}
	if at.Data == nil {
		return AttachmentData{}, Errorf(KindUser, "graph_error", "Attachment %q is an attached item or a link; open it in Outlook", at.Name)
	}
	d := AttachmentData{Name: at.Name, ContentType: at.ContentType, DataBase64: base64.StdEncoding.EncodeToString(at.Data)}
	s.cache.put(key, d, int64(len(d.DataBase64))+256)
	return d, nil
}

// byteCache is an LRU bounded by the sum of entry sizes. Entries larger
// than a quarter of the bound are not kept.
type byteCache struct {
	mu    sync.Mutex
	max   int64
	used  int64
	order *list.List
	items map[string]*list.Element
}

type cacheEntry struct {
	key  string
	val  any
	size int64
}

func newByteCache(max int64) *byteCache {
	return &byteCache{max: max, order: list.New(), items: map[string]*list.Element{}}
}

func (c *byteCache) get(key string) (any, bool) {
	c.mu.Lock()
	defer c.mu.Unlock()
	el, ok := c.items[key]
	if !ok {
		return nil, false
	}
	c.order.MoveToFront(el)
	return el.Value.(*cacheEntry).val, true
}

func (c *byteCache) put(key string, val any, size int64) {
	if size > c.max/4 {
		return
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	if el, ok := c.items[key]; ok {
		c.used -= el.Value.(*cacheEntry).size
		c.order.Remove(el)
		delete(c.items, key)
	}
	c.items[key] = c.order.PushFront(&cacheEntry{key: key, val: val, size: size})
	c.used += size
	for c.used > c.max {
		el := c.order.Back()
		e := el.Value.(*cacheEntry)
		c.order.Remove(el)
		delete(c.items, e.key)
		c.used -= e.size
	}
}

// Bytes is how much the cache holds.
func (c *byteCache) Bytes() int64 {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.used
}
