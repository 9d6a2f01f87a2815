package store

import (
	"compress/gzip"
	"io"
	"os"
	"path/filepath"
	"strings"
	"testing"

	bolt "go.etcd.io/bbolt"
)

// openSchema1 copies testdata/schema1.db.gz — a database written by
// MailDesk before config and status were split (schema 1; made by
// testdata/mkschema1.go.txt at commit 97adbf2) — into a temporary data
// directory and returns its path.
func openSchema1(t *testing.T) string {
	t.Helper()
	f, err := os.Open("testdata/schema1.db.gz")
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	zr, err := gzip.NewReader(f)
	if err != nil {
		t.Fatal(err)
	}
	path := filepath.Join(t.TempDir(), "maildesk.db")
	out, err := os.OpenFile(path, os.O_CREATE|os.O_WRONLY, 0o600)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := io.Copy(out, zr); err != nil {
		t.Fatal(err)
	}
	if err := out.Close(); err != nil {
		t.Fatal(err)
	}
	return path
}

// An existing data directory of schema 1 opens: every mailbox keeps its
// config and its status (now two records), and its tokens, cursors, index
// and outbox stay usable.
func TestMigrateSchema1SplitsConfigAndStatus(t *testing.T) {
	path := openSchema1(t)
	s, err := Open(path, testKey(1), Options{})
	if err != nil {
		t.Fatal(err)
	}
	all, err := s.Mailboxes()
	if err != nil {
		t.Fatal(err)
	}
	if len(all) != 2 {
		t.Fatalf("%d mailboxes after the migration, want 2", len(all))
	}
	a, info := all[0], all[1]
	if a.Email != "anna@contoso.com" || a.OdooID != 7 || a.Mode != "log" || len(a.UserIDs) != 2 || a.BackfillDays != 30 || !a.AnyoneMaySend || !a.LogSentAsActivity {
		t.Fatalf("anna's config %+v", a.MailboxConfig)
	}
	if a.State != "connected" || a.HomeAccountID != "uid.utid" || a.ConnectedAs != "anna@contoso.com" || a.SyncGen != 1 ||
		!a.Progress.Finished || a.Counts.Messages != 2 || a.Counts.Queued != 2 || a.Counts.Delivered != 1 ||
		a.BackfillRequest == nil || a.BackfillRequest.Seq != 3 || a.Delivery.LastOKAt.IsZero() {
		t.Fatalf("anna's status %+v", a.MailboxStatus)
	}
	if info.Email != "info@contoso.com" || info.Kind != "shared" || info.GatewayModel != "crm.lead" || info.State != "draft" {
		t.Fatalf("info %+v", info)
	}
	if got, _ := s.Mailbox(a.ID); got.State != "connected" || got.Email != a.Email {
		t.Fatalf("Mailbox(%s) %+v", a.ID, got)
	}
	if tok, err := s.TokenCache(a.ID); err != nil || string(tok) != `{"msal":"cache"}` {
		t.Fatalf("token cache %q %v", tok, err)
	}
	if c, err := s.Cursor(a.ID, "inbox"); err != nil || c.DeltaLink != "delta-1" || c.Gen != 1 {
		t.Fatalf("cursor %+v %v", c, err)
	}
	if m, err := s.Message(a.ID, "m1"); err != nil || m.Delivery != DeliveryPosted {
		t.Fatalf("message %+v %v", m, err)
	}
	if st, err := s.Settings(); err != nil || st.Odoo.APIKey != "odoo-api-key-secret" {
		t.Fatalf("settings %+v %v", st.Odoo, err)
	}
	stats, _ := s.OutboxStats()
	if stats[a.ID].Items != 1 {
		t.Fatalf("outbox %+v", stats)
	}
	// The status lives in its own record now: the config record has none of it.
	if _, err := s.UpdateMailboxStatus(a.ID, func(st *MailboxStatus, c MailboxConfig) (*AuditEntry, error) {
		st.Failures = 1
		return nil, nil
	}); err != nil {
		t.Fatal(err)
	}
	_ = s.db.View(func(tx *bolt.Tx) error {
		cfg := string(tx.Bucket(bucketMailbox).Get([]byte(a.ID)))
		status := string(tx.Bucket(bucketStatus).Get([]byte(a.ID)))
		if strings.Contains(cfg, `"state"`) || strings.Contains(cfg, `"counts"`) || !strings.Contains(cfg, `"odoo_id":7`) {
			t.Errorf("config record %s", cfg)
		}
		if !strings.Contains(status, `"state":"connected"`) || strings.Contains(status, `"email"`) || !strings.Contains(status, `"failures":1`) {
			t.Errorf("status record %s", status)
		}
		return nil
	})
	s.Close()
	// Opening again does not migrate twice.
	s, err = Open(path, testKey(1), Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	if got, err := s.Mailbox(a.ID); err != nil || got.Failures != 1 || got.OdooID != 7 {
		t.Fatalf("reopened %+v %v", got, err)
	}
}
