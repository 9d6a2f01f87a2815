package pgstore

import (
	"errors"
	"fmt"
	"slices"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/maildesk/maildesk/store"
)

func scanItem(rows pgx.Rows) (store.OutboxItem, error) {
	var it store.OutboxItem
	var payload []byte
	if err := rows.Scan(&it, &payload); err != nil {
		return it, err
	}
	it.Payload = payload
	return it, nil
}

// Enqueue adds an item outside a delta page.
func (s *Store) Enqueue(it store.OutboxItem) (uint64, error) {
	it.Seq = 0
	if it.CreatedAt.IsZero() {
		it.CreatedAt = s.now().UTC()
	}
	if it.NextAttemptAt.IsZero() {
		it.NextAttemptAt = it.CreatedAt
	}
	var seq uint64
	err := s.tx(func(tx pgx.Tx) error {
		var err error
		seq, err = insertOutbox(tx, &it)
		return err
	})
	if err != nil {
		return 0, fmt.Errorf("pgstore: enqueue %s: %w", it.GraphID, err)
	}
	s.Queued()
	return seq, nil
}

// DueOutbox returns up to limit due items in queue order (index on
// (next_at, seq); see store.Store.DueOutbox).
func (s *Store) DueOutbox(now time.Time, limit int, maxBytes int, skip func(mailboxID string) bool) ([]store.OutboxItem, error) {
	rows, err := s.pool.Query(bg, "SELECT header, payload FROM outbox WHERE NOT failed AND next_at <= $1 ORDER BY seq", now.UnixNano())
	if err != nil {
		return nil, fmt.Errorf("pgstore: due outbox: %w", err)
	}
	defer rows.Close()
	var out []store.OutboxItem
	size := 0
	for rows.Next() && len(out) < limit {
		it, err := scanItem(rows)
		if err != nil {
			return nil, err
		}
		if skip != nil && skip(it.MailboxID) {
			continue
		}
		if len(out) > 0 && maxBytes > 0 && size+len(it.Payload) > maxBytes {
			break
		}
		size += len(it.Payload)
		out = append(out, it)
	}
	return out, rows.Err()
}

// DueOutboxByMailbox returns every mailbox's own batch of due items: the
// mailboxes with due items from the due index, then each one's items from
// the (mailbox_id, seq) index (see store.Store.DueOutboxByMailbox).
func (s *Store) DueOutboxByMailbox(now time.Time, limit func(mailboxID string) int, maxBytes int, skip func(mailboxID string) bool) ([]store.DueBatch, error) {
	rows, err := s.pool.Query(bg, "SELECT DISTINCT mailbox_id FROM outbox WHERE NOT failed AND next_at <= $1 ORDER BY mailbox_id", now.UnixNano())
	if err != nil {
		return nil, fmt.Errorf("pgstore: due outbox: %w", err)
	}
	ids, err := pgx.CollectRows(rows, pgx.RowTo[string])
	if err != nil {
		return nil, fmt.Errorf("pgstore: due outbox: %w", err)
	}
	var out []store.DueBatch
	for _, id := range ids {
		if skip != nil && skip(id) {
			continue
		}
		n := max(1, limit(id))
		rows, err := s.pool.Query(bg, "SELECT header, payload FROM outbox WHERE mailbox_id = $1 AND NOT failed AND next_at <= $2 ORDER BY seq LIMIT $3", id, now.UnixNano(), n)
		if err != nil {
			return nil, fmt.Errorf("pgstore: due outbox of %s: %w", id, err)
		}
		var b store.DueBatch
		b.MailboxID = id
		size := 0
		for rows.Next() {
			it, err := scanItem(rows)
			if err != nil {
				rows.Close()
				return nil, err
			}
			if len(b.Items) > 0 && maxBytes > 0 && size+len(it.Payload) > maxBytes {
				break
			}
			size += len(it.Payload)
			b.Items = append(b.Items, it)
		}
		rows.Close()
		if err := rows.Err(); err != nil {
			return nil, err
		}
		if len(b.Items) > 0 {
			out = append(out, b)
		}
	}
	return out, nil
}

// NextOutboxDue returns the earliest next attempt time of an item not
// skipped and not failed (in due-index order: it stops at the first one).
func (s *Store) NextOutboxDue(skip func(mailboxID string) bool) (time.Time, bool) {
	rows, err := s.pool.Query(bg, "SELECT mailbox_id, next_at FROM outbox WHERE NOT failed ORDER BY next_at, seq")
	if err != nil {
		return time.Time{}, false
	}
	defer rows.Close()
	for rows.Next() {
		var id string
		var at int64
		if rows.Scan(&id, &at) != nil {
			return time.Time{}, false
		}
		if skip == nil || !skip(id) {
			return time.Unix(0, at), true
		}
	}
	return time.Time{}, false
}

// outboxStatsQuery reads the counts a trigger keeps per mailbox
// (outbox_stats) and, per mailbox with items, its oldest item and its
// newest failing item's error by index lookups (outbox_created,
// outbox_failing): it never aggregates the outbox.
const outboxStatsQuery = `SELECT s.mailbox_id, s.items, s.failing, s.failed,
	(SELECT o.created FROM outbox o WHERE o.mailbox_id = s.mailbox_id ORDER BY o.created LIMIT 1),
	CASE WHEN s.failing > 0 THEN (SELECT coalesce(o.header->>'last_error', '') FROM outbox o
		WHERE o.mailbox_id = s.mailbox_id AND (o.header->>'attempts')::int > 0 ORDER BY o.seq DESC LIMIT 1) END
	FROM outbox_stats s WHERE s.items > 0`

// OutboxStats returns per-mailbox counts (see store.Store.OutboxStats).
func (s *Store) OutboxStats() (map[string]store.OutboxStats, error) {
	rows, err := s.pool.Query(bg, outboxStatsQuery)
	if err != nil {
		return nil, fmt.Errorf("pgstore: outbox stats: %w", err)
	}
	defer rows.Close()
	out := map[string]store.OutboxStats{}
	for rows.Next() {
		var id string
		var st store.OutboxStats
		var oldest *int64
		var last *string
		if err := rows.Scan(&id, &st.Items, &st.Failing, &st.Failed, &oldest, &last); err != nil {
			return nil, err
		}
		if oldest != nil && *oldest != 0 {
			st.Oldest = time.Unix(0, *oldest).UTC()
		}
		if last != nil {
			st.LastError = *last
		}
		out[id] = st
	}
	return out, rows.Err()
}

func setIndexDelivery(tx pgx.Tx, it *store.OutboxItem, state, reason string) error {
	m, err := getMessage(tx, it.MailboxID, it.GraphID)
	if errors.Is(err, store.ErrNotFound) {
		return nil
	}
	if err != nil {
		return err
	}
	m.Delivery, m.DeliveryError = state, reason
	return putMessage(tx, it.MailboxID, &m)
}

func updateHeader(tx pgx.Tx, it *store.OutboxItem) error {
	_, err := tx.Exec(bg, "UPDATE outbox SET next_at = $2, failed = $3, header = $4 WHERE seq = $1",
		int64(it.Seq), nanos(it.NextAttemptAt), it.Failed, it)
	return err
}

// AckOutbox applies Odoo's answers in one transaction (see
// store.Store.AckOutbox). A refusal rewrites the item's header only.
func (s *Store) AckOutbox(acks []store.OutboxAck, failLimit int) error {
	return s.ackOutbox(acks, failLimit, nil)
}

func (s *Store) ackOutbox(acks []store.OutboxAck, failLimit int, fence fence) error {
	now := s.now().UTC()
	err := s.tx(func(tx pgx.Tx) error {
		boxes := map[string]*store.MailboxStatus{}
		box := func(id string) (*store.MailboxStatus, error) {
			if m, ok := boxes[id]; ok {
				return m, nil
			}
			m, err := getStatus(tx, id)
			if errors.Is(err, store.ErrNotFound) {
				boxes[id] = nil
				return nil, nil
			}
			if err != nil {
				return nil, err
			}
			if err := fence.check(tx, id); err != nil {
				return nil, err
			}
			boxes[id] = &m
			return &m, nil
		}
		for _, a := range acks {
			var it store.OutboxItem
			err := tx.QueryRow(bg, "SELECT header FROM outbox WHERE seq = $1 FOR UPDATE", int64(a.Seq)).Scan(&it)
			if errors.Is(err, pgx.ErrNoRows) {
				continue // acked already
			}
			if err != nil {
				return err
			}
			m, err := box(it.MailboxID)
			if err != nil {
				return err
			}
			refused := a.Status == "error" || a.Status == ""
			if it.Failed {
				if refused {
					continue
				}
				if m != nil && m.Counts.Failed > 0 {
					m.Counts.Failed--
				}
			}
			if refused {
				if it.Refused(a, m, failLimit, now) {
					if err := setIndexDelivery(tx, &it, store.DeliveryFailed, a.Error); err != nil {
						return err
					}
				}
				if err := updateHeader(tx, &it); err != nil {
					return err
				}
				continue
			}
			if _, err := tx.Exec(bg, "DELETE FROM outbox WHERE seq = $1", int64(a.Seq)); err != nil {
				return err
			}
			if m != nil {
				switch a.Status {
				case store.DeliveryUnrouted:
					m.Counts.Unrouted++
				case store.DeliveryExcluded:
					m.Counts.Excluded++
				default:
					m.Counts.Delivered++
				}
			}
			msg, err := getMessage(tx, it.MailboxID, it.GraphID)
			if errors.Is(err, store.ErrNotFound) {
				continue
			}
			if err != nil {
				return err
			}
			msg.Delivery = a.Status
			msg.OdooMessageIDs = a.OdooMessageIDs
			msg.OdooRefs = a.Records
			msg.ActivityID = a.ActivityID
			msg.DeliveryError = ""
			if a.Status == store.DeliveryExcluded {
				msg.DeliveryError = a.Error // Odoo's reason
			}
			if err := putMessage(tx, it.MailboxID, &msg); err != nil {
				return err
			}
		}
		for id, m := range boxes {
			if m != nil {
				if err := putStatus(tx, id, m); err != nil {
					return err
				}
			}
		}
		return nil
	})
	if err != nil {
		return fmt.Errorf("pgstore: ack outbox: %w", err)
	}
	return nil
}

// FailedOutbox returns the failed items of a mailbox, without payloads.
func (s *Store) FailedOutbox(mailboxID string) ([]store.OutboxItem, error) {
	rows, err := s.pool.Query(bg, "SELECT header FROM outbox WHERE mailbox_id = $1 AND failed ORDER BY seq", mailboxID)
	if err != nil {
		return nil, fmt.Errorf("pgstore: failed outbox of %s: %w", mailboxID, err)
	}
	return pgx.CollectRows(rows, pgx.RowTo[store.OutboxItem])
}

// RetryFailed puts a mailbox's failed items back in the queue.
func (s *Store) RetryFailed(mailboxID string) (int, error) {
	now := s.now().UTC()
	n := 0
	err := s.tx(func(tx pgx.Tx) error {
		m, err := getStatus(tx, mailboxID)
		if err != nil {
			return err
		}
		rows, err := tx.Query(bg, "SELECT header FROM outbox WHERE mailbox_id = $1 AND failed ORDER BY seq", mailboxID)
		if err != nil {
			return err
		}
		items, err := pgx.CollectRows(rows, pgx.RowTo[store.OutboxItem])
		if err != nil {
			return err
		}
		for i := range items {
			it := &items[i]
			it.Retried(now)
			if err := updateHeader(tx, it); err != nil {
				return err
			}
			if err := setIndexDelivery(tx, it, store.DeliveryQueued, ""); err != nil {
				return err
			}
		}
		n = len(items)
		m.FailedCleared()
		return putStatus(tx, mailboxID, &m)
	})
	if err != nil {
		return 0, fmt.Errorf("pgstore: retry failed items of %s: %w", mailboxID, err)
	}
	if n > 0 {
		s.Queued()
	}
	return n, nil
}

// RetryOutboxNow makes every waiting item of a mailbox (all when "") due now.
func (s *Store) RetryOutboxNow(mailboxID string) error {
	now := s.now().UTC()
	err := s.tx(func(tx pgx.Tx) error {
		rows, err := tx.Query(bg, "SELECT header FROM outbox WHERE NOT failed AND ($1 = '' OR mailbox_id = $1) AND next_at > $2", mailboxID, now.UnixNano())
		if err != nil {
			return err
		}
		items, err := pgx.CollectRows(rows, pgx.RowTo[store.OutboxItem])
		if err != nil {
			return err
		}
		for i := range items {
			items[i].NextAttemptAt = now
			if err := updateHeader(tx, &items[i]); err != nil {
				return err
			}
		}
		return nil
	})
	if err != nil {
		return fmt.Errorf("pgstore: retry outbox now: %w", err)
	}
	return nil
}

// Requeue puts items of messages Odoo answered before (excluded or
// unrouted) back in the outbox in one transaction (see store.Store.Requeue).
func (s *Store) Requeue(mailboxID string, items []store.OutboxItem, from []string) (int, error) {
	return s.requeue(mailboxID, items, from, nil)
}

func (s *Store) requeue(mailboxID string, items []store.OutboxItem, from []string, fence fence) (int, error) {
	n := 0
	err := s.tx(func(tx pgx.Tx) error {
		n = 0
		m, err := getStatus(tx, mailboxID)
		if errors.Is(err, store.ErrNotFound) {
			return nil
		}
		if err != nil {
			return err
		}
		if err := fence.check(tx, mailboxID); err != nil {
			return err
		}
		for i := range items {
			it := items[i]
			msg, err := getMessage(tx, mailboxID, it.GraphID)
			if errors.Is(err, store.ErrNotFound) {
				continue
			}
			if err != nil {
				return err
			}
			if msg.Removed || !slices.Contains(from, msg.Delivery) {
				continue
			}
			store.Requeued(mailboxID, &m, &msg, &it, s.now().UTC())
			if _, err := insertOutbox(tx, &it); err != nil {
				return err
			}
			if err := putMessage(tx, mailboxID, &msg); err != nil {
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
		return 0, fmt.Errorf("pgstore: requeue mail of %s: %w", mailboxID, err)
	}
	if n > 0 {
		s.Queued()
	}
	return n, nil
}
