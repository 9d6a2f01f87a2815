package graphsync

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"net/textproto"
	"net/url"
	"regexp"
	"strconv"
	"strings"
	"time"

	abs "github.com/microsoft/kiota-abstractions-go"
	"github.com/microsoftgraph/msgraph-sdk-go/users"
)

// MessageSelect is what a page carries per message: everything Odoo needs
// except attachments (FACTS.md: body and internetMessageHeaders ride in
// delta pages for new items), so a message costs no request of its own.
// Outlook's sensitivity is NOT a property of Graph v1.0's message (only of
// event and messageRulePredicates; msgraph-sdk-go's models.Message has no
// field for it, and Graph answers 400 to $select=sensitivity): it is read
// from the Sensitivity header in internetMessageHeaders (Message.Sensitivity).
var MessageSelect = []string{
	"id", "internetMessageId", "conversationId", "subject", "from", "sender",
	"toRecipients", "ccRecipients", "replyTo", "receivedDateTime", "sentDateTime",
	"isRead", "isDraft", "hasAttachments", "bodyPreview", "body",
	"internetMessageHeaders", "parentFolderId", "flag",
}

// Address is a mail address.
type Address struct {
	Name  string `json:"name,omitempty"`
	Email string `json:"email"`
}

// Header is one internet message header.
type Header struct {
	Name  string `json:"name"`
	Value string `json:"value"`
}

// Attachment of a message. Data is nil until fetched.
type Attachment struct {
	ID          string
	Name        string
	ContentType string
	Size        int64
	IsInline    bool
	ContentID   string
	Kind        string // file | item | reference
	Data        []byte
}

// Message is a message as a page brings it. Full is false for an update
// that carries only changed properties (FACTS.md: id, isRead, parentFolderId).
type Message struct {
	ID                string
	Full              bool
	Removed           bool
	FolderID          string
	InternetMessageID string
	ConversationID    string
	Subject           string
	From              Address
	To, Cc, ReplyTo   []Address
	// Bcc is read by GetMessage only (drafts and sent mail carry it; delta
	// pages do not ask for it).
	Bcc            []Address
	ReceivedAt     time.Time
	SentAt         time.Time
	IsRead         bool
	IsDraft        bool
	HasAttachments bool
	// Flagged: followupFlag.flagStatus is "flagged" (not "notFlagged" or
	// "complete"); FlagKnown says the item carried a flag at all (an update
	// may not).
	Flagged, FlagKnown bool
	Preview            string
	BodyType           string // html | text
	Body               string
	Headers            []Header

	Attachments []Attachment // filled by FetchAttachments
	MIME        []byte       // filled by FetchMIME
}

// Header returns the first header named name (case-insensitive).
func (m *Message) Header(name string) string {
	for _, h := range m.Headers {
		if strings.EqualFold(h.Name, name) {
			return h.Value
		}
	}
	return ""
}

// Sensitivity values: Graph's sensitivity enum (event, messageRulePredicates).
const (
	SensitivityNormal       = "normal"
	SensitivityPersonal     = "personal"
	SensitivityPrivate      = "private"
	SensitivityConfidential = "confidential"
)

// SensitivityOf maps a Sensitivity header value (RFC 2156: Personal,
// Private, Company-Confidential — what Exchange writes for Outlook's
// sensitivity) to the enum; absent or unknown is normal.
func SensitivityOf(header string) string {
	switch v := strings.ToLower(strings.TrimSpace(header)); v {
	case "personal", "private":
		return v
	case "company-confidential", "company confidential", "confidential":
		return SensitivityConfidential
	}
	return SensitivityNormal
}

// Sensitivity is the message's Outlook sensitivity, from the Sensitivity
// header the page carried (or, without page headers, the raw MIME's
// header block when fetched). Mail without the header is normal; Graph
// gives no internetMessageHeaders for some items (drafts, mail composed in
// the mailbox), so their sensitivity reads normal unless the MIME says more.
func (m *Message) Sensitivity() string {
	v := m.Header("Sensitivity")
	if v == "" && len(m.Headers) == 0 && len(m.MIME) > 0 {
		v = mimeHeader(m.MIME, "Sensitivity")
	}
	return SensitivityOf(v)
}

// mimeHeader reads one header of raw MIME's header block ("" when absent or
// unreadable).
func mimeHeader(raw []byte, name string) string {
	end := bytes.Index(raw, []byte("\r\n\r\n"))
	if end < 0 {
		end = bytes.Index(raw, []byte("\n\n"))
	}
	if end < 0 {
		return ""
	}
	h, err := textproto.NewReader(bufio.NewReader(bytes.NewReader(append(raw[:end:end], "\r\n\r\n"...)))).ReadMIMEHeader()
	if err != nil && len(h) == 0 {
		return ""
	}
	return h.Get(name)
}

// MaxReferences is how many References ids the message index keeps (the
// last ones: the nearest ancestors).
const MaxReferences = 20

var reMsgID = regexp.MustCompile(`<[^<>\s]+>`)

// MessageIDs reads the message ids of an In-Reply-To or References value:
// the <...> tokens, or the bare words when there are none.
func MessageIDs(v string) []string {
	ids := reMsgID.FindAllString(v, -1)
	if len(ids) == 0 {
		ids = strings.Fields(v)
	}
	return ids
}

// InReplyTo is the message id the message answers ("" when none).
func (m *Message) InReplyTo() string {
	ids := MessageIDs(m.Header("In-Reply-To"))
	if len(ids) == 0 {
		return ""
	}
	return ids[0]
}

// References are the last MaxReferences message ids of its References header.
func (m *Message) References() []string {
	ids := MessageIDs(m.Header("References"))
	if len(ids) > MaxReferences {
		ids = ids[len(ids)-MaxReferences:]
	}
	return ids
}

// NeedsAttachments says whether Odoo needs this message's attachments:
// real ones (hasAttachments) or inline images the HTML body refers to
// (hasAttachments is false for messages with inline parts only).
func (m *Message) NeedsAttachments() bool {
	return m.Full && (m.HasAttachments || (m.BodyType == "html" && strings.Contains(strings.ToLower(m.Body), "cid:")))
}

// Page is one page of a delta round or backfill listing.
type Page struct {
	Messages  []*Message
	Removed   []string
	NextLink  string
	DeltaLink string
}

type wireAddr struct {
	EmailAddress struct {
		Name    string `json:"name"`
		Address string `json:"address"`
	} `json:"emailAddress"`
}

type wireMessage struct {
	ID                string          `json:"id"`
	Removed           json.RawMessage `json:"@removed"`
	ParentFolderID    string          `json:"parentFolderId"`
	InternetMessageID *string         `json:"internetMessageId"`
	ConversationID    string          `json:"conversationId"`
	Subject           *string         `json:"subject"`
	From              *wireAddr       `json:"from"`
	Sender            *wireAddr       `json:"sender"`
	To                []wireAddr      `json:"toRecipients"`
	Cc                []wireAddr      `json:"ccRecipients"`
	Bcc               []wireAddr      `json:"bccRecipients"`
	ReplyTo           []wireAddr      `json:"replyTo"`
	ReceivedDateTime  *time.Time      `json:"receivedDateTime"`
	SentDateTime      *time.Time      `json:"sentDateTime"`
	IsRead            *bool           `json:"isRead"`
	IsDraft           *bool           `json:"isDraft"`
	HasAttachments    *bool           `json:"hasAttachments"`
	BodyPreview       string          `json:"bodyPreview"`
	Body              *struct {
		ContentType string `json:"contentType"`
		Content     string `json:"content"`
	} `json:"body"`
	Headers     []Header         `json:"internetMessageHeaders"`
	Attachments []wireAttachment `json:"attachments"`
	Flag        *struct {
		FlagStatus string `json:"flagStatus"`
	} `json:"flag"`
}

type wirePage struct {
	Value     []wireMessage `json:"value"`
	NextLink  string        `json:"@odata.nextLink"`
	DeltaLink string        `json:"@odata.deltaLink"`
}

func addrs(in []wireAddr) []Address {
	if len(in) == 0 {
		return nil
	}
	out := make([]Address, 0, len(in))
	for _, a := range in {
		out = append(out, Address{Name: a.EmailAddress.Name, Email: a.EmailAddress.Address})
	}
	return out
}

func (w *wireMessage) message() *Message {
	m := &Message{ID: w.ID, FolderID: w.ParentFolderID, ConversationID: w.ConversationID, Preview: w.BodyPreview, Headers: w.Headers}
	if len(w.Removed) > 0 && string(w.Removed) != "null" {
		m.Removed = true
		return m
	}
	if w.IsRead != nil {
		m.IsRead = *w.IsRead
	}
	if w.IsDraft != nil {
		m.IsDraft = *w.IsDraft
	}
	if w.Flag != nil {
		m.FlagKnown, m.Flagged = true, w.Flag.FlagStatus == "flagged"
	}
	if w.HasAttachments != nil {
		m.HasAttachments = *w.HasAttachments
	}
	if w.InternetMessageID != nil {
		m.InternetMessageID = *w.InternetMessageID
	}
	if w.Subject != nil {
		m.Subject = *w.Subject
	}
	if w.From != nil {
		m.From = Address{Name: w.From.EmailAddress.Name, Email: w.From.EmailAddress.Address}
	} else if w.Sender != nil {
		m.From = Address{Name: w.Sender.EmailAddress.Name, Email: w.Sender.EmailAddress.Address}
	}
	m.To, m.Cc, m.ReplyTo, m.Bcc = addrs(w.To), addrs(w.Cc), addrs(w.ReplyTo), addrs(w.Bcc)
	if w.ReceivedDateTime != nil {
		m.ReceivedAt = w.ReceivedDateTime.UTC()
	}
	if w.SentDateTime != nil {
		m.SentAt = w.SentDateTime.UTC()
	}
	if w.Body != nil {
		m.BodyType = strings.ToLower(w.Body.ContentType)
		m.Body = w.Body.Content
	}
	// A new item carries its content; an update may bring only id, isRead
	// and parentFolderId whatever $select asked for.
	m.Full = w.Body != nil && w.ReceivedDateTime != nil
	if w.Attachments != nil {
		// Expanded ($expand=attachments): the list is known, even empty.
		m.Attachments = make([]Attachment, 0, len(w.Attachments))
	}
	for _, a := range w.Attachments {
		m.Attachments = append(m.Attachments, a.attachment())
	}
	return m
}

func parsePage(body []byte) (*Page, error) {
	var wp wirePage
	if err := json.Unmarshal(body, &wp); err != nil {
		return nil, fmt.Errorf("graphsync: decode page: %w", err)
	}
	p := &Page{NextLink: wp.NextLink, DeltaLink: wp.DeltaLink}
	for i := range wp.Value {
		m := wp.Value[i].message()
		if m.ID == "" {
			continue
		}
		if m.Removed {
			p.Removed = append(p.Removed, m.ID)
			continue
		}
		p.Messages = append(p.Messages, m)
	}
	return p, nil
}

// DeltaStart runs the first request of a delta round over a folder (a
// well-known name or folder id): the options — $select, the optional
// receivedDateTime filter, Prefer: odata.maxpagesize — are set here only;
// Graph bakes them into the links that follow.
func (m *Mailbox) DeltaStart(ctx context.Context, folder string, since time.Time, pageSize int) (*Page, error) {
	cfg := &users.ItemMailFoldersItemMessagesDeltaRequestBuilderGetRequestConfiguration{
		QueryParameters: &users.ItemMailFoldersItemMessagesDeltaRequestBuilderGetQueryParameters{Select: MessageSelect},
		Headers:         abs.NewRequestHeaders(),
	}
	if !since.IsZero() {
		f := "receivedDateTime ge " + since.UTC().Format("2006-01-02T15:04:05Z")
		cfg.QueryParameters.Filter = &f
	}
	if pageSize > 0 {
		cfg.Headers.Add("Prefer", "odata.maxpagesize="+strconv.Itoa(pageSize))
	}
	cfg.Headers.Add("Prefer", `IdType="ImmutableId"`)
	ri, err := m.sdk.Users().ByUserId(m.user).MailFolders().ByMailFolderId(folder).Messages().Delta().ToGetRequestInformation(ctx, cfg)
	if err != nil {
		return nil, fmt.Errorf("graphsync: delta request for %s/%s: %w", m.id, folder, err)
	}
	body, err := m.send(ctx, ri)
	if err != nil {
		return nil, fmt.Errorf("graphsync: delta start %s/%s: %w", m.id, folder, err)
	}
	return parsePage(body)
}

// NextPage follows a nextLink or deltaLink verbatim.
func (m *Mailbox) NextPage(ctx context.Context, link string) (*Page, error) {
	body, err := m.getRaw(ctx, link, nil)
	if err != nil {
		return nil, fmt.Errorf("graphsync: page of %s: %w", m.id, err)
	}
	return parsePage(body)
}

// ListOption changes a backfill listing (ListStart).
type ListOption func(*listOptions)

type listOptions struct{ expand bool }

// ExpandAttachments makes the listing carry every message's attachments
// ($expand=attachments, baked into its nextLinks): no request per message
// with attachments (each inner request of a $batch counts against Graph's
// limits), at the price of bigger pages, so such pages hold at most
// ExpandPageSize messages.
func ExpandAttachments(o *listOptions) { o.expand = true }

// ExpandPageSize caps the page size of a listing with ExpandAttachments.
const ExpandPageSize = 25

// ListStart lists a folder newest first within [since, until) (since zero:
// no lower bound) — the backfill, which unlike a filtered delta has no
// 5,000-message cap. Pages follow with NextPage.
func (m *Mailbox) ListStart(ctx context.Context, folder string, since, until time.Time, pageSize int, opts ...ListOption) (*Page, error) {
	if pageSize <= 0 {
		pageSize = 100
	}
	var lo listOptions
	for _, o := range opts {
		o(&lo)
	}
	if lo.expand {
		pageSize = min(pageSize, ExpandPageSize)
	}
	// One bound only: the window start, or for all mail the time the delta
	// round starts from. (A window listing may also bring mail the delta
	// round brings; the message index makes that harmless.)
	flt := "receivedDateTime lt " + until.UTC().Format("2006-01-02T15:04:05Z")
	if !since.IsZero() {
		flt = "receivedDateTime ge " + since.UTC().Format("2006-01-02T15:04:05Z")
	}
	q := url.Values{
		"$select":  {strings.Join(MessageSelect, ",")},
		"$filter":  {flt},
		"$orderby": {"receivedDateTime desc"},
		"$top":     {strconv.Itoa(pageSize)},
	}
	if lo.expand {
		q.Set("$expand", "attachments")
	}
	body, err := m.getRaw(ctx, m.url("mailFolders/"+url.PathEscape(folder)+"/messages", q), nil)
	if err != nil {
		return nil, fmt.Errorf("graphsync: list %s/%s: %w", m.id, folder, err)
	}
	return parsePage(body)
}

// Folder is a mail folder with its counts.
type Folder struct {
	ID          string `json:"id"`
	DisplayName string `json:"displayName"`
	ParentID    string `json:"parentFolderId"`
	Total       int64  `json:"totalItemCount"`
	Unread      int64  `json:"unreadItemCount"`
}

// GetFolder reads one folder (well-known name or id).
func (m *Mailbox) GetFolder(ctx context.Context, folder string) (Folder, error) {
	q := url.Values{"$select": {"id,displayName,parentFolderId,totalItemCount,unreadItemCount"}}
	body, err := m.getRaw(ctx, m.url("mailFolders/"+url.PathEscape(folder), q), nil)
	if err != nil {
		return Folder{}, fmt.Errorf("graphsync: folder %s/%s: %w", m.id, folder, err)
	}
	var f Folder
	if err := json.Unmarshal(body, &f); err != nil {
		return Folder{}, fmt.Errorf("graphsync: decode folder %s: %w", folder, err)
	}
	return f, nil
}

// ListFolders reads the mailbox's top-level folders.
func (m *Mailbox) ListFolders(ctx context.Context) ([]Folder, error) {
	q := url.Values{"$select": {"id,displayName,parentFolderId,totalItemCount,unreadItemCount"}, "$top": {"100"}}
	return listFolderPages[Folder](ctx, m, m.url("mailFolders", q))
}

// listFolderPages reads a folder listing to its last page.
func listFolderPages[T any](ctx context.Context, m *Mailbox, link string) ([]T, error) {
	var out []T
	for link != "" {
		body, err := m.getRaw(ctx, link, nil)
		if err != nil {
			return nil, fmt.Errorf("graphsync: folders of %s: %w", m.id, err)
		}
		var page struct {
			Value    []T    `json:"value"`
			NextLink string `json:"@odata.nextLink"`
		}
		if err := json.Unmarshal(body, &page); err != nil {
			return nil, fmt.Errorf("graphsync: decode folders: %w", err)
		}
		out = append(out, page.Value...)
		link = page.NextLink
	}
	return out, nil
}

// GetMessage reads one message with body and headers (message.get), and
// its Bcc (a draft reopened in the composer keeps it).
func (m *Mailbox) GetMessage(ctx context.Context, id string) (*Message, error) {
	q := url.Values{"$select": {strings.Join(MessageSelect, ",") + ",bccRecipients"}}
	body, err := m.getRaw(ctx, m.url("messages/"+url.PathEscape(id), q), nil)
	if err != nil {
		return nil, fmt.Errorf("graphsync: message %s: %w", id, err)
	}
	var w wireMessage
	if err := json.Unmarshal(body, &w); err != nil {
		return nil, fmt.Errorf("graphsync: decode message %s: %w", id, err)
	}
	return w.message(), nil
}

// FolderNode is a folder of the mailbox's folder tree (ListFolderTree).
type FolderNode struct {
	Folder
	// Path is the display names from the top level down, "/"-separated
	// ("Inbox/Clients/ACME"); a "/" inside a name is kept as is.
	Path string
	// Depth is 0 for top-level folders.
	Depth int
}

// ListFolderTree reads every folder of the mailbox, subfolders included
// (Graph lists only one level per request: /mailFolders, then
// /mailFolders/{id}/childFolders of each folder that has children). Parents
// come before their children. At most max folders are read (0: 2,000).
func (m *Mailbox) ListFolderTree(ctx context.Context, max int) ([]FolderNode, error) {
	if max <= 0 {
		max = 2000
	}
	sel := url.Values{"$select": {"id,displayName,parentFolderId,totalItemCount,unreadItemCount,childFolderCount"}, "$top": {"100"}}
	type wire struct {
		Folder
		Children int `json:"childFolderCount"`
	}
	list := func(link string) ([]wire, error) { return listFolderPages[wire](ctx, m, link) }
	top, err := list(m.url("mailFolders", sel))
	if err != nil {
		return nil, err
	}
	var out []FolderNode
	var walk func(ws []wire, prefix string, depth int) error
	walk = func(ws []wire, prefix string, depth int) error {
		for _, w := range ws {
			if len(out) >= max {
				return nil
			}
			path := w.DisplayName
			if prefix != "" {
				path = prefix + "/" + w.DisplayName
			}
			out = append(out, FolderNode{Folder: w.Folder, Path: path, Depth: depth})
			if w.Children == 0 || depth >= 20 {
				continue
			}
			kids, err := list(m.url("mailFolders/"+url.PathEscape(w.ID)+"/childFolders", sel))
			if err != nil {
				return err
			}
			if err := walk(kids, path, depth+1); err != nil {
				return err
			}
		}
		return nil
	}
	if err := walk(top, "", 0); err != nil {
		return nil, err
	}
	return out, nil
}

// DeltaResult is one link's answer in DeltaPages: its page, or why not.
type DeltaResult struct {
	Page *Page
	Err  error
}

// BatchableLink reports whether a stored nextLink or deltaLink can go into
// a $batch: inner requests take URLs relative to the version root, so the
// link must lie under the client's base URL.
func (m *Mailbox) BatchableLink(link string) bool {
	return strings.HasPrefix(link, m.c.cfg.BaseURL+"/")
}

// DeltaPages follows several folders' links (BatchableLink) in one $batch
// envelope per MaxBatch links: an idle mailbox's poll is then one HTTP
// exchange, however many folders it syncs (Graph still counts every link
// as a request of its own). Inner 429s and 5xx are retried as in every
// batch; a link whose answer still failed carries its error (IsResync on
// an expired delta state). The error is the envelope's.
func (m *Mailbox) DeltaPages(ctx context.Context, links []string) ([]DeltaResult, error) {
	paths := make([]string, len(links))
	for i, l := range links {
		if !m.BatchableLink(l) {
			return nil, fmt.Errorf("graphsync: link %d of %s is not under %s: follow it alone", i, m.id, m.c.cfg.BaseURL)
		}
		paths[i] = strings.TrimPrefix(l, m.c.cfg.BaseURL)
	}
	resps, err := m.batch(ctx, paths)
	if err != nil {
		return nil, fmt.Errorf("graphsync: delta pages of %s: %w", m.id, err)
	}
	out := make([]DeltaResult, len(links))
	for i, r := range resps {
		if r.Status != http.StatusOK {
			out[i].Err = fmt.Errorf("graphsync: page of %s: %w", m.id, innerError(r))
			continue
		}
		out[i].Page, out[i].Err = parsePage(r.Body)
	}
	return out, nil
}
