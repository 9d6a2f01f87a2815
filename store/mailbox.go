package store

import (
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"sort"
	"strings"
	"time"

	bolt "go.etcd.io/bbolt"
)

// Mailbox is one Microsoft 365 mailbox MailDesk syncs, as read: its admin
// configuration and its status, two records the store keeps apart so that
// their writers never overwrite each other's fields. The RPC layer changes
// the config (UpdateMailboxConfig); the connector, the syncer and the pusher
// change the status (UpdateMailboxStatus, ApplyPage, AckOutbox, ...). Both
// are embedded, so m.Email and m.State read as before, and the JSON of a
// Mailbox is one flat object.
type Mailbox struct {
	ID string `json:"id"` // mbx_…
	MailboxConfig
	MailboxStatus
}

// MailboxConfig is what an administrator sets: the address, who uses the
// mailbox, how its mail goes to Odoo.
type MailboxConfig struct {
	Email             string   `json:"email"`
	Kind              string   `json:"kind"` // personal | shared
	OdooID            int64    `json:"odoo_id"`
	OwnerUID          int64    `json:"owner_uid"`
	SignInEmail       string   `json:"sign_in_email,omitempty"` // shared mailboxes: the delegate who signs in
	UserIDs           []int64  `json:"user_ids"`
	MainUserID        int64    `json:"main_user_id"`
	Mode              string   `json:"mode"` // log | gateway
	GatewayModel      string   `json:"gateway_model,omitempty"`
	Folders           []string `json:"folders"`
	BackfillDays      int      `json:"backfill_days"` // 0 = all mail
	LogSentAsActivity bool     `json:"log_sent_as_activity"`
	CreateContacts    bool     `json:"create_contacts"`
	// AnyoneMaySend lets every Odoo user send from the mailbox's address
	// (a shared address used by automated mail); off by default: only the
	// owner and the assigned users may (see bridge.MaySend).
	AnyoneMaySend   bool  `json:"anyone_may_send"`
	MaxMessageBytes int64 `json:"max_message_bytes,omitempty"`

	CreatedAt time.Time `json:"created_at"`
	UpdatedAt time.Time `json:"updated_at"` // the config's last change
}

// MailboxStatus is what the sidecar records as it works the mailbox: its
// state, the Microsoft account it signed in as, sync progress and counts,
// delivery to Odoo, and the requests the syncer applies at its next round.
// Cursors are records of their own, written by the syncer only.
type MailboxStatus struct {
	// State is the mailbox's state (bridge.StateDraft, ...; the store keeps
	// it as it is given).
	State      string    `json:"state"`
	ErrorCode  string    `json:"error_code,omitempty"`
	Error      string    `json:"error,omitempty"`
	StateSince time.Time `json:"state_since"`

	HomeAccountID string    `json:"home_account_id,omitempty"` // MSAL account (uid.utid)
	ConnectedAs   string    `json:"connected_as,omitempty"`    // UPN that signed in
	ConnectedAt   time.Time `json:"connected_at,omitempty"`

	LastSyncAt    time.Time `json:"last_sync_at,omitempty"`
	LastSuccessAt time.Time `json:"last_success_at,omitempty"`
	Failures      int       `json:"failures,omitempty"` // consecutive failed rounds
	Progress      Progress  `json:"progress"`
	Counts        Counts    `json:"counts"`
	Delivery      Delivery  `json:"delivery"`
	// SyncGen is bumped by a resync from scratch: cursors of an older
	// generation are ignored and can no longer be written (ApplyPage).
	SyncGen int64 `json:"sync_gen,omitempty"`
	// UnreadAt is when Counts.Unread was last read from Graph.
	UnreadAt time.Time `json:"unread_at,omitempty"`
	// Redeliver asks the syncer to route again, at the start of its next
	// round, the mail Odoo kept back or could not route (mailbox.redeliver).
	Redeliver *RedeliverRequest `json:"redeliver,omitempty"`
	// BackfillRequest is a pending mailbox.backfill. Only the syncer writes
	// cursors; it applies the request to every folder at the start of its
	// next round (ApplyBackfillRequest).
	BackfillRequest *BackfillRequest `json:"backfill_request,omitempty"`
}

// RedeliverRequest is a pending mailbox.redeliver: the index entries received
// since Since whose delivery is one of Statuses go to Odoo again.
type RedeliverRequest struct {
	Since       time.Time `json:"since"`
	Statuses    []string  `json:"statuses"`
	RequestedAt time.Time `json:"requested_at"`
}

// BackfillRequest asks the syncer to widen every folder's backfill window
// to Since (zero: all mail) and to list each folder again from the newest
// message. Requests made before it is applied merge (the widest wins) and
// bump Seq.
type BackfillRequest struct {
	Since time.Time `json:"since,omitempty"`
	Seq   int64     `json:"seq"`
	At    time.Time `json:"at"`
}

// Progress of a backfill.
type Progress struct {
	Done      int64     `json:"done"`
	Total     int64     `json:"total"`
	ETASecs   int64     `json:"eta_s"`
	StartedAt time.Time `json:"started_at,omitempty"`
	Finished  bool      `json:"finished"`
}

// Counts are running totals for a mailbox.
type Counts struct {
	Messages  int64 `json:"messages"`  // in the index
	Queued    int64 `json:"queued"`    // outbox items created
	Delivered int64 `json:"delivered"` // posted or duplicate in Odoo
	Unrouted  int64 `json:"unrouted"`
	Excluded  int64 `json:"excluded"` // Odoo deliberately did not log them (privacy rules)
	Failed    int64 `json:"failed"`   // failed outbox items, kept until mailbox.retry_failed
	Unread    int64 `json:"unread"`   // unread mail in the inbox (Graph's count)
}

// Delivery says how delivery to Odoo goes for this mailbox.
type Delivery struct {
	Delayed   bool      `json:"delayed"`
	Reason    string    `json:"reason,omitempty"`
	Since     time.Time `json:"since,omitempty"`
	LastOKAt  time.Time `json:"last_ok_at,omitempty"`
	LastError string    `json:"last_error,omitempty"`
	// FailedReason is Odoo's reason for the last item that became failed
	// (Counts.Failed counts them); cleared by RetryFailed.
	FailedReason string    `json:"failed_reason,omitempty"`
	FailedAt     time.Time `json:"failed_at,omitempty"`
}

// NewMailboxID returns a fresh mbx_ id.
func NewMailboxID() string {
	b := make([]byte, 6)
	if _, err := rand.Read(b); err != nil {
		panic(err)
	}
	return "mbx_" + hex.EncodeToString(b)
}

// CreateMailbox stores a new mailbox: its config and its first status. ID
// is filled when empty. An address already used by another mailbox gives
// ErrExists.
func (s *Store) CreateMailbox(m Mailbox) (Mailbox, error) {
	return s.CreateMailboxAudit(m, nil)
}

// CreateMailboxAudit is CreateMailbox that appends audit (when not nil; its
// MailboxID is filled) in the same transaction.
func (s *Store) CreateMailboxAudit(m Mailbox, audit func(m *Mailbox) *AuditEntry) (Mailbox, error) {
	NewMailbox(&m, s.now())
	err := s.db.Update(func(tx *bolt.Tx) error {
		b := tx.Bucket(bucketMailbox)
		if b.Get([]byte(m.ID)) != nil {
			return fmt.Errorf("mailbox %s: %w", m.ID, ErrExists)
		}
		if err := claimEmail(tx, m.ID, "", m.Email); err != nil {
			return err
		}
		if err := putJSON(b, []byte(m.ID), m.MailboxConfig); err != nil {
			return err
		}
		if err := putJSON(tx.Bucket(bucketStatus), []byte(m.ID), m.MailboxStatus); err != nil {
			return err
		}
		if audit != nil {
			if e := audit(&m); e != nil {
				e.MailboxID = m.ID
				return appendAudit(tx, s.now(), e)
			}
		}
		return nil
	})
	if err != nil {
		return Mailbox{}, fmt.Errorf("store: create mailbox: %w", err)
	}
	return m, nil
}

// emailKey is a mailbox address's key in the address index: addresses
// differing only in case are one (pgstore's email_lower is the same key).
func emailKey(email string) []byte { return []byte(strings.ToLower(email)) }

// claimEmail points email's index entry at mailbox id, refusing an address
// another mailbox uses, and drops the entry of old (id's previous address).
// The index makes the check one lookup: reading every mailbox made
// creating N mailboxes quadratic.
func claimEmail(tx *bolt.Tx, id, old, email string) error {
	ix := tx.Bucket(bucketEmails)
	if o := ix.Get(emailKey(email)); o != nil && string(o) != id {
		return fmt.Errorf("mailbox %s already uses %s: %w", o, email, ErrExists)
	}
	if old != "" {
		if err := releaseEmail(tx, id, old); err != nil {
			return err
		}
	}
	return ix.Put(emailKey(email), []byte(id))
}

// releaseEmail drops email's index entry when it points at mailbox id.
func releaseEmail(tx *bolt.Tx, id, email string) error {
	ix := tx.Bucket(bucketEmails)
	if o := ix.Get(emailKey(email)); o != nil && string(o) == id {
		return ix.Delete(emailKey(email))
	}
	return nil
}

// indexEmails (schema 2 → 3) builds the address index from the mailboxes.
func indexEmails(tx *bolt.Tx) error {
	return tx.Bucket(bucketMailbox).ForEach(func(k, v []byte) error {
		var c MailboxConfig
		if err := jsonUnmarshal(v, &c); err != nil {
			return fmt.Errorf("mailbox %s: %w", k, err)
		}
		return claimEmail(tx, string(k), "", c.Email)
	})
}

// getMailbox reads both records of a mailbox (through the read cache).
func (s *Store) getMailbox(tx *bolt.Tx, id string) (Mailbox, error) {
	m := Mailbox{ID: id}
	var err error
	if m.MailboxConfig, err = s.cache.config.get(tx.Bucket(bucketMailbox), id, []byte(id)); err != nil {
		return Mailbox{}, err
	}
	if m.MailboxStatus, err = s.cache.status.get(tx.Bucket(bucketStatus), id, []byte(id)); err != nil && !errors.Is(err, ErrNotFound) {
		return Mailbox{}, err
	}
	return m, nil
}

// getStatus reads a mailbox's status record (through the read cache);
// ErrNotFound when there is no such mailbox.
func (s *Store) getStatus(tx *bolt.Tx, id string) (MailboxStatus, error) {
	if tx.Bucket(bucketMailbox).Get([]byte(id)) == nil {
		return MailboxStatus{}, ErrNotFound
	}
	st, err := s.cache.status.get(tx.Bucket(bucketStatus), id, []byte(id))
	if err != nil && !errors.Is(err, ErrNotFound) {
		return st, err
	}
	return st, nil
}

func putStatus(tx *bolt.Tx, id string, st *MailboxStatus) error {
	return putJSON(tx.Bucket(bucketStatus), []byte(id), st)
}

// Mailbox returns one mailbox or ErrNotFound.
func (s *Store) Mailbox(id string) (Mailbox, error) {
	var m Mailbox
	err := s.db.View(func(tx *bolt.Tx) error {
		var err error
		m, err = s.getMailbox(tx, id)
		return err
	})
	if err != nil {
		return Mailbox{}, fmt.Errorf("store: mailbox %s: %w", id, err)
	}
	return m, nil
}

// Mailboxes returns all mailboxes ordered by e-mail address.
func (s *Store) Mailboxes() ([]Mailbox, error) {
	var out []Mailbox
	err := s.db.View(func(tx *bolt.Tx) error {
		status := tx.Bucket(bucketStatus)
		return tx.Bucket(bucketMailbox).ForEach(func(k, v []byte) error {
			m := Mailbox{ID: string(k)}
			if err := jsonUnmarshal(v, &m.MailboxConfig); err != nil {
				return fmt.Errorf("mailbox %s: %w", k, err)
			}
			if raw := status.Get(k); raw != nil {
				if err := jsonUnmarshal(raw, &m.MailboxStatus); err != nil {
					return fmt.Errorf("mailbox %s status: %w", k, err)
				}
			}
			out = append(out, m)
			return nil
		})
	})
	if err != nil {
		return nil, fmt.Errorf("store: list mailboxes: %w", err)
	}
	sort.Slice(out, func(i, j int) bool { return out[i].Email < out[j].Email })
	return out, nil
}

// MailboxStates returns every mailbox's state by id: what the scheduler's
// periodic rescan needs. The status records come from the read cache, so a
// rescan decodes only the records that changed since the last one.
func (s *Store) MailboxStates() (map[string]string, error) {
	out := map[string]string{}
	err := s.db.View(func(tx *bolt.Tx) error {
		status := tx.Bucket(bucketStatus)
		return tx.Bucket(bucketMailbox).ForEach(func(k, _ []byte) error {
			st, err := s.cache.status.get(status, string(k), k)
			if err != nil && !errors.Is(err, ErrNotFound) {
				return fmt.Errorf("mailbox %s status: %w", k, err)
			}
			out[string(k)] = st.State
			return nil
		})
	})
	if err != nil {
		return nil, fmt.Errorf("store: mailbox states: %w", err)
	}
	return out, nil
}

// UpdateMailboxConfig changes a mailbox's config with fn and writes it, with
// fn's audit entry (nil for none), in ONE transaction; the status record is
// not written (fn sees it as it is). fn's error aborts without writing. The
// address must not collide with another mailbox.
func (s *Store) UpdateMailboxConfig(id string, fn func(c *MailboxConfig, st MailboxStatus) (*AuditEntry, error)) (Mailbox, error) {
	var m Mailbox
	err := s.db.Update(func(tx *bolt.Tx) error {
		var err error
		if m, err = s.getMailbox(tx, id); err != nil {
			return err
		}
		before := m.Email
		entry, err := fn(&m.MailboxConfig, m.MailboxStatus)
		if err != nil {
			return err
		}
		b := tx.Bucket(bucketMailbox)
		if before != m.Email {
			if err := claimEmail(tx, id, before, m.Email); err != nil {
				return err
			}
		}
		m.UpdatedAt = s.now().UTC()
		if err := putJSON(b, []byte(id), m.MailboxConfig); err != nil {
			return err
		}
		return appendMailboxAudit(tx, s.now(), id, entry)
	})
	if err != nil {
		return Mailbox{}, fmt.Errorf("store: update mailbox %s: %w", id, err)
	}
	return m, nil
}

// UpdateMailboxStatus changes a mailbox's status with fn and writes it, with
// fn's audit entry (nil for none), in ONE transaction: a state change and
// its audit entry are written together or not at all. The config record is
// not written (fn sees it as it is). fn's error aborts without writing.
func (s *Store) UpdateMailboxStatus(id string, fn func(st *MailboxStatus, c MailboxConfig) (*AuditEntry, error)) (Mailbox, error) {
	var m Mailbox
	err := s.db.Update(func(tx *bolt.Tx) error {
		var err error
		if m, err = s.getMailbox(tx, id); err != nil {
			return err
		}
		state := m.State
		entry, err := fn(&m.MailboxStatus, m.MailboxConfig)
		if err != nil {
			return err
		}
		StatusChanged(&m.MailboxStatus, state, s.now())
		if err := putStatus(tx, id, &m.MailboxStatus); err != nil {
			return err
		}
		return appendMailboxAudit(tx, s.now(), id, entry)
	})
	if err != nil {
		return Mailbox{}, fmt.Errorf("store: update mailbox %s: %w", id, err)
	}
	return m, nil
}

func appendMailboxAudit(tx *bolt.Tx, now time.Time, id string, e *AuditEntry) error {
	if e == nil {
		return nil
	}
	if e.MailboxID == "" {
		e.MailboxID = id
	}
	return appendAudit(tx, now, e)
}

// DeleteMailbox removes a mailbox with its token cache, cursors, message
// index, pending OAuth states, due time and outbox items.
func (s *Store) DeleteMailbox(id string) error { return s.DeleteMailboxAudit(id, nil) }

// DeleteMailboxAudit is DeleteMailbox that appends audit (when not nil) in
// the same transaction.
func (s *Store) DeleteMailboxAudit(id string, audit *AuditEntry) error {
	err := s.db.Update(func(tx *bolt.Tx) error {
		b := tx.Bucket(bucketMailbox)
		var c MailboxConfig
		if err := getJSON(b, []byte(id), &c); err != nil {
			return err
		}
		if err := releaseEmail(tx, id, c.Email); err != nil {
			return err
		}
		if err := b.Delete([]byte(id)); err != nil {
			return err
		}
		if err := tx.Bucket(bucketStatus).Delete([]byte(id)); err != nil {
			return err
		}
		if err := tx.Bucket(bucketTokens).Delete([]byte(id)); err != nil {
			return err
		}
		if err := tx.Bucket(bucketDue).Delete([]byte(id)); err != nil {
			return err
		}
		for _, top := range perMailbox {
			if err := tx.Bucket(top).DeleteBucket([]byte(id)); err != nil && !errors.Is(err, bolt.ErrBucketNotFound) {
				return err
			}
		}
		if err := deleteOAuthStatesOf(tx, s, id); err != nil {
			return err
		}
		if err := deleteOutboxOf(tx, id); err != nil {
			return err
		}
		if audit != nil {
			e := *audit
			e.MailboxID = id
			return appendAudit(tx, s.now(), &e)
		}
		return nil
	})
	if err != nil {
		return fmt.Errorf("store: delete mailbox %s: %w", id, err)
	}
	s.cache.forgetMailbox(id)
	return nil
}
