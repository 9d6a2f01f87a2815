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
	Settings() (store.Settings, error)
	Cursor(mailboxID, folder string) (store.Cursor, error)
	PutCursor(mailboxID string, c store.Cursor) error
	ApplyPage(mailboxID string, p store.Page) (store.PageResult, error)
	ApplyBackfillRequest(mailboxID string, seq int64, cursor func(c *store.Cursor), mailbox func(m *store.MailboxStatus)) (bool, error)
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
	MailboxStore
	MailboxReader
	Mailboxes() ([]store.Mailbox, error)
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
	MailboxStore
	MailboxReader
	Mailboxes() ([]store.Mailbox, error)
	// MailboxStates is every mailbox's state by id (the rescan's read).
	MailboxStates() (map[string]string, error)
	Settings() (store.Settings, error)
	SetDue(mailboxID string, at time.Time) error
	SetDueMany(due map[string]time.Time) error
	DueTimes() (map[string]time.Time, error)
}

// Store is all of storage, for the components that use much of it (the
// mailbox service, the connector, sending, message reads) and for cmd,
// which opens one and hands it around: bbolt (*store.Store) or PostgreSQL
// (*pgstore.Store), both passing store/storetest.
type Store interface {
	CursorStore
	Outbox
	DueStore
	SettingsStore
	SystemStore
	AuthStore
	RetentionStore
	CreateMailbox(m store.Mailbox) (store.Mailbox, error)
	CreateMailboxAudit(m store.Mailbox, audit func(m *store.Mailbox) *store.AuditEntry) (store.Mailbox, error)
	// UpdateMailboxConfig is the mailbox service's (mailbox.update): the
	// admin config, never the status the sidecar's components write.
	UpdateMailboxConfig(id string, fn func(c *store.MailboxConfig, st store.MailboxStatus) (*store.AuditEntry, error)) (store.Mailbox, error)
	DeleteMailbox(id string) error
	DeleteMailboxAudit(id string, audit *store.AuditEntry) error
	MarkSentByUs(mailboxID, internetMessageID string) error
	MessageByInternetID(mailboxID, internetMessageID string) (store.Message, error)
	ListMessages(mailboxID, folder string, limit int, after string, keep func(*store.Message) bool) ([]store.Message, string, error)
	FolderCounts(mailboxID string) (map[string]store.FolderCount, error)
	UpdateMessages(mailboxID string, ids []string, fn func(m *store.Message)) error
	MessageCount(mailboxID string) int
	DeleteCursor(mailboxID, folder string) error
	Enqueue(it store.OutboxItem) (uint64, error)
	DueOutbox(now time.Time, limit int, maxBytes int, skip func(mailboxID string) bool) ([]store.OutboxItem, error)
	FailedOutbox(mailboxID string) ([]store.OutboxItem, error)
	RetryFailed(mailboxID string) (int, error)
	RetryOutboxNow(mailboxID string) error
	DeleteTokenCache(mailboxID string) error
	PutOAuthState(st store.OAuthState) error
	ConsumeOAuthState(state string) (store.OAuthState, error)
	PruneOAuthStates() (int, error)
	Audit(e store.AuditEntry) error
	AuditList(mailboxID string, limit int, before uint64) ([]store.AuditEntry, uint64, error)
	QueueNotice(n store.Notice) error
	ClaimSend(mailboxID string, rec store.SendRecord) (store.SendRecord, bool, error)
	PutSend(mailboxID string, rec store.SendRecord) error
	SaveSettings(st store.Settings) error
	Close() error
}

// AuthStore is graphsync's: the app config and the token caches.
type AuthStore interface {
	Settings() (store.Settings, error)
	TokenCache(mailboxID string) ([]byte, error)
	PutTokenCache(mailboxID string, cache []byte) error
}

var (
	_ Store       = (*store.Store)(nil)
	_ CursorStore = (*store.Store)(nil)
	_ Outbox      = (*store.Store)(nil)
	_ DueStore    = (*store.Store)(nil)
)
