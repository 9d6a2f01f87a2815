package graphsync

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/url"
	"strconv"
	"strings"
	"time"
)

// Drafts and search: what the inbox's composer and search box need from
// Graph beyond sending (send.go) and syncing (delta.go).

// MaxSearchResults is how many messages one Graph $search returns at most,
// over all its pages (Graph docs concepts/search-query-parameter.md: "A
// $search request returns up to 1000 results").
const MaxSearchResults = 1000

// listSelect is what a listed or searched message carries: the summary the
// inbox shows, no body (a search result opens through GetMessage).
var listSelect = []string{
	"id", "internetMessageId", "conversationId", "subject", "from", "sender",
	"toRecipients", "ccRecipients", "receivedDateTime", "sentDateTime",
	"isRead", "isDraft", "hasAttachments", "bodyPreview", "parentFolderId",
}

// ListQuery says which messages ListMessages reads.
type ListQuery struct {
	// Folder is a folder id or well-known name; "" lists the whole mailbox.
	Folder string
	// Search is Graph's $search text (KQL: `from:anna invoice`), without
	// the double quotes Graph wants around it; "" lists the folder newest
	// first. Graph allows neither $filter nor $orderby with $search and
	// sorts the results by sent date, newest first.
	Search string
	// Top is the page size (Graph's default 10 when 0).
	Top int
	// Link continues an earlier answer (its NextLink); the other fields are
	// then ignored (Graph baked them into the link).
	Link string
}

// MessagePage is one page of ListMessages.
type MessagePage struct {
	Messages []*Message
	NextLink string
}

// ListMessages reads one page of a folder's (or the mailbox's) messages,
// or of a $search over them.
func (m *Mailbox) ListMessages(ctx context.Context, q ListQuery) (MessagePage, error) {
	link := q.Link
	if link == "" {
		v := url.Values{"$select": {strings.Join(listSelect, ",")}}
		if q.Top > 0 {
			v.Set("$top", strconv.Itoa(q.Top))
		}
		if s := strings.TrimSpace(q.Search); s != "" {
			v.Set("$search", `"`+strings.ReplaceAll(s, `"`, `'`)+`"`)
		} else {
			v.Set("$orderby", "receivedDateTime desc")
		}
		rel := "messages"
		if q.Folder != "" {
			rel = "mailFolders/" + url.PathEscape(q.Folder) + "/messages"
		}
		link = m.url(rel, v)
	} else if !strings.HasPrefix(link, m.c.cfg.BaseURL+"/") {
		return MessagePage{}, fmt.Errorf("graphsync: the page link is not one of this Graph (%s)", m.c.cfg.BaseURL)
	}
	body, err := m.getRaw(ctx, link, nil)
	if err != nil {
		return MessagePage{}, fmt.Errorf("graphsync: list messages of %s: %w", m.id, err)
	}
	var page wirePage
	if err := json.Unmarshal(body, &page); err != nil {
		return MessagePage{}, fmt.Errorf("graphsync: decode messages of %s: %w", m.id, err)
	}
	out := MessagePage{NextLink: page.NextLink, Messages: make([]*Message, 0, len(page.Value))}
	for _, w := range page.Value {
		out.Messages = append(out.Messages, w.message())
	}
	return out, nil
}

// Draft is a draft Graph holds in the mailbox's Drafts folder.
type Draft struct {
	ID                string
	InternetMessageID string
	Requests          int
}

// CreateDraft saves out as a new draft: its MIME in one request (Graph
// keeps the MIME's own Message-Id and headers), then out.Large through
// upload sessions. A draft left half-made by a failure is deleted.
func (m *Mailbox) CreateDraft(ctx context.Context, out Outgoing, up *UploadBudget) (Draft, error) {
	var st SendStats
	d, err := m.createDraft(ctx, out, up, &st)
	return Draft{ID: d.ID, InternetMessageID: d.InternetMessageID, Requests: st.Requests}, err
}

func (m *Mailbox) createDraft(ctx context.Context, out Outgoing, up *UploadBudget, st *SendStats) (Draft, error) {
	var draft struct {
		ID                string `json:"id"`
		InternetMessageID string `json:"internetMessageId"`
	}
	st.Requests++
	if err := m.postMIME(ctx, m.url("messages", nil), out.MIME, &draft); err != nil {
		return Draft{}, fmt.Errorf("graphsync: create draft for %s: %w", m.id, err)
	}
	if draft.ID == "" {
		return Draft{}, fmt.Errorf("graphsync: create draft for %s: no id in the answer", m.id)
	}
	d := Draft{ID: draft.ID, InternetMessageID: draft.InternetMessageID}
	for _, a := range out.Large {
		if err := m.upload(ctx, draft.ID, a, up, st); err != nil {
			st.Requests++
			m.dropDraft(ctx, draft.ID)
			return d, fmt.Errorf("graphsync: upload %q for %s: %w", a.Name, m.id, err)
		}
	}
	return d, nil
}

// dropDraft deletes a draft, best effort, on a context of its own (the
// caller's may be done).
func (m *Mailbox) dropDraft(ctx context.Context, id string) {
	dctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 30*time.Second)
	defer cancel()
	_ = m.deleteMessage(dctx, id)
}

// SendDraft sends a saved draft (POST /messages/{id}/send: 202, queued).
// Graph moves it to Sent Items; with immutable ids it keeps its id.
func (m *Mailbox) SendDraft(ctx context.Context, id string) error {
	if id == "" {
		return errors.New("graphsync: send draft: no draft id")
	}
	if err := m.postJSON(ctx, m.url("messages/"+url.PathEscape(id)+"/send", nil), nil, nil); err != nil {
		return fmt.Errorf("graphsync: send draft for %s: %w", m.id, err)
	}
	return nil
}

// PurgeDraft removes a draft that a newer save replaced for good (POST
// /messages/{id}/permanentDelete), so Deleted Items does not fill with one
// copy per save.
func (m *Mailbox) PurgeDraft(ctx context.Context, id string) error {
	if err := m.postJSON(ctx, m.url("messages/"+url.PathEscape(id)+"/permanentDelete", nil), nil, nil); err != nil {
		return fmt.Errorf("graphsync: delete draft %s of %s: %w", id, m.id, err)
	}
	return nil
}
