package pgstore

import (
	"encoding/hex"
	"errors"
	"fmt"
	"strconv"
	"strings"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/maildesk/maildesk/store"
)

func getMessage(tx pgx.Tx, mailboxID, id string) (store.Message, error) {
	var m store.Message
	err := tx.QueryRow(bg, "SELECT data FROM messages WHERE mailbox_id = $1 AND id = $2", mailboxID, id).Scan(&m)
	return m, notFound(err)
}

func putMessage(tx pgx.Tx, mailboxID string, m *store.Message) error {
	_, err := tx.Exec(bg, `INSERT INTO messages (mailbox_id, id, folder, received, removed, data) VALUES ($1, $2, $3, $4, $5, $6)
		ON CONFLICT (mailbox_id, id) DO UPDATE SET folder = EXCLUDED.folder, received = EXCLUDED.received, removed = EXCLUDED.removed, data = EXCLUDED.data`,
		mailboxID, m.ID, m.Folder, nanos(m.ReceivedAt), m.Removed || m.Folder == "", m)
	return err
}

func insertOutbox(tx pgx.Tx, it *store.OutboxItem) (uint64, error) {
	if it.Seq == 0 {
		var seq int64
		if err := tx.QueryRow(bg, "SELECT nextval('outbox_seq')").Scan(&seq); err != nil {
			return 0, err
		}
		it.Seq = uint64(seq)
	}
	_, err := tx.Exec(bg, `INSERT INTO outbox (seq, mailbox_id, graph_id, next_at, failed, created, header, payload) VALUES ($1, $2, $3, $4, $5, $6, $7, $8)`,
		int64(it.Seq), it.MailboxID, it.GraphID, nanos(it.NextAttemptAt), it.Failed, nanos(it.CreatedAt), it, it.Payload)
	return it.Seq, err
}

// ApplyPage writes a delta page — index, new outbox items, counts and the
// folder's cursor — in ONE transaction (see store.Store.ApplyPage).
func (s *Store) ApplyPage(mailboxID string, p store.Page) (store.PageResult, error) {
	return s.applyPage(mailboxID, p, nil)
}

func (s *Store) applyPage(mailboxID string, p store.Page, fence fence) (store.PageResult, error) {
	var res store.PageResult
	now := s.now().UTC()
	err := s.tx(func(tx pgx.Tx) error {
		res = store.PageResult{}
		m, err := getStatus(tx, mailboxID)
		if err != nil {
			return fmt.Errorf("mailbox %s: %w", mailboxID, err)
		}
		if err := fence.check(tx, mailboxID); err != nil {
			return err
		}
		if p.Cursor != nil && p.Cursor.Gen < m.SyncGen {
			return store.ErrStaleCursor
		}
		for _, it := range p.Items {
			msg := it.Message
			if msg.ID == "" {
				continue
			}
			if msg.Folder == "" {
				msg.Folder = p.Folder
			}
			old, err := getMessage(tx, mailboxID, msg.ID)
			switch {
			case err == nil && old.Delivery != store.DeliveryNone:
				res.Known++
				old.MergeUpdate(msg, it.Payload != nil)
				if err := putMessage(tx, mailboxID, &old); err != nil {
					return err
				}
				continue
			case err != nil && !errors.Is(err, store.ErrNotFound):
				return err
			}
			if it.Payload == nil {
				res.Missing = append(res.Missing, msg.ID)
				if err == nil {
					continue
				}
				msg.Delivery = store.DeliveryNone
				if err := putMessage(tx, mailboxID, &msg); err != nil {
					return err
				}
				continue
			}
			if msg.InternetMessageID != "" {
				var sent int
				if err := tx.QueryRow(bg, "SELECT count(*) FROM msg_ids WHERE mailbox_id = $1 AND key = $2", mailboxID, "sent:"+msg.InternetMessageID).Scan(&sent); err != nil {
					return err
				}
				if sent > 0 {
					res.SentByUs++
					msg.Delivery = store.DeliverySentByUs
					if err := putMessage(tx, mailboxID, &msg); err != nil {
						return err
					}
					m.Counts.Messages++
					continue
				}
				if _, err := tx.Exec(bg, `INSERT INTO msg_ids (mailbox_id, key, value) VALUES ($1, $2, $3)
					ON CONFLICT (mailbox_id, key) DO UPDATE SET value = EXCLUDED.value`, mailboxID, msg.InternetMessageID, msg.ID); err != nil {
					return err
				}
			}
			msg.Delivery = store.DeliveryQueued
			if err := putMessage(tx, mailboxID, &msg); err != nil {
				return err
			}
			seq, err := insertOutbox(tx, store.NewOutboxItem(mailboxID, &msg, it.Direction, it.Payload, now))
			if err != nil {
				return err
			}
			res.Queued++
			res.OutboxSeqs = append(res.OutboxSeqs, seq)
			m.Counts.Messages++
			m.Counts.Queued++
		}
		for _, id := range p.Removed {
			old, err := getMessage(tx, mailboxID, id)
			if err != nil || old.Folder != p.Folder {
				continue
			}
			old.Removed = true
			if err := putMessage(tx, mailboxID, &old); err != nil {
				return err
			}
			res.Removed++
		}
		if p.Cursor != nil {
			c := *p.Cursor
			c.Folder = p.Folder
			c.UpdatedAt = now
			if err := putCursor(tx, mailboxID, &c); err != nil {
				return err
			}
		}
		if res.Queued > 0 || res.SentByUs > 0 {
			return putStatus(tx, mailboxID, &m)
		}
		return nil
	})
	if err != nil {
		return store.PageResult{}, fmt.Errorf("pgstore: apply page of %s/%s: %w", mailboxID, p.Folder, err)
	}
	if res.Queued > 0 {
		s.Queued()
	}
	return res, nil
}

func putCursor(tx pgx.Tx, mailboxID string, c *store.Cursor) error {
	_, err := tx.Exec(bg, `INSERT INTO cursors (mailbox_id, folder, data) VALUES ($1, $2, $3)
		ON CONFLICT (mailbox_id, folder) DO UPDATE SET data = EXCLUDED.data`, mailboxID, c.Folder, c)
	return err
}

// MarkSentByUs records a Message-Id sent through MailDesk.
func (s *Store) MarkSentByUs(mailboxID, internetMessageID string) error {
	_, err := s.pool.Exec(bg, `INSERT INTO msg_ids (mailbox_id, key, value) VALUES ($1, $2, '1') ON CONFLICT DO NOTHING`, mailboxID, "sent:"+internetMessageID)
	if err != nil {
		return fmt.Errorf("pgstore: mark sent %s: %w", internetMessageID, err)
	}
	return nil
}

// Message returns one indexed message.
func (s *Store) Message(mailboxID, id string) (store.Message, error) {
	var m store.Message
	if err := s.pool.QueryRow(bg, "SELECT data FROM messages WHERE mailbox_id = $1 AND id = $2", mailboxID, id).Scan(&m); err != nil {
		return store.Message{}, fmt.Errorf("pgstore: message %s: %w", id, notFound(err))
	}
	return m, nil
}

// MessageByInternetID finds an indexed message by its Message-Id.
func (s *Store) MessageByInternetID(mailboxID, internetMessageID string) (store.Message, error) {
	var id string
	if err := s.pool.QueryRow(bg, "SELECT value FROM msg_ids WHERE mailbox_id = $1 AND key = $2", mailboxID, internetMessageID).Scan(&id); err != nil {
		return store.Message{}, fmt.Errorf("pgstore: message %s: %w", internetMessageID, notFound(err))
	}
	return s.Message(mailboxID, id)
}

// ListMessages pages through a folder, newest first (see store.Store.ListMessages).
func (s *Store) ListMessages(mailboxID, folder string, limit int, after string, keep func(*store.Message) bool) (out []store.Message, next string, err error) {
	if limit <= 0 {
		limit = 50
	}
	recv, afterID := int64(1<<63-1), ""
	if after != "" {
		raw, derr := hex.DecodeString(after)
		parts := strings.SplitN(string(raw), "\x00", 3)
		if derr != nil || len(parts) != 3 || parts[0] != folder {
			return nil, "", fmt.Errorf("pgstore: list messages: bad cursor")
		}
		if recv, err = strconv.ParseInt(parts[1], 10, 64); err != nil {
			return nil, "", fmt.Errorf("pgstore: list messages: bad cursor")
		}
		afterID = parts[2]
	}
	rows, err := s.pool.Query(bg, `SELECT data FROM messages WHERE mailbox_id = $1 AND folder = $2 AND NOT removed
		AND (received < $3 OR (received = $3 AND id > $4)) ORDER BY received DESC, id`, mailboxID, folder, recv, afterID)
	if err != nil {
		return nil, "", fmt.Errorf("pgstore: list messages: %w", err)
	}
	defer rows.Close()
	for rows.Next() {
		var m store.Message
		if err := rows.Scan(&m); err != nil {
			return nil, "", err
		}
		if keep != nil && !keep(&m) {
			continue
		}
		if len(out) == limit {
			last := out[len(out)-1]
			next = hex.EncodeToString([]byte(folder + "\x00" + strconv.FormatInt(nanos(last.ReceivedAt), 10) + "\x00" + last.ID))
			break
		}
		out = append(out, m)
	}
	return out, next, rows.Err()
}

// RecentMessages returns a mailbox's indexed messages received at or after
// since, over all its folders, newest first (see store.Store.RecentMessages).
func (s *Store) RecentMessages(mailboxID string, since time.Time, limit int, keep func(*store.Message) bool) (out []store.Message, total int, err error) {
	rows, err := s.pool.Query(bg, `SELECT data FROM messages WHERE mailbox_id = $1 AND NOT removed AND received >= $2
		ORDER BY received DESC, folder, id`, mailboxID, nanos(since))
	if err != nil {
		return nil, 0, fmt.Errorf("pgstore: recent messages of %s: %w", mailboxID, err)
	}
	defer rows.Close()
	for rows.Next() {
		var m store.Message
		if err := rows.Scan(&m); err != nil {
			return nil, 0, err
		}
		if keep == nil || keep(&m) {
			out = append(out, m)
		}
	}
	if err := rows.Err(); err != nil {
		return nil, 0, err
	}
	total = len(out)
	if limit > 0 && len(out) > limit {
		out = out[:limit]
	}
	return out, total, nil
}

// FolderCounts counts indexed messages per folder.
func (s *Store) FolderCounts(mailboxID string) (map[string]store.FolderCount, error) {
	rows, err := s.pool.Query(bg, `SELECT folder, count(*), count(*) FILTER (WHERE NOT coalesce((data->>'is_read')::boolean, false))
		FROM messages WHERE mailbox_id = $1 AND NOT coalesce((data->>'removed')::boolean, false) GROUP BY folder`, mailboxID)
	if err != nil {
		return nil, fmt.Errorf("pgstore: folder counts: %w", err)
	}
	defer rows.Close()
	out := map[string]store.FolderCount{}
	for rows.Next() {
		var f string
		var c store.FolderCount
		if err := rows.Scan(&f, &c.Total, &c.Unread); err != nil {
			return nil, err
		}
		out[f] = c
	}
	return out, rows.Err()
}

// UpdateMessages changes indexed messages with fn in one transaction.
func (s *Store) UpdateMessages(mailboxID string, ids []string, fn func(m *store.Message)) error {
	err := s.tx(func(tx pgx.Tx) error {
		for _, id := range ids {
			m, err := getMessage(tx, mailboxID, id)
			if err != nil {
				return fmt.Errorf("message %s: %w", id, err)
			}
			fn(&m)
			m.ID = id
			if err := putMessage(tx, mailboxID, &m); err != nil {
				return err
			}
		}
		return nil
	})
	if err != nil {
		return fmt.Errorf("pgstore: update messages: %w", err)
	}
	return nil
}

// MessageCount returns how many messages the index holds for a mailbox.
func (s *Store) MessageCount(mailboxID string) int {
	var n int
	_ = s.pool.QueryRow(bg, "SELECT count(*) FROM messages WHERE mailbox_id = $1", mailboxID).Scan(&n)
	return n
}

// Cursor returns a folder's cursor; store.ErrNotFound when it never synced.
func (s *Store) Cursor(mailboxID, folder string) (store.Cursor, error) {
	var c store.Cursor
	if err := s.pool.QueryRow(bg, "SELECT data FROM cursors WHERE mailbox_id = $1 AND folder = $2", mailboxID, folder).Scan(&c); err != nil {
		return store.Cursor{}, fmt.Errorf("pgstore: cursor %s/%s: %w", mailboxID, folder, notFound(err))
	}
	return c, nil
}

// PutCursor saves a cursor alone.
func (s *Store) PutCursor(mailboxID string, c store.Cursor) error {
	_, err := s.ApplyPage(mailboxID, store.Page{Folder: c.Folder, Cursor: &c})
	return err
}

// DeleteCursor forgets a folder's position.
func (s *Store) DeleteCursor(mailboxID, folder string) error {
	if _, err := s.pool.Exec(bg, "DELETE FROM cursors WHERE mailbox_id = $1 AND folder = $2", mailboxID, folder); err != nil {
		return fmt.Errorf("pgstore: delete cursor %s/%s: %w", mailboxID, folder, err)
	}
	return nil
}

// ApplyBackfillRequest applies the mailbox's pending backfill request
// numbered seq in one transaction (see store.Store.ApplyBackfillRequest).
func (s *Store) ApplyBackfillRequest(mailboxID string, seq int64, cursor func(c *store.Cursor), mailbox func(m *store.MailboxStatus)) (bool, error) {
	return s.applyBackfillRequest(mailboxID, seq, cursor, mailbox, nil)
}

func (s *Store) applyBackfillRequest(mailboxID string, seq int64, cursor func(c *store.Cursor), mailbox func(m *store.MailboxStatus), fence fence) (bool, error) {
	applied := false
	now := s.now().UTC()
	err := s.tx(func(tx pgx.Tx) error {
		applied = false
		m, err := getStatus(tx, mailboxID)
		if err != nil {
			return fmt.Errorf("mailbox %s: %w", mailboxID, err)
		}
		if m.BackfillRequest == nil || m.BackfillRequest.Seq != seq {
			return nil
		}
		if err := fence.check(tx, mailboxID); err != nil {
			return err
		}
		rows, err := tx.Query(bg, "SELECT data FROM cursors WHERE mailbox_id = $1", mailboxID)
		if err != nil {
			return err
		}
		cs, err := pgx.CollectRows(rows, pgx.RowTo[store.Cursor])
		if err != nil {
			return err
		}
		for _, c := range cs {
			if c.Gen < m.SyncGen {
				continue
			}
			cursor(&c)
			c.UpdatedAt = now
			if err := putCursor(tx, mailboxID, &c); err != nil {
				return err
			}
		}
		if mailbox != nil {
			state := m.State
			mailbox(&m)
			store.StatusChanged(&m, state, now)
		}
		m.BackfillRequest = nil
		applied = true
		return putStatus(tx, mailboxID, &m)
	})
	if err != nil {
		return false, fmt.Errorf("pgstore: apply backfill request of %s: %w", mailboxID, err)
	}
	return applied, nil
}

var _ = time.Now
