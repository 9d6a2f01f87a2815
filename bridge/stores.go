package bridge

import (
	"time"

	"github.com/maildesk/maildesk/store"
)

// What each of the sidecar's components needs of storage, said by the
// component itself. *store.Store (bbolt) implements all of them;
// store/storetest is the suite any implementation must pass.

// CursorStore is the syncer's. Only the syncer writes cursors: a page and
// its folder's cursor in one transaction (ApplyPage), a backfill request
// applied to every cursor at the start of a round (ApplyBackfillRequest).
type CursorStore interface {
	MailboxStore
	MailboxReader
	UpdateMailbox(id string, fn func(m *store.Mailbox) error) (store.Mailbox, error)
	Settings() (store.Settings, error)
	Cursor(mailboxID, folder string) (store.Cursor, error)
	PutCursor(mailboxID string, c store.Cursor) error
	ApplyPage(mailboxID string, p store.Page) (store.PageResult, error)
	ApplyBackfillRequest(mailboxID string, seq int64, cursor func(c *store.Cursor), mailbox func(m *store.Mailbox)) (bool, error)
	Message(mailboxID, id string) (store.Message, error)
	// RecentMessages and Requeue serve mailbox.redeliver, applied by the
	// syncer at the start of a round.
	RecentMessages(mailboxID string, since time.Time, limit int, keep func(*store.Message) bool) ([]store.Message, int, error)
	Requeue(mailboxID string, items []store.OutboxItem, from []string) (int, error)
	OutboxStatter
}

// OutboxStatter counts the outbox per mailbox (metrics, mailbox views).
type OutboxStatter interface {
	OutboxStats() (map[string]store.OutboxStats, error)
}

// Outbox is the pusher's: due items per mailbox, Odoo's answers, the
// notices for Odoo users, and the hooks that wake it.
type Outbox interface {
	MailboxReader
	Mailboxes() ([]store.Mailbox, error)
	UpdateMailbox(id string, fn func(m *store.Mailbox) error) (store.Mailbox, error)
	Settings() (store.Settings, error)
	DueOutboxByMailbox(now time.Time, limit func(mailboxID string) int, maxBytes int, skip func(mailboxID string) bool) ([]store.DueBatch, error)
	NextOutboxDue(skip func(mailboxID string) bool) (time.Time, bool)
	AckOutbox(acks []store.OutboxAck, failLimit int) error
	OutboxStatter
	Notices() ([]store.Notice, error)
	DeleteNotice(seq uint64) error
	// OnQueued and OnSettings register hooks run after commits that queued
	// items or changed settings; they must not block.
	OnQueued(fn func())
	OnSettings(fn func())
}

// DueStore is the scheduler's: when each mailbox syncs next.
type DueStore interface {
	MailboxReader
	Mailboxes() ([]store.Mailbox, error)
	UpdateMailbox(id string, fn func(m *store.Mailbox) error) (store.Mailbox, error)
	Settings() (store.Settings, error)
	SetDue(mailboxID string, at time.Time) error
	SetDueMany(due map[string]time.Time) error
	DueTimes() (map[string]time.Time, error)
}

var (
	_ CursorStore = (*store.Store)(nil)
	_ Outbox      = (*store.Store)(nil)
	_ DueStore    = (*store.Store)(nil)
)
