// Package pgstore keeps MailDesk's data in PostgreSQL (`serve --store
// postgres://…`), for operators who back up and replicate PostgreSQL
// already; bbolt (package store) stays the default.
//
// It passes the same suite as the bbolt store (store/storetest). Rules:
//   - Versioned migrations (migrations.go) run at Open under an advisory
//     lock, so several sidecars starting at once migrate once.
//   - Secrets (settings secrets, token caches, OAuth states) are sealed with
//     the key file's key (store.Sealer) before they reach the database; the
//     key never does. A key check value sealed at creation detects a wrong
//     key at Open, before anything is written.
//   - A delta page, its outbox items, the mailbox's counts and the folder's
//     cursor are one transaction (ApplyPage); the mailbox row is locked
//     first, so writes of one mailbox are serialised.
//   - The outbox is indexed by due time and by mailbox: due items, the next
//     due time and a mailbox's batch are index scans, and an ack rewrites
//     the item's header, never its payload.
package pgstore

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"strings"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"
	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/maildesk/maildesk/store"
)

// Options tune Open.
type Options struct {
	// Now replaces the clock in tests.
	Now func() time.Time
	// Schema, when set, is created if missing and used as the search path
	// (tests give each run its own).
	Schema string
}

// Store is MailDesk's data in PostgreSQL. Safe for concurrent use, also by
// several processes.
type Store struct {
	pool *pgxpool.Pool
	seal *store.Sealer
	now  func() time.Time
	url  string

	store.Hooks
}

var bg = context.Background()

// Open connects to the database at url (postgres://…), checks that key
// opens it and migrates it to the newest schema. A wrong key returns an
// error wrapping store.ErrWrongKey and changes nothing.
func Open(url string, key []byte, opts Options) (*Store, error) {
	seal, err := store.NewSealer(key)
	if err != nil {
		return nil, err
	}
	if opts.Now == nil {
		opts.Now = time.Now
	}
	cfg, err := pgxpool.ParseConfig(url)
	if err != nil {
		return nil, fmt.Errorf("pgstore: %s: %w", Redact(url), err)
	}
	if opts.Schema != "" {
		cfg.ConnConfig.RuntimeParams["search_path"] = opts.Schema
		conn, err := pgx.ConnectConfig(bg, cfg.ConnConfig.Copy())
		if err != nil {
			return nil, fmt.Errorf("pgstore: connect to %s: %w", Redact(url), err)
		}
		_, err = conn.Exec(bg, "CREATE SCHEMA IF NOT EXISTS "+pgx.Identifier{opts.Schema}.Sanitize())
		conn.Close(bg)
		if err != nil {
			return nil, fmt.Errorf("pgstore: create schema: %w", err)
		}
	}
	pool, err := pgxpool.NewWithConfig(bg, cfg)
	if err != nil {
		return nil, fmt.Errorf("pgstore: connect to %s: %w", Redact(url), err)
	}
	s := &Store{pool: pool, seal: seal, now: opts.Now, url: url}
	if err := s.migrate(); err != nil {
		pool.Close()
		return nil, err
	}
	return s, nil
}

// Redact drops the password from a connection URL for messages.
func Redact(url string) string {
	if i := strings.Index(url, "://"); i >= 0 {
		if at := strings.LastIndex(url, "@"); at > i {
			cred := url[i+3 : at]
			if c := strings.Index(cred, ":"); c >= 0 {
				return url[:i+3] + cred[:c] + ":***" + url[at:]
			}
		}
	}
	return url
}

// Close closes the connection pool.
func (s *Store) Close() error { s.pool.Close(); return nil }

// Ping checks that the database answers.
func (s *Store) Ping() error {
	ctx, cancel := context.WithTimeout(bg, 5*time.Second)
	defer cancel()
	var one int
	if err := s.pool.QueryRow(ctx, "SELECT 1 FROM maildesk_schema LIMIT 1").Scan(&one); err != nil {
		return fmt.Errorf("pgstore: ping: %w", err)
	}
	return nil
}

// Backup is not done by the sidecar for PostgreSQL: use pg_dump (or the
// replication and backups already run for the database).
func (s *Store) Backup(w io.Writer) (int64, error) {
	return 0, fmt.Errorf("pgstore: the sidecar streams no PostgreSQL backup. Back the database up on a host with PostgreSQL's client tools: "+
		"pg_dump --format=custom --file=maildesk.dump '%[1]s' (the password from PGPASSWORD or ~/.pgpass); "+
		"restore into an empty database with the sidecars stopped: pg_restore --no-owner --dbname='%[1]s' maildesk.dump. "+
		"Secrets stay sealed in the dump: keep the key file apart", Redact(s.url))
}

// tx runs fn in one transaction, committing when it returns nil.
func (s *Store) tx(fn func(tx pgx.Tx) error) error {
	return pgx.BeginFunc(bg, s.pool, fn)
}

func isUnique(err error) bool {
	var pe *pgconn.PgError
	return errors.As(err, &pe) && pe.Code == "23505"
}

func notFound(err error) error {
	if errors.Is(err, pgx.ErrNoRows) {
		return store.ErrNotFound
	}
	return err
}

func nanos(t time.Time) int64 {
	if t.IsZero() {
		return 0
	}
	return t.UnixNano()
}

// ---- mailboxes ----

// mailboxSelect reads both records of mailboxes; scanMailbox takes a row.
const mailboxSelect = "SELECT c.id, c.data, s.data FROM mailboxes c JOIN mailbox_status s ON s.id = c.id"

func scanMailbox(row pgx.Row) (store.Mailbox, error) {
	var m store.Mailbox
	err := row.Scan(&m.ID, &m.MailboxConfig, &m.MailboxStatus)
	return m, err
}

// getMailbox reads both records of a mailbox; lock takes the lock named
// (FOR UPDATE OF c, FOR SHARE OF s, ...; "" for none).
func getMailbox(tx pgx.Tx, id, lock string) (store.Mailbox, error) {
	m, err := scanMailbox(tx.QueryRow(bg, mailboxSelect+" WHERE c.id = $1 "+lock, id))
	return m, notFound(err)
}

// getStatus reads a mailbox's status row, locked for update: the status
// writers of one mailbox are serialised on it.
func getStatus(tx pgx.Tx, id string) (store.MailboxStatus, error) {
	var st store.MailboxStatus
	err := tx.QueryRow(bg, "SELECT data FROM mailbox_status WHERE id = $1 FOR UPDATE", id).Scan(&st)
	return st, notFound(err)
}

func putStatus(tx pgx.Tx, id string, st *store.MailboxStatus) error {
	_, err := tx.Exec(bg, "UPDATE mailbox_status SET data = $2 WHERE id = $1", id, st)
	return err
}

func (s *Store) appendAudit(tx pgx.Tx, e *store.AuditEntry) error {
	if e.At.IsZero() {
		e.At = s.now().UTC()
	}
	var seq int64
	if err := tx.QueryRow(bg, "SELECT nextval('audit_seq')").Scan(&seq); err != nil {
		return err
	}
	e.Seq = uint64(seq)
	_, err := tx.Exec(bg, "INSERT INTO audit (seq, mailbox_id, at, data) VALUES ($1, $2, $3, $4)", seq, e.MailboxID, e.At.UnixNano(), e)
	return err
}

func (s *Store) appendMailboxAudit(tx pgx.Tx, id string, e *store.AuditEntry) error {
	if e == nil {
		return nil
	}
	if e.MailboxID == "" {
		e.MailboxID = id
	}
	return s.appendAudit(tx, e)
}

// CreateMailbox stores a new mailbox (see store.Store.CreateMailbox).
func (s *Store) CreateMailbox(m store.Mailbox) (store.Mailbox, error) {
	return s.CreateMailboxAudit(m, nil)
}

// CreateMailboxAudit stores a new mailbox with its audit entry in one transaction.
func (s *Store) CreateMailboxAudit(m store.Mailbox, audit func(m *store.Mailbox) *store.AuditEntry) (store.Mailbox, error) {
	store.NewMailbox(&m, s.now())
	err := s.tx(func(tx pgx.Tx) error {
		var dup string
		err := tx.QueryRow(bg, "SELECT id FROM mailboxes WHERE id = $1 OR email_lower = $2", m.ID, strings.ToLower(m.Email)).Scan(&dup)
		if err == nil {
			return fmt.Errorf("mailbox %s already uses %s: %w", dup, m.Email, store.ErrExists)
		}
		if !errors.Is(err, pgx.ErrNoRows) {
			return err
		}
		if _, err := tx.Exec(bg, "INSERT INTO mailboxes (id, email_lower, data) VALUES ($1, $2, $3)", m.ID, strings.ToLower(m.Email), m.MailboxConfig); err != nil {
			if isUnique(err) {
				return fmt.Errorf("mailbox %s: %w", m.Email, store.ErrExists)
			}
			return err
		}
		if _, err := tx.Exec(bg, "INSERT INTO mailbox_status (id, data) VALUES ($1, $2)", m.ID, m.MailboxStatus); err != nil {
			return err
		}
		if audit != nil {
			if e := audit(&m); e != nil {
				e.MailboxID = m.ID
				return s.appendAudit(tx, e)
			}
		}
		return nil
	})
	if err != nil {
		return store.Mailbox{}, fmt.Errorf("pgstore: create mailbox: %w", err)
	}
	return m, nil
}

// Mailbox returns one mailbox or store.ErrNotFound.
func (s *Store) Mailbox(id string) (store.Mailbox, error) {
	m, err := scanMailbox(s.pool.QueryRow(bg, mailboxSelect+" WHERE c.id = $1", id))
	if err != nil {
		return store.Mailbox{}, fmt.Errorf("pgstore: mailbox %s: %w", id, notFound(err))
	}
	return m, nil
}

// Mailboxes returns all mailboxes ordered by e-mail address.
func (s *Store) Mailboxes() ([]store.Mailbox, error) {
	rows, err := s.pool.Query(bg, mailboxSelect)
	if err != nil {
		return nil, fmt.Errorf("pgstore: list mailboxes: %w", err)
	}
	out, err := pgx.CollectRows(rows, func(row pgx.CollectableRow) (store.Mailbox, error) { return scanMailbox(row) })
	if err != nil {
		return nil, fmt.Errorf("pgstore: list mailboxes: %w", err)
	}
	// Byte order, as the bbolt store sorts.
	sortMailboxes(out)
	return out, nil
}

// MailboxStates returns every mailbox's state by id.
func (s *Store) MailboxStates() (map[string]string, error) {
	rows, err := s.pool.Query(bg, "SELECT c.id, coalesce(s.data->>'state', '') FROM mailboxes c JOIN mailbox_status s ON s.id = c.id")
	if err != nil {
		return nil, fmt.Errorf("pgstore: mailbox states: %w", err)
	}
	defer rows.Close()
	out := map[string]string{}
	for rows.Next() {
		var id, state string
		if err := rows.Scan(&id, &state); err != nil {
			return nil, fmt.Errorf("pgstore: mailbox states: %w", err)
		}
		out[id] = state
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("pgstore: mailbox states: %w", err)
	}
	return out, nil
}

// UpdateMailboxConfig changes a mailbox's config row and appends fn's audit
// entry in one transaction (see store.Store.UpdateMailboxConfig). The
// status row is read under a share lock, so fn's view of the state holds
// until the commit.
func (s *Store) UpdateMailboxConfig(id string, fn func(c *store.MailboxConfig, st store.MailboxStatus) (*store.AuditEntry, error)) (store.Mailbox, error) {
	var m store.Mailbox
	err := s.tx(func(tx pgx.Tx) error {
		var err error
		if m, err = getMailbox(tx, id, "FOR UPDATE OF c FOR SHARE OF s"); err != nil {
			return err
		}
		before := m.Email
		entry, err := fn(&m.MailboxConfig, m.MailboxStatus)
		if err != nil {
			return err
		}
		if !strings.EqualFold(before, m.Email) {
			var dup string
			err := tx.QueryRow(bg, "SELECT id FROM mailboxes WHERE email_lower = $1 AND id <> $2", strings.ToLower(m.Email), id).Scan(&dup)
			if err == nil {
				return fmt.Errorf("mailbox %s already uses %s: %w", dup, m.Email, store.ErrExists)
			}
			if !errors.Is(err, pgx.ErrNoRows) {
				return err
			}
		}
		m.UpdatedAt = s.now().UTC()
		if _, err := tx.Exec(bg, "UPDATE mailboxes SET email_lower = $2, data = $3 WHERE id = $1", id, strings.ToLower(m.Email), m.MailboxConfig); err != nil {
			if isUnique(err) {
				return fmt.Errorf("mailbox %s: %w", m.Email, store.ErrExists)
			}
			return err
		}
		return s.appendMailboxAudit(tx, id, entry)
	})
	if err != nil {
		return store.Mailbox{}, fmt.Errorf("pgstore: update mailbox %s: %w", id, err)
	}
	return m, nil
}

// UpdateMailboxStatus changes a mailbox's status row and appends fn's audit
// entry in one transaction (see store.Store.UpdateMailboxStatus).
func (s *Store) UpdateMailboxStatus(id string, fn func(st *store.MailboxStatus, c store.MailboxConfig) (*store.AuditEntry, error)) (store.Mailbox, error) {
	return s.updateMailboxStatus(id, fn, nil)
}

func (s *Store) updateMailboxStatus(id string, fn func(st *store.MailboxStatus, c store.MailboxConfig) (*store.AuditEntry, error), fence fence) (store.Mailbox, error) {
	var m store.Mailbox
	err := s.tx(func(tx pgx.Tx) error {
		var err error
		if m, err = getMailbox(tx, id, "FOR UPDATE OF s"); err != nil {
			return err
		}
		if err := fence.check(tx, id); err != nil {
			return err
		}
		state := m.State
		entry, err := fn(&m.MailboxStatus, m.MailboxConfig)
		if err != nil {
			return err
		}
		store.StatusChanged(&m.MailboxStatus, state, s.now())
		if err := putStatus(tx, id, &m.MailboxStatus); err != nil {
			return err
		}
		return s.appendMailboxAudit(tx, id, entry)
	})
	if err != nil {
		return store.Mailbox{}, fmt.Errorf("pgstore: update mailbox %s: %w", id, err)
	}
	return m, nil
}

// DeleteMailbox removes a mailbox with everything it owns.
func (s *Store) DeleteMailbox(id string) error { return s.DeleteMailboxAudit(id, nil) }

// DeleteMailboxAudit removes a mailbox and appends audit in one transaction.
func (s *Store) DeleteMailboxAudit(id string, audit *store.AuditEntry) error {
	err := s.tx(func(tx pgx.Tx) error {
		tag, err := tx.Exec(bg, "DELETE FROM mailboxes WHERE id = $1", id)
		if err != nil {
			return err
		}
		if tag.RowsAffected() == 0 {
			return store.ErrNotFound
		}
		if _, err := tx.Exec(bg, "DELETE FROM mailbox_status WHERE id = $1", id); err != nil {
			return err
		}
		for _, t := range []string{"token_caches", "cursors", "messages", "msg_ids", "outbox", "outbox_stats", "due", "sends", "oauth_states"} {
			if _, err := tx.Exec(bg, "DELETE FROM "+t+" WHERE mailbox_id = $1", id); err != nil {
				return err
			}
		}
		if audit != nil {
			e := *audit
			e.MailboxID = id
			return s.appendAudit(tx, &e)
		}
		return nil
	})
	if err != nil {
		return fmt.Errorf("pgstore: delete mailbox %s: %w", id, err)
	}
	return nil
}

// ---- settings and secrets ----

var secretNames = []string{store.SecretAzureClientSecret, store.SecretAzureCertificate, store.SecretOdooAPIKey}

func secretField(st *store.Settings, name string) *string {
	switch name {
	case store.SecretAzureClientSecret:
		return &st.Azure.ClientSecret
	case store.SecretAzureCertificate:
		return &st.Azure.CertificatePEM
	default:
		return &st.Odoo.APIKey
	}
}

// Settings returns the settings with secrets opened.
func (s *Store) Settings() (store.Settings, error) {
	st := store.DefaultSettings()
	err := s.pool.QueryRow(bg, "SELECT data FROM settings WHERE id = 1").Scan(&st)
	if err != nil && !errors.Is(err, pgx.ErrNoRows) {
		return store.Settings{}, fmt.Errorf("pgstore: read settings: %w", err)
	}
	rows, err := s.pool.Query(bg, "SELECT name, sealed FROM secrets")
	if err != nil {
		return store.Settings{}, fmt.Errorf("pgstore: read settings: %w", err)
	}
	defer rows.Close()
	for rows.Next() {
		var name string
		var sealed []byte
		if err := rows.Scan(&name, &sealed); err != nil {
			return store.Settings{}, err
		}
		plain, err := s.seal.Open(sealed, []byte(name))
		if err != nil {
			return store.Settings{}, fmt.Errorf("pgstore: secret %s: %w", name, err)
		}
		*secretField(&st, name) = string(plain)
	}
	return st, rows.Err()
}

// SaveSettings writes settings; secrets are sealed, an empty one removed.
func (s *Store) SaveSettings(st store.Settings) error { return s.SaveSettingsAudit(st, nil) }

// SaveSettingsAudit writes settings and appends audit in one transaction.
func (s *Store) SaveSettingsAudit(st store.Settings, audit *store.AuditEntry) error {
	st.UpdatedAt = s.now().UTC()
	err := s.tx(func(tx pgx.Tx) error {
		if _, err := tx.Exec(bg, "INSERT INTO settings (id, data) VALUES (1, $1) ON CONFLICT (id) DO UPDATE SET data = EXCLUDED.data", st); err != nil {
			return err
		}
		for _, name := range secretNames {
			val := *secretField(&st, name)
			var err error
			if val == "" {
				_, err = tx.Exec(bg, "DELETE FROM secrets WHERE name = $1", name)
			} else {
				_, err = tx.Exec(bg, "INSERT INTO secrets (name, sealed) VALUES ($1, $2) ON CONFLICT (name) DO UPDATE SET sealed = EXCLUDED.sealed",
					name, s.seal.Seal([]byte(val), []byte(name)))
			}
			if err != nil {
				return err
			}
		}
		if audit != nil {
			e := *audit
			return s.appendAudit(tx, &e)
		}
		return nil
	})
	if err != nil {
		return fmt.Errorf("pgstore: save settings: %w", err)
	}
	s.SettingsSaved()
	return nil
}

// TokenCache returns the opened MSAL cache of a mailbox, or nil.
func (s *Store) TokenCache(mailboxID string) ([]byte, error) {
	var sealed []byte
	err := s.pool.QueryRow(bg, "SELECT sealed FROM token_caches WHERE mailbox_id = $1", mailboxID).Scan(&sealed)
	if errors.Is(err, pgx.ErrNoRows) {
		return nil, nil
	}
	if err != nil {
		return nil, fmt.Errorf("pgstore: token cache of %s: %w", mailboxID, err)
	}
	plain, err := s.seal.Open(sealed, []byte("token:"+mailboxID))
	if err != nil {
		return nil, fmt.Errorf("pgstore: token cache of %s: %w", mailboxID, err)
	}
	return plain, nil
}

// PutTokenCache seals and stores a mailbox's MSAL cache.
func (s *Store) PutTokenCache(mailboxID string, cache []byte) error {
	_, err := s.pool.Exec(bg, "INSERT INTO token_caches (mailbox_id, sealed) VALUES ($1, $2) ON CONFLICT (mailbox_id) DO UPDATE SET sealed = EXCLUDED.sealed",
		mailboxID, s.seal.Seal(cache, []byte("token:"+mailboxID)))
	if err != nil {
		return fmt.Errorf("pgstore: save token cache of %s: %w", mailboxID, err)
	}
	return nil
}

// DeleteTokenCache erases a mailbox's tokens.
func (s *Store) DeleteTokenCache(mailboxID string) error {
	if _, err := s.pool.Exec(bg, "DELETE FROM token_caches WHERE mailbox_id = $1", mailboxID); err != nil {
		return fmt.Errorf("pgstore: delete token cache of %s: %w", mailboxID, err)
	}
	return nil
}

// PutOAuthState stores a pending sign-in state, sealed.
func (s *Store) PutOAuthState(st store.OAuthState) error {
	raw, err := json.Marshal(st)
	if err != nil {
		return err
	}
	_, err = s.pool.Exec(bg, `INSERT INTO oauth_states (state, mailbox_id, expires_at, sealed) VALUES ($1, $2, $3, $4)
		ON CONFLICT (state) DO UPDATE SET mailbox_id = EXCLUDED.mailbox_id, expires_at = EXCLUDED.expires_at, sealed = EXCLUDED.sealed`,
		st.State, st.MailboxID, nanos(st.ExpiresAt), s.seal.Seal(raw, []byte(st.State)))
	if err != nil {
		return fmt.Errorf("pgstore: save oauth state: %w", err)
	}
	return nil
}

// ConsumeOAuthState removes and returns a pending state (single use).
func (s *Store) ConsumeOAuthState(state string) (store.OAuthState, error) {
	var st store.OAuthState
	var sealed []byte
	err := s.pool.QueryRow(bg, "DELETE FROM oauth_states WHERE state = $1 RETURNING sealed", state).Scan(&sealed)
	if err != nil {
		return st, fmt.Errorf("pgstore: oauth state: %w", notFound(err))
	}
	plain, err := s.seal.Open(sealed, []byte(state))
	if err != nil {
		return st, fmt.Errorf("pgstore: oauth state: %w", err)
	}
	if err := json.Unmarshal(plain, &st); err != nil {
		return st, err
	}
	if !s.now().Before(st.ExpiresAt) {
		return st, fmt.Errorf("pgstore: oauth state for %s: %w", st.MailboxID, store.ErrExpired)
	}
	return st, nil
}

// PruneOAuthStates removes expired pending states and returns how many.
func (s *Store) PruneOAuthStates() (int, error) {
	tag, err := s.pool.Exec(bg, "DELETE FROM oauth_states WHERE expires_at <= $1", s.now().UnixNano())
	if err != nil {
		return 0, fmt.Errorf("pgstore: prune oauth states: %w", err)
	}
	return int(tag.RowsAffected()), nil
}

// ---- audit, notices, due times, sends ----

// Audit appends an entry.
func (s *Store) Audit(e store.AuditEntry) error {
	if err := s.tx(func(tx pgx.Tx) error { return s.appendAudit(tx, &e) }); err != nil {
		return fmt.Errorf("pgstore: audit %s: %w", e.Action, err)
	}
	return nil
}

// AuditList returns up to limit entries, newest first, older than before.
func (s *Store) AuditList(mailboxID string, limit int, before uint64) ([]store.AuditEntry, uint64, error) {
	if limit <= 0 {
		limit = 50
	}
	b := int64(before)
	if before == 0 {
		b = 1<<63 - 1
	}
	rows, err := s.pool.Query(bg, `SELECT data FROM audit WHERE seq < $1 AND ($2 = '' OR mailbox_id = $2) ORDER BY seq DESC LIMIT $3`, b, mailboxID, limit+1)
	if err != nil {
		return nil, 0, fmt.Errorf("pgstore: audit list: %w", err)
	}
	out, err := pgx.CollectRows(rows, pgx.RowTo[store.AuditEntry])
	if err != nil {
		return nil, 0, fmt.Errorf("pgstore: audit list: %w", err)
	}
	var next uint64
	if len(out) > limit {
		out = out[:limit]
		next = out[limit-1].Seq
	}
	return out, next, nil
}

// QueueNotice adds a notice, replacing a waiting one of the same kind for
// the same mailbox.
func (s *Store) QueueNotice(n store.Notice) error {
	if n.CreatedAt.IsZero() {
		n.CreatedAt = s.now().UTC()
	}
	err := s.tx(func(tx pgx.Tx) error {
		if _, err := tx.Exec(bg, "DELETE FROM notices WHERE mailbox_id = $1 AND kind = $2", n.MailboxID, n.Kind); err != nil {
			return err
		}
		if err := tx.QueryRow(bg, "SELECT nextval('notices_seq')").Scan(&n.Seq); err != nil {
			return err
		}
		_, err := tx.Exec(bg, "INSERT INTO notices (seq, mailbox_id, kind, data) VALUES ($1, $2, $3, $4)", int64(n.Seq), n.MailboxID, n.Kind, n)
		return err
	})
	if err != nil {
		return fmt.Errorf("pgstore: queue notice for %s: %w", n.MailboxID, err)
	}
	s.Queued() // the pusher delivers notices too
	return nil
}

// Notices returns waiting notices, oldest first.
func (s *Store) Notices() ([]store.Notice, error) {
	rows, err := s.pool.Query(bg, "SELECT data FROM notices ORDER BY seq")
	if err != nil {
		return nil, fmt.Errorf("pgstore: notices: %w", err)
	}
	return pgx.CollectRows(rows, pgx.RowTo[store.Notice])
}

// DeleteNotice removes a delivered notice.
func (s *Store) DeleteNotice(seq uint64) error {
	if _, err := s.pool.Exec(bg, "DELETE FROM notices WHERE seq = $1", int64(seq)); err != nil {
		return fmt.Errorf("pgstore: delete notice %d: %w", seq, err)
	}
	return nil
}

// SetDue stores when a mailbox should sync next.
func (s *Store) SetDue(mailboxID string, at time.Time) error {
	_, err := s.pool.Exec(bg, "INSERT INTO due (mailbox_id, at) VALUES ($1, $2) ON CONFLICT (mailbox_id) DO UPDATE SET at = EXCLUDED.at", mailboxID, at.UnixNano())
	if err != nil {
		return fmt.Errorf("pgstore: set due %s: %w", mailboxID, err)
	}
	return nil
}

// SetDueMany stores the next sync time of several mailboxes in one
// transaction.
func (s *Store) SetDueMany(due map[string]time.Time) error {
	if len(due) == 0 {
		return nil
	}
	err := s.tx(func(tx pgx.Tx) error {
		b := &pgx.Batch{}
		for id, at := range due {
			b.Queue("INSERT INTO due (mailbox_id, at) VALUES ($1, $2) ON CONFLICT (mailbox_id) DO UPDATE SET at = EXCLUDED.at", id, at.UnixNano())
		}
		return tx.SendBatch(bg, b).Close()
	})
	if err != nil {
		return fmt.Errorf("pgstore: set due times: %w", err)
	}
	return nil
}

// DueTimes returns every mailbox's next sync time.
func (s *Store) DueTimes() (map[string]time.Time, error) {
	rows, err := s.pool.Query(bg, "SELECT mailbox_id, at FROM due")
	if err != nil {
		return nil, fmt.Errorf("pgstore: due times: %w", err)
	}
	defer rows.Close()
	out := map[string]time.Time{}
	for rows.Next() {
		var id string
		var at int64
		if err := rows.Scan(&id, &at); err != nil {
			return nil, err
		}
		out[id] = time.Unix(0, at)
	}
	return out, rows.Err()
}

// ClaimSend records a send under its request id unless one exists.
func (s *Store) ClaimSend(mailboxID string, rec store.SendRecord) (store.SendRecord, bool, error) {
	tag, err := s.pool.Exec(bg, "INSERT INTO sends (mailbox_id, request_id, data) VALUES ($1, $2, $3) ON CONFLICT DO NOTHING", mailboxID, rec.RequestID, rec)
	if err != nil {
		return store.SendRecord{}, false, fmt.Errorf("pgstore: claim send %s: %w", rec.RequestID, err)
	}
	if tag.RowsAffected() == 1 {
		return rec, true, nil
	}
	var existing store.SendRecord
	if err := s.pool.QueryRow(bg, "SELECT data FROM sends WHERE mailbox_id = $1 AND request_id = $2", mailboxID, rec.RequestID).Scan(&existing); err != nil {
		return store.SendRecord{}, false, fmt.Errorf("pgstore: claim send %s: %w", rec.RequestID, err)
	}
	return existing, false, nil
}

// PutSend updates a send record.
func (s *Store) PutSend(mailboxID string, rec store.SendRecord) error {
	_, err := s.pool.Exec(bg, "INSERT INTO sends (mailbox_id, request_id, data) VALUES ($1, $2, $3) ON CONFLICT (mailbox_id, request_id) DO UPDATE SET data = EXCLUDED.data", mailboxID, rec.RequestID, rec)
	if err != nil {
		return fmt.Errorf("pgstore: save send %s: %w", rec.RequestID, err)
	}
	return nil
}
