package store

import (
	"fmt"
	"time"

	bolt "go.etcd.io/bbolt"
)

// Notice is an event Odoo users must see (a mailbox needs its owner to sign
// in again). The pusher hands notices to Odoo (maildesk_notify) and deletes
// them once Odoo took them.
type Notice struct {
	Seq       uint64    `json:"seq"`
	MailboxID string    `json:"mailbox_id"`
	Kind      string    `json:"kind"` // reauth_required, ...
	Reason    string    `json:"reason,omitempty"`
	CreatedAt time.Time `json:"created_at"`
}

// QueueNotice adds a notice. A notice of the same kind for the same mailbox
// that is still waiting is replaced, so a flapping mailbox gives one activity.
func (s *Store) QueueNotice(n Notice) error {
	err := s.db.Update(func(tx *bolt.Tx) error {
		b := tx.Bucket(bucketNotices)
		var dup [][]byte
		_ = b.ForEach(func(k, v []byte) error {
			var o Notice
			if jsonUnmarshal(v, &o) == nil && o.MailboxID == n.MailboxID && o.Kind == n.Kind {
				dup = append(dup, append([]byte(nil), k...))
			}
			return nil
		})
		for _, k := range dup {
			if err := b.Delete(k); err != nil {
				return err
			}
		}
		seq, err := b.NextSequence()
		if err != nil {
			return err
		}
		n.Seq = seq
		if n.CreatedAt.IsZero() {
			n.CreatedAt = s.now().UTC()
		}
		return putJSON(b, u64(seq), n)
	})
	if err != nil {
		return fmt.Errorf("store: queue notice for %s: %w", n.MailboxID, err)
	}
	s.Queued() // the pusher delivers notices too: kick it
	return nil
}

// Notices returns waiting notices, oldest first.
func (s *Store) Notices() ([]Notice, error) {
	var out []Notice
	err := s.db.View(func(tx *bolt.Tx) error {
		return tx.Bucket(bucketNotices).ForEach(func(k, v []byte) error {
			var n Notice
			if err := jsonUnmarshal(v, &n); err != nil {
				return err
			}
			out = append(out, n)
			return nil
		})
	})
	if err != nil {
		return nil, fmt.Errorf("store: notices: %w", err)
	}
	return out, nil
}

// DeleteNotice removes a delivered notice.
func (s *Store) DeleteNotice(seq uint64) error {
	err := s.db.Update(func(tx *bolt.Tx) error { return tx.Bucket(bucketNotices).Delete(u64(seq)) })
	if err != nil {
		return fmt.Errorf("store: delete notice %d: %w", seq, err)
	}
	return nil
}
