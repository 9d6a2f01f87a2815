package pgstore

import (
	"fmt"
	"strings"

	"github.com/jackc/pgx/v5"

	"github.com/maildesk/maildesk/store"
)

// countQueries count each kind of record a copy carries.
var countQueries = map[string]string{
	store.RecordSettings: "SELECT count(*) FROM settings",
	store.RecordMailbox:  "SELECT count(*) FROM mailboxes",
	store.RecordToken:    "SELECT count(*) FROM token_caches",
	store.RecordCursor:   "SELECT count(*) FROM cursors",
	store.RecordDue:      "SELECT count(*) FROM due",
	store.RecordMessage:  "SELECT count(*) FROM messages",
	store.RecordMsgID:    "SELECT count(*) FROM msg_ids",
	store.RecordSend:     "SELECT count(*) FROM sends",
	store.RecordOutbox:   "SELECT count(*) FROM outbox",
	store.RecordAudit:    "SELECT count(*) FROM audit",
	store.RecordNotice:   "SELECT count(*) FROM notices",
}

// Counts returns how many records of each kind (store.RecordKinds) the
// database holds.
func (s *Store) Counts() (map[string]int, error) {
	out := map[string]int{}
	for kind, q := range countQueries {
		var n int
		if err := s.pool.QueryRow(bg, q).Scan(&n); err != nil {
			return nil, fmt.Errorf("pgstore: count %s: %w", kind, err)
		}
		out[kind] = n
	}
	return out, nil
}

// Import writes records another store exported (store.Store.Export) in ONE
// transaction, keeping their ids and sequence numbers; a record already
// there (same key) is overwritten, an outbox item, audit entry or notice
// with the same sequence number is kept. Secrets are sealed with this
// store's key. Settings are written on their own (SaveSettings). Call
// FinishImport after the last batch.
func (s *Store) Import(recs []store.Record) error {
	for _, r := range recs {
		if r.Kind == store.RecordSettings {
			if err := s.SaveSettings(*r.Settings); err != nil {
				return err
			}
		}
	}
	err := s.tx(func(tx pgx.Tx) error {
		b := &pgx.Batch{}
		for _, r := range recs {
			id := r.MailboxID
			switch r.Kind {
			case store.RecordSettings:
			case store.RecordMailbox:
				m := r.Mailbox
				b.Queue(`INSERT INTO mailboxes (id, email_lower, data) VALUES ($1, $2, $3)
					ON CONFLICT (id) DO UPDATE SET email_lower = EXCLUDED.email_lower, data = EXCLUDED.data`, m.ID, strings.ToLower(m.Email), m.MailboxConfig)
				b.Queue(`INSERT INTO mailbox_status (id, data) VALUES ($1, $2) ON CONFLICT (id) DO UPDATE SET data = EXCLUDED.data`, m.ID, m.MailboxStatus)
			case store.RecordToken:
				b.Queue(`INSERT INTO token_caches (mailbox_id, sealed) VALUES ($1, $2) ON CONFLICT (mailbox_id) DO UPDATE SET sealed = EXCLUDED.sealed`,
					id, s.seal.Seal(r.Token, []byte("token:"+id)))
			case store.RecordCursor:
				b.Queue(`INSERT INTO cursors (mailbox_id, folder, data) VALUES ($1, $2, $3)
					ON CONFLICT (mailbox_id, folder) DO UPDATE SET data = EXCLUDED.data`, id, r.Cursor.Folder, r.Cursor)
			case store.RecordDue:
				b.Queue(`INSERT INTO due (mailbox_id, at) VALUES ($1, $2) ON CONFLICT (mailbox_id) DO UPDATE SET at = EXCLUDED.at`, id, r.Due.UnixNano())
			case store.RecordMessage:
				m := r.Message
				b.Queue(`INSERT INTO messages (mailbox_id, id, folder, received, removed, data) VALUES ($1, $2, $3, $4, $5, $6)
					ON CONFLICT (mailbox_id, id) DO UPDATE SET folder = EXCLUDED.folder, received = EXCLUDED.received, removed = EXCLUDED.removed, data = EXCLUDED.data`,
					id, m.ID, m.Folder, nanos(m.ReceivedAt), m.Removed || m.Folder == "", m)
			case store.RecordMsgID:
				b.Queue(`INSERT INTO msg_ids (mailbox_id, key, value) VALUES ($1, $2, $3) ON CONFLICT (mailbox_id, key) DO UPDATE SET value = EXCLUDED.value`,
					id, r.Key, r.Value)
			case store.RecordSend:
				b.Queue(`INSERT INTO sends (mailbox_id, request_id, data) VALUES ($1, $2, $3)
					ON CONFLICT (mailbox_id, request_id) DO UPDATE SET data = EXCLUDED.data`, id, r.Send.RequestID, r.Send)
			case store.RecordOutbox:
				it := r.Outbox
				b.Queue(`INSERT INTO outbox (seq, mailbox_id, graph_id, next_at, failed, created, header, payload) VALUES ($1, $2, $3, $4, $5, $6, $7, $8)
					ON CONFLICT (seq) DO NOTHING`, int64(it.Seq), it.MailboxID, it.GraphID, nanos(it.NextAttemptAt), it.Failed, nanos(it.CreatedAt), it, it.Payload)
			case store.RecordAudit:
				e := r.Audit
				b.Queue(`INSERT INTO audit (seq, mailbox_id, at, data) VALUES ($1, $2, $3, $4) ON CONFLICT (seq) DO NOTHING`,
					int64(e.Seq), e.MailboxID, e.At.UnixNano(), e)
			case store.RecordNotice:
				n := r.Notice
				b.Queue(`INSERT INTO notices (seq, mailbox_id, kind, data) VALUES ($1, $2, $3, $4) ON CONFLICT (seq) DO NOTHING`,
					int64(n.Seq), n.MailboxID, n.Kind, n)
			default:
				return fmt.Errorf("unknown record kind %q", r.Kind)
			}
		}
		return tx.SendBatch(bg, b).Close()
	})
	if err != nil {
		return fmt.Errorf("pgstore: import: %w", err)
	}
	return nil
}

// FinishImport moves the outbox's, audit log's and notices' sequences past
// the imported numbers, so new items follow them.
func (s *Store) FinishImport() error {
	for _, t := range []string{"outbox", "audit", "notices"} {
		q := fmt.Sprintf("SELECT setval('%[1]s_seq', greatest((SELECT coalesce(max(seq), 0) FROM %[1]s), (SELECT last_value FROM %[1]s_seq)), true)", t)
		if _, err := s.pool.Exec(bg, q); err != nil {
			return fmt.Errorf("pgstore: finish import (%s sequence): %w", t, err)
		}
	}
	return nil
}
