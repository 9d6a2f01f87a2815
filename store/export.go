package store

import (
	"bytes"
	"encoding/binary"
	"fmt"
	"time"

	bolt "go.etcd.io/bbolt"
)

// Record is one unit of a store's content, as a copy from one store to
// another carries it (maildesk store copy). Secrets travel opened (Settings'
// secret fields, Token) and are sealed again by the store that takes them.
type Record struct {
	Kind      string // one of the Record* kinds
	MailboxID string
	Settings  *Settings
	Mailbox   *Mailbox
	Token     []byte // the opened MSAL cache
	Cursor    *Cursor
	Message   *Message
	Key       string // RecordMsgID: Message-Id (or a sent marker) → Value (a Graph id)
	Value     string
	Outbox    *OutboxItem // with its payload
	Due       time.Time
	Audit     *AuditEntry
	Send      *SendRecord
	Notice    *Notice
}

// Record kinds, in the order Export gives them (a mailbox before what it owns).
const (
	RecordSettings = "settings"
	RecordMailbox  = "mailboxes"
	RecordToken    = "tokens"
	RecordCursor   = "cursors"
	RecordDue      = "due"
	RecordMessage  = "messages"
	RecordMsgID    = "message_ids"
	RecordSend     = "sends"
	RecordOutbox   = "outbox"
	RecordAudit    = "audit"
	RecordNotice   = "notices"
)

// RecordKinds lists every kind, in Export's order.
var RecordKinds = []string{RecordSettings, RecordMailbox, RecordToken, RecordCursor, RecordDue, RecordMessage, RecordMsgID,
	RecordSend, RecordOutbox, RecordAudit, RecordNotice}

// Export hands every record of the database to fn, from one read
// transaction (a consistent snapshot), settings and mailboxes first, then
// what each mailbox owns, the outbox, the audit log and the notices.
// Pending sign-ins (OAuth states, valid for minutes) are not exported. fn's
// error stops the export.
func (s *Store) Export(fn func(Record) error) error {
	st, err := s.Settings()
	if err != nil {
		return err
	}
	if err := fn(Record{Kind: RecordSettings, Settings: &st}); err != nil {
		return err
	}
	boxes, err := s.Mailboxes()
	if err != nil {
		return err
	}
	err = s.db.View(func(tx *bolt.Tx) error {
		for i := range boxes {
			m := &boxes[i]
			if err := fn(Record{Kind: RecordMailbox, MailboxID: m.ID, Mailbox: m}); err != nil {
				return err
			}
			if v := tx.Bucket(bucketTokens).Get([]byte(m.ID)); v != nil {
				plain, err := s.seal.open(v, []byte("token:"+m.ID))
				if err != nil {
					return fmt.Errorf("token cache of %s: %w", m.ID, err)
				}
				if err := fn(Record{Kind: RecordToken, MailboxID: m.ID, Token: plain}); err != nil {
					return err
				}
			}
			if v := tx.Bucket(bucketDue).Get([]byte(m.ID)); len(v) == 8 {
				if err := fn(Record{Kind: RecordDue, MailboxID: m.ID, Due: time.Unix(0, int64(binary.BigEndian.Uint64(v)))}); err != nil {
					return err
				}
			}
			each := func(top []byte, kind string, decode func(k, v []byte) (Record, error)) error {
				b, _ := sub(tx, top, m.ID, false)
				if b == nil {
					return nil
				}
				return b.ForEach(func(k, v []byte) error {
					r, err := decode(k, v)
					if err != nil {
						return fmt.Errorf("%s %s of %s: %w", kind, k, m.ID, err)
					}
					r.Kind, r.MailboxID = kind, m.ID
					return fn(r)
				})
			}
			if err := each(bucketCursors, RecordCursor, func(k, v []byte) (Record, error) {
				var c Cursor
				return Record{Cursor: &c}, jsonUnmarshal(v, &c)
			}); err != nil {
				return err
			}
			if err := each(bucketMessages, RecordMessage, func(k, v []byte) (Record, error) {
				var msg Message
				return Record{Message: &msg}, jsonUnmarshal(v, &msg)
			}); err != nil {
				return err
			}
			if err := each(bucketMsgIDs, RecordMsgID, func(k, v []byte) (Record, error) {
				val := string(v)
				if bytes.HasPrefix(k, []byte("sent:")) {
					val = "1"
				}
				return Record{Key: string(k), Value: val}, nil
			}); err != nil {
				return err
			}
			if err := each(bucketSends, RecordSend, func(k, v []byte) (Record, error) {
				var rec SendRecord
				return Record{Send: &rec}, jsonUnmarshal(v, &rec)
			}); err != nil {
				return err
			}
		}
		if err := tx.Bucket(bucketOutbox).ForEach(func(k, v []byte) error {
			it, err := decodeOutbox(v, true)
			if err != nil {
				return fmt.Errorf("outbox item %d: %w", binary.BigEndian.Uint64(k), err)
			}
			return fn(Record{Kind: RecordOutbox, MailboxID: it.MailboxID, Outbox: &it})
		}); err != nil {
			return err
		}
		if err := tx.Bucket(bucketAudit).ForEach(func(k, v []byte) error {
			var e AuditEntry
			if err := jsonUnmarshal(v, &e); err != nil {
				return fmt.Errorf("audit entry %d: %w", binary.BigEndian.Uint64(k), err)
			}
			return fn(Record{Kind: RecordAudit, MailboxID: e.MailboxID, Audit: &e})
		}); err != nil {
			return err
		}
		return tx.Bucket(bucketNotices).ForEach(func(k, v []byte) error {
			var n Notice
			if err := jsonUnmarshal(v, &n); err != nil {
				return fmt.Errorf("notice %d: %w", binary.BigEndian.Uint64(k), err)
			}
			return fn(Record{Kind: RecordNotice, MailboxID: n.MailboxID, Notice: &n})
		})
	})
	if err != nil {
		return fmt.Errorf("store: export: %w", err)
	}
	return nil
}
