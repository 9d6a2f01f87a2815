package bridge

import (
	"bytes"
	"path/filepath"
	"testing"

	"github.com/maildesk/maildesk/store"
)

func TestTransitionAuditsAndRefuses(t *testing.T) {
	st, err := store.Open(filepath.Join(t.TempDir(), "db"), bytes.Repeat([]byte{3}, 32), store.Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer st.Close()
	m, _ := st.CreateMailbox(store.Mailbox{MailboxConfig: store.MailboxConfig{Email: "a@b.c"}, MailboxStatus: store.MailboxStatus{State: StateDraft}})
	if _, err := Transition(st, Actor{UID: 2}, m.ID, StateSyncing, "", "", nil); err == nil {
		t.Fatal("draft → syncing allowed")
	}
	if _, err := Transition(st, Actor{UID: 2}, m.ID, StatePendingConsent, "", "", nil); err != nil {
		t.Fatal(err)
	}
	got, _ := Transition(st, Actor{}, m.ID, StateConnected, "", "", func(m *store.MailboxStatus) { m.ConnectedAs = "a@b.c" })
	if got.State != StateConnected || got.ConnectedAs != "a@b.c" {
		t.Fatalf("%+v", got)
	}
	entries, _, _ := st.AuditList(m.ID, 10, 0)
	if len(entries) != 2 || entries[0].Actor != "sidecar" || entries[1].UID != 2 {
		t.Fatalf("audit %+v", entries)
	}
}

// setConfig changes a mailbox's config in a test (as mailbox.update would).
func setConfig(st interface {
	UpdateMailboxConfig(id string, fn func(c *store.MailboxConfig, st store.MailboxStatus) (*store.AuditEntry, error)) (store.Mailbox, error)
}, id string, fn func(c *store.MailboxConfig)) (store.Mailbox, error) {
	return st.UpdateMailboxConfig(id, func(c *store.MailboxConfig, _ store.MailboxStatus) (*store.AuditEntry, error) { fn(c); return nil, nil })
}
