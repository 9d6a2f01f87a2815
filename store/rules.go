package store

import "time"

// What a store does to its records when the sidecar reports something,
// whatever the backend: bbolt and PostgreSQL call these, so the bookkeeping
// (counts, retries, merge rules) is written once.

// NewMailbox prepares a mailbox about to be created: an id when it has
// none, its creation time, and since when it is in the state it is given.
func NewMailbox(m *Mailbox, now time.Time) {
	if m.ID == "" {
		m.ID = NewMailboxID()
	}
	now = now.UTC()
	m.CreatedAt, m.UpdatedAt = now, now
	if m.StateSince.IsZero() {
		m.StateSince = now
	}
}

// StatusChanged stamps a status written at now whose state was before:
// StateSince moves when the state changed.
func StatusChanged(st *MailboxStatus, before string, now time.Time) {
	if st.State != before {
		st.StateSince = now.UTC()
	}
}

// Pruned lowers the mailbox's message count by the n index entries
// retention removed.
func (st *MailboxStatus) Pruned(n int) {
	st.Counts.Messages = max(0, st.Counts.Messages-int64(n))
}

// MergeUpdate folds a delta page's entry for a message the index already
// holds into it: what an update can change (folder, read flag, removal), the
// subject when the page carries content, and the sensitivity and threading
// ids of an entry indexed before they were kept (a resync fills them in).
func (m *Message) MergeUpdate(msg Message, withContent bool) {
	m.Folder = msg.Folder
	m.IsRead = msg.IsRead
	if msg.FlagKnown {
		m.Flagged = msg.Flagged
	}
	m.Removed = false
	if withContent && m.Subject == "" {
		m.Subject = msg.Subject
	}
	if m.Sensitivity == "" && msg.Sensitivity != "" {
		m.Sensitivity, m.InReplyTo, m.References = msg.Sensitivity, msg.InReplyTo, msg.References
	}
}

// Refused records that Odoo refused an outbox item (ack a): attempts, the
// same-error streak and the next attempt. It returns true when the item now
// counts as failed (a.Fail, or failLimit refusals the same way, or
// FailAfterAttempts×failLimit in all); the mailbox status m (may be nil)
// then counts it with Odoo's reason.
func (it *OutboxItem) Refused(a OutboxAck, m *MailboxStatus, failLimit int, now time.Time) bool {
	if it.Attempts > 0 && it.SameErrors > 0 && a.Error == it.LastError {
		it.SameErrors++
	} else {
		it.SameErrors = 1
	}
	it.Attempts++
	it.LastError = a.Error
	it.NextAttemptAt = a.RetryAt
	if !(a.Fail || failLimit > 0 && (it.SameErrors >= failLimit || it.Attempts >= FailAfterAttempts*failLimit)) {
		return false
	}
	it.Failed, it.FailedAt = true, now
	if m != nil {
		m.Counts.Failed++
		m.Delivery.FailedReason = a.Error
		m.Delivery.FailedAt = now
	}
	return true
}

// Requeued prepares the requeue (mailbox.redeliver) of the item of index
// entry msg of mailbox mailboxID, which Odoo answered excluded or unrouted
// before: the mailbox's count of that old state goes down (the answer to
// come counts the message once), the item gets its queue times, and the
// entry is queued again.
func Requeued(mailboxID string, m *MailboxStatus, msg *Message, it *OutboxItem, now time.Time) {
	switch msg.Delivery {
	case DeliveryExcluded:
		m.Counts.Excluded = max(0, m.Counts.Excluded-1)
	case DeliveryUnrouted:
		m.Counts.Unrouted = max(0, m.Counts.Unrouted-1)
	}
	it.Seq, it.MailboxID = 0, mailboxID
	if it.CreatedAt.IsZero() {
		it.CreatedAt = now
	}
	if it.NextAttemptAt.IsZero() {
		it.NextAttemptAt = it.CreatedAt
	}
	msg.Delivery, msg.DeliveryError = DeliveryQueued, ""
}

// Retried puts a failed outbox item back in the queue, due at now with a
// fresh attempt count (RetryFailed on both backends).
func (it *OutboxItem) Retried(now time.Time) {
	it.Failed, it.FailedAt = false, time.Time{}
	it.Attempts, it.SameErrors = 0, 0
	it.NextAttemptAt = now
}

// FailedCleared forgets a mailbox's failed count and reason once its failed
// items are queued again (RetryFailed on both backends).
func (st *MailboxStatus) FailedCleared() {
	st.Counts.Failed = 0
	st.Delivery.FailedReason = ""
	st.Delivery.FailedAt = time.Time{}
}

// NewOutboxItem is the outbox item a newly indexed message is queued as, due
// at once (ApplyPage on both backends).
func NewOutboxItem(mailboxID string, msg *Message, direction string, payload []byte, now time.Time) *OutboxItem {
	return &OutboxItem{
		MailboxID: mailboxID, GraphID: msg.ID, Folder: msg.Folder, Direction: direction,
		InternetMessageID: msg.InternetMessageID, ReceivedAt: msg.ReceivedAt,
		CreatedAt: now, NextAttemptAt: now, Payload: payload,
	}
}
