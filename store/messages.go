package store

import (
	"bytes"
	"encoding/binary"
	"encoding/hex"
	"errors"
	"fmt"
	"math"
	"sort"
	"strings"
	"time"

	bolt "go.etcd.io/bbolt"
)

// Address is a mail address with its display name.
type Address struct {
	Name  string `json:"name,omitempty"`
	Email string `json:"email"`
}

// OdooRef names an Odoo record a message was posted on.
type OdooRef struct {
	Model string `json:"model"`
	ID    int64  `json:"id"`
}

// Delivery states of an indexed message.
const (
	DeliveryQueued    = "queued"    // in the outbox
	DeliveryPosted    = "posted"    // Odoo posted it
	DeliveryDuplicate = "duplicate" // Odoo had it already
	DeliveryUnrouted  = "unrouted"  // Odoo found no record: stays in the MailDesk inbox
	// DeliveryExcluded: Odoo deliberately did not log it (private mail,
	// internal mail, an excluded address or conversation, "log only what I
	// choose"); its reason is in DeliveryError. Log to record still works.
	DeliveryExcluded = "excluded"
	DeliverySentByUs = "sent_by_maildesk"
	DeliveryNone     = "none" // known only from an update; content never fetched
)

// Message is one entry of the message index. IDs are Graph immutable ids.
type Message struct {
	ID                string    `json:"id"`
	Folder            string    `json:"folder"` // the folder key the mailbox syncs it under
	InternetMessageID string    `json:"internet_message_id,omitempty"`
	ConversationID    string    `json:"conversation_id,omitempty"`
	Subject           string    `json:"subject,omitempty"`
	From              Address   `json:"from"`
	To                []Address `json:"to,omitempty"`
	Cc                []Address `json:"cc,omitempty"`
	ReceivedAt        time.Time `json:"received_at"`
	IsRead            bool      `json:"is_read"`
	HasAttachments    bool      `json:"has_attachments"`
	// Flagged: flagged for follow-up in Outlook (followupFlag flagStatus).
	Flagged bool `json:"flagged,omitempty"`
	// FlagKnown: the delta item carried its flag (updates may not); not stored.
	FlagKnown bool   `json:"-"`
	Snippet   string `json:"snippet,omitempty"`
	Size      int64  `json:"size,omitempty"`
	Removed   bool   `json:"removed,omitempty"`
	// Sensitivity is Outlook's (normal | personal | private | confidential).
	Sensitivity string `json:"sensitivity,omitempty"`
	// InReplyTo and References are the threading message ids the page
	// carried (References: the last 20), so routing can be previewed
	// without the MIME.
	InReplyTo  string   `json:"in_reply_to,omitempty"`
	References []string `json:"references,omitempty"`
	// Backfill: it came from the backfill listing (its ingest item says so).
	Backfill bool `json:"backfill,omitempty"`

	Delivery       string    `json:"delivery"`
	OdooRefs       []OdooRef `json:"odoo_refs,omitempty"`
	OdooMessageIDs []int64   `json:"odoo_message_ids,omitempty"`
	ActivityID     int64     `json:"activity_id,omitempty"`
	DeliveryError  string    `json:"delivery_error,omitempty"`
}

// PageItem is one message of a delta page. Payload is the ingest item for
// Odoo; it is queued only the first time the message id is seen.
type PageItem struct {
	Message   Message
	Direction string // "in" or "out"
	Payload   []byte // nil for an update that brings no content
}

// Page is what one delta page changes, written in one transaction.
type Page struct {
	Folder  string
	Items   []PageItem
	Removed []string // graph ids removed from this folder (deleted or moved away)
	Cursor  *Cursor  // saved with the page when not nil
}

// PageResult says what ApplyPage did.
type PageResult struct {
	Queued     int      // new outbox items
	Known      int      // items already in the index (replays, updates, moves)
	SentByUs   int      // Sent Items copies of mail sent through message.send
	Missing    []string // updates for ids never seen with content
	Removed    int
	OutboxSeqs []uint64
}

// ApplyPage writes a delta page: the message index, new outbox items and the
// folder cursor, in ONE transaction. A message id gets an outbox item only
// the first time it is seen with content, so replays, resyncs and moves never
// queue a message twice.
func (s *Store) ApplyPage(mailboxID string, p Page) (PageResult, error) {
	var res PageResult
	now := s.now().UTC()
	err := s.db.Update(func(tx *bolt.Tx) error {
		res = PageResult{}
		msgs, err := sub(tx, bucketMessages, mailboxID, true)
		if err != nil {
			return err
		}
		order, err := sub(tx, bucketOrder, mailboxID, true)
		if err != nil {
			return err
		}
		ids, err := sub(tx, bucketMsgIDs, mailboxID, true)
		if err != nil {
			return err
		}
		m, err := s.getStatus(tx, mailboxID)
		if err != nil {
			return fmt.Errorf("mailbox %s: %w", mailboxID, err)
		}
		if p.Cursor != nil && p.Cursor.Gen < m.SyncGen {
			return ErrStaleCursor
		}
		for _, it := range p.Items {
			msg := it.Message
			if msg.ID == "" {
				continue
			}
			if msg.Folder == "" {
				msg.Folder = p.Folder
			}
			var old Message
			err := getJSON(msgs, []byte(msg.ID), &old)
			switch {
			case err == nil && old.Delivery != DeliveryNone:
				// Known: merge what an update can change.
				res.Known++
				if err := removeOrder(order, &old); err != nil {
					return err
				}
				old.MergeUpdate(msg, it.Payload != nil)
				if err := putMessage(msgs, order, &old); err != nil {
					return err
				}
				continue
			case err != nil && !errors.Is(err, ErrNotFound):
				return err
			}
			if err == nil {
				if err := removeOrder(order, &old); err != nil {
					return err
				}
			}
			if it.Payload == nil {
				res.Missing = append(res.Missing, msg.ID)
				if err == nil {
					continue
				}
				msg.Delivery = DeliveryNone
				if err := putMessage(msgs, order, &msg); err != nil {
					return err
				}
				continue
			}
			if msg.InternetMessageID != "" {
				if v := ids.Get(sentKey(msg.InternetMessageID)); v != nil {
					res.SentByUs++
					msg.Delivery = DeliverySentByUs
					if err := putMessage(msgs, order, &msg); err != nil {
						return err
					}
					m.Counts.Messages++
					continue
				}
				if err := ids.Put([]byte(msg.InternetMessageID), []byte(msg.ID)); err != nil {
					return err
				}
			}
			msg.Delivery = DeliveryQueued
			if err := putMessage(msgs, order, &msg); err != nil {
				return err
			}
			seq, err := putOutbox(tx, NewOutboxItem(mailboxID, &msg, it.Direction, it.Payload, now))
			if err != nil {
				return err
			}
			res.Queued++
			res.OutboxSeqs = append(res.OutboxSeqs, seq)
			m.Counts.Messages++
			m.Counts.Queued++
		}
		for _, id := range p.Removed {
			var old Message
			if err := getJSON(msgs, []byte(id), &old); err != nil {
				continue
			}
			if old.Folder != p.Folder {
				continue // already seen in its new folder
			}
			if err := removeOrder(order, &old); err != nil {
				return err
			}
			old.Removed = true
			if err := putJSON(msgs, []byte(id), old); err != nil {
				return err
			}
			res.Removed++
		}
		if p.Cursor != nil {
			c := *p.Cursor
			c.Folder = p.Folder
			c.UpdatedAt = now
			cb, err := sub(tx, bucketCursors, mailboxID, true)
			if err != nil {
				return err
			}
			if err := putJSON(cb, []byte(p.Folder), c); err != nil {
				return err
			}
		}
		if res.Queued > 0 || res.SentByUs > 0 {
			return putStatus(tx, mailboxID, &m)
		}
		return nil
	})
	if err != nil {
		return PageResult{}, fmt.Errorf("store: apply page of %s/%s: %w", mailboxID, p.Folder, err)
	}
	if res.Queued > 0 {
		s.Queued()
	}
	return res, nil
}

func orderKey(m *Message) []byte {
	inv := uint64(math.MaxInt64 - m.ReceivedAt.UnixNano())
	k := make([]byte, 0, len(m.Folder)+10+len(m.ID))
	k = append(k, m.Folder...)
	k = append(k, 0)
	k = binary.BigEndian.AppendUint64(k, inv)
	k = append(k, 0)
	return append(k, m.ID...)
}

func removeOrder(order *bolt.Bucket, m *Message) error {
	if m.Removed || m.Folder == "" {
		return nil
	}
	return order.Delete(orderKey(m))
}

func putMessage(msgs, order *bolt.Bucket, m *Message) error {
	if err := putJSON(msgs, []byte(m.ID), m); err != nil {
		return err
	}
	if m.Removed {
		return nil
	}
	return order.Put(orderKey(m), []byte(m.ID))
}

func sentKey(internetMessageID string) []byte { return []byte("sent:" + internetMessageID) }

// MarkSentByUs records that a message with this Internet Message-Id was sent
// through MailDesk (Odoo already holds it), so its Sent Items copy is indexed
// but not delivered to Odoo again.
func (s *Store) MarkSentByUs(mailboxID, internetMessageID string) error {
	err := s.db.Update(func(tx *bolt.Tx) error {
		ids, err := sub(tx, bucketMsgIDs, mailboxID, true)
		if err != nil {
			return err
		}
		return ids.Put(sentKey(internetMessageID), []byte{1})
	})
	if err != nil {
		return fmt.Errorf("store: mark sent %s: %w", internetMessageID, err)
	}
	return nil
}

// Message returns one indexed message.
func (s *Store) Message(mailboxID, id string) (Message, error) {
	var m Message
	err := s.db.View(func(tx *bolt.Tx) error {
		b, _ := sub(tx, bucketMessages, mailboxID, false)
		if b == nil {
			return ErrNotFound
		}
		return getJSON(b, []byte(id), &m)
	})
	if err != nil {
		return Message{}, fmt.Errorf("store: message %s: %w", id, err)
	}
	return m, nil
}

// MessageByInternetID finds an indexed message by its Message-Id.
func (s *Store) MessageByInternetID(mailboxID, internetMessageID string) (Message, error) {
	var id string
	_ = s.db.View(func(tx *bolt.Tx) error {
		if b, _ := sub(tx, bucketMsgIDs, mailboxID, false); b != nil {
			id = string(b.Get([]byte(internetMessageID)))
		}
		return nil
	})
	if id == "" {
		return Message{}, fmt.Errorf("store: message %s: %w", internetMessageID, ErrNotFound)
	}
	return s.Message(mailboxID, id)
}

// ListMessages pages through a folder, newest first. after is the cursor a
// previous call returned ("" for the first page); keep filters the page
// (nil keeps all). next is "" on the last page.
func (s *Store) ListMessages(mailboxID, folder string, limit int, after string, keep func(*Message) bool) (out []Message, next string, err error) {
	return s.ListMessagesMatching(mailboxID, folder, limit, after, nil, keep)
}

// ListMessagesMatching is ListMessages with a test on each entry's stored
// JSON before it is decoded (nil: none): entries it refuses are skipped
// unread, which makes a search that matches little cheap. It must be a
// necessary condition of keep (refuse only what keep would refuse).
func (s *Store) ListMessagesMatching(mailboxID, folder string, limit int, after string, raw func([]byte) bool, keep func(*Message) bool) (out []Message, next string, err error) {
	if limit <= 0 {
		limit = 50
	}
	var start []byte
	if after != "" {
		start, err = hex.DecodeString(after)
		if err != nil || !bytes.HasPrefix(start, append([]byte(folder), 0)) {
			return nil, "", fmt.Errorf("store: list messages: bad cursor")
		}
	}
	prefix := append([]byte(folder), 0)
	err = s.db.View(func(tx *bolt.Tx) error {
		order, _ := sub(tx, bucketOrder, mailboxID, false)
		msgs, _ := sub(tx, bucketMessages, mailboxID, false)
		if order == nil || msgs == nil {
			return nil
		}
		c := order.Cursor()
		var k, v []byte
		if start != nil {
			k, v = c.Seek(start)
			if k != nil && bytes.Equal(k, start) {
				k, v = c.Next()
			}
		} else {
			k, v = c.Seek(prefix)
		}
		for ; k != nil && bytes.HasPrefix(k, prefix); k, v = c.Next() {
			data := msgs.Get(v)
			if data == nil || raw != nil && !raw(data) {
				continue
			}
			var m Message
			if err := jsonUnmarshal(data, &m); err != nil {
				continue
			}
			if keep != nil && !keep(&m) {
				continue
			}
			if len(out) == limit {
				next = hex.EncodeToString(orderKey(&out[len(out)-1]))
				break
			}
			out = append(out, m)
		}
		return nil
	})
	if err != nil {
		return nil, "", fmt.Errorf("store: list messages: %w", err)
	}
	return out, next, nil
}

// RecentMessages returns a mailbox's indexed messages received at or after
// since, over all its folders, newest first: at most limit of them (limit
// <= 0: all), and how many there are in all. keep filters (nil keeps all);
// removed messages are left out.
func (s *Store) RecentMessages(mailboxID string, since time.Time, limit int, keep func(*Message) bool) (out []Message, total int, err error) {
	err = s.db.View(func(tx *bolt.Tx) error {
		order, _ := sub(tx, bucketOrder, mailboxID, false)
		msgs, _ := sub(tx, bucketMessages, mailboxID, false)
		if order == nil || msgs == nil {
			return nil
		}
		c := order.Cursor()
		for k, v := c.First(); k != nil; {
			folder, rest, ok := bytes.Cut(k, []byte{0})
			if !ok || len(rest) < 8 {
				k, v = c.Next()
				continue
			}
			at := time.Unix(0, math.MaxInt64-int64(binary.BigEndian.Uint64(rest[:8])))
			if at.Before(since) {
				// Keys run newest first within a folder: skip to the next one.
				k, v = c.Seek(append(append([]byte{}, folder...), 1))
				continue
			}
			var m Message
			if getJSON(msgs, v, &m) == nil && !m.Removed && (keep == nil || keep(&m)) {
				out = append(out, m)
			}
			k, v = c.Next()
		}
		return nil
	})
	if err != nil {
		return nil, 0, fmt.Errorf("store: recent messages of %s: %w", mailboxID, err)
	}
	sort.SliceStable(out, func(i, j int) bool { return out[i].ReceivedAt.After(out[j].ReceivedAt) })
	total = len(out)
	if limit > 0 && len(out) > limit {
		out = out[:limit]
	}
	return out, total, nil
}

// FolderCount is the index's view of one folder.
type FolderCount struct {
	Total  int64 `json:"total"`
	Unread int64 `json:"unread"`
}

// How a stored entry says what FolderCounts needs: these keys are always
// written (removed only when true), once and at the top level (a string
// value holding these bytes has its quotes escaped), and folder keys are
// well-known names or Graph ids, which JSON writes as they are.
var (
	folderJSON  = []byte(`"folder":"`)
	unreadJSON  = []byte(`"is_read":false`)
	removedJSON = []byte(`"removed":true`)
)

// FolderCounts counts indexed messages per folder. It reads the folder and
// the read flag from each entry's stored JSON without decoding it, in one
// pass in key order: 50,000 messages in tens of milliseconds, where
// decoding each took a second.
func (s *Store) FolderCounts(mailboxID string) (map[string]FolderCount, error) {
	out := map[string]FolderCount{}
	err := s.db.View(func(tx *bolt.Tx) error {
		msgs, _ := sub(tx, bucketMessages, mailboxID, false)
		if msgs == nil {
			return nil
		}
		return msgs.ForEach(func(k, v []byte) error {
			folder, ok := folderOf(v)
			if !ok {
				var m Message // not as written by this package: decode it
				if jsonUnmarshal(v, &m) != nil || m.Removed {
					return nil
				}
				c := out[m.Folder]
				c.Total++
				if !m.IsRead {
					c.Unread++
				}
				out[m.Folder] = c
				return nil
			}
			if bytes.Contains(v, removedJSON) {
				return nil
			}
			c := out[string(folder)]
			c.Total++
			if bytes.Contains(v, unreadJSON) {
				c.Unread++
			}
			out[string(folder)] = c
			return nil
		})
	})
	return out, err
}

// folderOf finds the folder in an entry's stored JSON; false when it is
// not plainly there (then the caller decodes the entry).
func folderOf(v []byte) ([]byte, bool) {
	i := bytes.Index(v, folderJSON)
	if i < 0 {
		return nil, false
	}
	rest := v[i+len(folderJSON):]
	j := bytes.IndexByte(rest, '"')
	if j < 0 || bytes.IndexByte(rest[:j], '\\') >= 0 {
		return nil, false
	}
	return rest[:j], true
}

// UpdateMessages changes indexed messages with fn in one transaction (read
// flags, moves). Unknown ids give ErrNotFound and change nothing.
func (s *Store) UpdateMessages(mailboxID string, ids []string, fn func(m *Message)) error {
	err := s.db.Update(func(tx *bolt.Tx) error {
		msgs, _ := sub(tx, bucketMessages, mailboxID, false)
		order, _ := sub(tx, bucketOrder, mailboxID, false)
		if msgs == nil || order == nil {
			return ErrNotFound
		}
		for _, id := range ids {
			var m Message
			if err := getJSON(msgs, []byte(id), &m); err != nil {
				return fmt.Errorf("message %s: %w", id, err)
			}
			if err := removeOrder(order, &m); err != nil {
				return err
			}
			fn(&m)
			m.ID = id
			if err := putMessage(msgs, order, &m); err != nil {
				return err
			}
		}
		return nil
	})
	if err != nil {
		return fmt.Errorf("store: update messages: %w", err)
	}
	return nil
}

// Cursor is a folder's sync position.
type Cursor struct {
	Folder    string `json:"folder"`
	FolderID  string `json:"folder_id,omitempty"`
	DeltaLink string `json:"delta_link,omitempty"` // set when a round finished
	NextLink  string `json:"next_link,omitempty"`  // set while a round is under way
	Rounds    int64  `json:"rounds"`
	Resyncs   int    `json:"resyncs"`
	Seen      int64  `json:"seen"` // messages seen in the current/first round
	Total     int64  `json:"total,omitempty"`
	Backfill  bool   `json:"backfill_done"`
	// Backfill window and position (the sync engine's backfill lists the
	// folder newest first, apart from the delta round).
	BackfillLink  string    `json:"backfill_link,omitempty"`  // next page of the listing
	BackfillSince time.Time `json:"backfill_since,omitempty"` // window start (zero: all mail)
	BackfillUntil time.Time `json:"backfill_until,omitempty"` // the delta round covers mail from here on
	UpdatedAt     time.Time `json:"updated_at"`
	// Gen is the mailbox's SyncGen the cursor belongs to; a resync from
	// scratch makes older cursors stale.
	Gen int64 `json:"gen,omitempty"`
}

// ErrStaleCursor is ApplyPage's answer to a cursor of an older sync
// generation than the mailbox's (a resync from scratch happened while the
// round ran): nothing of the page is written.
var ErrStaleCursor = errors.New("store: cursor of an older sync generation")

// Cursor returns a folder's cursor; ErrNotFound when it never synced.
func (s *Store) Cursor(mailboxID, folder string) (Cursor, error) {
	var c Cursor
	err := s.db.View(func(tx *bolt.Tx) error {
		b, _ := sub(tx, bucketCursors, mailboxID, false)
		if b == nil {
			return ErrNotFound
		}
		var err error
		c, err = s.cache.cursors.get(b, cursorKey{mailboxID, folder}, []byte(folder))
		return err
	})
	if err != nil {
		return Cursor{}, fmt.Errorf("store: cursor %s/%s: %w", mailboxID, folder, err)
	}
	return c, nil
}

// PutCursor saves a cursor alone (a round with no items).
func (s *Store) PutCursor(mailboxID string, c Cursor) error {
	_, err := s.ApplyPage(mailboxID, Page{Folder: c.Folder, Cursor: &c})
	return err
}

// DeleteCursor forgets a folder's position, so the next round resyncs it.
// The message index stays, so the resync queues nothing twice.
func (s *Store) DeleteCursor(mailboxID, folder string) error {
	err := s.db.Update(func(tx *bolt.Tx) error {
		b, _ := sub(tx, bucketCursors, mailboxID, false)
		if b == nil {
			return nil
		}
		return b.Delete([]byte(folder))
	})
	if err != nil {
		return fmt.Errorf("store: delete cursor %s/%s: %w", mailboxID, folder, err)
	}
	s.cache.cursors.forgetKey(cursorKey{mailboxID, folder})
	return nil
}

// MessageCount returns how many messages the index holds for a mailbox.
func (s *Store) MessageCount(mailboxID string) int {
	n := 0
	_ = s.db.View(func(tx *bolt.Tx) error {
		if b, _ := sub(tx, bucketMessages, mailboxID, false); b != nil {
			n = b.Stats().KeyN
		}
		return nil
	})
	return n
}

// snippetOf trims text to a one-line preview.
func SnippetOf(text string, n int) string {
	text = strings.Join(strings.Fields(text), " ")
	if len(text) <= n {
		return text
	}
	cut := n
	for cut > 0 && !utf8Start(text[cut]) {
		cut--
	}
	return text[:cut] + "…"
}

func utf8Start(b byte) bool { return b&0xC0 != 0x80 }

// ApplyBackfillRequest applies the mailbox's pending backfill request
// numbered seq in ONE transaction: cursor changes every folder cursor of the
// mailbox's sync generation (older ones are ignored anyway), mailbox changes
// the mailbox (progress), and the request is cleared — unless a newer one
// (another seq) arrived meanwhile, which then waits for the next round. No
// request, or one with another seq, changes nothing and returns false.
func (s *Store) ApplyBackfillRequest(mailboxID string, seq int64, cursor func(c *Cursor), mailbox func(m *MailboxStatus)) (bool, error) {
	applied := false
	now := s.now().UTC()
	err := s.db.Update(func(tx *bolt.Tx) error {
		applied = false
		m, err := s.getStatus(tx, mailboxID)
		if err != nil {
			return fmt.Errorf("mailbox %s: %w", mailboxID, err)
		}
		if m.BackfillRequest == nil || m.BackfillRequest.Seq != seq {
			return nil
		}
		if cb, _ := sub(tx, bucketCursors, mailboxID, false); cb != nil {
			type kv struct {
				k []byte
				c Cursor
			}
			var all []kv
			err := cb.ForEach(func(k, v []byte) error {
				var c Cursor
				if err := jsonUnmarshal(v, &c); err != nil {
					return err
				}
				if c.Gen >= m.SyncGen {
					all = append(all, kv{append([]byte(nil), k...), c})
				}
				return nil
			})
			if err != nil {
				return err
			}
			for _, e := range all {
				cursor(&e.c)
				e.c.UpdatedAt = now
				if err := putJSON(cb, e.k, e.c); err != nil {
					return err
				}
			}
		}
		if mailbox != nil {
			state := m.State
			mailbox(&m)
			StatusChanged(&m, state, now)
		}
		m.BackfillRequest = nil
		applied = true
		return putStatus(tx, mailboxID, &m)
	})
	if err != nil {
		return false, fmt.Errorf("store: apply backfill request of %s: %w", mailboxID, err)
	}
	return applied, nil
}
