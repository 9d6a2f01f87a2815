package pgstore

import (
	"errors"
	"fmt"
	"sort"
	"strings"

	"github.com/jackc/pgx/v5"

	"github.com/maildesk/maildesk/store"
)

// migrations[i] moves a database from schema version i to i+1. Append new
// ones; never change one that was released.
var migrations = []string{
	// 0 → 1: every table.
	`CREATE TABLE meta (key text PRIMARY KEY, value bytea NOT NULL);
	CREATE TABLE settings (id int PRIMARY KEY CHECK (id = 1), data jsonb NOT NULL);
	CREATE TABLE secrets (name text PRIMARY KEY, sealed bytea NOT NULL);
	CREATE TABLE mailboxes (id text PRIMARY KEY, email_lower text NOT NULL UNIQUE, data jsonb NOT NULL);
	CREATE TABLE oauth_states (state text PRIMARY KEY, mailbox_id text NOT NULL, expires_at bigint NOT NULL, sealed bytea NOT NULL);
	CREATE INDEX oauth_states_mailbox ON oauth_states (mailbox_id);
	CREATE TABLE token_caches (mailbox_id text PRIMARY KEY, sealed bytea NOT NULL);
	CREATE TABLE cursors (mailbox_id text NOT NULL, folder text NOT NULL, data jsonb NOT NULL, PRIMARY KEY (mailbox_id, folder));
	CREATE TABLE messages (mailbox_id text NOT NULL, id text NOT NULL, folder text NOT NULL, received bigint NOT NULL,
		removed boolean NOT NULL, data jsonb NOT NULL, PRIMARY KEY (mailbox_id, id));
	CREATE INDEX messages_order ON messages (mailbox_id, folder, received DESC, id) WHERE NOT removed;
	CREATE TABLE msg_ids (mailbox_id text NOT NULL, key text NOT NULL, value text NOT NULL, PRIMARY KEY (mailbox_id, key));
	CREATE SEQUENCE outbox_seq;
	CREATE TABLE outbox (seq bigint PRIMARY KEY, mailbox_id text NOT NULL, graph_id text NOT NULL, next_at bigint NOT NULL,
		failed boolean NOT NULL, header jsonb NOT NULL, payload bytea);
	CREATE INDEX outbox_due ON outbox (next_at, seq) WHERE NOT failed;
	CREATE INDEX outbox_mailbox ON outbox (mailbox_id, seq);
	CREATE TABLE due (mailbox_id text PRIMARY KEY, at bigint NOT NULL);
	CREATE SEQUENCE audit_seq;
	CREATE TABLE audit (seq bigint PRIMARY KEY, mailbox_id text NOT NULL, data jsonb NOT NULL);
	CREATE INDEX audit_mailbox ON audit (mailbox_id, seq);
	CREATE TABLE sends (mailbox_id text NOT NULL, request_id text NOT NULL, data jsonb NOT NULL, PRIMARY KEY (mailbox_id, request_id));
	CREATE SEQUENCE notices_seq;
	CREATE TABLE notices (seq bigint PRIMARY KEY, mailbox_id text NOT NULL, kind text NOT NULL, data jsonb NOT NULL);`,
	// 1 → 2: a mailbox's config and status are separate rows, so their
	// writers never overwrite (or lock) each other. The keys named here are
	// schema 1's config fields; everything else of a row is status.
	`CREATE TABLE mailbox_status (id text PRIMARY KEY, data jsonb NOT NULL);
	INSERT INTO mailbox_status (id, data)
		SELECT id, data - ARRAY['id', 'email', 'kind', 'odoo_id', 'owner_uid', 'sign_in_email', 'user_ids', 'main_user_id', 'mode',
			'gateway_model', 'folders', 'backfill_days', 'log_sent_as_activity', 'create_contacts', 'anyone_may_send',
			'max_message_bytes', 'created_at', 'updated_at'] FROM mailboxes;
	UPDATE mailboxes SET data = (SELECT coalesce(jsonb_object_agg(key, value), '{}'::jsonb) FROM jsonb_each(data)
		WHERE key = ANY (ARRAY['email', 'kind', 'odoo_id', 'owner_uid', 'sign_in_email', 'user_ids', 'main_user_id', 'mode',
			'gateway_model', 'folders', 'backfill_days', 'log_sent_as_activity', 'create_contacts', 'anyone_may_send',
			'max_message_bytes', 'created_at', 'updated_at']));`,
	// 2 → 3: sidecar nodes and mailbox leases (lease.go).
	leaseMigration,
	// 3 → 4: retention — the audit log by time, the message index by
	// received time, both indexed so pruning reads only what it removes.
	`ALTER TABLE audit ADD COLUMN at bigint NOT NULL DEFAULT 0;
	UPDATE audit SET at = (extract(epoch FROM (data->>'at')::timestamptz) * 1000000000)::bigint WHERE data ? 'at';
	CREATE INDEX audit_at ON audit (at);
	CREATE INDEX messages_received ON messages (received) WHERE NOT removed;`,
	// 4 → 5: the outbox counts itself per mailbox (OutboxStats reads
	// outbox_stats, kept by a trigger on every insert, update and delete,
	// plus one index lookup per mailbox for its oldest item and last error)
	// instead of aggregating the whole outbox.
	`ALTER TABLE outbox ADD COLUMN created bigint NOT NULL DEFAULT 0;
	UPDATE outbox SET created = (extract(epoch FROM (header->>'created_at')::timestamptz) * 1000000000)::bigint WHERE header ? 'created_at';
	CREATE INDEX outbox_created ON outbox (mailbox_id, created);
	CREATE INDEX outbox_failing ON outbox (mailbox_id, seq) WHERE (header->>'attempts')::int > 0;
	CREATE TABLE outbox_stats (mailbox_id text PRIMARY KEY, items bigint NOT NULL, failing bigint NOT NULL, failed bigint NOT NULL);
	INSERT INTO outbox_stats SELECT mailbox_id, count(*), count(*) FILTER (WHERE (header->>'attempts')::int > 0), count(*) FILTER (WHERE failed)
		FROM outbox GROUP BY mailbox_id;
	CREATE FUNCTION outbox_stats_track() RETURNS trigger LANGUAGE plpgsql AS $$
	BEGIN
		IF TG_OP IN ('UPDATE', 'DELETE') THEN
			UPDATE outbox_stats SET items = items - 1,
				failing = failing - CASE WHEN (OLD.header->>'attempts')::int > 0 THEN 1 ELSE 0 END,
				failed = failed - CASE WHEN OLD.failed THEN 1 ELSE 0 END
			WHERE mailbox_id = OLD.mailbox_id;
		END IF;
		IF TG_OP IN ('INSERT', 'UPDATE') THEN
			INSERT INTO outbox_stats AS s (mailbox_id, items, failing, failed)
				VALUES (NEW.mailbox_id, 1, CASE WHEN (NEW.header->>'attempts')::int > 0 THEN 1 ELSE 0 END, CASE WHEN NEW.failed THEN 1 ELSE 0 END)
			ON CONFLICT (mailbox_id) DO UPDATE SET items = s.items + 1, failing = s.failing + EXCLUDED.failing, failed = s.failed + EXCLUDED.failed;
		END IF;
		RETURN NULL;
	END $$;
	CREATE TRIGGER outbox_stats_track AFTER INSERT OR UPDATE OR DELETE ON outbox FOR EACH ROW EXECUTE FUNCTION outbox_stats_track();`,
}

// SchemaVersion is the version this code writes.
var SchemaVersion = len(migrations)

// migrationLock is the advisory lock key under which migrations run, so
// sidecars starting together migrate once.
const migrationLock = 0x6d61696c6465736b // "maildesk"

func (s *Store) migrate() error {
	return s.tx(func(tx pgx.Tx) error {
		if _, err := tx.Exec(bg, "SELECT pg_advisory_xact_lock($1)", int64(migrationLock)); err != nil {
			return fmt.Errorf("pgstore: lock for migrations: %w", err)
		}
		if _, err := tx.Exec(bg, "CREATE TABLE IF NOT EXISTS maildesk_schema (version int NOT NULL)"); err != nil {
			return fmt.Errorf("pgstore: schema table: %w", err)
		}
		v := 0
		err := tx.QueryRow(bg, "SELECT version FROM maildesk_schema").Scan(&v)
		if errors.Is(err, pgx.ErrNoRows) {
			if _, err := tx.Exec(bg, "INSERT INTO maildesk_schema (version) VALUES (0)"); err != nil {
				return err
			}
		} else if err != nil {
			return fmt.Errorf("pgstore: read schema version: %w", err)
		}
		if v > SchemaVersion {
			return fmt.Errorf("pgstore: the database has schema version %d, newer than this MailDesk understands (%d): run a newer maildesk", v, SchemaVersion)
		}
		if v > 0 {
			if err := s.checkKey(tx); err != nil {
				return err
			}
		}
		for ; v < SchemaVersion; v++ {
			if _, err := tx.Exec(bg, migrations[v]); err != nil {
				return fmt.Errorf("pgstore: migrate schema %d to %d: %w", v, v+1, err)
			}
			if _, err := tx.Exec(bg, "UPDATE maildesk_schema SET version = $1", v+1); err != nil {
				return err
			}
		}
		var n int
		if err := tx.QueryRow(bg, "SELECT count(*) FROM meta WHERE key = 'key_check'").Scan(&n); err != nil {
			return err
		}
		if n == 0 {
			_, err := tx.Exec(bg, "INSERT INTO meta (key, value) VALUES ('key_check', $1)", s.seal.Seal(store.KeyCheck(), []byte("key_check")))
			return err
		}
		return nil
	})
}

func (s *Store) checkKey(tx pgx.Tx) error {
	var sealed []byte
	err := tx.QueryRow(bg, "SELECT value FROM meta WHERE key = 'key_check'").Scan(&sealed)
	if errors.Is(err, pgx.ErrNoRows) {
		return nil
	}
	if err != nil {
		return fmt.Errorf("pgstore: read key check: %w", err)
	}
	if _, err := s.seal.Open(sealed, []byte("key_check")); err != nil {
		return fmt.Errorf("pgstore: %s was sealed with another encryption key than the key file given: start with the key file this database was created with; nothing was changed: %w", Redact(s.url), store.ErrWrongKey)
	}
	return nil
}

func sortMailboxes(ms []store.Mailbox) {
	sort.Slice(ms, func(i, j int) bool { return strings.Compare(ms[i].Email, ms[j].Email) < 0 })
}
