package store

import (
	"bytes"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	bolt "go.etcd.io/bbolt"
)

func testKey(b byte) []byte { return bytes.Repeat([]byte{b}, KeySize) }

func msg(id, folder string, at int) PageItem {
	return PageItem{
		Message:   Message{ID: id, Folder: folder, InternetMessageID: "<" + id + "@x>", Subject: "s " + id, ReceivedAt: time.Unix(int64(at), 0).UTC()},
		Direction: "in",
		Payload:   []byte(`{"graph_id":"` + id + `"}`),
	}
}

func openTest(t *testing.T) (*Store, string) {
	t.Helper()
	path := filepath.Join(t.TempDir(), "maildesk.db")
	s, err := Open(path, testKey(1), Options{})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { s.Close() })
	return s, path
}

func TestOpenFileModeAndWrongKey(t *testing.T) {
	s, path := openTest(t)
	if _, err := s.CreateMailbox(Mailbox{MailboxConfig: MailboxConfig{Email: "anna@contoso.com", Kind: "personal"}}); err != nil {
		t.Fatal(err)
	}
	st, err := os.Stat(path)
	if err != nil {
		t.Fatal(err)
	}
	if st.Mode().Perm() != 0o600 {
		t.Fatalf("mode %v, want 0600", st.Mode().Perm())
	}
	s.Close()
	before, _ := os.ReadFile(path)
	_, err = Open(path, testKey(2), Options{})
	if !errors.Is(err, ErrWrongKey) {
		t.Fatalf("open with another key: %v, want ErrWrongKey", err)
	}
	after, _ := os.ReadFile(path)
	if !bytes.Equal(before, after) {
		t.Fatal("a failed open with the wrong key changed the file")
	}
	s2, err := Open(path, testKey(1), Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer s2.Close()
	ms, err := s2.Mailboxes()
	if err != nil || len(ms) != 1 || ms[0].Email != "anna@contoso.com" {
		t.Fatalf("after reopen: %v %v", ms, err)
	}
}

func TestBackupWhileOpen(t *testing.T) {
	s, _ := openTest(t)
	mb, _ := s.CreateMailbox(Mailbox{MailboxConfig: MailboxConfig{Email: "a@b.c"}})
	var buf bytes.Buffer
	if _, err := s.Backup(&buf); err != nil {
		t.Fatal(err)
	}
	path := filepath.Join(t.TempDir(), "restored.db")
	if err := os.WriteFile(path, buf.Bytes(), 0o600); err != nil {
		t.Fatal(err)
	}
	r, err := Open(path, testKey(1), Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer r.Close()
	if _, err := r.Mailbox(mb.ID); err != nil {
		t.Fatalf("restored copy: %v", err)
	}
}

func TestLoadOrCreateKey(t *testing.T) {
	path := filepath.Join(t.TempDir(), "sub", "key")
	k1, created, err := LoadOrCreateKey(path)
	if err != nil || !created || len(k1) != KeySize {
		t.Fatalf("create: %v %v", created, err)
	}
	st, _ := os.Stat(path)
	if st.Mode().Perm() != 0o600 {
		t.Fatalf("key file mode %v", st.Mode().Perm())
	}
	k2, created, err := LoadOrCreateKey(path)
	if err != nil || created || !bytes.Equal(k1, k2) {
		t.Fatalf("load: %v %v", created, err)
	}
	_ = os.WriteFile(path, []byte("garbage"), 0o600)
	if _, _, err := LoadOrCreateKey(path); err == nil {
		t.Fatal("garbage key accepted")
	}
}

// A schema-2 database (no address index) gets the index when opened, so a
// duplicate address is still refused.
func TestMigrateBuildsEmailIndex(t *testing.T) {
	path := filepath.Join(t.TempDir(), "maildesk.db")
	s, err := Open(path, testKey(1), Options{NoSync: true})
	if err != nil {
		t.Fatal(err)
	}
	a, err := s.CreateMailbox(Mailbox{MailboxConfig: MailboxConfig{Email: "Anna@x.org"}})
	if err != nil {
		t.Fatal(err)
	}
	// Back to schema 2: the index bucket did not exist then.
	if err := s.db.Update(func(tx *bolt.Tx) error {
		if err := tx.DeleteBucket(bucketEmails); err != nil {
			return err
		}
		return tx.Bucket(bucketMeta).Put(keySchema, u64(2))
	}); err != nil {
		t.Fatal(err)
	}
	s.Close()
	s, err = Open(path, testKey(1), Options{NoSync: true})
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	if _, err := s.CreateMailbox(Mailbox{MailboxConfig: MailboxConfig{Email: "anna@X.org"}}); !errors.Is(err, ErrExists) || !strings.Contains(err.Error(), a.ID) {
		t.Fatalf("duplicate of a migrated address: %v, want ErrExists naming %s", err, a.ID)
	}
}
