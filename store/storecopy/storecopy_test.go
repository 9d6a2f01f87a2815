package storecopy_test

import (
	"bytes"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/maildesk/maildesk/store"
	"github.com/maildesk/maildesk/store/pgstore"
	"github.com/maildesk/maildesk/store/pgstore/pgtest"
	"github.com/maildesk/maildesk/store/storecopy"
)

func TestMain(m *testing.M) {
	code := m.Run()
	pgtest.Stop()
	os.Exit(code)
}

// Everything a sidecar keeps — settings with secrets, a mailbox's config
// and status, tokens, cursors, due time, index, Message-Id lookups and the
// sent marker, send records, the outbox with a waiting and a failed item,
// the audit log and notices — reads the same from PostgreSQL after a copy,
// sealed with the same key; the outbox's and audit log's numbers go on
// after the copied ones; a non-empty target is refused unless forced.
func TestCopyBboltIntoPostgres(t *testing.T) {
	key := bytes.Repeat([]byte{3}, store.KeySize)
	now := time.Date(2026, 11, 20, 8, 0, 0, 0, time.UTC)
	src, err := store.Open(filepath.Join(t.TempDir(), "maildesk.db"), key, store.Options{Now: func() time.Time { return now }})
	if err != nil {
		t.Fatal(err)
	}
	defer src.Close()
	st := store.DefaultSettings()
	st.Odoo.URL, st.Odoo.APIKey, st.Azure.ClientSecret = "https://odoo.example.com", "api-key", "client-secret"
	if err := src.SaveSettings(st); err != nil {
		t.Fatal(err)
	}
	mb, err := src.CreateMailboxAudit(store.Mailbox{MailboxConfig: store.MailboxConfig{Email: "anna@contoso.com", Mode: "log", Folders: []string{"inbox"}, OdooID: 7},
		MailboxStatus: store.MailboxStatus{State: "connected", HomeAccountID: "uid.utid", SyncGen: 2}},
		func(m *store.Mailbox) *store.AuditEntry { return &store.AuditEntry{Action: "mailbox.create"} })
	if err != nil {
		t.Fatal(err)
	}
	_ = src.PutTokenCache(mb.ID, []byte(`{"refresh":"secret-token"}`))
	_ = src.SetDue(mb.ID, now.Add(time.Minute))
	_ = src.MarkSentByUs(mb.ID, "<sent@x>")
	_, _, _ = src.ClaimSend(mb.ID, store.SendRecord{RequestID: "r1", Status: "sent"})
	item := func(id string) store.PageItem {
		return store.PageItem{Message: store.Message{ID: id, InternetMessageID: "<" + id + "@x>", Subject: id, ReceivedAt: now.Add(-time.Hour)}, Direction: "in", Payload: []byte(`{"id":"` + id + `"}`)}
	}
	res, err := src.ApplyPage(mb.ID, store.Page{Folder: "inbox", Items: []store.PageItem{item("m1"), item("m2"), item("m3")},
		Cursor: &store.Cursor{DeltaLink: "delta-1", Gen: 2, Backfill: true}})
	if err != nil {
		t.Fatal(err)
	}
	if err := src.AckOutbox([]store.OutboxAck{{Seq: res.OutboxSeqs[0], Status: store.DeliveryPosted, OdooMessageIDs: []int64{41}},
		{Seq: res.OutboxSeqs[1], Status: "error", Error: "refused", Fail: true}}, 5); err != nil {
		t.Fatal(err)
	}
	_ = src.QueueNotice(store.Notice{MailboxID: mb.ID, Kind: "reauth_required"})

	url, schema := pgtest.FreshSchema(t)
	dst, err := pgstore.Open(url, key, pgstore.Options{Schema: schema})
	if err != nil {
		t.Fatal(err)
	}
	defer dst.Close()
	var progress bytes.Buffer
	r, err := storecopy.Copy(src, dst, storecopy.Options{Progress: &progress, Batch: 5})
	if err != nil {
		t.Fatalf("%v\n%s", err, progress.String())
	}
	if r.Source[store.RecordOutbox] != 2 || r.Target[store.RecordOutbox] != 2 || r.Target[store.RecordMessage] != 3 || strings.Count(progress.String(), "copied ") < 3 {
		t.Fatalf("result %+v\n%s", r, progress.String())
	}

	got, err := dst.Mailbox(mb.ID)
	if err != nil || got.Email != mb.Email || got.OdooID != 7 || got.State != "connected" || got.HomeAccountID != "uid.utid" || got.SyncGen != 2 ||
		got.Counts.Queued != 3 || got.Counts.Delivered != 1 || got.Counts.Failed != 1 {
		t.Fatalf("mailbox %+v %v", got, err)
	}
	if gs, _ := dst.Settings(); gs.Odoo.APIKey != "api-key" || gs.Azure.ClientSecret != "client-secret" || gs.Odoo.URL != st.Odoo.URL {
		t.Fatalf("settings %+v", gs)
	}
	if tok, _ := dst.TokenCache(mb.ID); string(tok) != `{"refresh":"secret-token"}` {
		t.Fatalf("token %q", tok)
	}
	if c, err := dst.Cursor(mb.ID, "inbox"); err != nil || c.DeltaLink != "delta-1" || c.Gen != 2 {
		t.Fatalf("cursor %+v %v", c, err)
	}
	if due, _ := dst.DueTimes(); !due[mb.ID].Equal(now.Add(time.Minute)) {
		t.Fatalf("due %v", due)
	}
	if m, err := dst.MessageByInternetID(mb.ID, "<m1@x>"); err != nil || m.Delivery != store.DeliveryPosted || len(m.OdooMessageIDs) != 1 {
		t.Fatalf("m1 %+v %v", m, err)
	}
	// The sent marker still keeps the Sent Items copy from Odoo.
	if p, err := dst.ApplyPage(mb.ID, store.Page{Folder: "sentitems", Items: []store.PageItem{{Message: store.Message{ID: "s1", InternetMessageID: "<sent@x>"}, Payload: []byte("{}")}}}); err != nil || p.SentByUs != 1 || p.Queued != 0 {
		t.Fatalf("sent copy %+v %v", p, err)
	}
	if rec, claimed, _ := dst.ClaimSend(mb.ID, store.SendRecord{RequestID: "r1"}); claimed || rec.Status != "sent" {
		t.Fatalf("send record %+v claimed=%v", rec, claimed)
	}
	// The waiting item is due with its payload; the failed one stays failed.
	due, _ := dst.DueOutbox(now.Add(time.Hour), 10, 0, nil)
	if len(due) != 1 || due[0].GraphID != "m3" || string(due[0].Payload) != `{"id":"m3"}` {
		t.Fatalf("due outbox %+v", due)
	}
	srcStats, _ := src.OutboxStats()
	dstStats, _ := dst.OutboxStats()
	if a, b := srcStats[mb.ID], dstStats[mb.ID]; a.Items != b.Items || a.Failed != b.Failed || a.Failing != b.Failing || !a.Oldest.Equal(b.Oldest) || a.LastError != b.LastError {
		t.Fatalf("outbox stats bbolt %+v, pg %+v", a, b)
	}
	if f, _ := dst.FailedOutbox(mb.ID); len(f) != 1 || f[0].GraphID != "m2" {
		t.Fatalf("failed %+v", f)
	}
	seq, err := dst.Enqueue(store.OutboxItem{MailboxID: mb.ID, GraphID: "m9", Payload: []byte("{}")})
	if err != nil || seq <= res.OutboxSeqs[2] {
		t.Fatalf("a new item's seq %d after the copied %d: %v", seq, res.OutboxSeqs[2], err)
	}
	srcAudit, _, _ := src.AuditList("", 10, 0)
	dstAudit, _, _ := dst.AuditList("", 10, 0)
	if len(dstAudit) != len(srcAudit) || dstAudit[0].Seq != srcAudit[0].Seq || dstAudit[0].Action != srcAudit[0].Action {
		t.Fatalf("audit %+v, source %+v", dstAudit, srcAudit)
	}
	_ = dst.Audit(store.AuditEntry{Action: "after"})
	if a, _, _ := dst.AuditList("", 1, 0); a[0].Action != "after" || a[0].Seq <= srcAudit[0].Seq {
		t.Fatalf("audit after the copy %+v", a)
	}
	if n, _ := dst.Notices(); len(n) != 1 || n[0].Kind != "reauth_required" {
		t.Fatalf("notices %+v", n)
	}

	// Again into the same database: refused; forced: it goes.
	if _, err := storecopy.Copy(src, dst, storecopy.Options{}); !errors.Is(err, storecopy.ErrNotEmpty) {
		t.Fatalf("copy into a non-empty database: %v", err)
	}
	if _, err := storecopy.Copy(src, dst, storecopy.Options{Force: true}); err != nil {
		t.Fatalf("forced copy: %v", err)
	}
}
