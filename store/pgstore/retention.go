package pgstore

import (
	"errors"
	"fmt"
	"sort"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/maildesk/maildesk/store"
)

// The retention queries, each served by an index (audit_at,
// messages_received; TestPostgresRetentionQueriesUseIndexes).
const (
	pruneAuditQuery = `DELETE FROM audit WHERE seq IN (SELECT seq FROM audit WHERE at < $1 ORDER BY at LIMIT $2)`
	// Candidates first, without locks; their mailboxes' status rows are
	// locked next (the order ApplyPage takes them in), then the entries go.
	pruneCandidatesQuery = `SELECT mailbox_id, id FROM messages WHERE NOT removed AND received < $1
		AND coalesce(data->>'delivery', '') NOT IN ('queued', 'failed') ORDER BY received LIMIT $2`
	pruneMessagesQuery = `DELETE FROM messages WHERE mailbox_id = $1 AND id = ANY($2) AND NOT removed AND received < $3
		AND coalesce(data->>'delivery', '') NOT IN ('queued', 'failed') RETURNING id, coalesce(data->>'internet_message_id', '')`
)

// PruneAudit removes up to limit audit entries written before before,
// oldest first (see store.Store.PruneAudit).
func (s *Store) PruneAudit(before time.Time, limit int) (int, error) {
	tag, err := s.pool.Exec(bg, pruneAuditQuery, before.UnixNano(), limit)
	if err != nil {
		return 0, fmt.Errorf("pgstore: prune audit log: %w", err)
	}
	return int(tag.RowsAffected()), nil
}

// PruneMessages removes up to limit message index entries received before
// before (see store.Store.PruneMessages).
func (s *Store) PruneMessages(before time.Time, limit int) (int, error) {
	n := 0
	err := s.tx(func(tx pgx.Tx) error {
		n = 0
		rows, err := tx.Query(bg, pruneCandidatesQuery, before.UnixNano(), limit)
		if err != nil {
			return err
		}
		byBox := map[string][]string{}
		for rows.Next() {
			var box, id string
			if err := rows.Scan(&box, &id); err != nil {
				rows.Close()
				return err
			}
			byBox[box] = append(byBox[box], id)
		}
		rows.Close()
		if err := rows.Err(); err != nil {
			return err
		}
		boxes := make([]string, 0, len(byBox))
		for b := range byBox {
			boxes = append(boxes, b)
		}
		sort.Strings(boxes)
		for _, box := range boxes {
			st, err := getStatus(tx, box)
			haveStatus := err == nil
			if err != nil && !errors.Is(err, store.ErrNotFound) {
				return err
			}
			rows, err := tx.Query(bg, pruneMessagesQuery, box, byBox[box], before.UnixNano())
			if err != nil {
				return err
			}
			var ids, imids []string
			for rows.Next() {
				var id, imid string
				if err := rows.Scan(&id, &imid); err != nil {
					rows.Close()
					return err
				}
				ids = append(ids, id)
				imids = append(imids, imid)
			}
			rows.Close()
			if err := rows.Err(); err != nil {
				return err
			}
			if len(ids) == 0 {
				continue
			}
			if _, err := tx.Exec(bg, `DELETE FROM msg_ids m USING unnest($2::text[], $3::text[]) AS g(key, value)
				WHERE m.mailbox_id = $1 AND m.key = g.key AND m.value = g.value`, box, imids, ids); err != nil {
				return err
			}
			if haveStatus {
				st.Pruned(len(ids))
				if err := putStatus(tx, box, &st); err != nil {
					return err
				}
			}
			n += len(ids)
		}
		return nil
	})
	if err != nil {
		return 0, fmt.Errorf("pgstore: prune message index: %w", err)
	}
	return n, nil
}
