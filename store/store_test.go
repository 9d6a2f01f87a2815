package store

import (
	"bytes"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"testing"
	"time"
)

func testKey(b byte) []byte { return bytes.Repeat([]byte{b}, KeySize) }

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
	if _, err := s.CreateMailbox(Mailbox{Email: "anna@contoso.com", Kind: "personal"}); err != nil {
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

func TestSecretsAreSealed(t *testing.T) {
	s, path := openTest(t)
	st := DefaultSettings()
	st.Azure.ClientID = "app-1"
	st.Azure.ClientSecret = "SuperSecretClientValue~123"
	st.Odoo.APIKey = "0123456789abcdef0123456789abcdef01234567"
	if err := s.SaveSettings(st); err != nil {
		t.Fatal(err)
	}
	mb, _ := s.CreateMailbox(Mailbox{Email: "a@b.c"})
	if err := s.PutTokenCache(mb.ID, []byte(`{"RefreshToken":"RT-very-secret-refresh"}`)); err != nil {
		t.Fatal(err)
	}
	if err := s.PutOAuthState(OAuthState{State: "st1", MailboxID: mb.ID, Verifier: "verifier-secret-xyz", ExpiresAt: time.Now().Add(time.Minute)}); err != nil {
		t.Fatal(err)
	}
	got, err := s.Settings()
	if err != nil || got.Azure.ClientSecret != st.Azure.ClientSecret || got.Odoo.APIKey != st.Odoo.APIKey {
		t.Fatalf("settings round trip: %+v %v", got, err)
	}
	s.Close()
	raw, _ := os.ReadFile(path)
	for _, secret := range []string{"SuperSecretClientValue", "0123456789abcdef0123456789abcdef01234567", "RT-very-secret-refresh", "verifier-secret-xyz"} {
		if bytes.Contains(raw, []byte(secret)) {
			t.Errorf("%q appears in the database file", secret)
		}
	}
}

func TestOAuthStateSingleUseAndExpiry(t *testing.T) {
	now := time.Date(2026, 11, 22, 9, 0, 0, 0, time.UTC)
	path := filepath.Join(t.TempDir(), "db")
	s, err := Open(path, testKey(1), Options{Now: func() time.Time { return now }})
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	_ = s.PutOAuthState(OAuthState{State: "a", MailboxID: "mbx_1", Verifier: "v", ExpiresAt: now.Add(15 * time.Minute)})
	_ = s.PutOAuthState(OAuthState{State: "b", MailboxID: "mbx_1", Verifier: "v", ExpiresAt: now.Add(-time.Second)})
	if st, err := s.ConsumeOAuthState("a"); err != nil || st.MailboxID != "mbx_1" {
		t.Fatalf("consume: %v %v", st, err)
	}
	if _, err := s.ConsumeOAuthState("a"); !errors.Is(err, ErrNotFound) {
		t.Fatalf("replay: %v, want ErrNotFound", err)
	}
	if _, err := s.ConsumeOAuthState("b"); !errors.Is(err, ErrExpired) {
		t.Fatalf("expired: %v, want ErrExpired", err)
	}
}

func msg(id, folder string, at int) PageItem {
	return PageItem{
		Message:   Message{ID: id, Folder: folder, InternetMessageID: "<" + id + "@x>", Subject: "s " + id, ReceivedAt: time.Unix(int64(at), 0).UTC()},
		Direction: "in",
		Payload:   []byte(`{"graph_id":"` + id + `"}`),
	}
}

func TestApplyPageExactlyOnce(t *testing.T) {
	s, _ := openTest(t)
	mb, _ := s.CreateMailbox(Mailbox{Email: "a@b.c"})
	p := Page{Folder: "inbox", Items: []PageItem{msg("m1", "inbox", 1), msg("m2", "inbox", 2)}, Cursor: &Cursor{NextLink: "n1"}}
	r, err := s.ApplyPage(mb.ID, p)
	if err != nil || r.Queued != 2 {
		t.Fatalf("first page: %+v %v", r, err)
	}
	// Replay of the same page and a move of m1 to archive: nothing new queued.
	r, _ = s.ApplyPage(mb.ID, p)
	if r.Queued != 0 || r.Known != 2 {
		t.Fatalf("replay: %+v", r)
	}
	r, _ = s.ApplyPage(mb.ID, Page{Folder: "archive", Items: []PageItem{msg("m1", "archive", 1)}})
	if r.Queued != 0 {
		t.Fatalf("move queued again: %+v", r)
	}
	r, _ = s.ApplyPage(mb.ID, Page{Folder: "inbox", Removed: []string{"m1"}, Cursor: &Cursor{DeltaLink: "d1"}})
	if r.Removed != 0 {
		t.Fatalf("removal after move hid the message in its new folder: %+v", r)
	}
	c, err := s.Cursor(mb.ID, "inbox")
	if err != nil || c.DeltaLink != "d1" {
		t.Fatalf("cursor %+v %v", c, err)
	}
	items, err := s.DueOutbox(time.Now(), 10, 0, nil)
	if err != nil || len(items) != 2 || string(items[0].Payload) != `{"graph_id":"m1"}` {
		t.Fatalf("outbox %+v %v", items, err)
	}
	inbox, _, _ := s.ListMessages(mb.ID, "inbox", 10, "", nil)
	arch, _, _ := s.ListMessages(mb.ID, "archive", 10, "", nil)
	if len(inbox) != 1 || inbox[0].ID != "m2" || len(arch) != 1 {
		t.Fatalf("index: inbox %v archive %v", inbox, arch)
	}
	// Sent through MailDesk: the Sent Items copy is indexed, not queued.
	_ = s.MarkSentByUs(mb.ID, "<s1@x>")
	r, _ = s.ApplyPage(mb.ID, Page{Folder: "sentitems", Items: []PageItem{msg("s1", "sentitems", 3)}})
	if r.Queued != 0 || r.SentByUs != 1 {
		t.Fatalf("sent copy: %+v", r)
	}
}

func TestAckOutboxKeepsFailures(t *testing.T) {
	s, _ := openTest(t)
	mb, _ := s.CreateMailbox(Mailbox{Email: "a@b.c"})
	_, _ = s.ApplyPage(mb.ID, Page{Folder: "inbox", Items: []PageItem{msg("m1", "inbox", 1), msg("m2", "inbox", 2), msg("m3", "inbox", 3)}})
	items, _ := s.DueOutbox(time.Now(), 10, 0, nil)
	later := time.Now().Add(time.Hour)
	err := s.AckOutbox([]OutboxAck{
		{Seq: items[0].Seq, Status: "posted", OdooMessageIDs: []int64{7}, Records: []OdooRef{{"res.partner", 3}}},
		{Seq: items[1].Seq, Status: "error", Error: "boom", RetryAt: later},
		{Seq: items[2].Seq, Status: "unrouted"},
	}, 2)
	if err != nil {
		t.Fatal(err)
	}
	due, _ := s.DueOutbox(time.Now(), 10, 0, nil)
	if len(due) != 0 {
		t.Fatalf("due after ack: %v", due)
	}
	due, _ = s.DueOutbox(later, 10, 0, nil)
	if len(due) != 1 || due[0].GraphID != "m2" || due[0].Attempts != 1 || due[0].LastError != "boom" {
		t.Fatalf("failed item: %+v", due)
	}
	m1, _ := s.Message(mb.ID, "m1")
	if m1.Delivery != DeliveryPosted || m1.OdooRefs[0].ID != 3 {
		t.Fatalf("m1 %+v", m1)
	}
	got, _ := s.Mailbox(mb.ID)
	if got.Counts.Delivered != 1 || got.Counts.Unrouted != 1 || got.Counts.Failed != 0 || got.Counts.Queued != 3 {
		t.Fatalf("counts %+v", got.Counts)
	}
}

func TestListMessagesPaging(t *testing.T) {
	s, _ := openTest(t)
	mb, _ := s.CreateMailbox(Mailbox{Email: "a@b.c"})
	var items []PageItem
	for i := 0; i < 25; i++ {
		items = append(items, msg(fmt.Sprintf("m%02d", i), "inbox", i))
	}
	_, _ = s.ApplyPage(mb.ID, Page{Folder: "inbox", Items: items})
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
}

func TestDeleteMailboxErasesEverything(t *testing.T) {
	s, _ := openTest(t)
	mb, _ := s.CreateMailbox(Mailbox{Email: "a@b.c"})
	_ = s.PutTokenCache(mb.ID, []byte("cache"))
	_, _ = s.ApplyPage(mb.ID, Page{Folder: "inbox", Items: []PageItem{msg("m1", "inbox", 1)}, Cursor: &Cursor{DeltaLink: "d"}})
	if err := s.DeleteMailbox(mb.ID); err != nil {
		t.Fatal(err)
	}
	if c, _ := s.TokenCache(mb.ID); c != nil {
		t.Fatal("token cache survived delete")
	}
	if items, _ := s.DueOutbox(time.Now(), 10, 0, nil); len(items) != 0 {
		t.Fatal("outbox survived delete")
	}
	if _, err := s.Mailbox(mb.ID); !errors.Is(err, ErrNotFound) {
		t.Fatalf("mailbox survived: %v", err)
	}
	if _, err := s.CreateMailbox(Mailbox{Email: "A@b.c"}); err != nil {
		t.Fatalf("re-create after delete: %v", err)
	}
	if _, err := s.CreateMailbox(Mailbox{Email: "a@B.c"}); !errors.Is(err, ErrExists) {
		t.Fatalf("duplicate address: %v", err)
	}
}

func TestAuditPaging(t *testing.T) {
	s, _ := openTest(t)
	for i := 0; i < 7; i++ {
		_ = s.Audit(AuditEntry{UID: 2, Actor: "odoo", Action: fmt.Sprintf("a%d", i), MailboxID: "mbx_1"})
	}
	page, next, err := s.AuditList("", 3, 0)
	if err != nil || len(page) != 3 || page[0].Action != "a6" || next == 0 {
		t.Fatalf("page1 %v %d %v", page, next, err)
	}
	page, next, _ = s.AuditList("", 3, next)
	if len(page) != 3 || page[0].Action != "a3" {
		t.Fatalf("page2 %v %d", page, next)
	}
	page, next, _ = s.AuditList("", 3, next)
	if len(page) != 1 || page[0].Action != "a0" || next != 0 {
		t.Fatalf("page3 %v %d", page, next)
	}
}

func TestBackupWhileOpen(t *testing.T) {
	s, _ := openTest(t)
	mb, _ := s.CreateMailbox(Mailbox{Email: "a@b.c"})
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

func TestNoticesReplaceSameKind(t *testing.T) {
	s, _ := openTest(t)
	_ = s.QueueNotice(Notice{MailboxID: "mbx_1", Kind: "reauth_required", Reason: "a"})
	_ = s.QueueNotice(Notice{MailboxID: "mbx_2", Kind: "reauth_required", Reason: "b"})
	_ = s.QueueNotice(Notice{MailboxID: "mbx_1", Kind: "reauth_required", Reason: "c"})
	ns, err := s.Notices()
	if err != nil || len(ns) != 2 || ns[0].MailboxID != "mbx_2" || ns[1].Reason != "c" {
		t.Fatalf("notices %+v %v", ns, err)
	}
	_ = s.DeleteNotice(ns[0].Seq)
	ns, _ = s.Notices()
	if len(ns) != 1 {
		t.Fatalf("after delete %+v", ns)
	}
}

func TestOnQueuedRunsAfterCommitsThatQueue(t *testing.T) {
	s, _ := openTest(t)
	mb, _ := s.CreateMailbox(Mailbox{Email: "a@b.c"})
	n := 0
	s.OnQueued(func() { n++ })
	_, _ = s.ApplyPage(mb.ID, Page{Folder: "inbox", Cursor: &Cursor{DeltaLink: "d"}})
	if n != 0 {
		t.Fatalf("hook ran for a page that queued nothing")
	}
	_, _ = s.ApplyPage(mb.ID, Page{Folder: "inbox", Items: []PageItem{msg("m1", "inbox", 1)}})
	_, _ = s.Enqueue(OutboxItem{MailboxID: mb.ID, GraphID: "m1"})
	if n != 2 {
		t.Fatalf("hook ran %d times, want 2", n)
	}
}
