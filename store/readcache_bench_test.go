package store

import (
	"path/filepath"
	"runtime"
	"strings"
	"testing"
	"time"
)

// benchMailbox is a mailbox as an idle fleet has it: a config with users and
// two folders, a status with every time set, two cursors with delta links.
func benchMailbox(tb testing.TB, s *Store, i int) string {
	tb.Helper()
	at := time.Date(2026, 11, 3, 8, 4, 5, 123456789, time.UTC).Add(time.Duration(i) * time.Second)
	m, err := s.CreateMailbox(Mailbox{MailboxConfig: MailboxConfig{
		Email: "user" + itoa(i) + "@contoso.onmicrosoft.com", Kind: "personal", OdooID: int64(i + 1), OwnerUID: 7,
		UserIDs: []int64{7, 12, 31}, MainUserID: 7, Mode: "log", Folders: []string{"inbox", "sentitems"},
		BackfillDays: 30, LogSentAsActivity: true, CreateContacts: true, MaxMessageBytes: 25 << 20,
	}})
	if err != nil {
		tb.Fatal(err)
	}
	if _, err := s.UpdateMailboxStatus(m.ID, func(st *MailboxStatus, _ MailboxConfig) (*AuditEntry, error) {
		st.State = "active"
		st.HomeAccountID = "00000000-0000-0000-0000-00000000" + itoa(1000+i) + ".9188040d-6c67-4c5b-b112-36a304b66dad"
		st.ConnectedAs = m.Email
		st.ConnectedAt, st.LastSyncAt, st.LastSuccessAt, st.UnreadAt = at, at.Add(time.Hour), at.Add(time.Hour), at.Add(time.Hour)
		st.Progress = Progress{Done: 1234, Total: 1234, StartedAt: at, Finished: true}
		st.Counts = Counts{Messages: 1234, Queued: 1234, Delivered: 1200, Unrouted: 30, Excluded: 4, Unread: 17}
		st.Delivery = Delivery{LastOKAt: at.Add(time.Hour), Since: at}
		st.SyncGen = 1
		return nil, nil
	}); err != nil {
		tb.Fatal(err)
	}
	for _, f := range []string{"inbox", "sentitems"} {
		c := Cursor{Folder: f, FolderID: "AAMkAG" + strings.Repeat("x", 100), Rounds: 4321, Seen: 1234, Total: 1234, Backfill: true,
			DeltaLink:     "https://graph.microsoft.com/v1.0/me/mailFolders('" + f + "')/messages/delta?$deltatoken=" + strings.Repeat("LztZwWjo5IivWBhyxw5rAK", 12),
			BackfillSince: at.Add(-30 * 24 * time.Hour), BackfillUntil: at, Gen: 1}
		if err := s.PutCursor(m.ID, c); err != nil {
			tb.Fatal(err)
		}
	}
	return m.ID
}

func itoa(i int) string {
	if i == 0 {
		return "0"
	}
	var b []byte
	for ; i > 0; i /= 10 {
		b = append([]byte{byte('0' + i%10)}, b...)
	}
	return string(b)
}

func openBench(tb testing.TB) *Store {
	tb.Helper()
	s, err := Open(filepath.Join(tb.TempDir(), "maildesk.db"), testKey(1), Options{NoSync: true})
	if err != nil {
		tb.Fatal(err)
	}
	tb.Cleanup(func() { s.Close() })
	return s
}

// BenchmarkIdlePollReads is what an idle poll reads: its mailbox and its two
// folder cursors.
func BenchmarkIdlePollReads(b *testing.B) {
	s := openBench(b)
	id := benchMailbox(b, s, 1)
	b.ReportAllocs()
	b.ResetTimer()
	for b.Loop() {
		m, err := s.Mailbox(id)
		if err != nil || m.State != "active" {
			b.Fatal(m.State, err)
		}
		for _, f := range m.Folders {
			if c, err := s.Cursor(id, f); err != nil || c.Rounds != 4321 {
				b.Fatal(c.Rounds, err)
			}
		}
	}
}

// BenchmarkReadCacheMemory reads 5,000 mailboxes and their two cursors each
// into an empty read cache and reports the heap the cache then holds.
func BenchmarkReadCacheMemory(b *testing.B) {
	const n = 5000
	s := openBench(b)
	ids := make([]string, n)
	for i := range ids {
		ids[i] = benchMailbox(b, s, i)
	}
	readAll := func() {
		for _, id := range ids {
			m, err := s.Mailbox(id)
			if err != nil {
				b.Fatal(err)
			}
			for _, f := range m.Folders {
				if _, err := s.Cursor(id, f); err != nil {
					b.Fatal(err)
				}
			}
		}
	}
	heap := func() uint64 {
		var ms runtime.MemStats
		runtime.GC()
		runtime.GC()
		runtime.ReadMemStats(&ms)
		return ms.HeapAlloc
	}
	b.ResetTimer()
	for b.Loop() {
		s.cache = newReadCache()
		readAll()
	}
	b.StopTimer()
	s.cache = newReadCache()
	before := heap()
	readAll()
	after := heap()
	if got := s.cache.config.len() + s.cache.status.len() + s.cache.cursors.len(); got != 4*n {
		b.Fatalf("%d entries, want %d", got, 4*n)
	}
	b.ReportMetric(float64(after-before)/n, "cache-B/mailbox")
	b.ReportMetric(float64(after-before)/(1<<20), "cache-MiB")
}
