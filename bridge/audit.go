package bridge

import (
	"strconv"

	"github.com/maildesk/maildesk/store"
)

// AuditLog answers audit.list: who did what, when.
type AuditLog struct {
	st        Store
	mailboxes *Mailboxes
}

// NewAuditLog returns the audit reader; mailboxes decides visibility.
func NewAuditLog(st Store, mailboxes *Mailboxes) *AuditLog {
	return &AuditLog{st: st, mailboxes: mailboxes}
}

// AuditParams are audit.list's params.
type AuditParams struct {
	MailboxID string `json:"mailbox_id"`
	Limit     int    `json:"limit"`
	Cursor    string `json:"cursor"`
}

// AuditPage is audit.list's answer; next_cursor is "" on the last page.
type AuditPage struct {
	Entries    []store.AuditEntry `json:"entries"`
	NextCursor string             `json:"next_cursor"`
}

// List returns entries newest first. Admins may list everything; other users
// only the entries of a mailbox they can see.
func (l *AuditLog) List(a Actor, p AuditParams) (AuditPage, error) {
	if p.Limit == 0 {
		p.Limit = 50
	}
	if p.Limit < 1 || p.Limit > 500 {
		return AuditPage{}, Invalid("limit must be between 1 and 500, not %d", p.Limit)
	}
	var before uint64
	if p.Cursor != "" {
		v, err := strconv.ParseUint(p.Cursor, 10, 64)
		if err != nil || v == 0 {
			return AuditPage{}, Invalid("cursor %q is not a cursor this method returned", p.Cursor)
		}
		before = v
	}
	if p.MailboxID != "" {
		if _, err := l.mailboxes.Load(a, p.MailboxID); err != nil {
			return AuditPage{}, err
		}
	} else if !a.Admin {
		return AuditPage{}, Forbidden("Only MailDesk administrators may read the whole audit log; pass mailbox_id for one of your mailboxes")
	}
	entries, next, err := l.st.AuditList(p.MailboxID, p.Limit, before)
	if err != nil {
		return AuditPage{}, Internal(err)
	}
	if entries == nil {
		entries = []store.AuditEntry{}
	}
	page := AuditPage{Entries: entries}
	if next != 0 {
		page.NextCursor = strconv.FormatUint(next, 10)
	}
	return page, nil
}
