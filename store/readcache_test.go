package store

import (
	"encoding/json"
	"errors"
	"fmt"
	"reflect"
	"slices"
	"sync"
	"testing"
	"time"

	bolt "go.etcd.io/bbolt"
)

var timeType = reflect.TypeFor[time.Time]()

// fill sets every field reachable from v to a value made from *n, which
// counts up: through pointers, slices and maps already there it writes into
// their targets (allocating only when nil), so filling a filled value again
// with another *n changes everything its references point at. A kind fill
// does not know (interface, chan, func) or an unexported field fails the
// test: the clones and this test must learn about it first.
func fill(t *testing.T, path string, v reflect.Value, n *int) {
	t.Helper()
	*n++
	if v.Type() == timeType {
		v.Set(reflect.ValueOf(time.Unix(int64(*n)*1000003, int64(*n)).UTC()))
		return
	}
	switch v.Kind() {
	case reflect.String:
		v.SetString(fmt.Sprint("s", *n))
	case reflect.Int, reflect.Int8, reflect.Int16, reflect.Int32, reflect.Int64:
		v.SetInt(int64(*n))
	case reflect.Uint, reflect.Uint8, reflect.Uint16, reflect.Uint32, reflect.Uint64:
		v.SetUint(uint64(*n))
	case reflect.Float32, reflect.Float64:
		v.SetFloat(float64(*n))
	case reflect.Bool:
		v.SetBool(!v.Bool())
	case reflect.Struct:
		for i := range v.NumField() {
			f := v.Type().Field(i)
			if !f.IsExported() {
				t.Fatalf("%s.%s is unexported: teach fill and the clone about it", path, f.Name)
			}
			fill(t, path+"."+f.Name, v.Field(i), n)
		}
	case reflect.Pointer:
		if v.IsNil() {
			v.Set(reflect.New(v.Type().Elem()))
		}
		fill(t, path, v.Elem(), n)
	case reflect.Slice:
		if v.IsNil() {
			v.Set(reflect.MakeSlice(v.Type(), 2, 2))
		}
		for i := range v.Len() {
			fill(t, fmt.Sprint(path, "[", i, "]"), v.Index(i), n)
		}
	case reflect.Array:
		for i := range v.Len() {
			fill(t, fmt.Sprint(path, "[", i, "]"), v.Index(i), n)
		}
	case reflect.Map:
		if v.IsNil() {
			v.Set(reflect.MakeMap(v.Type()))
		}
		if v.Len() == 0 {
			for range 2 {
				k := reflect.New(v.Type().Key()).Elem()
				fill(t, path+"[key]", k, n)
				v.SetMapIndex(k, reflect.Zero(v.Type().Elem()))
			}
		}
		for _, k := range v.MapKeys() {
			e := reflect.New(v.Type().Elem()).Elem()
			e.Set(v.MapIndex(k)) // shares e's own references: filled in place
			fill(t, path+"[]", e, n)
			v.SetMapIndex(k, e)
		}
	default:
		t.Fatalf("%s is a %s: teach fill and the clone about it", path, v.Kind())
	}
}

// checkClone fills a T in full, clones it, then changes everything the
// original's references point at, and the other way round: a clone that
// shares a slice, map or pointer target with its original fails.
func checkClone[T any](t *testing.T, clone func(*T) T) {
	t.Helper()
	var orig, want T
	n := 0
	fill(t, "", reflect.ValueOf(&orig).Elem(), &n)
	n = 0
	fill(t, "", reflect.ValueOf(&want).Elem(), &n)
	got := clone(&orig)
	if !reflect.DeepEqual(got, want) {
		t.Errorf("%T: clone differs from the original:\n got %+v\nwant %+v", orig, got, want)
		return
	}
	n = 1000
	fill(t, "", reflect.ValueOf(&orig).Elem(), &n)
	if reflect.DeepEqual(orig, want) {
		t.Errorf("%T: filling again changed nothing", orig)
		return
	}
	if !reflect.DeepEqual(got, want) {
		t.Errorf("%T: changing the original's references changed the clone:\n got %+v\nwant %+v", orig, got, want)
		return
	}
	// And changing a clone leaves what it was cloned from (the cache) alone.
	n = 0
	fill(t, "", reflect.ValueOf(&orig).Elem(), &n)
	c := clone(&orig)
	n = 2000
	fill(t, "", reflect.ValueOf(&c).Elem(), &n)
	if !reflect.DeepEqual(orig, want) {
		t.Errorf("%T: changing the clone's references changed the original:\n got %+v\nwant %+v", orig, orig, want)
		return
	}
}

// refFields lists the fields of t (and of the types they reach) that hold
// references: pointers, slices, maps.
func refFields(t reflect.Type, path string, out *[]string) {
	switch t.Kind() {
	case reflect.Struct:
		if t == timeType {
			return
		}
		for i := range t.NumField() {
			refFields(t.Field(i).Type, path+"."+t.Field(i).Name, out)
		}
	case reflect.Pointer, reflect.Slice, reflect.Map:
		*out = append(*out, path+" "+t.Kind().String())
		refFields(t.Elem(), path, out)
	case reflect.Array:
		refFields(t.Elem(), path, out)
	}
}

func TestCloneDeepCopies(t *testing.T) {
	checkClone(t, cloneConfig)
	checkClone(t, cloneStatus)
	checkClone(t, cloneCursor)
	// A new reference field must be copied by its clone; checkClone catches
	// a clone that does not, this list makes the change deliberate.
	for typ, want := range map[reflect.Type][]string{
		reflect.TypeFor[MailboxConfig](): {"MailboxConfig.UserIDs slice", "MailboxConfig.Folders slice"},
		reflect.TypeFor[MailboxStatus](): {"MailboxStatus.Redeliver ptr", "MailboxStatus.Redeliver.Statuses slice", "MailboxStatus.BackfillRequest ptr"},
		reflect.TypeFor[Cursor]():        nil,
	} {
		var got []string
		refFields(typ, typ.Name(), &got)
		if !slices.Equal(got, want) {
			t.Errorf("%s holds references %q, the clone knows %q: make the clone copy them, then update this list", typ.Name(), got, want)
		}
	}
}

// cachedMailbox makes a mailbox with every reference field of its records
// set, and its two cursors.
func cachedMailbox(t *testing.T, s *Store) string {
	t.Helper()
	at := time.Date(2026, 11, 3, 8, 4, 5, 6, time.UTC)
	m, err := s.CreateMailbox(Mailbox{MailboxConfig: MailboxConfig{Email: "anna@contoso.com", Kind: "personal",
		UserIDs: []int64{7, 12}, Folders: []string{"inbox", "sentitems"}}})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := s.UpdateMailboxStatus(m.ID, func(st *MailboxStatus, _ MailboxConfig) (*AuditEntry, error) {
		st.State = "active"
		st.LastSyncAt = at
		st.Redeliver = &RedeliverRequest{Since: at, Statuses: []string{"unrouted", "failed"}, RequestedAt: at}
		st.BackfillRequest = &BackfillRequest{Since: at, Seq: 3, At: at}
		return nil, nil
	}); err != nil {
		t.Fatal(err)
	}
	for _, f := range []string{"inbox", "sentitems"} {
		if err := s.PutCursor(m.ID, Cursor{Folder: f, DeltaLink: "https://graph/" + f, Rounds: 1, BackfillSince: at}); err != nil {
			t.Fatal(err)
		}
	}
	return m.ID
}

func mustMailbox(t *testing.T, s *Store, id string) Mailbox {
	t.Helper()
	m, err := s.Mailbox(id)
	if err != nil {
		t.Fatal(err)
	}
	return m
}

func mustCursor(t *testing.T, s *Store, id, f string) Cursor {
	t.Helper()
	c, err := s.Cursor(id, f)
	if err != nil {
		t.Fatal(err)
	}
	return c
}

// uncached decodes the mailbox's records as the store did before the cache.
func uncached(t *testing.T, s *Store, id string) (m Mailbox, c Cursor) {
	t.Helper()
	err := s.db.View(func(tx *bolt.Tx) error {
		m.ID = id
		if err := json.Unmarshal(tx.Bucket(bucketMailbox).Get([]byte(id)), &m.MailboxConfig); err != nil {
			return err
		}
		if err := json.Unmarshal(tx.Bucket(bucketStatus).Get([]byte(id)), &m.MailboxStatus); err != nil {
			return err
		}
		return json.Unmarshal(tx.Bucket(bucketCursors).Bucket([]byte(id)).Get([]byte("inbox")), &c)
	})
	if err != nil {
		t.Fatal(err)
	}
	return m, c
}

func TestReadCacheHitReturnsTheDecodedValue(t *testing.T) {
	s, _ := openTest(t)
	id := cachedMailbox(t, s)
	// One with nil and empty slices: the copies keep them so.
	other, err := s.CreateMailbox(Mailbox{MailboxConfig: MailboxConfig{Email: "bert@contoso.com", UserIDs: []int64{}}})
	if err != nil {
		t.Fatal(err)
	}
	m1, c1 := mustMailbox(t, s, id), mustCursor(t, s, id, "inbox")
	cfg, st, cur := s.cache.config.m[id], s.cache.status.m[id], s.cache.cursors.m[cursorKey{id, "inbox"}]
	if cfg == nil || st == nil || cur == nil {
		t.Fatalf("nothing cached: %v %v %v", cfg, st, cur)
	}
	m2, c2 := mustMailbox(t, s, id), mustCursor(t, s, id, "inbox")
	if s.cache.config.m[id] != cfg || s.cache.status.m[id] != st || s.cache.cursors.m[cursorKey{id, "inbox"}] != cur {
		t.Fatal("the second read decoded again: not a cache hit")
	}
	um, uc := uncached(t, s, id)
	if !reflect.DeepEqual(m1, um) || !reflect.DeepEqual(m2, um) {
		t.Fatalf("mailbox read\n first %+v\nsecond %+v\n  want %+v", m1, m2, um)
	}
	if m2.Redeliver == nil || len(m2.Redeliver.Statuses) != 2 || m2.BackfillRequest == nil || m2.BackfillRequest.Seq != 3 || len(m2.Folders) != 2 {
		t.Fatalf("mailbox read %+v", m2)
	}
	if !reflect.DeepEqual(c1, uc) || !reflect.DeepEqual(c2, uc) || c2.DeltaLink != "https://graph/inbox" {
		t.Fatalf("cursor read\n first %+v\nsecond %+v\n  want %+v", c1, c2, uc)
	}
	for range 2 {
		o := mustMailbox(t, s, other.ID)
		if o.UserIDs == nil || len(o.UserIDs) != 0 || o.Folders != nil {
			t.Fatalf("empty user ids %#v, nil folders %#v", o.UserIDs, o.Folders)
		}
	}
}

func TestReadCacheSeesEveryWrite(t *testing.T) {
	s, _ := openTest(t)
	id := cachedMailbox(t, s)
	mustMailbox(t, s, id)
	mustCursor(t, s, id, "inbox")

	if _, err := s.UpdateMailboxStatus(id, func(st *MailboxStatus, _ MailboxConfig) (*AuditEntry, error) {
		st.State = "paused"
		st.Redeliver.Statuses[0] = "excluded"
		return nil, nil
	}); err != nil {
		t.Fatal(err)
	}
	if m := mustMailbox(t, s, id); m.State != "paused" || m.Redeliver.Statuses[0] != "excluded" {
		t.Fatalf("after a status update: %s %q", m.State, m.Redeliver.Statuses)
	}
	if _, err := s.UpdateMailboxConfig(id, func(c *MailboxConfig, _ MailboxStatus) (*AuditEntry, error) {
		c.Folders = append(c.Folders, "archive")
		c.UserIDs[0] = 99
		return nil, nil
	}); err != nil {
		t.Fatal(err)
	}
	if m := mustMailbox(t, s, id); !slices.Equal(m.Folders, []string{"inbox", "sentitems", "archive"}) || m.UserIDs[0] != 99 {
		t.Fatalf("after a config update: %q %v", m.Folders, m.UserIDs)
	}
	// A write fn refuses is not seen.
	if _, err := s.UpdateMailboxStatus(id, func(st *MailboxStatus, _ MailboxConfig) (*AuditEntry, error) {
		st.State = "error"
		return nil, errors.New("no")
	}); err == nil {
		t.Fatal("the refused update succeeded")
	}
	if m := mustMailbox(t, s, id); m.State != "paused" {
		t.Fatalf("after a refused update: %s", m.State)
	}
	// A record read (and cached) inside a transaction that then rolls back:
	// the next read sees the committed record.
	err := s.db.Update(func(tx *bolt.Tx) error {
		if err := putStatus(tx, id, &MailboxStatus{State: "rolled-back"}); err != nil {
			return err
		}
		if st, err := s.getStatus(tx, id); err != nil || st.State != "rolled-back" {
			t.Errorf("inside the transaction: %q %v", st.State, err)
		}
		return errors.New("roll back")
	})
	if err == nil {
		t.Fatal("the transaction committed")
	}
	if m := mustMailbox(t, s, id); m.State != "paused" {
		t.Fatalf("after a rolled back transaction: %s", m.State)
	}

	if err := s.PutCursor(id, Cursor{Folder: "inbox", DeltaLink: "https://graph/inbox2", Rounds: 2}); err != nil {
		t.Fatal(err)
	}
	if c := mustCursor(t, s, id, "inbox"); c.Rounds != 2 || c.DeltaLink != "https://graph/inbox2" {
		t.Fatalf("after PutCursor: %+v", c)
	}
	if _, err := s.ApplyPage(id, Page{Folder: "inbox", Items: []PageItem{msg("g1", "inbox", 1)}, Cursor: &Cursor{NextLink: "https://graph/next", Rounds: 3}}); err != nil {
		t.Fatal(err)
	}
	if c := mustCursor(t, s, id, "inbox"); c.Rounds != 3 || c.NextLink != "https://graph/next" || c.DeltaLink != "" {
		t.Fatalf("after ApplyPage: %+v", c)
	}
	if m := mustMailbox(t, s, id); m.Counts.Messages != 1 || m.Counts.Queued != 1 {
		t.Fatalf("counts after ApplyPage: %+v", m.Counts)
	}
	if err := s.DeleteCursor(id, "inbox"); err != nil {
		t.Fatal(err)
	}
	if _, err := s.Cursor(id, "inbox"); !errors.Is(err, ErrNotFound) {
		t.Fatalf("a deleted cursor: %v", err)
	}
	mustCursor(t, s, id, "sentitems")
	if err := s.DeleteMailbox(id); err != nil {
		t.Fatal(err)
	}
	if _, err := s.Mailbox(id); !errors.Is(err, ErrNotFound) {
		t.Fatalf("a deleted mailbox: %v", err)
	}
	if _, err := s.Cursor(id, "sentitems"); !errors.Is(err, ErrNotFound) {
		t.Fatalf("a deleted mailbox's cursor: %v", err)
	}
	if n := s.cache.config.len() + s.cache.status.len() + s.cache.cursors.len(); n != 0 {
		t.Fatalf("%d entries left after the delete", n)
	}
}

func TestReadCacheReturnsCopies(t *testing.T) {
	s, _ := openTest(t)
	id := cachedMailbox(t, s)
	want, wantC := mustMailbox(t, s, id), mustCursor(t, s, id, "inbox")
	for range 2 { // the first read decodes, the second is a hit
		m := mustMailbox(t, s, id)
		m.UserIDs[0], m.Folders[0] = -1, "changed"
		m.Redeliver.Statuses[0], m.Redeliver.Since = "changed", time.Time{}
		m.BackfillRequest.Seq = -1
		m.State = "changed"
		c := mustCursor(t, s, id, "inbox")
		c.DeltaLink, c.Rounds = "changed", -1
		if got := mustMailbox(t, s, id); !reflect.DeepEqual(got, want) {
			t.Fatalf("changing a returned mailbox changed the next read:\n got %+v\nwant %+v", got, want)
		}
		if got := mustCursor(t, s, id, "inbox"); !reflect.DeepEqual(got, wantC) {
			t.Fatalf("changing a returned cursor changed the next read: %+v", got)
		}
	}
	// So does changing what an update's fn is given.
	if _, err := s.UpdateMailboxStatus(id, func(st *MailboxStatus, c MailboxConfig) (*AuditEntry, error) {
		c.Folders[0] = "changed"
		st.Redeliver.Statuses[1] = "changed"
		return nil, errors.New("no")
	}); err == nil {
		t.Fatal("the refused update succeeded")
	}
	if got := mustMailbox(t, s, id); !reflect.DeepEqual(got, want) {
		t.Fatalf("a refused update's fn changed the next read:\n got %+v\nwant %+v", got, want)
	}
}

// Readers and a writer at once (run with -race): every read is one written
// version, whole.
func TestReadCacheConcurrentReadsAndWrites(t *testing.T) {
	s, _ := openTest(t)
	id := cachedMailbox(t, s)
	if _, err := s.UpdateMailboxStatus(id, func(st *MailboxStatus, _ MailboxConfig) (*AuditEntry, error) {
		st.Error, st.Redeliver.Statuses[1] = "0", "0"
		return nil, nil
	}); err != nil {
		t.Fatal(err)
	}
	const writes = 100
	var wg sync.WaitGroup
	done := make(chan struct{})
	errs := make(chan error, 8)
	for range 4 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for {
				select {
				case <-done:
					return
				default:
				}
				m, err := s.Mailbox(id)
				if err != nil {
					errs <- err
					return
				}
				if m.Error != fmt.Sprint(m.Counts.Messages) || m.Redeliver.Statuses[1] != m.Error {
					errs <- fmt.Errorf("a torn mailbox: %q %d %q", m.Error, m.Counts.Messages, m.Redeliver.Statuses)
					return
				}
				m.Redeliver.Statuses[1] = "mine"
				c, err := s.Cursor(id, "inbox")
				if err != nil {
					errs <- err
					return
				}
				if c.DeltaLink != fmt.Sprint(c.Rounds) && c.Rounds != 1 {
					errs <- fmt.Errorf("a torn cursor: %+v", c)
					return
				}
			}
		}()
	}
	for i := 1; i <= writes; i++ {
		if _, err := s.UpdateMailboxStatus(id, func(st *MailboxStatus, _ MailboxConfig) (*AuditEntry, error) {
			st.Counts.Messages = int64(i)
			st.Error, st.Redeliver.Statuses[1] = fmt.Sprint(i), fmt.Sprint(i)
			return nil, nil
		}); err != nil {
			t.Fatal(err)
		}
		if err := s.PutCursor(id, Cursor{Folder: "inbox", Rounds: int64(i + 1), DeltaLink: fmt.Sprint(i + 1)}); err != nil {
			t.Fatal(err)
		}
	}
	close(done)
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Error(err)
	}
	if m := mustMailbox(t, s, id); m.Counts.Messages != writes {
		t.Fatalf("last write not read: %d", m.Counts.Messages)
	}
}
