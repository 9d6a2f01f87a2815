package store

import (
	"encoding/binary"
	"encoding/json"
	"errors"
	"fmt"
	"time"

	bolt "go.etcd.io/bbolt"
)

// OutboxItem is one message waiting for Odoo. Payload is the ingest item
// (opaque to the store). Items are never dropped: an item leaves the outbox
// only when Odoo answered posted, duplicate or unrouted for it.
type OutboxItem struct {
	Seq               uint64    `json:"seq"`
	MailboxID         string    `json:"mailbox_id"`
	GraphID           string    `json:"graph_id"`
	Folder            string    `json:"folder"`
	Direction         string    `json:"direction"`
	InternetMessageID string    `json:"internet_message_id,omitempty"`
	ReceivedAt        time.Time `json:"received_at"`
	CreatedAt         time.Time `json:"created_at"`
	Attempts          int       `json:"attempts"`
	NextAttemptAt     time.Time `json:"next_attempt_at"`
	LastError         string    `json:"last_error,omitempty"`
	Payload           []byte    `json:"-"`
}

// Values are a 4-byte header length, the JSON header, then the payload, so
// scanning due items does not decode payloads.
func encodeOutbox(it *OutboxItem) ([]byte, error) {
	h, err := json.Marshal(it)
	if err != nil {
		return nil, err
	}
	v := make([]byte, 4, 4+len(h)+len(it.Payload))
	binary.BigEndian.PutUint32(v, uint32(len(h)))
	v = append(v, h...)
	return append(v, it.Payload...), nil
}

func decodeOutbox(v []byte, withPayload bool) (OutboxItem, error) {
	var it OutboxItem
	if len(v) < 4 {
		return it, errors.New("short outbox value")
	}
	n := int(binary.BigEndian.Uint32(v))
	if len(v) < 4+n {
		return it, errors.New("short outbox value")
	}
	if err := json.Unmarshal(v[4:4+n], &it); err != nil {
		return it, err
	}
	if withPayload {
		it.Payload = append([]byte(nil), v[4+n:]...)
	}
	return it, nil
}

func putOutbox(tx *bolt.Tx, it *OutboxItem) (uint64, error) {
	b := tx.Bucket(bucketOutbox)
	if it.Seq == 0 {
		seq, err := b.NextSequence()
		if err != nil {
			return 0, err
		}
		it.Seq = seq
	}
	v, err := encodeOutbox(it)
	if err != nil {
		return 0, err
	}
	return it.Seq, b.Put(u64(it.Seq), v)
}

// Enqueue adds an item outside a delta page (a message the user chose to log
// to a record). It does not check the message index.
func (s *Store) Enqueue(it OutboxItem) (uint64, error) {
	var seq uint64
	err := s.db.Update(func(tx *bolt.Tx) error {
		it.Seq = 0
		if it.CreatedAt.IsZero() {
			it.CreatedAt = s.now().UTC()
		}
		if it.NextAttemptAt.IsZero() {
			it.NextAttemptAt = it.CreatedAt
		}
		var err error
		seq, err = putOutbox(tx, &it)
		return err
	})
	if err != nil {
		return 0, fmt.Errorf("store: enqueue %s: %w", it.GraphID, err)
	}
	s.queued()
	return seq, nil
}

// DueOutbox returns up to limit items whose next attempt is due at now, in
// queue order, with payloads, stopping early once maxBytes of payload is
// reached (at least one item is always returned when one is due). skip
// excludes mailboxes (nil skips none).
func (s *Store) DueOutbox(now time.Time, limit int, maxBytes int, skip func(mailboxID string) bool) ([]OutboxItem, error) {
	var out []OutboxItem
	size := 0
	err := s.db.View(func(tx *bolt.Tx) error {
		c := tx.Bucket(bucketOutbox).Cursor()
		for k, v := c.First(); k != nil && len(out) < limit; k, v = c.Next() {
			it, err := decodeOutbox(v, false)
			if err != nil {
				return fmt.Errorf("item %d: %w", binary.BigEndian.Uint64(k), err)
			}
			if it.NextAttemptAt.After(now) || (skip != nil && skip(it.MailboxID)) {
				continue
			}
			full, _ := decodeOutbox(v, true)
			if len(out) > 0 && maxBytes > 0 && size+len(full.Payload) > maxBytes {
				break
			}
			size += len(full.Payload)
			out = append(out, full)
		}
		return nil
	})
	if err != nil {
		return nil, fmt.Errorf("store: due outbox: %w", err)
	}
	return out, nil
}

// NextOutboxDue returns the earliest next attempt time of any item not
// skipped (skip may be nil), and false when there is none.
func (s *Store) NextOutboxDue(skip func(mailboxID string) bool) (time.Time, bool) {
	var t time.Time
	found := false
	_ = s.db.View(func(tx *bolt.Tx) error {
		return tx.Bucket(bucketOutbox).ForEach(func(k, v []byte) error {
			it, err := decodeOutbox(v, false)
			if err == nil && (skip == nil || !skip(it.MailboxID)) && (!found || it.NextAttemptAt.Before(t)) {
				t, found = it.NextAttemptAt, true
			}
			return nil
		})
	})
	return t, found
}

// OutboxStats counts outbox items per mailbox.
type OutboxStats struct {
	Items     int       `json:"items"`
	Failing   int       `json:"failing"` // with at least one failed attempt
	Oldest    time.Time `json:"oldest,omitempty"`
	LastError string    `json:"last_error,omitempty"`
}

// OutboxStats returns per-mailbox counts.
func (s *Store) OutboxStats() (map[string]OutboxStats, error) {
	out := map[string]OutboxStats{}
	err := s.db.View(func(tx *bolt.Tx) error {
		return tx.Bucket(bucketOutbox).ForEach(func(k, v []byte) error {
			it, err := decodeOutbox(v, false)
			if err != nil {
				return nil
			}
			st := out[it.MailboxID]
			st.Items++
			if it.Attempts > 0 {
				st.Failing++
				st.LastError = it.LastError
			}
			if st.Oldest.IsZero() || it.CreatedAt.Before(st.Oldest) {
				st.Oldest = it.CreatedAt
			}
			out[it.MailboxID] = st
			return nil
		})
	})
	return out, err
}

// OutboxAck is Odoo's answer for one item.
type OutboxAck struct {
	Seq            uint64
	Status         string // posted | duplicate | unrouted | error
	OdooMessageIDs []int64
	Records        []OdooRef
	ActivityID     int64
	Error          string
	RetryAt        time.Time // for Status error
}

// AckOutbox applies Odoo's answers in one transaction: delivered items leave
// the outbox and their index entries get the Odoo ids; failed ones are kept
// with their attempt count and next attempt time. failLimit is the attempt
// count from which a mailbox counts an item as failed (it is still retried).
func (s *Store) AckOutbox(acks []OutboxAck, failLimit int) error {
	err := s.db.Update(func(tx *bolt.Tx) error {
		ob := tx.Bucket(bucketOutbox)
		mb := tx.Bucket(bucketMailbox)
		boxes := map[string]*Mailbox{}
		box := func(id string) *Mailbox {
			if m, ok := boxes[id]; ok {
				return m
			}
			var m Mailbox
			if getJSON(mb, []byte(id), &m) != nil {
				boxes[id] = nil
				return nil
			}
			boxes[id] = &m
			return &m
		}
		for _, a := range acks {
			v := ob.Get(u64(a.Seq))
			if v == nil {
				continue // acked already (a retried batch)
			}
			it, err := decodeOutbox(v, true)
			if err != nil {
				return err
			}
			m := box(it.MailboxID)
			if a.Status == "error" || a.Status == "" {
				it.Attempts++
				it.LastError = a.Error
				it.NextAttemptAt = a.RetryAt
				if m != nil && it.Attempts == failLimit {
					m.Counts.Failed++
				}
				if _, err := putOutbox(tx, &it); err != nil {
					return err
				}
				continue
			}
			if err := ob.Delete(u64(a.Seq)); err != nil {
				return err
			}
			if m != nil {
				switch a.Status {
				case DeliveryUnrouted:
					m.Counts.Unrouted++
				default:
					m.Counts.Delivered++
				}
				if it.Attempts >= failLimit && m.Counts.Failed > 0 {
					m.Counts.Failed--
				}
			}
			msgs, _ := sub(tx, bucketMessages, it.MailboxID, false)
			if msgs == nil {
				continue
			}
			var msg Message
			if getJSON(msgs, []byte(it.GraphID), &msg) != nil {
				continue
			}
			msg.Delivery = a.Status
			msg.OdooMessageIDs = a.OdooMessageIDs
			msg.OdooRefs = a.Records
			msg.ActivityID = a.ActivityID
			msg.DeliveryError = ""
			if err := putJSON(msgs, []byte(it.GraphID), msg); err != nil {
				return err
			}
		}
		for id, m := range boxes {
			if m == nil {
				continue
			}
			if err := putJSON(mb, []byte(id), m); err != nil {
				return err
			}
		}
		return nil
	})
	if err != nil {
		return fmt.Errorf("store: ack outbox: %w", err)
	}
	return nil
}

// RetryOutboxNow makes every waiting item of a mailbox (all when "") due now.
func (s *Store) RetryOutboxNow(mailboxID string) error {
	now := s.now().UTC()
	return s.db.Update(func(tx *bolt.Tx) error {
		b := tx.Bucket(bucketOutbox)
		var items []OutboxItem
		_ = b.ForEach(func(k, v []byte) error {
			it, err := decodeOutbox(v, true)
			if err == nil && (mailboxID == "" || it.MailboxID == mailboxID) && it.NextAttemptAt.After(now) {
				items = append(items, it)
			}
			return nil
		})
		for i := range items {
			items[i].NextAttemptAt = now
			if _, err := putOutbox(tx, &items[i]); err != nil {
				return err
			}
		}
		return nil
	})
}

func deleteOutboxOf(tx *bolt.Tx, mailboxID string) error {
	b := tx.Bucket(bucketOutbox)
	var dead [][]byte
	_ = b.ForEach(func(k, v []byte) error {
		it, err := decodeOutbox(v, false)
		if err == nil && it.MailboxID == mailboxID {
			dead = append(dead, append([]byte(nil), k...))
		}
		return nil
	})
	for _, k := range dead {
		if err := b.Delete(k); err != nil {
			return err
		}
	}
	return nil
}
