package store

import (
	"bytes"
	"encoding/binary"
	"fmt"
	"math"
	"time"

	bolt "go.etcd.io/bbolt"
)

// Retention: the audit log and the message index are kept for a bounded
// time (Settings.Retention); the sidecar prunes them periodically
// (bridge.Retention). Pruning follows the indexes: the audit log's keys run
// oldest first, and each folder's order keys newest first, so a pass reads
// only what it removes.

// Prunable reports whether an index entry may be pruned: mail still on its
// way to Odoo (queued, failed) is kept whatever its age.
func (m *Message) Prunable() bool {
	return m.Delivery != DeliveryQueued && m.Delivery != DeliveryFailed
}

// PruneAudit removes up to limit audit entries written before before,
// oldest first, and returns how many it removed.
func (s *Store) PruneAudit(before time.Time, limit int) (int, error) {
	n := 0
	err := s.db.Update(func(tx *bolt.Tx) error {
		n = 0
		c := tx.Bucket(bucketAudit).Cursor()
		for k, v := c.First(); k != nil && n < limit; k, v = c.First() {
			var e AuditEntry
			if err := jsonUnmarshal(v, &e); err != nil {
				return fmt.Errorf("audit entry %d: %w", binary.BigEndian.Uint64(k), err)
			}
			if !e.At.Before(before) {
				break
			}
			if err := c.Delete(); err != nil {
				return err
			}
			n++
		}
		return nil
	})
	if err != nil {
		return 0, fmt.Errorf("store: prune audit log: %w", err)
	}
	return n, nil
}

// PruneMessages removes up to limit message index entries received before
// before (listed in a folder, not removed, not queued or failed), with
// their Message-Id lookups, lowers their mailboxes' message counts, and
// returns how many it removed.
func (s *Store) PruneMessages(before time.Time, limit int) (int, error) {
	n := 0
	inv := u64(uint64(math.MaxInt64 - before.UnixNano()))
	err := s.db.Update(func(tx *bolt.Tx) error {
		n = 0
		orders := tx.Bucket(bucketOrder)
		var boxes [][]byte
		_ = orders.ForEachBucket(func(k []byte) error {
			boxes = append(boxes, append([]byte(nil), k...))
			return nil
		})
		for _, box := range boxes {
			if n >= limit {
				break
			}
			order := orders.Bucket(box)
			msgs, _ := sub(tx, bucketMessages, string(box), false)
			ids, _ := sub(tx, bucketMsgIDs, string(box), false)
			if msgs == nil {
				continue
			}
			var dead [][]byte // order keys
			var gone []Message
			c := order.Cursor()
			for k, _ := c.First(); k != nil && n+len(gone) < limit; {
				folder, _, ok := bytes.Cut(k, []byte{0})
				if !ok {
					k, _ = c.Next()
					continue
				}
				prefix := append(append([]byte(nil), folder...), 0)
				// Keys of a folder run newest first: the old ones are at its end.
				for k, v := c.Seek(append(append([]byte(nil), prefix...), inv...)); k != nil && bytes.HasPrefix(k, prefix) && n+len(gone) < limit; k, v = c.Next() {
					var m Message
					if getJSON(msgs, v, &m) != nil || !m.Prunable() {
						continue
					}
					dead = append(dead, append([]byte(nil), k...))
					gone = append(gone, m)
				}
				k, _ = c.Seek(append(append([]byte(nil), folder...), 1))
			}
			for i, m := range gone {
				if err := order.Delete(dead[i]); err != nil {
					return err
				}
				if err := msgs.Delete([]byte(m.ID)); err != nil {
					return err
				}
				if ids != nil && m.InternetMessageID != "" && string(ids.Get([]byte(m.InternetMessageID))) == m.ID {
					if err := ids.Delete([]byte(m.InternetMessageID)); err != nil {
						return err
					}
				}
			}
			if len(gone) > 0 {
				st, err := s.getStatus(tx, string(box))
				if err == nil {
					st.Pruned(len(gone))
					if err := putStatus(tx, string(box), &st); err != nil {
						return err
					}
				}
			}
			n += len(gone)
		}
		return nil
	})
	if err != nil {
		return 0, fmt.Errorf("store: prune message index: %w", err)
	}
	return n, nil
}
