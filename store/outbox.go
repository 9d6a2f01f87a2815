package store

import (
	"encoding/binary"
	"encoding/json"
	"errors"
	"fmt"
	"slices"
	"sort"
	"time"

	bolt "go.etcd.io/bbolt"
)

// OutboxItem is one message waiting for Odoo. Payload is the ingest item
// (opaque to the store). Items are never dropped: an item leaves the outbox
// only when Odoo answered posted, duplicate, unrouted or excluded for it. An item Odoo
// keeps refusing becomes Failed: it stays in the outbox, is no longer due,
// counts in its mailbox's Counts.Failed and waits for RetryFailed.
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
	// SameErrors counts the consecutive refusals with LastError as reason.
	SameErrors int       `json:"same_errors,omitempty"`
	Failed     bool      `json:"failed,omitempty"`
	FailedAt   time.Time `json:"failed_at,omitempty"`
	Payload    []byte    `json:"-"`
}

// DeliveryFailed is the index state of a message whose outbox item failed
// (see OutboxItem.Failed); RetryFailed puts it back to DeliveryQueued.
const DeliveryFailed = "failed"

// FailAfterAttempts is how many attempts, whatever Odoo's reasons, fail an
// item, as a multiple of the failLimit given to AckOutbox: an item Odoo
// refuses with a changing reason is not retried silently forever either.
const FailAfterAttempts = 3

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
	s.Queued()
	return seq, nil
}

// DueOutbox returns up to limit items whose next attempt is due at now, in
// queue order, with payloads, stopping early once maxBytes of payload is
// reached (at least one item is always returned when one is due). skip
// excludes mailboxes (nil skips none). Failed items are never due.
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
			if it.Failed || it.NextAttemptAt.After(now) || (skip != nil && skip(it.MailboxID)) {
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

// DueBatch is the due items of one mailbox, in queue order.
type DueBatch struct {
	MailboxID string
	Items     []OutboxItem
}

// DueOutboxByMailbox returns, for every mailbox with due items, its own batch:
// up to limit(mailboxID) items in queue order and at most maxBytes of payload
// (at least one item when one is due). Each mailbox keeps its own place in the
// queue: a mailbox's items never take another mailbox's share, however many
// there are or however early they were queued. skip excludes mailboxes (nil
// skips none); failed items are never due. Batches come ordered by mailbox id.
func (s *Store) DueOutboxByMailbox(now time.Time, limit func(mailboxID string) int, maxBytes int, skip func(mailboxID string) bool) ([]DueBatch, error) {
	type acc struct {
		items []OutboxItem
		size  int
		full  bool
	}
	groups := map[string]*acc{}
	skipped := map[string]bool{}
	err := s.db.View(func(tx *bolt.Tx) error {
		c := tx.Bucket(bucketOutbox).Cursor()
		for k, v := c.First(); k != nil; k, v = c.Next() {
			it, err := decodeOutbox(v, false)
			if err != nil {
				return fmt.Errorf("item %d: %w", binary.BigEndian.Uint64(k), err)
			}
			if it.Failed || it.NextAttemptAt.After(now) {
				continue
			}
			g := groups[it.MailboxID]
			if g == nil {
				if skipped[it.MailboxID] {
					continue
				}
				if skip != nil && skip(it.MailboxID) {
					skipped[it.MailboxID] = true
					continue
				}
				g = &acc{}
				groups[it.MailboxID] = g
			}
			if g.full {
				continue
			}
			full, _ := decodeOutbox(v, true)
			if len(g.items) > 0 && maxBytes > 0 && g.size+len(full.Payload) > maxBytes {
				g.full = true
				continue
			}
			g.size += len(full.Payload)
			g.items = append(g.items, full)
			if len(g.items) >= max(1, limit(it.MailboxID)) {
				g.full = true
			}
		}
		return nil
	})
	if err != nil {
		return nil, fmt.Errorf("store: due outbox: %w", err)
	}
	out := make([]DueBatch, 0, len(groups))
	for id, g := range groups {
		out = append(out, DueBatch{MailboxID: id, Items: g.items})
	}
	sort.Slice(out, func(i, j int) bool { return out[i].MailboxID < out[j].MailboxID })
	return out, nil
}

// NextOutboxDue returns the earliest next attempt time of any item not
// skipped (skip may be nil) and not failed, and false when there is none.
func (s *Store) NextOutboxDue(skip func(mailboxID string) bool) (time.Time, bool) {
	var t time.Time
	found := false
	_ = s.db.View(func(tx *bolt.Tx) error {
		return tx.Bucket(bucketOutbox).ForEach(func(k, v []byte) error {
			it, err := decodeOutbox(v, false)
			if err == nil && !it.Failed && (skip == nil || !skip(it.MailboxID)) && (!found || it.NextAttemptAt.Before(t)) {
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
	Failing   int       `json:"failing"` // with at least one failed attempt, failed ones included
	Failed    int       `json:"failed"`  // given up on until RetryFailed
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
			if it.Failed {
				st.Failed++
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
	Status         string // posted | duplicate | unrouted | excluded | error
	OdooMessageIDs []int64
	Records        []OdooRef
	ActivityID     int64
	Error          string
	RetryAt        time.Time // for Status error
	// Fail (with Status error) fails the item now, whatever its attempts:
	// for items no retry can help (an unreadable payload).
	Fail bool
}

// AckOutbox applies Odoo's answers in one transaction: delivered items leave
// the outbox and their index entries get the Odoo ids; refused ones are kept
// with their attempt count and next attempt time. An item refused failLimit
// times in a row with the same reason (or FailAfterAttempts*failLimit times
// in all) becomes failed: kept, no longer retried, counted in its mailbox's
// Counts.Failed with Odoo's reason in Delivery.FailedReason, until
// RetryFailed. failLimit <= 0 never fails an item by count.
func (s *Store) AckOutbox(acks []OutboxAck, failLimit int) error {
	now := s.now().UTC()
	err := s.db.Update(func(tx *bolt.Tx) error {
		ob := tx.Bucket(bucketOutbox)
		boxes := map[string]*MailboxStatus{}
		box := func(id string) *MailboxStatus {
			if m, ok := boxes[id]; ok {
				return m
			}
			m, err := s.getStatus(tx, id)
			if err != nil {
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
			refused := a.Status == "error" || a.Status == ""
			if it.Failed {
				if refused {
					continue // failed meanwhile; RetryFailed decides
				}
				if m != nil && m.Counts.Failed > 0 {
					m.Counts.Failed-- // Odoo took it after all
				}
			}
			if refused {
				if it.Refused(a, m, failLimit, now) {
					if err := setIndexDelivery(tx, &it, DeliveryFailed, a.Error); err != nil {
						return err
					}
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
				case DeliveryExcluded:
					m.Counts.Excluded++
				default:
					m.Counts.Delivered++
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
			if a.Status == DeliveryExcluded {
				msg.DeliveryError = a.Error // Odoo's reason
			}
			if err := putJSON(msgs, []byte(it.GraphID), msg); err != nil {
				return err
			}
		}
		for id, m := range boxes {
			if m == nil {
				continue
			}
			if err := putStatus(tx, id, m); err != nil {
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

// setIndexDelivery sets the delivery state of an item's message index entry,
// when there is one.
func setIndexDelivery(tx *bolt.Tx, it *OutboxItem, state, reason string) error {
	msgs, _ := sub(tx, bucketMessages, it.MailboxID, false)
	if msgs == nil {
		return nil
	}
	var msg Message
	if getJSON(msgs, []byte(it.GraphID), &msg) != nil {
		return nil
	}
	msg.Delivery = state
	msg.DeliveryError = reason
	return putJSON(msgs, []byte(it.GraphID), msg)
}

// FailedOutbox returns the failed items of a mailbox, in queue order, without
// payloads.
func (s *Store) FailedOutbox(mailboxID string) ([]OutboxItem, error) {
	var out []OutboxItem
	err := s.db.View(func(tx *bolt.Tx) error {
		return tx.Bucket(bucketOutbox).ForEach(func(k, v []byte) error {
			it, err := decodeOutbox(v, false)
			if err == nil && it.Failed && it.MailboxID == mailboxID {
				out = append(out, it)
			}
			return nil
		})
	})
	if err != nil {
		return nil, fmt.Errorf("store: failed outbox of %s: %w", mailboxID, err)
	}
	return out, nil
}

// RetryFailed puts a mailbox's failed items back in the queue, due now with
// a fresh attempt count, clears the mailbox's failed count and reason, and
// returns how many items it requeued.
func (s *Store) RetryFailed(mailboxID string) (int, error) {
	now := s.now().UTC()
	n := 0
	err := s.db.Update(func(tx *bolt.Tx) error {
		m, err := s.getStatus(tx, mailboxID)
		if err != nil {
			return err
		}
		b := tx.Bucket(bucketOutbox)
		var items []OutboxItem
		_ = b.ForEach(func(k, v []byte) error {
			it, err := decodeOutbox(v, true)
			if err == nil && it.Failed && it.MailboxID == mailboxID {
				items = append(items, it)
			}
			return nil
		})
		for i := range items {
			it := &items[i]
			it.Retried(now)
			if _, err := putOutbox(tx, it); err != nil {
				return err
			}
			if err := setIndexDelivery(tx, it, DeliveryQueued, ""); err != nil {
				return err
			}
		}
		n = len(items)
		m.FailedCleared()
		return putStatus(tx, mailboxID, &m)
	})
	if err != nil {
		return 0, fmt.Errorf("store: retry failed items of %s: %w", mailboxID, err)
	}
	if n > 0 {
		s.Queued()
	}
	return n, nil
}

// RetryOutboxNow makes every waiting item of a mailbox (all when "") due now;
// failed items stay failed (see RetryFailed).
func (s *Store) RetryOutboxNow(mailboxID string) error {
	now := s.now().UTC()
	return s.db.Update(func(tx *bolt.Tx) error {
		b := tx.Bucket(bucketOutbox)
		var items []OutboxItem
		_ = b.ForEach(func(k, v []byte) error {
			it, err := decodeOutbox(v, true)
			if err == nil && !it.Failed && (mailboxID == "" || it.MailboxID == mailboxID) && it.NextAttemptAt.After(now) {
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

// Requeue puts items of messages Odoo answered before (excluded or unrouted)
// back in the outbox, in one transaction: only an entry whose delivery is
// still one of from is queued (a second request while the first is queued
// queues nothing), its delivery becomes queued, and the mailbox's count of
// its old state goes down, so the answer to come counts it once. It returns
// how many items it queued.
func (s *Store) Requeue(mailboxID string, items []OutboxItem, from []string) (int, error) {
	n := 0
	err := s.db.Update(func(tx *bolt.Tx) error {
		msgs, _ := sub(tx, bucketMessages, mailboxID, false)
		if msgs == nil {
			return nil
		}
		m, err := s.getStatus(tx, mailboxID)
		if err != nil {
			return nil
		}
		for i := range items {
			it := items[i]
			var msg Message
			if getJSON(msgs, []byte(it.GraphID), &msg) != nil || msg.Removed || !slices.Contains(from, msg.Delivery) {
				continue
			}
			Requeued(mailboxID, &m, &msg, &it, s.now().UTC())
			if _, err := putOutbox(tx, &it); err != nil {
				return err
			}
			if err := putJSON(msgs, []byte(it.GraphID), msg); err != nil {
				return err
			}
			n++
		}
		if n == 0 {
			return nil
		}
		return putStatus(tx, mailboxID, &m)
	})
	if err != nil {
		return 0, fmt.Errorf("store: requeue mail of %s: %w", mailboxID, err)
	}
	if n > 0 {
		s.Queued()
	}
	return n, nil
}
