package pgstore_test

import (
	"context"
	"errors"
	"fmt"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/maildesk/maildesk/store"
	"github.com/maildesk/maildesk/store/pgstore"
)

func newLeases(t *testing.T, s *pgstore.Store, id string, ttl time.Duration) *pgstore.Leases {
	t.Helper()
	l, err := s.NewLeases(pgstore.LeaseOptions{NodeID: id, TTL: ttl})
	if err != nil {
		t.Fatal(err)
	}
	return l
}

func renew(t *testing.T, ls ...*pgstore.Leases) {
	t.Helper()
	for _, l := range ls {
		if err := l.Renew(context.Background()); err != nil {
			t.Fatal(err)
		}
	}
}

func held(ls []*pgstore.Leases) []int {
	out := make([]int, len(ls))
	for i, l := range ls {
		out[i] = l.Held()
	}
	return out
}

// Three nodes share nine mailboxes three each; when one stops renewing,
// the other two take its mailboxes once its leases expired, under a new
// epoch.
func TestLeasesFairShareAndTakeover(t *testing.T) {
	s, schema := openFresh(t, testKey(1), nil)
	for i := 0; i < 9; i++ {
		if _, err := s.CreateMailbox(store.Mailbox{MailboxConfig: store.MailboxConfig{Email: fmt.Sprintf("u%d@example.com", i)}}); err != nil {
			t.Fatal(err)
		}
	}
	ttl := 2 * time.Second
	ls := []*pgstore.Leases{newLeases(t, s, "a", ttl), newLeases(t, s, "b", ttl), newLeases(t, s, "c", ttl)}
	renew(t, ls[0])
	if got := ls[0].Held(); got != 9 {
		t.Fatalf("a alone holds %d of 9", got)
	}
	// b and c join: a releases down to its share, they claim the rest.
	for i := 0; i < 3; i++ {
		renew(t, ls...)
	}
	if h := held(ls); h[0] != 3 || h[1] != 3 || h[2] != 3 {
		t.Fatalf("with three nodes the leases are %v, want 3 each", h)
	}
	if c := ls[0].Counts(); c.Released != 6 || c.Acquired != 9 {
		t.Fatalf("a's counts: %+v", c)
	}
	mbs, _ := s.Mailboxes()
	epochs := map[string]int64{}
	var ofC []string
	for _, m := range mbs {
		if e, ok := ls[2].Holds(m.ID); ok {
			epochs[m.ID] = e
			ofC = append(ofC, m.ID)
		}
	}
	// c stops renewing: until its leases expire nobody takes them. The
	// database's clock decides, not the test's: a lease of c that a or b
	// holds after their renewal must have been acquired (acquired_at, the
	// database's now() at the take) no earlier than c's lease expired.
	// On a slow machine a and b may renew after the expiry; then they take
	// c's mailboxes, rightly.
	conn := connect(t, schema)
	cExpiry := map[string]time.Time{}
	rows, err := conn.Query(context.Background(), "SELECT mailbox_id, expires_at FROM leases WHERE holder = 'c'")
	if err != nil {
		t.Fatal(err)
	}
	for rows.Next() {
		var id string
		var at time.Time
		if err := rows.Scan(&id, &at); err != nil {
			t.Fatal(err)
		}
		cExpiry[id] = at
	}
	if rows.Close(); rows.Err() != nil || len(cExpiry) != 3 {
		t.Fatalf("c's leases in the table: %v %v", cExpiry, rows.Err())
	}

	renew(t, ls[0], ls[1])
	taken := 0
	for id, exp := range cExpiry {
		var holder string
		var acquired time.Time
		if err := conn.QueryRow(context.Background(), "SELECT holder, acquired_at FROM leases WHERE mailbox_id = $1", id).Scan(&holder, &acquired); err != nil {
			t.Fatal(err)
		}
		if holder != "c" {
			taken++
			if acquired.Before(exp) {
				t.Fatalf("mailbox %s: %s took c's lease at %s, before it expired at %s", id, holder, acquired.Format(time.StampMicro), exp.Format(time.StampMicro))
			}
		}
	}
	if h := held(ls[:2]); h[0]+h[1] != 6+taken {
		t.Fatalf("a and b hold %v after taking %d of c's leases", h, taken)
	}
	deadline := time.Now().Add(2 * time.Minute) // ends a stuck test only; the takeover follows c's expiry (2 s)
	for ls[0].Held()+ls[1].Held() < 9 {
		if time.Now().After(deadline) {
			t.Fatalf("c's mailboxes were not taken over: %v", held(ls[:2]))
		}
		time.Sleep(ttl / 10)
		renew(t, ls[0], ls[1])
	}
	if ls[2].Held() != 0 {
		t.Fatalf("c still counts %d leases past its local deadline", ls[2].Held())
	}
	for _, id := range ofC {
		e, ok := ls[0].Holds(id)
		if !ok {
			e, ok = ls[1].Holds(id)
		}
		if !ok || e <= epochs[id] {
			t.Fatalf("mailbox %s: taken over under epoch %d (held %v), c had %d", id, e, ok, epochs[id])
		}
	}
}

// A node that lost its lease cannot commit for the mailbox: a page with
// its cursor, an outbox ack and a status write all fail with
// store.ErrNotHolder and change nothing, while the new holder's go through.
func TestFencingRefusesTheOldHolder(t *testing.T) {
	s, schema := openFresh(t, testKey(1), nil)
	m, err := s.CreateMailbox(store.Mailbox{MailboxConfig: store.MailboxConfig{Email: "f@example.com"}, MailboxStatus: store.MailboxStatus{State: "connected"}})
	if err != nil {
		t.Fatal(err)
	}
	// A long TTL: a keeps believing it holds the lease locally.
	a, b := newLeases(t, s, "a", time.Minute), newLeases(t, s, "b", time.Minute)
	renew(t, a)
	fa, fb := a.Fence(), b.Fence()
	page := func(f *pgstore.Fenced, id string, delta string) error {
		_, err := f.ApplyPage(m.ID, store.Page{Folder: "inbox", Cursor: &store.Cursor{DeltaLink: delta},
			Items: []store.PageItem{{Message: store.Message{ID: id, Folder: "inbox"}, Payload: []byte(`{}`)}}})
		return err
	}
	if err := page(fa, "m1", "d1"); err != nil {
		t.Fatalf("the holder's page: %v", err)
	}
	if err := page(fb, "m0", "d0"); !errors.Is(err, store.ErrNotHolder) {
		t.Fatalf("a page from a node without the lease: %v", err)
	}
	due, err := s.DueOutbox(time.Now().Add(time.Hour), 10, 0, nil)
	if err != nil || len(due) != 1 {
		t.Fatalf("outbox after one page: %d items, %v", len(due), err)
	}
	// a's lease expires in the database (a paused, say) and b claims it.
	if err := expireLeases(t, schema, "a"); err != nil {
		t.Fatal(err)
	}
	renew(t, b)
	if _, ok := b.Holds(m.ID); !ok {
		t.Fatal("b did not claim the expired lease")
	}
	if _, ok := a.Holds(m.ID); !ok {
		t.Fatal("a should still believe it holds the lease (its local deadline is far)")
	}
	if err := page(fa, "m2", "d2"); !errors.Is(err, store.ErrNotHolder) {
		t.Fatalf("the old holder's page: %v", err)
	}
	if err := fa.PutCursor(m.ID, store.Cursor{Folder: "inbox", DeltaLink: "old"}); !errors.Is(err, store.ErrNotHolder) {
		t.Fatalf("the old holder's cursor: %v", err)
	}
	if err := fa.AckOutbox([]store.OutboxAck{{Seq: due[0].Seq, Status: store.DeliveryPosted}}, 5); !errors.Is(err, store.ErrNotHolder) {
		t.Fatalf("the old holder's ack: %v", err)
	}
	if _, err := fa.UpdateMailboxStatus(m.ID, func(st *store.MailboxStatus, _ store.MailboxConfig) (*store.AuditEntry, error) {
		st.State = "error"
		return nil, nil
	}); !errors.Is(err, store.ErrNotHolder) {
		t.Fatalf("the old holder's status: %v", err)
	}
	c, err := s.Cursor(m.ID, "inbox")
	if err != nil || c.DeltaLink != "d1" {
		t.Fatalf("cursor after the old holder's tries: %+v %v", c, err)
	}
	if got, _ := s.Mailbox(m.ID); got.State != "connected" || got.Counts.Delivered != 0 {
		t.Fatalf("mailbox after the old holder's tries: %s %+v", got.State, got.Counts)
	}
	// The new holder commits.
	if err := page(fb, "m2", "d2"); err != nil {
		t.Fatalf("the new holder's page: %v", err)
	}
	if err := fb.AckOutbox([]store.OutboxAck{{Seq: due[0].Seq, Status: store.DeliveryPosted}}, 5); err != nil {
		t.Fatalf("the new holder's ack: %v", err)
	}
	if got, _ := s.Mailbox(m.ID); got.Counts.Delivered != 1 {
		t.Fatalf("delivered after the new holder's ack: %+v", got.Counts)
	}
	// Config (RPC: admin edits, any node) is not fenced.
	if _, err := fa.UpdateMailboxConfig(m.ID, func(c *store.MailboxConfig, _ store.MailboxStatus) (*store.AuditEntry, error) {
		c.BackfillDays = 7
		return nil, nil
	}); err != nil {
		t.Fatal(err)
	}
}

// A node that cannot renew stops counting its leases before they expire in
// the database.
func TestLeasesLocalDeadlineBeforeExpiry(t *testing.T) {
	s, schema := openFresh(t, testKey(1), nil)
	m, err := s.CreateMailbox(store.Mailbox{MailboxConfig: store.MailboxConfig{Email: "d@example.com"}})
	if err != nil {
		t.Fatal(err)
	}
	ttl := time.Second
	a := newLeases(t, s, "a", ttl)
	lost := make(chan struct{}, 4)
	a.OnChange(func() {
		if _, ok := a.Holds(m.ID); !ok {
			lost <- struct{}{}
		}
	})
	renew(t, a)
	local := a.LocalDeadline()
	var expires time.Time
	conn := connect(t, schema)
	if err := conn.QueryRow(context.Background(), "SELECT expires_at FROM leases WHERE mailbox_id = $1", m.ID).Scan(&expires); err != nil {
		t.Fatal(err)
	}
	// The node stops counting the lease at its local deadline: that must be
	// before the database's expiry. Compared as values, not as the moment
	// this goroutine wakes up after the hook, which a busy machine delays.
	if !local.Before(expires) {
		t.Fatalf("the node counts its lease until %s, after it expires in the database at %s", local.Format(time.StampMicro), expires.Format(time.StampMicro))
	}
	t.Logf("local deadline %s before the database's expiry", expires.Sub(local).Round(time.Millisecond))
	select {
	case <-lost:
	case <-time.After(2 * time.Minute): // ends a stuck test only; the hook comes after 2/3 of the 1 s TTL
		t.Fatal("no change hook after the local deadline")
	}
	if now := time.Now(); now.Before(local) {
		t.Fatalf("the change hook ran at %s, before the local deadline %s", now.Format(time.StampMicro), local.Format(time.StampMicro))
	}
	if _, ok := a.Holds(m.ID); ok {
		t.Fatal("the node still counts the lease after its local deadline")
	}
	if a.Counts().Lost != 1 {
		t.Fatalf("counts: %+v", a.Counts())
	}
}

func connect(t *testing.T, schema string) *pgx.Conn {
	t.Helper()
	conn, err := pgx.Connect(context.Background(), testURL(t))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { conn.Close(context.Background()) })
	if _, err := conn.Exec(context.Background(), "SET search_path = "+pgx.Identifier{schema}.Sanitize()); err != nil {
		t.Fatal(err)
	}
	return conn
}

func expireLeases(t *testing.T, schema, holder string) error {
	_, err := connect(t, schema).Exec(context.Background(), "UPDATE leases SET expires_at = now() - interval '1 second' WHERE holder = $1", holder)
	return err
}
