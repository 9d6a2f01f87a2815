package pgstore

import (
	"bytes"
	"context"
	"strings"
	"testing"

	"github.com/jackc/pgx/v5"

	"github.com/maildesk/maildesk/store"
	"github.com/maildesk/maildesk/store/pgstore/pgtest"
)

// A database of schema 1 (one JSON row per mailbox) migrates: every
// mailbox keeps its config and its status, now two rows.
func TestMigrateSchema1SplitsConfigAndStatus(t *testing.T) {
	url, schema := pgtest.FreshSchema(t)
	ctx := context.Background()
	conn, err := pgx.Connect(ctx, url)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close(ctx)
	// Schema 1 as MailDesk wrote it, with a row as it wrote it.
	for _, q := range []string{migrations[0], "CREATE TABLE maildesk_schema (version int NOT NULL)", "INSERT INTO maildesk_schema VALUES (1)",
		`INSERT INTO mailboxes (id, email_lower, data) VALUES ('mbx_1', 'anna@contoso.com', '{"id":"mbx_1","email":"anna@contoso.com","kind":"personal",
		"odoo_id":7,"owner_uid":2,"user_ids":[2,5],"main_user_id":2,"mode":"log","folders":["inbox"],"backfill_days":30,"log_sent_as_activity":true,
		"create_contacts":false,"anyone_may_send":true,"state":"connected","state_since":"2026-11-20T08:00:00Z","home_account_id":"uid.utid",
		"connected_as":"anna@contoso.com","progress":{"done":2,"total":2,"eta_s":0,"finished":true},"counts":{"messages":2,"queued":2,"delivered":1,
		"unrouted":0,"excluded":0,"failed":0,"unread":0},"delivery":{"delayed":false},"sync_gen":1,"backfill_request":{"seq":3,"at":"2026-11-20T08:00:00Z"},
		"created_at":"2026-11-20T08:00:00Z","updated_at":"2026-11-20T08:00:00Z"}')`} {
		if _, err := conn.Exec(ctx, q); err != nil {
			t.Fatal(err)
		}
	}
	s, err := Open(url, bytes.Repeat([]byte{1}, store.KeySize), Options{Schema: schema})
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	m, err := s.Mailbox("mbx_1")
	if err != nil {
		t.Fatal(err)
	}
	if m.Email != "anna@contoso.com" || m.OdooID != 7 || len(m.UserIDs) != 2 || !m.AnyoneMaySend || m.BackfillDays != 30 {
		t.Fatalf("config %+v", m.MailboxConfig)
	}
	if m.State != "connected" || m.HomeAccountID != "uid.utid" || m.SyncGen != 1 || m.Counts.Delivered != 1 ||
		!m.Progress.Finished || m.BackfillRequest == nil || m.BackfillRequest.Seq != 3 {
		t.Fatalf("status %+v", m.MailboxStatus)
	}
	var cfg, st string
	if err := conn.QueryRow(ctx, "SELECT c.data::text, s.data::text FROM mailboxes c JOIN mailbox_status s USING (id)").Scan(&cfg, &st); err != nil {
		t.Fatal(err)
	}
	if bytes.Contains([]byte(cfg), []byte(`"state"`)) || bytes.Contains([]byte(st), []byte(`"email"`)) || !bytes.Contains([]byte(st), []byte(`"sync_gen": 1`)) {
		t.Fatalf("rows after the migration: config %s, status %s", cfg, st)
	}
	var v int
	if err := conn.QueryRow(ctx, "SELECT version FROM maildesk_schema").Scan(&v); err != nil || v != SchemaVersion {
		t.Fatalf("schema version %d %v", v, err)
	}
}

// The retention queries use the audit log's and the message index's time
// indexes, not a scan of the table.
func TestPostgresRetentionQueriesUseIndexes(t *testing.T) {
	url, _ := pgtest.FreshSchema(t)
	ctx := context.Background()
	s, err := Open(url, bytes.Repeat([]byte{1}, store.KeySize), Options{})
	if err != nil {
		t.Fatal(err)
	}
	s.Close()
	conn, err := pgx.Connect(ctx, url)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close(ctx)
	for _, q := range []string{
		`INSERT INTO audit (seq, mailbox_id, at, data) SELECT g, 'mbx_' || (g % 500), g * 1000, '{}'::jsonb FROM generate_series(1, 50000) g`,
		`INSERT INTO messages (mailbox_id, id, folder, received, removed, data) SELECT 'mbx_' || (g % 500), 'g' || g, 'inbox', g * 1000, g % 10 = 0,
			'{"delivery":"posted"}'::jsonb FROM generate_series(1, 50000) g`,
		"ANALYZE audit", "ANALYZE messages",
	} {
		if _, err := conn.Exec(ctx, q); err != nil {
			t.Fatal(err)
		}
	}
	for _, q := range []struct {
		sql   string
		table string
		args  []any
	}{
		{pruneAuditQuery, "audit", []any{int64(5000), 1000}},
		{pruneCandidatesQuery, "messages", []any{int64(5000), 1000}},
		{pruneMessagesQuery, "messages", []any{"mbx_7", []string{"g7"}, int64(5000)}},
	} {
		rows, err := conn.Query(ctx, "EXPLAIN "+q.sql, q.args...)
		if err != nil {
			t.Fatal(err)
		}
		lines, err := pgx.CollectRows(rows, pgx.RowTo[string])
		if err != nil {
			t.Fatal(err)
		}
		plan := strings.Join(lines, "\n")
		if strings.Contains(plan, "Seq Scan on "+q.table) {
			t.Errorf("%s\nscans the whole %s table:\n%s", q.sql, q.table, plan)
		}
	}
}

// OutboxStats reads the trigger-kept counts and looks up each mailbox's
// oldest and newest failing item by index: it never scans the outbox, and
// the counts match the rows.
func TestPostgresOutboxStatsUsesCountsAndIndexes(t *testing.T) {
	url, _ := pgtest.FreshSchema(t)
	ctx := context.Background()
	s, err := Open(url, bytes.Repeat([]byte{1}, store.KeySize), Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	conn, err := pgx.Connect(ctx, url)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close(ctx)
	for _, q := range []string{
		`INSERT INTO outbox (seq, mailbox_id, graph_id, next_at, failed, created, header, payload)
			SELECT g, 'mbx_' || (g % 200), 'g' || g, g, g % 50 = 0, g, jsonb_build_object('attempts', CASE WHEN g % 7 = 0 THEN 1 ELSE 0 END,
			'last_error', 'e' || g), '\x00'::bytea FROM generate_series(1, 20000) g`,
		`DELETE FROM outbox WHERE seq % 3 = 0`,
		`UPDATE outbox SET failed = true WHERE seq % 11 = 0`,
		"ANALYZE outbox", "ANALYZE outbox_stats",
	} {
		if _, err := conn.Exec(ctx, q); err != nil {
			t.Fatal(err)
		}
	}
	var items, failing, failed int
	var last string
	if err := conn.QueryRow(ctx, `SELECT count(*), count(*) FILTER (WHERE (header->>'attempts')::int > 0), count(*) FILTER (WHERE failed),
		(array_agg(header->>'last_error' ORDER BY seq DESC) FILTER (WHERE (header->>'attempts')::int > 0))[1]
		FROM outbox WHERE mailbox_id = 'mbx_7'`).Scan(&items, &failing, &failed, &last); err != nil {
		t.Fatal(err)
	}
	stats, err := s.OutboxStats()
	if err != nil {
		t.Fatal(err)
	}
	if st := stats["mbx_7"]; len(stats) != 200 || st.Items != items || st.Failing != failing || st.Failed != failed || st.Oldest.UnixNano() != 7 || st.LastError != last || last == "" {
		t.Fatalf("mbx_7: %+v, rows: %d items, %d failing, %d failed, last error %q (%d mailboxes)", st, items, failing, failed, last, len(stats))
	}
	rows, err := conn.Query(ctx, "EXPLAIN "+outboxStatsQuery)
	if err != nil {
		t.Fatal(err)
	}
	lines, err := pgx.CollectRows(rows, pgx.RowTo[string])
	if err != nil {
		t.Fatal(err)
	}
	if plan := strings.Join(lines, "\n") + "\n"; strings.Contains(plan, "Seq Scan on outbox ") || strings.Contains(plan, "Seq Scan on outbox\n") {
		t.Errorf("OutboxStats scans the outbox:\n%s", plan)
	}
}
