package store

import (
	"encoding/binary"
	"fmt"
	"time"

	bolt "go.etcd.io/bbolt"
)

// AuditEntry records who did what, when. Details never hold secrets.
type AuditEntry struct {
	Seq       uint64         `json:"id"`
	At        time.Time      `json:"at"`
	UID       int64          `json:"uid"`   // acting Odoo user; 0 = the sidecar itself
	Actor     string         `json:"actor"` // "odoo", "sidecar", "microsoft"
	Action    string         `json:"action"`
	MailboxID string         `json:"mailbox_id,omitempty"`
	Detail    map[string]any `json:"detail,omitempty"`
}

// Audit appends an entry.
func (s *Store) Audit(e AuditEntry) error {
	err := s.db.Update(func(tx *bolt.Tx) error { return appendAudit(tx, s.now(), &e) })
	if err != nil {
		return fmt.Errorf("store: audit %s: %w", e.Action, err)
	}
	return nil
}

func appendAudit(tx *bolt.Tx, now time.Time, e *AuditEntry) error {
	b := tx.Bucket(bucketAudit)
	seq, err := b.NextSequence()
	if err != nil {
		return err
	}
	e.Seq = seq
	if e.At.IsZero() {
		e.At = now.UTC()
	}
	return putJSON(b, u64(seq), e)
}

// AuditList returns up to limit entries, newest first, older than before
// (0 = from the newest), optionally for one mailbox, and the cursor for the
// next page (0 when there is none).
func (s *Store) AuditList(mailboxID string, limit int, before uint64) ([]AuditEntry, uint64, error) {
	if limit <= 0 {
		limit = 50
	}
	var out []AuditEntry
	var next uint64
	err := s.db.View(func(tx *bolt.Tx) error {
		c := tx.Bucket(bucketAudit).Cursor()
		var k, v []byte
		if before == 0 {
			k, v = c.Last()
		} else {
			k, v = c.Seek(u64(before))
			if k == nil {
				k, v = c.Last()
			}
			for k != nil && binary.BigEndian.Uint64(k) >= before {
				k, v = c.Prev()
			}
		}
		for ; k != nil; k, v = c.Prev() {
			var e AuditEntry
			if err := jsonUnmarshal(v, &e); err != nil {
				return err
			}
			if mailboxID != "" && e.MailboxID != mailboxID {
				continue
			}
			if len(out) == limit {
				next = out[len(out)-1].Seq
				break
			}
			out = append(out, e)
		}
		return nil
	})
	if err != nil {
		return nil, 0, fmt.Errorf("store: audit list: %w", err)
	}
	return out, next, nil
}
