package bridge

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"sort"
	"strings"
	"time"

	"github.com/rs/zerolog"

	"github.com/maildesk/maildesk/bridge/odoo"
	"github.com/maildesk/maildesk/graphsync"
	"github.com/maildesk/maildesk/store"
)

// MaxActionIDs caps the message ids of one mark_read or move call.
const MaxActionIDs = 1000

// ActionsConfig builds Actions.
type ActionsConfig struct {
	Store     Store
	Graph     *graphsync.Client
	Mailboxes *Mailboxes
	// Kick wakes the pusher after log_to_record queued an item (may be nil).
	Kick    func()
	Log     zerolog.Logger
	Timeout time.Duration // per call (default 2 min)
}

// Actions answers message.mark_read, message.move and message.log_to_record.
type Actions struct {
	cfg    ActionsConfig
	syncer *Syncer // builds ingest items the way sync does
}

// NewActions checks cfg and builds Actions.
func NewActions(cfg ActionsConfig) (*Actions, error) {
	if cfg.Store == nil || cfg.Graph == nil || cfg.Mailboxes == nil {
		return nil, errors.New("bridge: actions need a store, a Graph client and the mailboxes")
	}
	if cfg.Timeout <= 0 {
		cfg.Timeout = 2 * time.Minute
	}
	sy, err := NewSyncer(SyncConfig{Store: cfg.Store, Graph: cfg.Graph, Log: cfg.Log})
	if err != nil {
		return nil, err
	}
	return &Actions{cfg: cfg, syncer: sy}, nil
}

// MarkReadParams are message.mark_read's params.
type MarkReadParams struct {
	MailboxID  string   `json:"mailbox_id"`
	MessageIDs []string `json:"message_ids"`
	Read       *bool    `json:"read"` // default true
}

// FlagParams are message.flag's params.
type FlagParams struct {
	MailboxID  string   `json:"mailbox_id"`
	MessageIDs []string `json:"message_ids"`
	Flagged    *bool    `json:"flagged"` // default true
}

// MoveParams are message.move's params.
type MoveParams struct {
	MailboxID  string   `json:"mailbox_id"`
	MessageIDs []string `json:"message_ids"`
	Folder     string   `json:"folder"` // well-known name or Graph folder id
}

// MoveResult is message.move's answer.
type MoveResult struct {
	Moved int `json:"moved"`
}

// LogParams are message.log_to_record's params.
type LogParams struct {
	MailboxID string `json:"mailbox_id"`
	MessageID string `json:"message_id"`
	Model     string `json:"model"`
	ResID     int64  `json:"res_id"`
}

// LogResult is message.log_to_record's answer: the item is queued for
// Odoo's ingest; the pusher delivers it like synced mail.
type LogResult struct {
	Queued     bool   `json:"queued"`
	OutboxSeq  uint64 `json:"outbox_seq"`
	MessageID  string `json:"message_id"`
	InternetID string `json:"internet_message_id,omitempty"`
}

// load checks the actor, the mailbox state and the ids, and returns the
// mailbox's Graph client.
func (x *Actions) load(a Actor, mailboxID string, ids []string) (store.Mailbox, *graphsync.Mailbox, []string, error) {
	m, err := x.cfg.Mailboxes.Load(a, mailboxID)
	if err != nil {
		return m, nil, nil, err
	}
	if ids != nil {
		if len(ids) == 0 {
			return m, nil, nil, Invalid("message_ids is empty")
		}
		if len(ids) > MaxActionIDs {
			return m, nil, nil, Invalid("At most %d message ids per call, not %d", MaxActionIDs, len(ids))
		}
		seen := map[string]bool{}
		uniq := ids[:0:0]
		for _, id := range ids {
			if id == "" || len(id) > 512 {
				return m, nil, nil, Invalid("%q is not a message id", id)
			}
			if seen[id] {
				continue
			}
			seen[id] = true
			if _, err := x.cfg.Store.Message(m.ID, id); err != nil {
				if errors.Is(err, store.ErrNotFound) {
					return m, nil, nil, NotFound("Message %s is not in mailbox %s (it may have been deleted)", id, m.Email)
				}
				return m, nil, nil, Internal(err)
			}
			uniq = append(uniq, id)
		}
		ids = uniq
	}
	if err := actionable(m); err != nil {
		return m, nil, nil, err
	}
	gm, err := x.cfg.Graph.Mailbox(m.ID, m.Email)
	if err != nil {
		return m, nil, nil, Internal(err)
	}
	return m, gm, ids, nil
}

func actionable(m store.Mailbox) error {
	if Syncable(m.State) {
		return nil
	}
	if m.State == StateReauthRequired {
		return Errorf(KindUser, "reauth_required", "Mailbox %s needs its owner to sign in again (Connect)", m.Email)
	}
	return Errorf(KindUser, "not_connected", "Mailbox %s is %s: connect it first", m.Email, m.State)
}

// MarkRead sets or clears the read flag in Microsoft 365 ($batch, 20 per
// request) and in the index.
func (x *Actions) MarkRead(ctx context.Context, a Actor, p MarkReadParams) (bool, error) {
	read := p.Read == nil || *p.Read
	return x.patch(ctx, a, p.MailboxID, p.MessageIDs, patchOp{method: "message.mark_read", key: "read", value: read, verb: "marked",
		graph: func(ctx context.Context, gm *graphsync.Mailbox, ids []string) (map[string]error, error) {
			return gm.SetRead(ctx, ids, read)
		},
		index: func(msg *store.Message) { msg.IsRead = read }})
}

// patchOp is one message property set in Microsoft 365 and in the index
// (mark_read, flag): the audited method, its detail key and value, and the
// verb of its partial-failure message.
type patchOp struct {
	method, key, verb string
	value             bool
	graph             func(ctx context.Context, gm *graphsync.Mailbox, ids []string) (map[string]error, error)
	index             func(msg *store.Message)
}

// patch runs op on the messages: Graph first, then the index for those
// Graph changed; those Graph no longer has leave the index; audited.
func (x *Actions) patch(ctx context.Context, a Actor, mailboxID string, messageIDs []string, op patchOp) (bool, error) {
	m, gm, ids, err := x.load(a, mailboxID, nonNilIDs(messageIDs))
	if err != nil {
		return false, err
	}
	cctx, cancel := context.WithTimeout(ctx, x.cfg.Timeout)
	defer cancel()
	failed, err := op.graph(cctx, gm, ids)
	if err != nil {
		e := mapGraphError(m, err)
		auditAction(x.cfg.Store, x.cfg.Log, a, op.method, m.ID, map[string]any{"count": len(ids), op.key: op.value, "result": "failed", "code": e.Code})
		return false, e
	}
	done := okIDs(ids, failed)
	if len(done) > 0 {
		if err := x.cfg.Store.UpdateMessages(m.ID, done, op.index); err != nil {
			return false, Internal(err)
		}
	}
	if err := x.forgetGone(m, failed); err != nil {
		return false, err
	}
	detail := map[string]any{"count": len(done), op.key: op.value, "result": "done"}
	if len(failed) > 0 {
		detail["failed"] = len(failed)
		detail["result"] = "partial"
	}
	auditAction(x.cfg.Store, x.cfg.Log, a, op.method, m.ID, detail)
	if len(failed) > 0 {
		return false, partialError(m, op.verb, len(done), failed)
	}
	return true, nil
}

// Flag flags messages for follow-up or clears their flag in Microsoft 365
// ($batch, 20 per request) and in the index.
func (x *Actions) Flag(ctx context.Context, a Actor, p FlagParams) (bool, error) {
	flagged := p.Flagged == nil || *p.Flagged
	return x.patch(ctx, a, p.MailboxID, p.MessageIDs, patchOp{method: "message.flag", key: "flagged", value: flagged, verb: "flagged",
		graph: func(ctx context.Context, gm *graphsync.Mailbox, ids []string) (map[string]error, error) {
			return gm.SetFlag(ctx, ids, flagged)
		},
		index: func(msg *store.Message) { msg.Flagged = flagged }})
}

// forgetGone takes the messages Graph no longer has (deleted in Outlook
// meanwhile) out of the index, so lists and counts stop showing them.
func (x *Actions) forgetGone(m store.Mailbox, failed map[string]error) error {
	var gone []string
	for id, err := range failed {
		if graphsync.IsNotFound(err) {
			gone = append(gone, id)
		}
	}
	if len(gone) == 0 {
		return nil
	}
	sort.Strings(gone)
	if err := x.cfg.Store.UpdateMessages(m.ID, gone, func(msg *store.Message) { msg.Removed = true }); err != nil {
		return Internal(err)
	}
	return nil
}

// Move moves messages to a folder in Microsoft 365 and in the index.
func (x *Actions) Move(ctx context.Context, a Actor, p MoveParams) (MoveResult, error) {
	folder, ok := NormalizeFolder(strings.TrimSpace(p.Folder))
	if !ok {
		return MoveResult{}, Invalid("folder %q is neither a well-known folder (%s) nor a Graph folder id", p.Folder, strings.Join(WellKnownFolders, ", "))
	}
	m, gm, ids, err := x.load(a, p.MailboxID, nonNilIDs(p.MessageIDs))
	if err != nil {
		return MoveResult{}, err
	}
	cctx, cancel := context.WithTimeout(ctx, x.cfg.Timeout)
	defer cancel()
	moved, failed, err := gm.MoveMessages(cctx, ids, folder)
	if err != nil {
		e := mapGraphError(m, err)
		auditAction(x.cfg.Store, x.cfg.Log, a, "message.move", m.ID, map[string]any{"count": len(ids), "folder": folder, "result": "failed", "code": e.Code})
		return MoveResult{}, e
	}
	done := okIDs(ids, failed)
	if len(done) > 0 {
		if err := x.cfg.Store.UpdateMessages(m.ID, done, func(msg *store.Message) { msg.Folder = folder }); err != nil {
			return MoveResult{}, Internal(err)
		}
	}
	if err := x.forgetGone(m, failed); err != nil {
		return MoveResult{}, err
	}
	changed := 0
	for id, nid := range moved {
		if nid != id {
			changed++ // Graph answered a new id: immutable ids were not applied
		}
	}
	detail := map[string]any{"count": len(done), "folder": folder, "result": "done"}
	if changed > 0 {
		detail["new_ids"] = changed
	}
	if len(failed) > 0 {
		detail["failed"] = len(failed)
		detail["result"] = "partial"
	}
	auditAction(x.cfg.Store, x.cfg.Log, a, "message.move", m.ID, detail)
	if len(failed) > 0 {
		return MoveResult{Moved: len(done)}, partialError(m, "moved", len(done), failed)
	}
	return MoveResult{Moved: len(done)}, nil
}

// LogToRecord queues one message for Odoo with a target record: the item is
// built as sync builds it (structured, or raw MIME for gateway mailboxes)
// from what Graph has now, then the pusher delivers it through the same
// ingest path as synced mail.
func (x *Actions) LogToRecord(ctx context.Context, a Actor, p LogParams) (LogResult, error) {
	if !reModel.MatchString(p.Model) {
		return LogResult{}, Invalid("model %q is not an Odoo model name", p.Model)
	}
	if p.ResID <= 0 {
		return LogResult{}, Invalid("res_id must be a record id, not %d", p.ResID)
	}
	if p.MessageID == "" || len(p.MessageID) > 512 {
		return LogResult{}, Invalid("message_id is required")
	}
	m, gm, _, err := x.load(a, p.MailboxID, nil)
	if err != nil {
		return LogResult{}, err
	}
	if m.OdooID == 0 {
		return LogResult{}, Errorf(KindUser, "not_linked", "Mailbox %s has no Odoo record to deliver through: create or link it from Odoo (MailDesk → Mailboxes)", m.Email)
	}
	folder := "inbox"
	if idx, err := x.cfg.Store.Message(m.ID, p.MessageID); err == nil && idx.Folder != "" {
		folder = idx.Folder
	}
	cctx, cancel := context.WithTimeout(ctx, x.cfg.Timeout)
	defer cancel()
	gmsg, err := gm.GetMessage(cctx, p.MessageID)
	if err != nil {
		if graphsync.IsNotFound(err) {
			return LogResult{}, NotFound("Message %s is no longer in mailbox %s", p.MessageID, m.Email)
		}
		return LogResult{}, mapGraphError(m, err)
	}
	gmsg.Full = true
	if m.Mode == odoo.ModeGateway {
		err = gm.FetchMIME(cctx, []*graphsync.Message{gmsg}, 1)
	} else {
		err = gm.FetchAttachments(cctx, []*graphsync.Message{gmsg}, 1)
	}
	if err != nil {
		return LogResult{}, mapGraphError(m, err)
	}
	direction := "in"
	if folder == "sentitems" || strings.EqualFold(gmsg.From.Email, m.Email) {
		direction = "out"
	}
	item := x.syncer.ingestItem(m, folder, direction, gmsg)
	item.Target = &odoo.Target{Model: p.Model, ResID: p.ResID}
	payload, err := json.Marshal(item)
	if err != nil {
		return LogResult{}, Internal(fmt.Errorf("bridge: encode ingest item %s: %w", p.MessageID, err))
	}
	seq, err := x.cfg.Store.Enqueue(store.OutboxItem{MailboxID: m.ID, GraphID: gmsg.ID, Folder: folder, Direction: direction,
		InternetMessageID: gmsg.InternetMessageID, ReceivedAt: gmsg.ReceivedAt, Payload: payload})
	if err != nil {
		return LogResult{}, Internal(err)
	}
	if x.cfg.Kick != nil {
		x.cfg.Kick()
	}
	auditAction(x.cfg.Store, x.cfg.Log, a, "message.log_to_record", m.ID, map[string]any{
		"message_id": gmsg.ID, "internet_message_id": gmsg.InternetMessageID, "model": p.Model, "res_id": p.ResID, "outbox_seq": seq})
	return LogResult{Queued: true, OutboxSeq: seq, MessageID: gmsg.ID, InternetID: gmsg.InternetMessageID}, nil
}

func nonNilIDs(ids []string) []string {
	if ids == nil {
		return []string{}
	}
	return ids
}

func okIDs(ids []string, failed map[string]error) []string {
	out := make([]string, 0, len(ids))
	for _, id := range ids {
		if _, bad := failed[id]; !bad {
			out = append(out, id)
		}
	}
	return out
}

// partialError says how many messages failed and why (the first reasons).
func partialError(m store.Mailbox, verb string, done int, failed map[string]error) *Error {
	ids := make([]string, 0, len(failed))
	for id := range failed {
		ids = append(ids, id)
	}
	sort.Strings(ids)
	var first error
	notFound := 0
	for _, id := range ids {
		if graphsync.IsNotFound(failed[id]) {
			notFound++
		}
		if first == nil {
			first = failed[id]
		}
	}
	msg := fmt.Sprintf("%d message(s) %s; %d could not be: ", done, verb, len(failed))
	if notFound == len(failed) {
		msg += "they are no longer in mailbox " + m.Email
	} else {
		msg += mapGraphError(m, first).Message
	}
	return &Error{Kind: KindUser, Code: "graph_error", Message: msg, Err: first}
}
