// Package storetest is the behaviour every MailDesk store must show,
// whatever keeps the data (bbolt, PostgreSQL): one suite, run by each
// implementation's tests with Run(t, newStore).
//
// It checks what the sidecar relies on: a delta page and its cursor in one
// transaction with exactly-once queueing, cursors of an older sync
// generation refused, a backfill request applied with its cursors at once,
// a mailbox change and its audit entry together or not at all, the outbox's
// due order, acks, failures and per-mailbox batches, secrets never stored
// in clear, single-use OAuth states, token caches, notices, due times,
// send records and deletion of everything a mailbox owns.
package storetest

import (
	"errors"
	"fmt"
	"reflect"
	"strings"
	"testing"
	"time"

	"github.com/maildesk/maildesk/store"
)

// Store is every method the suite exercises: the union of what the
// sidecar's components need of storage.
type Store interface {
	CreateMailbox(m store.Mailbox) (store.Mailbox, error)
	CreateMailboxAudit(m store.Mailbox, audit func(m *store.Mailbox) *store.AuditEntry) (store.Mailbox, error)
	Mailbox(id string) (store.Mailbox, error)
	Mailboxes() ([]store.Mailbox, error)
	MailboxStates() (map[string]string, error)
	UpdateMailboxConfig(id string, fn func(c *store.MailboxConfig, st store.MailboxStatus) (*store.AuditEntry, error)) (store.Mailbox, error)
	UpdateMailboxStatus(id string, fn func(st *store.MailboxStatus, c store.MailboxConfig) (*store.AuditEntry, error)) (store.Mailbox, error)
	DeleteMailbox(id string) error
	DeleteMailboxAudit(id string, audit *store.AuditEntry) error

	ApplyPage(mailboxID string, p store.Page) (store.PageResult, error)
	MarkSentByUs(mailboxID, internetMessageID string) error
	Message(mailboxID, id string) (store.Message, error)
	MessageByInternetID(mailboxID, internetMessageID string) (store.Message, error)
	ListMessages(mailboxID, folder string, limit int, after string, keep func(*store.Message) bool) ([]store.Message, string, error)
	FolderCounts(mailboxID string) (map[string]store.FolderCount, error)
	UpdateMessages(mailboxID string, ids []string, fn func(m *store.Message)) error
	Cursor(mailboxID, folder string) (store.Cursor, error)
	PutCursor(mailboxID string, c store.Cursor) error
	DeleteCursor(mailboxID, folder string) error
	ApplyBackfillRequest(mailboxID string, seq int64, cursor func(c *store.Cursor), mailbox func(m *store.MailboxStatus)) (bool, error)

	Enqueue(it store.OutboxItem) (uint64, error)
	DueOutbox(now time.Time, limit int, maxBytes int, skip func(mailboxID string) bool) ([]store.OutboxItem, error)
	DueOutboxByMailbox(now time.Time, limit func(mailboxID string) int, maxBytes int, skip func(mailboxID string) bool) ([]store.DueBatch, error)
	NextOutboxDue(skip func(mailboxID string) bool) (time.Time, bool)
	OutboxStats() (map[string]store.OutboxStats, error)
	AckOutbox(acks []store.OutboxAck, failLimit int) error
	FailedOutbox(mailboxID string) ([]store.OutboxItem, error)
	RetryFailed(mailboxID string) (int, error)
	OnQueued(fn func())

	Settings() (store.Settings, error)
	SaveSettings(st store.Settings) error
	SaveSettingsAudit(st store.Settings, audit *store.AuditEntry) error
	TokenCache(mailboxID string) ([]byte, error)
	PutTokenCache(mailboxID string, cache []byte) error
	DeleteTokenCache(mailboxID string) error
	PutOAuthState(st store.OAuthState) error
	ConsumeOAuthState(state string) (store.OAuthState, error)

	Audit(e store.AuditEntry) error
	AuditList(mailboxID string, limit int, before uint64) ([]store.AuditEntry, uint64, error)
	QueueNotice(n store.Notice) error
	Notices() ([]store.Notice, error)
	DeleteNotice(seq uint64) error
	SetDue(mailboxID string, at time.Time) error
	DueTimes() (map[string]time.Time, error)
	ClaimSend(mailboxID string, rec store.SendRecord) (store.SendRecord, bool, error)
	PutSend(mailboxID string, rec store.SendRecord) error
	SetDueMany(due map[string]time.Time) error
	RecentMessages(mailboxID string, since time.Time, limit int, keep func(*store.Message) bool) ([]store.Message, int, error)
	Requeue(mailboxID string, items []store.OutboxItem, from []string) (int, error)
	PruneAudit(before time.Time, limit int) (int, error)
	PruneMessages(before time.Time, limit int) (int, error)

	Ping() error
}

// NewStore opens a fresh, empty store for one test; now is its clock (nil:
// time.Now). raw, when not nil, returns everything the store has written
// (file bytes, a dump of its tables) so the suite can check that no secret
// is kept in clear; it may close the store.
type NewStore func(t *testing.T, now func() time.Time) (s Store, raw func() []byte)

// Run runs the whole suite against the stores newStore opens.
func Run(t *testing.T, newStore NewStore) {
	tests := []struct {
		name string
		fn   func(t *testing.T, newStore NewStore)
	}{
		{"MailboxCRUD", testMailboxCRUD},
		{"MailboxStates", testMailboxStates},
		{"ChangeAndAuditTogether", testChangeAndAuditTogether},
		{"ConfigAndStatusApart", testConfigAndStatusApart},
		{"SecretsSealed", testSecretsSealed},
		{"OAuthStateSingleUseAndExpiry", testOAuthState},
		{"TokenCache", testTokenCache},
		{"ApplyPageExactlyOnce", testApplyPageExactlyOnce},
		{"StaleCursorRefused", testStaleCursor},
		{"BackfillRequest", testBackfillRequest},
		{"ListMessagesPaging", testListMessagesPaging},
		{"UpdateMessagesAndCounts", testUpdateMessages},
		{"AckOutbox", testAckOutbox},
		{"RefusedItemFailsAndRetryFailed", testRefusedItemFails},
		{"DueOutboxByMailbox", testDueOutboxByMailbox},
		{"OnQueued", testOnQueued},
		{"DeleteMailboxErasesEverything", testDeleteMailbox},
		{"AuditPaging", testAuditPaging},
		{"Retention", testRetention},
		{"OutboxStats", testOutboxStats},
		{"Notices", testNotices},
		{"DueTimesAndSends", testDueTimesAndSends},
		{"ExcludedRequeueRecent", testExcludedRequeueRecent},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			// Each case opens its own store (a file, a schema): they
			// share nothing, and on PostgreSQL most of a case is waiting
			// on round trips, so they overlap.
			t.Parallel()
			defer func() {
				if r := recover(); r != nil {
					if e, ok := r.(mustError); ok {
						t.Fatal(e.err)
					}
					panic(r)
				}
			}()
			tc.fn(t, newStore)
		})
	}
}

func open(t *testing.T, newStore NewStore) Store {
	t.Helper()
	s, _ := newStore(t, nil)
	return s
}

func msg(id, folder string, at int) store.PageItem {
	return store.PageItem{
		Message:   store.Message{ID: id, Folder: folder, InternetMessageID: "<" + id + "@x>", Subject: "s " + id, ReceivedAt: time.Unix(int64(at), 0).UTC()},
		Direction: "in",
		Payload:   []byte(`{"graph_id":"` + id + `"}`),
	}
}

// must returns v, or ends the running test with err (Run turns the panic
// into t.Fatal).
func must[T any](v T, err error) T {
	if err != nil {
		panic(mustError{err})
	}
	return v
}

type mustError struct{ err error }

// MailboxStates is every mailbox's state by id, as Mailboxes has them, and
// follows state changes and deletions.
func testMailboxStates(t *testing.T, newStore NewStore) {
	s := open(t, newStore)
	if got := must(s.MailboxStates()); len(got) != 0 {
		t.Fatalf("states of an empty store %v", got)
	}
	a := must(s.CreateMailbox(store.Mailbox{MailboxConfig: store.MailboxConfig{Email: "a@x.org"}}))
	b := must(s.CreateMailbox(store.Mailbox{MailboxConfig: store.MailboxConfig{Email: "b@x.org", Folders: []string{"inbox"}},
		MailboxStatus: store.MailboxStatus{State: "connected", Error: `a "quoted" \\ error`, Progress: store.Progress{Finished: true}}}))
	c := must(s.CreateMailbox(store.Mailbox{MailboxConfig: store.MailboxConfig{Email: "c@x.org"}, MailboxStatus: store.MailboxStatus{State: "draft"}}))
	_ = must(setStatus(s, c.ID, func(m *store.MailboxStatus) { m.State = `re"auth` }))
	want := map[string]string{a.ID: "", b.ID: "connected", c.ID: `re"auth`}
	if got := must(s.MailboxStates()); !reflect.DeepEqual(got, want) {
		t.Fatalf("states %v, want %v", got, want)
	}
	for _, m := range must(s.Mailboxes()) {
		if want[m.ID] != m.State {
			t.Fatalf("Mailboxes has %s %q, MailboxStates %q", m.ID, m.State, want[m.ID])
		}
	}
	_ = must(setStatus(s, b.ID, func(m *store.MailboxStatus) { m.State = "syncing" }))
	if err := s.DeleteMailbox(a.ID); err != nil {
		t.Fatal(err)
	}
	want = map[string]string{b.ID: "syncing", c.ID: `re"auth`}
	if got := must(s.MailboxStates()); !reflect.DeepEqual(got, want) {
		t.Fatalf("states after a change and a deletion %v, want %v", got, want)
	}
}

func testMailboxCRUD(t *testing.T, newStore NewStore) {
	s := open(t, newStore)
	a := must(s.CreateMailbox(store.Mailbox{MailboxConfig: store.MailboxConfig{Email: "b@x.org", Kind: "personal", Folders: []string{"inbox"}, UserIDs: []int64{3, 4}}}))
	if !strings.HasPrefix(a.ID, "mbx_") || a.State != "" || a.CreatedAt.IsZero() || a.StateSince.IsZero() {
		t.Fatalf("created %+v", a)
	}
	_ = must(s.CreateMailbox(store.Mailbox{MailboxConfig: store.MailboxConfig{Email: "a@x.org"}}))
	if _, err := s.CreateMailbox(store.Mailbox{MailboxConfig: store.MailboxConfig{Email: "B@X.org"}}); !errors.Is(err, store.ErrExists) {
		t.Fatalf("same address (other case): %v, want ErrExists", err)
	}
	all := must(s.Mailboxes())
	if len(all) != 2 || all[0].Email != "a@x.org" || all[1].ID != a.ID || len(all[1].UserIDs) != 2 {
		t.Fatalf("mailboxes %+v", all)
	}
	up := must(setStatus(s, a.ID, func(m *store.MailboxStatus) { m.State = "connected"; m.Counts.Queued = 5 }))
	if up.State != "connected" || up.StateSince.Before(a.StateSince) || up.Counts.Queued != 5 {
		t.Fatalf("updated %+v", up)
	}
	if _, err := setConfig(s, a.ID, func(m *store.MailboxConfig) { m.Email = "A@x.org" }); !errors.Is(err, store.ErrExists) {
		t.Fatalf("rename onto another mailbox's address: %v", err)
	}
	// An address that changes frees the old one; a deleted mailbox frees its own.
	mb := func(email string) store.Mailbox {
		return store.Mailbox{MailboxConfig: store.MailboxConfig{Email: email}}
	}
	c := must(s.CreateMailbox(mb("c@x.org")))
	c = must(setConfig(s, c.ID, func(m *store.MailboxConfig) { m.Email = "D@x.org" }))
	if _, err := s.CreateMailbox(mb("d@X.org")); !errors.Is(err, store.ErrExists) {
		t.Fatalf("the changed address: %v, want ErrExists", err)
	}
	c2 := must(s.CreateMailbox(mb("C@x.org")))
	if err := s.DeleteMailbox(c.ID); err != nil {
		t.Fatal(err)
	}
	if err := s.DeleteMailbox(c2.ID); err != nil {
		t.Fatal(err)
	}
	_ = must(s.CreateMailbox(mb("d@x.org")))
	boom := errors.New("boom")
	if _, err := s.UpdateMailboxStatus(a.ID, func(m *store.MailboxStatus, _ store.MailboxConfig) (*store.AuditEntry, error) {
		m.Counts.Queued = 99
		return nil, boom
	}); !errors.Is(err, boom) {
		t.Fatalf("fn error: %v", err)
	}
	if _, err := s.UpdateMailboxConfig(a.ID, func(m *store.MailboxConfig, _ store.MailboxStatus) (*store.AuditEntry, error) {
		m.Mode = "gateway"
		return nil, boom
	}); !errors.Is(err, boom) {
		t.Fatalf("fn error: %v", err)
	}
	if got := must(s.Mailbox(a.ID)); got.Counts.Queued != 5 || got.Mode != "" {
		t.Fatalf("a failed update wrote: %+v", got)
	}
	if _, err := s.Mailbox("mbx_none"); !errors.Is(err, store.ErrNotFound) {
		t.Fatalf("unknown mailbox: %v", err)
	}
	if _, err := setStatus(s, "mbx_none", func(*store.MailboxStatus) {}); !errors.Is(err, store.ErrNotFound) {
		t.Fatalf("update unknown mailbox's status: %v", err)
	}
	if _, err := setConfig(s, "mbx_none", func(*store.MailboxConfig) {}); !errors.Is(err, store.ErrNotFound) {
		t.Fatalf("update unknown mailbox's config: %v", err)
	}
	if err := s.Ping(); err != nil {
		t.Fatal(err)
	}
}

func testChangeAndAuditTogether(t *testing.T, newStore NewStore) {
	s := open(t, newStore)
	m := must(s.CreateMailboxAudit(store.Mailbox{MailboxConfig: store.MailboxConfig{Email: "a@x.org"}}, func(m *store.Mailbox) *store.AuditEntry {
		return &store.AuditEntry{UID: 2, Actor: "odoo", Action: "mailbox.create"}
	}))
	// A refused change writes neither the mailbox nor the entry.
	refused := errors.New("refused")
	if _, err := s.UpdateMailboxStatus(m.ID, func(mb *store.MailboxStatus, _ store.MailboxConfig) (*store.AuditEntry, error) {
		mb.State = "connected"
		return &store.AuditEntry{Action: "mailbox.state"}, refused
	}); !errors.Is(err, refused) {
		t.Fatalf("refused change: %v", err)
	}
	// A change that cannot be written (address taken) writes no entry.
	_ = must(s.CreateMailbox(store.Mailbox{MailboxConfig: store.MailboxConfig{Email: "b@x.org"}}))
	if _, err := s.UpdateMailboxConfig(m.ID, func(mb *store.MailboxConfig, _ store.MailboxStatus) (*store.AuditEntry, error) {
		mb.Email = "b@x.org"
		return &store.AuditEntry{Action: "mailbox.update"}, nil
	}); !errors.Is(err, store.ErrExists) {
		t.Fatalf("duplicate address: %v", err)
	}
	_ = must(s.UpdateMailboxStatus(m.ID, func(mb *store.MailboxStatus, _ store.MailboxConfig) (*store.AuditEntry, error) {
		mb.State = "connected"
		return &store.AuditEntry{UID: 2, Actor: "odoo", Action: "mailbox.state", Detail: map[string]any{"to": "connected"}}, nil
	}))
	entries, _ := must2(t)(s.AuditList(m.ID, 10, 0))
	var actions []string
	for _, e := range entries {
		if e.MailboxID != m.ID || e.At.IsZero() {
			t.Fatalf("entry %+v", e)
		}
		actions = append(actions, e.Action)
	}
	if strings.Join(actions, ",") != "mailbox.state,mailbox.create" {
		t.Fatalf("audit entries %v, want the state change and the creation only", actions)
	}
	if err := s.DeleteMailboxAudit(m.ID, &store.AuditEntry{UID: 2, Actor: "odoo", Action: "mailbox.delete"}); err != nil {
		t.Fatal(err)
	}
	if err := s.DeleteMailboxAudit(m.ID, &store.AuditEntry{Action: "mailbox.delete"}); !errors.Is(err, store.ErrNotFound) {
		t.Fatalf("delete twice: %v", err)
	}
	entries, _ = must2(t)(s.AuditList(m.ID, 10, 0))
	if len(entries) != 3 || entries[0].Action != "mailbox.delete" {
		t.Fatalf("after delete: %+v", entries)
	}
	st := store.DefaultSettings()
	st.Odoo.URL = "https://odoo.example.com"
	if err := s.SaveSettingsAudit(st, &store.AuditEntry{UID: 2, Actor: "odoo", Action: "settings.set"}); err != nil {
		t.Fatal(err)
	}
	if got := must(s.Settings()); got.Odoo.URL != st.Odoo.URL || got.UpdatedAt.IsZero() {
		t.Fatalf("settings %+v", got.Odoo)
	}
	all, _ := must2(t)(s.AuditList("", 1, 0))
	if len(all) != 1 || all[0].Action != "settings.set" {
		t.Fatalf("settings audit %+v", all)
	}
}

// setStatus and setConfig change one record of a mailbox, without audit.
func setStatus(s Store, id string, fn func(m *store.MailboxStatus)) (store.Mailbox, error) {
	return s.UpdateMailboxStatus(id, func(m *store.MailboxStatus, _ store.MailboxConfig) (*store.AuditEntry, error) { fn(m); return nil, nil })
}

func setConfig(s Store, id string, fn func(m *store.MailboxConfig)) (store.Mailbox, error) {
	return s.UpdateMailboxConfig(id, func(m *store.MailboxConfig, _ store.MailboxStatus) (*store.AuditEntry, error) { fn(m); return nil, nil })
}

// A mailbox's config and status are two records: each writer sees the
// other record as it is and writes only its own, so a status write keeps
// the config (and its change time) and a config write keeps the status;
// both show in every read, and both go with the mailbox.
func testConfigAndStatusApart(t *testing.T, newStore NewStore) {
	at := time.Date(2026, 11, 1, 9, 0, 0, 0, time.UTC)
	clock := &at
	s, _ := newStore(t, func() time.Time { return *clock })
	m := must(s.CreateMailbox(store.Mailbox{MailboxConfig: store.MailboxConfig{Email: "a@x.org", Mode: "log", Folders: []string{"inbox"}},
		MailboxStatus: store.MailboxStatus{State: "pending_consent"}}))
	if m.State != "pending_consent" || !m.CreatedAt.Equal(at) || !m.UpdatedAt.Equal(at) || !m.StateSince.Equal(at) {
		t.Fatalf("created %+v", m)
	}
	t1 := at.Add(time.Minute)
	clock = &t1
	var sawMode string
	up := must(s.UpdateMailboxStatus(m.ID, func(st *store.MailboxStatus, c store.MailboxConfig) (*store.AuditEntry, error) {
		sawMode = c.Mode
		st.State, st.Counts.Queued, st.ConnectedAs = "connected", 3, "a@x.org"
		return nil, nil
	}))
	if sawMode != "log" || up.Mode != "log" || up.Email != "a@x.org" || !up.StateSince.Equal(t1) {
		t.Fatalf("status write: fn saw mode %q, answered %+v", sawMode, up)
	}
	if got := must(s.Mailbox(m.ID)); !got.UpdatedAt.Equal(at) {
		t.Fatalf("a status write moved the config's change time to %v", got.UpdatedAt)
	}
	t2 := at.Add(2 * time.Minute)
	clock = &t2
	var sawState string
	up = must(s.UpdateMailboxConfig(m.ID, func(c *store.MailboxConfig, st store.MailboxStatus) (*store.AuditEntry, error) {
		sawState = st.State
		c.Mode, c.Folders = "gateway", []string{"inbox", "sentitems"}
		return nil, nil
	}))
	if sawState != "connected" || up.State != "connected" || up.Counts.Queued != 3 || !up.UpdatedAt.Equal(t2) {
		t.Fatalf("config write: fn saw state %q, answered %+v", sawState, up)
	}
	for _, got := range []store.Mailbox{must(s.Mailbox(m.ID)), must(s.Mailboxes())[0]} {
		if got.ID != m.ID || got.Mode != "gateway" || len(got.Folders) != 2 || got.State != "connected" ||
			got.ConnectedAs != "a@x.org" || got.Counts.Queued != 3 || !got.StateSince.Equal(t1) || !got.UpdatedAt.Equal(t2) {
			t.Fatalf("read back %+v", got)
		}
	}
	// A page counts into the status; the config stays.
	_ = must(s.ApplyPage(m.ID, store.Page{Folder: "inbox", Items: []store.PageItem{msg("m1", "inbox", 1)}}))
	if got := must(s.Mailbox(m.ID)); got.Counts.Queued != 4 || got.Mode != "gateway" || !got.UpdatedAt.Equal(t2) {
		t.Fatalf("after a page %+v", got)
	}
	if err := s.DeleteMailbox(m.ID); err != nil {
		t.Fatal(err)
	}
	// The address is free again and the new mailbox starts with a fresh status.
	n := must(s.CreateMailbox(store.Mailbox{ID: m.ID, MailboxConfig: store.MailboxConfig{Email: "a@x.org"}}))
	if n.State != "" || n.Counts.Queued != 0 || must(s.Mailbox(m.ID)).Counts.Queued != 0 {
		t.Fatalf("recreated %+v", n)
	}
}

// must2 unwraps a two-value-and-error answer.
func must2(t *testing.T) func(a []store.AuditEntry, b uint64, err error) ([]store.AuditEntry, uint64) {
	return func(a []store.AuditEntry, b uint64, err error) ([]store.AuditEntry, uint64) {
		t.Helper()
		if err != nil {
			t.Fatal(err)
		}
		return a, b
	}
}

func testSecretsSealed(t *testing.T, newStore NewStore) {
	s, raw := newStore(t, nil)
	st := store.DefaultSettings()
	st.Azure.ClientID = "app-1"
	st.Azure.ClientSecret = "SuperSecretClientValue~123"
	st.Azure.CertificatePEM = "-----BEGIN PRIVATE KEY-----CertSecretMaterial"
	st.Odoo.APIKey = "0123456789abcdef0123456789abcdef01234567"
	if err := s.SaveSettings(st); err != nil {
		t.Fatal(err)
	}
	mb := must(s.CreateMailbox(store.Mailbox{MailboxConfig: store.MailboxConfig{Email: "a@b.c"}}))
	if err := s.PutTokenCache(mb.ID, []byte(`{"RefreshToken":"RT-very-secret-refresh"}`)); err != nil {
		t.Fatal(err)
	}
	if err := s.PutOAuthState(store.OAuthState{State: "st1", MailboxID: mb.ID, Verifier: "verifier-secret-xyz", ExpiresAt: time.Now().Add(time.Minute)}); err != nil {
		t.Fatal(err)
	}
	got := must(s.Settings())
	if got.Azure.ClientSecret != st.Azure.ClientSecret || got.Odoo.APIKey != st.Odoo.APIKey || got.Azure.CertificatePEM != st.Azure.CertificatePEM {
		t.Fatalf("settings round trip: %+v", got)
	}
	// An empty secret removes it.
	st.Azure.CertificatePEM = ""
	if err := s.SaveSettings(st); err != nil {
		t.Fatal(err)
	}
	if got := must(s.Settings()); got.Azure.CertificatePEM != "" || got.Azure.ClientSecret == "" {
		t.Fatalf("removing one secret: %+v", got.Azure)
	}
	if raw == nil {
		t.Log("this store gave no raw dump: the check that secrets are sealed is skipped")
		return
	}
	dump := raw()
	if !strings.Contains(string(dump), "a@b.c") {
		t.Fatal("the raw dump does not show what the store holds (no mailbox address in it)")
	}
	for _, secret := range []string{"SuperSecretClientValue", "0123456789abcdef0123456789abcdef01234567", "RT-very-secret-refresh", "verifier-secret-xyz"} {
		if strings.Contains(string(dump), secret) {
			t.Errorf("%q is stored in clear", secret)
		}
	}
}

func testOAuthState(t *testing.T, newStore NewStore) {
	now := time.Date(2026, 11, 22, 9, 0, 0, 0, time.UTC)
	s, _ := newStore(t, func() time.Time { return now })
	_ = s.PutOAuthState(store.OAuthState{State: "a", MailboxID: "mbx_1", Verifier: "v", ExpiresAt: now.Add(15 * time.Minute)})
	_ = s.PutOAuthState(store.OAuthState{State: "b", MailboxID: "mbx_1", Verifier: "v", ExpiresAt: now.Add(-time.Second)})
	if st, err := s.ConsumeOAuthState("a"); err != nil || st.MailboxID != "mbx_1" || st.Verifier != "v" {
		t.Fatalf("consume: %+v %v", st, err)
	}
	if _, err := s.ConsumeOAuthState("a"); !errors.Is(err, store.ErrNotFound) {
		t.Fatalf("replay: %v, want ErrNotFound", err)
	}
	if _, err := s.ConsumeOAuthState("b"); !errors.Is(err, store.ErrExpired) {
		t.Fatalf("expired: %v, want ErrExpired", err)
	}
}

func testTokenCache(t *testing.T, newStore NewStore) {
	s := open(t, newStore)
	mb := must(s.CreateMailbox(store.Mailbox{MailboxConfig: store.MailboxConfig{Email: "a@b.c"}}))
	if c, err := s.TokenCache(mb.ID); err != nil || c != nil {
		t.Fatalf("no cache yet: %q %v", c, err)
	}
	_ = s.PutTokenCache(mb.ID, []byte("one"))
	_ = s.PutTokenCache(mb.ID, []byte("two"))
	if c := must(s.TokenCache(mb.ID)); string(c) != "two" {
		t.Fatalf("cache %q", c)
	}
	if err := s.DeleteTokenCache(mb.ID); err != nil {
		t.Fatal(err)
	}
	if c, _ := s.TokenCache(mb.ID); c != nil {
		t.Fatalf("deleted cache %q", c)
	}
}

func testApplyPageExactlyOnce(t *testing.T, newStore NewStore) {
	s := open(t, newStore)
	mb := must(s.CreateMailbox(store.Mailbox{MailboxConfig: store.MailboxConfig{Email: "a@b.c"}}))
	p := store.Page{Folder: "inbox", Items: []store.PageItem{msg("m1", "inbox", 1), msg("m2", "inbox", 2)}, Cursor: &store.Cursor{NextLink: "n1"}}
	r, err := s.ApplyPage(mb.ID, p)
	if err != nil || r.Queued != 2 || len(r.OutboxSeqs) != 2 {
		t.Fatalf("first page: %+v %v", r, err)
	}
	// Replay of the same page and a move of m1 to archive: nothing new queued.
	r = must(s.ApplyPage(mb.ID, p))
	if r.Queued != 0 || r.Known != 2 {
		t.Fatalf("replay: %+v", r)
	}
	r = must(s.ApplyPage(mb.ID, store.Page{Folder: "archive", Items: []store.PageItem{msg("m1", "archive", 1)}}))
	if r.Queued != 0 {
		t.Fatalf("move queued again: %+v", r)
	}
	r = must(s.ApplyPage(mb.ID, store.Page{Folder: "inbox", Removed: []string{"m1", "m2"}, Cursor: &store.Cursor{DeltaLink: "d1"}}))
	if r.Removed != 1 {
		t.Fatalf("removal: %+v (m1 moved away, m2 removed)", r)
	}
	c := must(s.Cursor(mb.ID, "inbox"))
	if c.DeltaLink != "d1" || c.Folder != "inbox" || c.UpdatedAt.IsZero() {
		t.Fatalf("cursor %+v", c)
	}
	if _, err := s.Cursor(mb.ID, "sentitems"); !errors.Is(err, store.ErrNotFound) {
		t.Fatalf("cursor never written: %v", err)
	}
	items := must(s.DueOutbox(time.Now().Add(time.Second), 10, 0, nil))
	if len(items) != 2 || string(items[0].Payload) != `{"graph_id":"m1"}` || items[1].GraphID != "m2" {
		t.Fatalf("outbox %+v", items)
	}
	inbox, _, _ := s.ListMessages(mb.ID, "inbox", 10, "", nil)
	arch, _, _ := s.ListMessages(mb.ID, "archive", 10, "", nil)
	if len(inbox) != 0 || len(arch) != 1 || arch[0].ID != "m1" {
		t.Fatalf("index: inbox %v archive %v", inbox, arch)
	}
	if m := must(s.MessageByInternetID(mb.ID, "<m2@x>")); m.ID != "m2" || !m.Removed {
		t.Fatalf("by Message-Id: %+v", m)
	}
	// An update for a message never seen with content is reported missing.
	r = must(s.ApplyPage(mb.ID, store.Page{Folder: "inbox", Items: []store.PageItem{{Message: store.Message{ID: "m9", Folder: "inbox"}}}}))
	if len(r.Missing) != 1 || r.Missing[0] != "m9" || r.Queued != 0 {
		t.Fatalf("update without content: %+v", r)
	}
	// …and queued once its content comes.
	r = must(s.ApplyPage(mb.ID, store.Page{Folder: "inbox", Items: []store.PageItem{msg("m9", "inbox", 9)}}))
	if r.Queued != 1 {
		t.Fatalf("content after update: %+v", r)
	}
	// Sent through MailDesk: the Sent Items copy is indexed, not queued.
	_ = s.MarkSentByUs(mb.ID, "<s1@x>")
	r = must(s.ApplyPage(mb.ID, store.Page{Folder: "sentitems", Items: []store.PageItem{msg("s1", "sentitems", 3)}}))
	if r.Queued != 0 || r.SentByUs != 1 {
		t.Fatalf("sent copy: %+v", r)
	}
	got := must(s.Mailbox(mb.ID))
	if got.Counts.Queued != 3 || got.Counts.Messages != 4 {
		t.Fatalf("counts %+v", got.Counts)
	}
	if _, err := s.ApplyPage("mbx_none", p); !errors.Is(err, store.ErrNotFound) {
		t.Fatalf("page of an unknown mailbox: %v", err)
	}
}

func testStaleCursor(t *testing.T, newStore NewStore) {
	s := open(t, newStore)
	mb := must(s.CreateMailbox(store.Mailbox{MailboxConfig: store.MailboxConfig{Email: "a@b.c"}}))
	if err := s.PutCursor(mb.ID, store.Cursor{Folder: "inbox", DeltaLink: "d0"}); err != nil {
		t.Fatal(err)
	}
	_ = must(setStatus(s, mb.ID, func(m *store.MailboxStatus) { m.SyncGen = 1 }))
	_, err := s.ApplyPage(mb.ID, store.Page{Folder: "inbox", Items: []store.PageItem{msg("m1", "inbox", 1)}, Cursor: &store.Cursor{DeltaLink: "d1", Gen: 0}})
	if !errors.Is(err, store.ErrStaleCursor) {
		t.Fatalf("cursor of generation 0 after a resync: %v, want ErrStaleCursor", err)
	}
	if items, _ := s.DueOutbox(time.Now().Add(time.Second), 10, 0, nil); len(items) != 0 {
		t.Fatalf("a refused page queued %d items", len(items))
	}
	if c := must(s.Cursor(mb.ID, "inbox")); c.DeltaLink != "d0" {
		t.Fatalf("a refused page moved the cursor: %+v", c)
	}
	if err := s.PutCursor(mb.ID, store.Cursor{Folder: "inbox", DeltaLink: "d2", Gen: 1}); err != nil {
		t.Fatal(err)
	}
	if err := s.DeleteCursor(mb.ID, "inbox"); err != nil {
		t.Fatal(err)
	}
	if _, err := s.Cursor(mb.ID, "inbox"); !errors.Is(err, store.ErrNotFound) {
		t.Fatalf("deleted cursor: %v", err)
	}
}

func testBackfillRequest(t *testing.T, newStore NewStore) {
	s := open(t, newStore)
	mb := must(s.CreateMailbox(store.Mailbox{MailboxConfig: store.MailboxConfig{Email: "a@b.c"}}))
	since := time.Date(2026, 10, 1, 0, 0, 0, 0, time.UTC)
	for _, f := range []string{"inbox", "sentitems"} {
		if err := s.PutCursor(mb.ID, store.Cursor{Folder: f, BackfillLink: "next-" + f, Backfill: f == "sentitems", Seen: 7, BackfillSince: since}); err != nil {
			t.Fatal(err)
		}
	}
	// No request: nothing happens.
	if ok := must(s.ApplyBackfillRequest(mb.ID, 1, func(c *store.Cursor) { c.Seen = 0 }, nil)); ok {
		t.Fatal("applied a request that was never made")
	}
	req := store.BackfillRequest{Seq: 1, At: time.Now().UTC()}
	_ = must(setStatus(s, mb.ID, func(m *store.MailboxStatus) {
		m.BackfillRequest = &req
		m.Progress = store.Progress{Done: 5, Total: 9}
	}))
	got := must(s.Mailbox(mb.ID))
	if got.BackfillRequest == nil || got.BackfillRequest.Seq != 1 {
		t.Fatalf("request not stored: %+v", got.BackfillRequest)
	}
	restart := func(c *store.Cursor) { c.BackfillSince, c.BackfillLink, c.Backfill, c.Seen = time.Time{}, "", false, 0 }
	// A request newer than the one the syncer read waits for the next round.
	if ok := must(s.ApplyBackfillRequest(mb.ID, 0, restart, nil)); ok {
		t.Fatal("applied a request of another seq")
	}
	if ok := must(s.ApplyBackfillRequest(mb.ID, 1, restart, func(m *store.MailboxStatus) { m.Progress = store.Progress{} })); !ok {
		t.Fatal("request not applied")
	}
	got = must(s.Mailbox(mb.ID))
	if got.BackfillRequest != nil || got.Progress.Total != 0 {
		t.Fatalf("after applying: request %+v progress %+v", got.BackfillRequest, got.Progress)
	}
	for _, f := range []string{"inbox", "sentitems"} {
		c := must(s.Cursor(mb.ID, f))
		if c.BackfillLink != "" || c.Backfill || c.Seen != 0 || !c.BackfillSince.IsZero() {
			t.Fatalf("%s cursor after applying: %+v", f, c)
		}
	}
}

func testListMessagesPaging(t *testing.T, newStore NewStore) {
	s := open(t, newStore)
	mb := must(s.CreateMailbox(store.Mailbox{MailboxConfig: store.MailboxConfig{Email: "a@b.c"}}))
	var items []store.PageItem
	for i := 0; i < 25; i++ {
		items = append(items, msg(fmt.Sprintf("m%02d", i), "inbox", i))
	}
	items = append(items, msg("o1", "other", 99))
	_ = must(s.ApplyPage(mb.ID, store.Page{Folder: "inbox", Items: items}))
	var all []string
	cur := ""
	for {
		page, next, err := s.ListMessages(mb.ID, "inbox", 10, cur, nil)
		if err != nil {
			t.Fatal(err)
		}
		for _, m := range page {
			all = append(all, m.ID)
		}
		if next == "" {
			break
		}
		cur = next
	}
	if len(all) != 25 || all[0] != "m24" || all[24] != "m00" {
		t.Fatalf("paging gave %v", all)
	}
	odd, _, _ := s.ListMessages(mb.ID, "inbox", 50, "", func(m *store.Message) bool { return m.ID[2]%2 == 1 })
	if len(odd) != 12 {
		t.Fatalf("filtered page has %d messages", len(odd))
	}
	if _, _, err := s.ListMessages(mb.ID, "inbox", 10, "garbage", nil); err == nil {
		t.Fatal("a bad cursor was accepted")
	}
}

func testUpdateMessages(t *testing.T, newStore NewStore) {
	s := open(t, newStore)
	mb := must(s.CreateMailbox(store.Mailbox{MailboxConfig: store.MailboxConfig{Email: "a@b.c"}}))
	_ = must(s.ApplyPage(mb.ID, store.Page{Folder: "inbox", Items: []store.PageItem{msg("m1", "inbox", 1), msg("m2", "inbox", 2), msg("m3", "inbox", 3)}}))
	if err := s.UpdateMessages(mb.ID, []string{"m1", "m2"}, func(m *store.Message) { m.IsRead = true }); err != nil {
		t.Fatal(err)
	}
	if err := s.UpdateMessages(mb.ID, []string{"m3"}, func(m *store.Message) { m.Folder = "archive" }); err != nil {
		t.Fatal(err)
	}
	if err := s.UpdateMessages(mb.ID, []string{"m1", "nope"}, func(m *store.Message) { m.IsRead = false }); !errors.Is(err, store.ErrNotFound) {
		t.Fatalf("unknown id: %v", err)
	}
	if m := must(s.Message(mb.ID, "m1")); !m.IsRead {
		t.Fatal("an update with an unknown id changed m1")
	}
	counts := must(s.FolderCounts(mb.ID))
	if counts["inbox"] != (store.FolderCount{Total: 2, Unread: 0}) || counts["archive"] != (store.FolderCount{Total: 1, Unread: 1}) {
		t.Fatalf("folder counts %+v", counts)
	}
	arch, _, _ := s.ListMessages(mb.ID, "archive", 10, "", nil)
	if len(arch) != 1 || arch[0].ID != "m3" {
		t.Fatalf("moved message not listed in its folder: %+v", arch)
	}
}

func testAckOutbox(t *testing.T, newStore NewStore) {
	s := open(t, newStore)
	mb := must(s.CreateMailbox(store.Mailbox{MailboxConfig: store.MailboxConfig{Email: "a@b.c"}}))
	_ = must(s.ApplyPage(mb.ID, store.Page{Folder: "inbox", Items: []store.PageItem{msg("m1", "inbox", 1), msg("m2", "inbox", 2), msg("m3", "inbox", 3)}}))
	items := must(s.DueOutbox(time.Now().Add(time.Second), 10, 0, nil))
	later := time.Now().Add(time.Hour)
	err := s.AckOutbox([]store.OutboxAck{
		{Seq: items[0].Seq, Status: "posted", OdooMessageIDs: []int64{7}, Records: []store.OdooRef{{Model: "res.partner", ID: 3}}},
		{Seq: items[1].Seq, Status: "error", Error: "boom", RetryAt: later},
		{Seq: items[2].Seq, Status: "unrouted"},
	}, 2)
	if err != nil {
		t.Fatal(err)
	}
	if due, _ := s.DueOutbox(time.Now().Add(time.Second), 10, 0, nil); len(due) != 0 {
		t.Fatalf("due after ack: %v", due)
	}
	if at, ok := s.NextOutboxDue(nil); !ok || at.Sub(later).Abs() > time.Second {
		t.Fatalf("next due %v %v, want %v", at, ok, later)
	}
	due := must(s.DueOutbox(later.Add(time.Second), 10, 0, nil))
	if len(due) != 1 || due[0].GraphID != "m2" || due[0].Attempts != 1 || due[0].LastError != "boom" || string(due[0].Payload) != `{"graph_id":"m2"}` {
		t.Fatalf("failed item: %+v", due)
	}
	if st := must(s.OutboxStats()); st[mb.ID].Items != 1 || st[mb.ID].Failing != 1 || st[mb.ID].LastError != "boom" {
		t.Fatalf("stats %+v", st)
	}
	m1 := must(s.Message(mb.ID, "m1"))
	if m1.Delivery != store.DeliveryPosted || len(m1.OdooRefs) != 1 || m1.OdooRefs[0].ID != 3 || m1.OdooMessageIDs[0] != 7 {
		t.Fatalf("m1 %+v", m1)
	}
	if m3 := must(s.Message(mb.ID, "m3")); m3.Delivery != store.DeliveryUnrouted {
		t.Fatalf("m3 %+v", m3)
	}
	got := must(s.Mailbox(mb.ID))
	if got.Counts.Delivered != 1 || got.Counts.Unrouted != 1 || got.Counts.Failed != 0 || got.Counts.Queued != 3 {
		t.Fatalf("counts %+v", got.Counts)
	}
	// Enqueue (log to record) bypasses the index; skip excludes mailboxes.
	seq := must(s.Enqueue(store.OutboxItem{MailboxID: mb.ID, GraphID: "x1", Payload: []byte("p")}))
	if seq == 0 {
		t.Fatal("enqueue gave seq 0")
	}
	if due := must(s.DueOutbox(time.Now().Add(time.Second), 10, 0, func(id string) bool { return id == mb.ID })); len(due) != 0 {
		t.Fatalf("skipped mailbox's items due: %+v", due)
	}
	if due := must(s.DueOutbox(time.Now().Add(time.Second), 10, 0, nil)); len(due) != 1 || due[0].Seq != seq {
		t.Fatalf("enqueued item: %+v", due)
	}
}

func testRefusedItemFails(t *testing.T, newStore NewStore) {
	s := open(t, newStore)
	mb := must(s.CreateMailbox(store.Mailbox{MailboxConfig: store.MailboxConfig{Email: "a@b.c"}}))
	_ = must(s.ApplyPage(mb.ID, store.Page{Folder: "inbox", Items: []store.PageItem{msg("m1", "inbox", 1), msg("m2", "inbox", 2)}}))
	items := must(s.DueOutbox(time.Now().Add(time.Second), 10, 0, nil))
	refuse := func(seq uint64, reason string) {
		t.Helper()
		if err := s.AckOutbox([]store.OutboxAck{{Seq: seq, Status: "error", Error: reason, RetryAt: time.Now()}}, 3); err != nil {
			t.Fatal(err)
		}
	}
	refuse(items[0].Seq, "boom")
	refuse(items[0].Seq, "boom")
	refuse(items[0].Seq, "bang")
	refuse(items[0].Seq, "bang")
	if st := must(s.OutboxStats()); st[mb.ID].Failed != 0 {
		t.Fatalf("failed before 3 same refusals: %+v", st)
	}
	refuse(items[0].Seq, "bang")
	if st := must(s.OutboxStats()); st[mb.ID].Failed != 1 || st[mb.ID].Items != 2 {
		t.Fatalf("after 3 same refusals: %+v", st)
	}
	due := must(s.DueOutbox(time.Now().Add(24*time.Hour), 10, 0, nil))
	if len(due) != 1 || due[0].GraphID != "m2" {
		t.Fatalf("a failed item is still due: %+v", due)
	}
	got := must(s.Mailbox(mb.ID))
	if got.Counts.Failed != 1 || got.Delivery.FailedReason != "bang" || got.Delivery.FailedAt.IsZero() {
		t.Fatalf("mailbox %+v %+v", got.Counts, got.Delivery)
	}
	if m := must(s.Message(mb.ID, "m1")); m.Delivery != store.DeliveryFailed || m.DeliveryError != "bang" {
		t.Fatalf("index %+v", m)
	}
	for i := 0; i < store.FailAfterAttempts*3; i++ {
		refuse(items[1].Seq, fmt.Sprint("reason ", i))
	}
	if st := must(s.OutboxStats()); st[mb.ID].Failed != 2 {
		t.Fatalf("changing reasons retried forever: %+v", st)
	}
	if _, ok := s.NextOutboxDue(nil); ok {
		t.Fatal("failed items are due")
	}
	refuse(items[1].Seq, "late")
	if f := must(s.FailedOutbox(mb.ID)); len(f) != 2 || f[1].Attempts != store.FailAfterAttempts*3 {
		t.Fatalf("failed items %+v", f)
	}
	if n := must(s.RetryFailed(mb.ID)); n != 2 {
		t.Fatalf("retry failed requeued %d", n)
	}
	due = must(s.DueOutbox(time.Now().Add(time.Second), 10, 0, nil))
	if len(due) != 2 || due[0].Attempts != 0 || due[0].SameErrors != 0 || due[0].Failed {
		t.Fatalf("requeued %+v", due)
	}
	got = must(s.Mailbox(mb.ID))
	if got.Counts.Failed != 0 || got.Delivery.FailedReason != "" {
		t.Fatalf("mailbox after retry %+v %+v", got.Counts, got.Delivery)
	}
	if m := must(s.Message(mb.ID, "m1")); m.Delivery != store.DeliveryQueued || m.DeliveryError != "" {
		t.Fatalf("index after retry %+v", m)
	}
	if err := s.AckOutbox([]store.OutboxAck{{Seq: items[0].Seq, Status: "error", Error: "unreadable", Fail: true}}, 3); err != nil {
		t.Fatal(err)
	}
	if st := must(s.OutboxStats()); st[mb.ID].Failed != 1 {
		t.Fatalf("Fail did not fail the item at once: %+v", st)
	}
}

func testDueOutboxByMailbox(t *testing.T, newStore NewStore) {
	s := open(t, newStore)
	a := must(s.CreateMailbox(store.Mailbox{MailboxConfig: store.MailboxConfig{Email: "a@b.c"}}))
	b := must(s.CreateMailbox(store.Mailbox{MailboxConfig: store.MailboxConfig{Email: "b@b.c"}}))
	c := must(s.CreateMailbox(store.Mailbox{MailboxConfig: store.MailboxConfig{Email: "c@b.c"}}))
	var items []store.PageItem
	for i := 0; i < 30; i++ {
		items = append(items, msg(fmt.Sprintf("a%02d", i), "inbox", i))
	}
	_ = must(s.ApplyPage(a.ID, store.Page{Folder: "inbox", Items: items}))
	_ = must(s.ApplyPage(b.ID, store.Page{Folder: "inbox", Items: []store.PageItem{msg("b1", "inbox", 1), msg("b2", "inbox", 2)}}))
	_ = must(s.ApplyPage(c.ID, store.Page{Folder: "inbox", Items: []store.PageItem{msg("c1", "inbox", 1)}}))
	limit := func(id string) int {
		if id == a.ID {
			return 5
		}
		return 1
	}
	got := must(s.DueOutboxByMailbox(time.Now().Add(time.Second), limit, 0, func(id string) bool { return id == c.ID }))
	per := map[string][]string{}
	for _, g := range got {
		for _, it := range g.Items {
			if it.MailboxID != g.MailboxID || len(it.Payload) == 0 {
				t.Fatalf("item %+v in batch of %s", it, g.MailboxID)
			}
			per[g.MailboxID] = append(per[g.MailboxID], it.GraphID)
		}
	}
	if len(got) != 2 || strings.Join(per[a.ID], ",") != "a00,a01,a02,a03,a04" || strings.Join(per[b.ID], ",") != "b1" || per[c.ID] != nil {
		t.Fatalf("batches %v", per)
	}
	got = must(s.DueOutboxByMailbox(time.Now().Add(time.Second), func(string) int { return 100 }, 1, nil))
	if len(got) != 3 {
		t.Fatalf("%d batches, want 3", len(got))
	}
	for _, g := range got {
		if len(g.Items) != 1 {
			t.Fatalf("byte cap: %s got %d items", g.MailboxID, len(g.Items))
		}
	}
	if due := must(s.DueOutbox(time.Now().Add(time.Second), 3, 0, nil)); len(due) != 3 || due[0].GraphID != "a00" {
		t.Fatalf("queue order: %+v", due)
	}
}

func testOnQueued(t *testing.T, newStore NewStore) {
	s := open(t, newStore)
	mb := must(s.CreateMailbox(store.Mailbox{MailboxConfig: store.MailboxConfig{Email: "a@b.c"}}))
	var n int
	s.OnQueued(func() { n++ })
	_ = must(s.ApplyPage(mb.ID, store.Page{Folder: "inbox", Cursor: &store.Cursor{DeltaLink: "d"}}))
	if n != 0 {
		t.Fatalf("hook ran for a page that queued nothing")
	}
	_ = must(s.ApplyPage(mb.ID, store.Page{Folder: "inbox", Items: []store.PageItem{msg("m1", "inbox", 1)}}))
	_ = must(s.Enqueue(store.OutboxItem{MailboxID: mb.ID, GraphID: "m1"}))
	if n != 2 {
		t.Fatalf("hook ran %d times, want 2", n)
	}
	if err := s.QueueNotice(store.Notice{MailboxID: mb.ID, Kind: "reauth_required"}); err != nil {
		t.Fatal(err)
	}
	if n != 3 {
		t.Fatalf("a queued notice ran the hook %d times, want once (the pusher delivers notices)", n-2)
	}
}

func testDeleteMailbox(t *testing.T, newStore NewStore) {
	s := open(t, newStore)
	mb := must(s.CreateMailbox(store.Mailbox{MailboxConfig: store.MailboxConfig{Email: "a@b.c"}}))
	other := must(s.CreateMailbox(store.Mailbox{MailboxConfig: store.MailboxConfig{Email: "o@b.c"}}))
	_ = s.PutTokenCache(mb.ID, []byte("cache"))
	_ = s.SetDue(mb.ID, time.Now())
	_ = s.PutOAuthState(store.OAuthState{State: "s1", MailboxID: mb.ID, Verifier: "v", ExpiresAt: time.Now().Add(time.Hour)})
	_ = must(s.ApplyPage(mb.ID, store.Page{Folder: "inbox", Items: []store.PageItem{msg("m1", "inbox", 1)}, Cursor: &store.Cursor{DeltaLink: "d"}}))
	_ = must(s.ApplyPage(other.ID, store.Page{Folder: "inbox", Items: []store.PageItem{msg("m1", "inbox", 1)}}))
	if _, claimed, err := s.ClaimSend(mb.ID, store.SendRecord{RequestID: "r1", Status: "sending"}); err != nil || !claimed {
		t.Fatalf("claim: %v %v", claimed, err)
	}
	if err := s.DeleteMailbox(mb.ID); err != nil {
		t.Fatal(err)
	}
	if c, _ := s.TokenCache(mb.ID); c != nil {
		t.Fatal("token cache survived delete")
	}
	if items := must(s.DueOutbox(time.Now().Add(time.Second), 10, 0, nil)); len(items) != 1 || items[0].MailboxID != other.ID {
		t.Fatalf("outbox after delete: %+v", items)
	}
	if _, err := s.Mailbox(mb.ID); !errors.Is(err, store.ErrNotFound) {
		t.Fatalf("mailbox survived: %v", err)
	}
	if _, err := s.Cursor(mb.ID, "inbox"); !errors.Is(err, store.ErrNotFound) {
		t.Fatalf("cursor survived: %v", err)
	}
	if _, err := s.Message(mb.ID, "m1"); !errors.Is(err, store.ErrNotFound) {
		t.Fatalf("message index survived: %v", err)
	}
	if due := must(s.DueTimes()); !due[mb.ID].IsZero() {
		t.Fatal("due time survived")
	}
	if _, err := s.ConsumeOAuthState("s1"); !errors.Is(err, store.ErrNotFound) {
		t.Fatalf("OAuth state survived: %v", err)
	}
	if _, err := s.Message(other.ID, "m1"); err != nil {
		t.Fatalf("the other mailbox lost its message: %v", err)
	}
	if err := s.DeleteMailbox(mb.ID); !errors.Is(err, store.ErrNotFound) {
		t.Fatalf("delete twice: %v", err)
	}
	if _, err := s.CreateMailbox(store.Mailbox{MailboxConfig: store.MailboxConfig{Email: "A@b.c"}}); err != nil {
		t.Fatalf("re-create after delete: %v", err)
	}
}

func testAuditPaging(t *testing.T, newStore NewStore) {
	s := open(t, newStore)
	for i := 0; i < 7; i++ {
		_ = s.Audit(store.AuditEntry{UID: 2, Actor: "odoo", Action: fmt.Sprintf("a%d", i), MailboxID: "mbx_1", Detail: map[string]any{"i": i}})
	}
	_ = s.Audit(store.AuditEntry{Action: "other", MailboxID: "mbx_2"})
	page, next := must2(t)(s.AuditList("mbx_1", 3, 0))
	if len(page) != 3 || page[0].Action != "a6" || next == 0 || page[0].Detail["i"] != float64(6) {
		t.Fatalf("page1 %+v %d", page, next)
	}
	page, next = must2(t)(s.AuditList("mbx_1", 3, next))
	if len(page) != 3 || page[0].Action != "a3" {
		t.Fatalf("page2 %v %d", page, next)
	}
	page, next = must2(t)(s.AuditList("mbx_1", 3, next))
	if len(page) != 1 || page[0].Action != "a0" || next != 0 {
		t.Fatalf("page3 %v %d", page, next)
	}
	all, _ := must2(t)(s.AuditList("", 100, 0))
	if len(all) != 8 || all[0].Action != "other" {
		t.Fatalf("all %v", all)
	}
}

// Retention prunes the audit log by when entries were written and the
// message index by when mail was received, oldest first, at most limit a
// call; mail still on its way to Odoo (queued, failed) and removed entries
// stay; a pruned entry's Message-Id lookup goes with it and its mailbox
// counts one message less.
func testRetention(t *testing.T, newStore NewStore) {
	s := open(t, newStore)
	day := 24 * time.Hour
	now := time.Date(2026, 11, 20, 8, 0, 0, 0, time.UTC)
	for i, age := range []time.Duration{500 * day, 400 * day, 366 * day, 10 * day} {
		_ = must(0, s.Audit(store.AuditEntry{At: now.Add(-age), Action: fmt.Sprintf("a%d", i), MailboxID: "mbx_1"}))
	}
	cut := now.Add(-365 * day)
	if n := must(s.PruneAudit(cut, 2)); n != 2 {
		t.Fatalf("pruned %d audit entries with limit 2", n)
	}
	if n := must(s.PruneAudit(cut, 100)); n != 1 {
		t.Fatalf("pruned %d audit entries, want the last old one", n)
	}
	left, _ := must2(t)(s.AuditList("", 100, 0))
	if len(left) != 1 || left[0].Action != "a3" {
		t.Fatalf("audit after pruning %+v", left)
	}

	mb := must(s.CreateMailbox(store.Mailbox{MailboxConfig: store.MailboxConfig{Email: "a@b.c"}}))
	other := must(s.CreateMailbox(store.Mailbox{MailboxConfig: store.MailboxConfig{Email: "o@b.c"}}))
	// Received at 10..60 s after the epoch: "old" is before 100 s.
	res := must(s.ApplyPage(mb.ID, store.Page{Folder: "inbox", Items: []store.PageItem{
		msg("old1", "inbox", 10), msg("old2", "inbox", 20), msg("queued", "inbox", 30), msg("failed", "inbox", 35), msg("gone", "inbox", 40), msg("new", "inbox", 200)}}))
	res2 := must(s.ApplyPage(mb.ID, store.Page{Folder: "sentitems", Items: []store.PageItem{msg("sent", "sentitems", 50)}}))
	res3 := must(s.ApplyPage(other.ID, store.Page{Folder: "inbox", Items: []store.PageItem{msg("oth", "inbox", 60)}}))
	seq := map[string]uint64{}
	for i, id := range []string{"old1", "old2", "queued", "failed", "gone", "new"} {
		seq[id] = res.OutboxSeqs[i]
	}
	seq["sent"], seq["oth"] = res2.OutboxSeqs[0], res3.OutboxSeqs[0]
	var acks []store.OutboxAck
	for _, id := range []string{"old1", "old2", "gone", "new", "sent", "oth"} {
		acks = append(acks, store.OutboxAck{Seq: seq[id], Status: store.DeliveryPosted})
	}
	acks = append(acks, store.OutboxAck{Seq: seq["failed"], Status: "error", Error: "no", Fail: true})
	if err := s.AckOutbox(acks, 5); err != nil {
		t.Fatal(err)
	}
	_ = must(s.ApplyPage(mb.ID, store.Page{Folder: "inbox", Removed: []string{"gone"}}))
	before := must(s.Mailbox(mb.ID)).Counts.Messages
	old := time.Unix(100, 0)
	if n := must(s.PruneMessages(old, 2)); n != 2 {
		t.Fatalf("pruned %d index entries with limit 2", n)
	}
	if n := must(s.PruneMessages(old, 100)); n != 2 {
		t.Fatalf("pruned %d more index entries, want 2", n)
	}
	if n := must(s.PruneMessages(old, 100)); n != 0 {
		t.Fatalf("a third pass pruned %d", n)
	}
	for _, id := range []string{"old1", "old2", "sent"} {
		if _, err := s.Message(mb.ID, id); !errors.Is(err, store.ErrNotFound) {
			t.Fatalf("%s after pruning: %v", id, err)
		}
	}
	if _, err := s.Message(other.ID, "oth"); !errors.Is(err, store.ErrNotFound) {
		t.Fatalf("other mailbox's old entry after pruning: %v", err)
	}
	if _, err := s.MessageByInternetID(mb.ID, "<old1@x>"); !errors.Is(err, store.ErrNotFound) {
		t.Fatalf("Message-Id lookup of a pruned entry: %v", err)
	}
	for _, id := range []string{"queued", "failed", "gone", "new"} {
		if _, err := s.Message(mb.ID, id); err != nil {
			t.Fatalf("%s pruned: %v", id, err)
		}
	}
	if got := must(s.Mailbox(mb.ID)).Counts.Messages; got != before-3 {
		t.Fatalf("messages counted %d after pruning 3 of %d", got, before)
	}
	page, _ := must3(s.ListMessages(mb.ID, "inbox", 10, "", nil))
	if len(page) != 3 || page[0].ID != "new" {
		t.Fatalf("inbox after pruning %+v", page)
	}
	// A pruned message seen again is indexed (and queued) again.
	if r := must(s.ApplyPage(mb.ID, store.Page{Folder: "inbox", Items: []store.PageItem{msg("old1", "inbox", 10)}})); r.Queued != 1 {
		t.Fatalf("pruned message seen again: %+v", r)
	}
}

// OutboxStats counts each mailbox's outbox — items, those refused at least
// once, those failed, the oldest item's queue time and the newest refused
// item's reason — through every change: queueing, refusals, failing,
// RetryFailed, acks, a requeue and deleting the mailbox. Every backend
// answers exactly the same.
func testOutboxStats(t *testing.T, newStore NewStore) {
	at := time.Date(2026, 11, 20, 8, 0, 0, 0, time.UTC)
	clock := at
	s, _ := newStore(t, func() time.Time { return clock })
	a := must(s.CreateMailbox(store.Mailbox{MailboxConfig: store.MailboxConfig{Email: "a@b.c"}}))
	b := must(s.CreateMailbox(store.Mailbox{MailboxConfig: store.MailboxConfig{Email: "b@b.c"}}))
	want := func(step string, exp map[string]store.OutboxStats) {
		t.Helper()
		got := must(s.OutboxStats())
		if len(got) != len(exp) {
			t.Fatalf("%s: stats %+v, want %+v", step, got, exp)
		}
		for id, e := range exp {
			g := got[id]
			if g.Items != e.Items || g.Failing != e.Failing || g.Failed != e.Failed || !g.Oldest.Equal(e.Oldest) || g.LastError != e.LastError {
				t.Fatalf("%s: %s stats %+v, want %+v", step, id, g, e)
			}
		}
	}
	want("empty", map[string]store.OutboxStats{})
	ra := must(s.ApplyPage(a.ID, store.Page{Folder: "inbox", Items: []store.PageItem{msg("a1", "inbox", 1), msg("a2", "inbox", 2), msg("a3", "inbox", 3)}}))
	clock = at.Add(time.Minute)
	rb := must(s.ApplyPage(b.ID, store.Page{Folder: "inbox", Items: []store.PageItem{msg("b1", "inbox", 1)}}))
	_ = must(s.Enqueue(store.OutboxItem{MailboxID: b.ID, GraphID: "b2", Payload: []byte("{}")}))
	want("queued", map[string]store.OutboxStats{a.ID: {Items: 3, Oldest: at}, b.ID: {Items: 2, Oldest: at.Add(time.Minute)}})
	retry := clock.Add(time.Hour)
	if err := s.AckOutbox([]store.OutboxAck{
		{Seq: ra.OutboxSeqs[0], Status: "error", Error: "first", RetryAt: retry},
		{Seq: ra.OutboxSeqs[1], Status: "error", Error: "second", RetryAt: retry},
		{Seq: ra.OutboxSeqs[2], Status: store.DeliveryPosted},
		{Seq: rb.OutboxSeqs[0], Status: "error", Error: "broken", Fail: true},
	}, 5); err != nil {
		t.Fatal(err)
	}
	want("refused", map[string]store.OutboxStats{a.ID: {Items: 2, Failing: 2, Oldest: at, LastError: "second"},
		b.ID: {Items: 2, Failing: 1, Failed: 1, Oldest: at.Add(time.Minute), LastError: "broken"}})
	// The newest refused item answered: the reason shown is the older one's.
	if err := s.AckOutbox([]store.OutboxAck{{Seq: ra.OutboxSeqs[1], Status: store.DeliveryDuplicate}}, 5); err != nil {
		t.Fatal(err)
	}
	want("one acked", map[string]store.OutboxStats{a.ID: {Items: 1, Failing: 1, Oldest: at, LastError: "first"},
		b.ID: {Items: 2, Failing: 1, Failed: 1, Oldest: at.Add(time.Minute), LastError: "broken"}})
	if n := must(s.RetryFailed(b.ID)); n != 1 {
		t.Fatalf("retried %d", n)
	}
	want("retried", map[string]store.OutboxStats{a.ID: {Items: 1, Failing: 1, Oldest: at, LastError: "first"},
		b.ID: {Items: 2, Oldest: at.Add(time.Minute)}})
	if err := s.AckOutbox([]store.OutboxAck{{Seq: ra.OutboxSeqs[0], Status: store.DeliveryExcluded, Error: "private"}}, 5); err != nil {
		t.Fatal(err)
	}
	clock = at.Add(2 * time.Minute)
	if n := must(s.Requeue(a.ID, []store.OutboxItem{{GraphID: "a1", Folder: "inbox", Payload: []byte("{}")}}, []string{store.DeliveryExcluded})); n != 1 {
		t.Fatalf("requeued %d", n)
	}
	want("requeued", map[string]store.OutboxStats{a.ID: {Items: 1, Oldest: at.Add(2 * time.Minute)}, b.ID: {Items: 2, Oldest: at.Add(time.Minute)}})
	if err := s.DeleteMailbox(b.ID); err != nil {
		t.Fatal(err)
	}
	want("deleted", map[string]store.OutboxStats{a.ID: {Items: 1, Oldest: at.Add(2 * time.Minute)}})
}

func must3(out []store.Message, next string, err error) ([]store.Message, string) {
	if err != nil {
		panic(mustError{err})
	}
	return out, next
}

func testNotices(t *testing.T, newStore NewStore) {
	s := open(t, newStore)
	_ = s.QueueNotice(store.Notice{MailboxID: "mbx_1", Kind: "reauth_required", Reason: "a"})
	_ = s.QueueNotice(store.Notice{MailboxID: "mbx_2", Kind: "reauth_required", Reason: "b"})
	_ = s.QueueNotice(store.Notice{MailboxID: "mbx_1", Kind: "reauth_required", Reason: "c"})
	ns := must(s.Notices())
	if len(ns) != 2 || ns[0].MailboxID != "mbx_2" || ns[1].Reason != "c" {
		t.Fatalf("notices %+v", ns)
	}
	_ = s.DeleteNotice(ns[0].Seq)
	if ns := must(s.Notices()); len(ns) != 1 {
		t.Fatalf("after delete %+v", ns)
	}
}

func testDueTimesAndSends(t *testing.T, newStore NewStore) {
	s := open(t, newStore)
	at := time.Date(2026, 12, 1, 10, 0, 0, 123456789, time.UTC)
	_ = s.SetDue("mbx_1", at)
	_ = s.SetDue("mbx_2", at.Add(time.Minute))
	_ = s.SetDue("mbx_1", at.Add(time.Hour))
	due := must(s.DueTimes())
	if len(due) != 2 || !due["mbx_1"].Equal(at.Add(time.Hour)) || !due["mbx_2"].Equal(at.Add(time.Minute)) {
		t.Fatalf("due times %v", due)
	}
	rec := store.SendRecord{RequestID: "r1", InternetMessageID: "<a@x>", Status: "sending", QueuedAt: at}
	if _, claimed, err := s.ClaimSend("mbx_1", rec); err != nil || !claimed {
		t.Fatalf("first claim: %v %v", claimed, err)
	}
	rec.Status = "sent"
	if err := s.PutSend("mbx_1", rec); err != nil {
		t.Fatal(err)
	}
	old, claimed, err := s.ClaimSend("mbx_1", store.SendRecord{RequestID: "r1", Status: "sending"})
	if err != nil || claimed || old.Status != "sent" || old.InternetMessageID != "<a@x>" {
		t.Fatalf("second claim: %+v %v %v", old, claimed, err)
	}
	if _, claimed, _ := s.ClaimSend("mbx_2", store.SendRecord{RequestID: "r1"}); !claimed {
		t.Fatal("a request id of another mailbox was taken")
	}
}

// Odoo's "excluded" answer takes the item out like unrouted, counts it
// apart and keeps the reason; Requeue queues such mail again once (counts
// corrected); RecentMessages spans folders newest first; a page with
// content fills in sensitivity and threading ids of an older entry.
func testExcludedRequeueRecent(t *testing.T, newStore NewStore) {
	s := open(t, newStore)
	mb := must(s.CreateMailbox(store.Mailbox{MailboxConfig: store.MailboxConfig{Email: "a@b.c"}}))
	priv := msg("m1", "inbox", 100)
	priv.Message.Sensitivity, priv.Message.InReplyTo, priv.Message.References = "private", "<p@x>", []string{"<r@x>", "<p@x>"}
	_ = must(s.ApplyPage(mb.ID, store.Page{Folder: "inbox", Items: []store.PageItem{priv, msg("m2", "sentitems", 200), msg("m3", "inbox", 50)}}))
	items := must(s.DueOutbox(time.Now().Add(time.Second), 10, 0, nil))
	if err := s.AckOutbox([]store.OutboxAck{
		{Seq: items[0].Seq, Status: store.DeliveryExcluded, Error: "not logged: private"},
		{Seq: items[1].Seq, Status: store.DeliveryUnrouted},
		{Seq: items[2].Seq, Status: "posted"},
	}, 2); err != nil {
		t.Fatal(err)
	}
	m := must(s.Message(mb.ID, "m1"))
	if m.Delivery != store.DeliveryExcluded || m.DeliveryError != "not logged: private" || m.Sensitivity != "private" || len(m.References) != 2 {
		t.Fatalf("excluded entry %+v", m)
	}
	got := must(s.Mailbox(mb.ID))
	if got.Counts.Excluded != 1 || got.Counts.Unrouted != 1 || got.Counts.Delivered != 1 {
		t.Fatalf("counts %+v", got.Counts)
	}
	recent, total, err := s.RecentMessages(mb.ID, time.Unix(60, 0), 0, nil)
	if err != nil || total != 2 || len(recent) != 2 || recent[0].ID != "m2" || recent[1].ID != "m1" {
		t.Fatalf("recent %+v %d %v", recent, total, err)
	}
	kept, total, _ := s.RecentMessages(mb.ID, time.Unix(0, 0), 1, func(m *store.Message) bool { return m.Delivery != "posted" })
	if total != 2 || len(kept) != 1 || kept[0].ID != "m2" {
		t.Fatalf("filtered, capped recent %+v %d", kept, total)
	}
	from := []string{store.DeliveryExcluded, store.DeliveryUnrouted}
	again := []store.OutboxItem{{GraphID: "m1", Payload: []byte("p1")}, {GraphID: "m2", Payload: []byte("p2")}, {GraphID: "m3", Payload: []byte("p3")}}
	if n := must(s.Requeue(mb.ID, again, from)); n != 2 {
		t.Fatalf("requeued %d, want 2 (m3 was posted)", n)
	}
	if n := must(s.Requeue(mb.ID, again, from)); n != 0 {
		t.Fatalf("a second requeue queued %d", n)
	}
	got = must(s.Mailbox(mb.ID))
	if got.Counts.Excluded != 0 || got.Counts.Unrouted != 0 {
		t.Fatalf("counts after requeue %+v", got.Counts)
	}
	if due := must(s.DueOutbox(time.Now().Add(time.Second), 10, 0, nil)); len(due) != 2 || due[0].MailboxID != mb.ID || string(due[0].Payload) != "p1" {
		t.Fatalf("requeued items %+v", due)
	}
	if m := must(s.Message(mb.ID, "m1")); m.Delivery != store.DeliveryQueued || m.DeliveryError != "" {
		t.Fatalf("requeued entry %+v", m)
	}
	// An older entry without sensitivity gets it from a page with content.
	_ = must(s.ApplyPage(mb.ID, store.Page{Folder: "inbox", Items: []store.PageItem{msg("m4", "inbox", 300)}}))
	fill := msg("m4", "inbox", 300)
	fill.Payload = nil
	fill.Message.Sensitivity, fill.Message.InReplyTo = "confidential", "<q@x>"
	if r := must(s.ApplyPage(mb.ID, store.Page{Folder: "inbox", Items: []store.PageItem{fill}})); r.Queued != 0 || r.Known != 1 {
		t.Fatalf("fill page %+v", r)
	}
	if m := must(s.Message(mb.ID, "m4")); m.Sensitivity != "confidential" || m.InReplyTo != "<q@x>" {
		t.Fatalf("filled entry %+v", m)
	}
	at := time.Date(2026, 12, 1, 10, 0, 0, 5, time.UTC)
	if err := s.SetDueMany(map[string]time.Time{"mbx_a": at, "mbx_b": at.Add(time.Second)}); err != nil {
		t.Fatal(err)
	}
	if due := must(s.DueTimes()); !due["mbx_a"].Equal(at) || !due["mbx_b"].Equal(at.Add(time.Second)) {
		t.Fatalf("due times %v", due)
	}
}
