package bridge_test

import (
	"bytes"
	"context"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/rs/zerolog"

	"github.com/maildesk/maildesk/bridge"
	"github.com/maildesk/maildesk/store"
)

// Retention's settings are validated by settings.set, default to a year,
// and the pruning loop removes what they no longer keep, counted in
// maildesk_retention_pruned_total; 0 keeps entries forever.
func TestRetentionSettingsAndPruning(t *testing.T) {
	now := time.Date(2026, 11, 20, 8, 0, 0, 0, time.UTC)
	st, err := store.Open(filepath.Join(t.TempDir(), "maildesk.db"), bytes.Repeat([]byte{1}, store.KeySize), store.Options{Now: func() time.Time { return now }})
	if err != nil {
		t.Fatal(err)
	}
	defer st.Close()
	// The audit log, oldest first (as it is written).
	day := 24 * time.Hour
	for _, age := range []time.Duration{800 * day, 500 * day, 401 * day, 399 * day, day} {
		_ = st.Audit(store.AuditEntry{At: now.Add(-age), Action: "x"})
	}
	settings := bridge.NewSettings(st, zerolog.Nop())
	admin := bridge.Actor{UID: 2, Admin: true}
	v, err := settings.Get(admin)
	if err != nil || v.Retention.AuditDays != 365 || v.Retention.MessageDays != 365 {
		t.Fatalf("default retention %+v %v", v.Retention, err)
	}
	ten, forever, long := 10, 0, 400
	_, err = settings.Set(admin, bridge.SettingsParams{Retention: &bridge.RetentionParams{AuditDays: &ten, MessageDays: &long}})
	if bridge.AsError(err).Kind != bridge.KindValidation || !strings.Contains(err.Error(), "retention.audit_days must be 0 (keep forever) or between 30 and 36500 days, not 10") {
		t.Fatalf("10 days: %v", err)
	}
	if v, _ := settings.Get(admin); v.Retention.MessageDays != 365 {
		t.Fatalf("a refused change wrote %+v", v.Retention)
	}
	if v, err = settings.Set(admin, bridge.SettingsParams{Retention: &bridge.RetentionParams{AuditDays: &long, MessageDays: &forever}}); err != nil || v.Retention.AuditDays != 400 || v.Retention.MessageDays != 0 {
		t.Fatalf("set %+v %v", v.Retention, err)
	}

	mb, err := st.CreateMailbox(store.Mailbox{MailboxConfig: store.MailboxConfig{Email: "a@b.c"}})
	if err != nil {
		t.Fatal(err)
	}
	item := func(id string, age time.Duration) store.PageItem {
		return store.PageItem{Message: store.Message{ID: id, Folder: "inbox", ReceivedAt: now.Add(-age)}, Direction: "in", Payload: []byte("{}")}
	}
	res, err := st.ApplyPage(mb.ID, store.Page{Folder: "inbox", Items: []store.PageItem{item("old", 500*day), item("new", day)}})
	if err != nil {
		t.Fatal(err)
	}
	if err := st.AckOutbox([]store.OutboxAck{{Seq: res.OutboxSeqs[0], Status: store.DeliveryPosted}, {Seq: res.OutboxSeqs[1], Status: store.DeliveryPosted}}, 5); err != nil {
		t.Fatal(err)
	}

	reg := prometheus.NewRegistry()
	r := bridge.NewRetention(st, bridge.RetentionOptions{Every: 5 * time.Millisecond, Batch: 2, Now: func() time.Time { return now }, Registerer: reg})
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() { defer close(done); r.Run(ctx) }()
	pruned := func(kind string) float64 {
		mfs, _ := reg.Gather()
		for _, mf := range mfs {
			if mf.GetName() != "maildesk_retention_pruned_total" {
				continue
			}
			for _, m := range mf.GetMetric() {
				if m.GetLabel()[0].GetValue() == kind {
					return m.GetCounter().GetValue()
				}
			}
		}
		return -1
	}
	deadline := time.Now().Add(2 * time.Minute)
	for pruned("audit") < 3 {
		if time.Now().After(deadline) {
			t.Fatalf("audit entries pruned: %v, want 3", pruned("audit"))
		}
		time.Sleep(5 * time.Millisecond)
	}
	cancel()
	<-done
	left, _, _ := st.AuditList("", 100, 0)
	if got := pruned("audit"); got != 3 || len(left) != 3 { // 2 + the settings change
		t.Fatalf("pruned %v audit entries, %d left (%+v)", got, len(left), left)
	}
	// message_days 0: the index keeps everything.
	if _, err := st.Message(mb.ID, "old"); err != nil || pruned("messages") != 0 {
		t.Fatalf("message_days 0 pruned the index: %v, counted %v", err, pruned("messages"))
	}
	days := 365
	if _, err := settings.Set(admin, bridge.SettingsParams{Retention: &bridge.RetentionParams{MessageDays: &days}}); err != nil {
		t.Fatal(err)
	}
	a, m, err := r.Prune(context.Background())
	if err != nil || a != 0 || m != 1 || pruned("messages") != 1 {
		t.Fatalf("second pass: audit %d, messages %d, %v (counted %v)", a, m, err, pruned("messages"))
	}
	if _, err := st.Message(mb.ID, "old"); err == nil {
		t.Fatal("the 500-day-old index entry was kept")
	}
	if _, err := st.Message(mb.ID, "new"); err != nil {
		t.Fatal(err)
	}
}
