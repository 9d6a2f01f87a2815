package store

import (
	"encoding/binary"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"time"

	bolt "go.etcd.io/bbolt"
)

// SchemaVersion is the version this code writes. Open migrates older files.
const SchemaVersion = 3

// Errors callers test with errors.Is.
var (
	ErrNotFound = errors.New("not found")
	ErrExpired  = errors.New("expired")
	ErrExists   = errors.New("already exists")
	ErrWrongKey = errors.New("wrong encryption key")
)

// Store is the bbolt database. Safe for concurrent use.
type Store struct {
	db   *bolt.DB
	seal *sealer
	path string
	now  func() time.Time
	// cache keeps the hot reads decoded (readcache.go).
	cache *readCache

	Hooks
}

// Options tune Open.
type Options struct {
	// Timeout waits this long for the file lock (another process holding the
	// database). Default 2 s.
	Timeout time.Duration
	// Now replaces the clock in tests.
	Now func() time.Time
	// NoSync skips fsync on commit; only for benchmarks and tests.
	NoSync bool
}

// migrations[i] moves a database from version i to i+1.
var migrations = []func(tx *bolt.Tx) error{
	func(tx *bolt.Tx) error { return nil }, // 0 → 1: buckets created by ensureBuckets
	splitMailboxRecords,                    // 1 → 2: config and status apart
	indexEmails,                            // 2 → 3: the address index
}

// splitMailboxRecords moves each mailbox's status out of its one JSON
// record (schema 1) into the status bucket, leaving the config.
func splitMailboxRecords(tx *bolt.Tx) error {
	b := tx.Bucket(bucketMailbox)
	var all []Mailbox
	err := b.ForEach(func(k, v []byte) error {
		var m Mailbox
		if err := jsonUnmarshal(v, &m); err != nil {
			return fmt.Errorf("mailbox %s: %w", k, err)
		}
		m.ID = string(k)
		all = append(all, m)
		return nil
	})
	if err != nil {
		return err
	}
	for _, m := range all {
		if err := putJSON(b, []byte(m.ID), m.MailboxConfig); err != nil {
			return err
		}
		if err := putStatus(tx, m.ID, &m.MailboxStatus); err != nil {
			return err
		}
	}
	return nil
}

// Open opens (creating when missing) the database at path, mode 0600, checks
// that key opens it, and migrates it to SchemaVersion. A wrong key returns an
// error wrapping ErrWrongKey and changes nothing in the file.
func Open(path string, key []byte, opts Options) (*Store, error) {
	s, err := newSealer(key)
	if err != nil {
		return nil, err
	}
	if opts.Timeout == 0 {
		opts.Timeout = 2 * time.Second
	}
	if opts.Now == nil {
		opts.Now = time.Now
	}
	db, err := bolt.Open(path, 0o600, &bolt.Options{Timeout: opts.Timeout, NoSync: opts.NoSync, FreelistType: bolt.FreelistMapType})
	if err != nil {
		if errors.Is(err, bolt.ErrTimeout) {
			return nil, fmt.Errorf("store: open %s: the database is locked by another process (is a sidecar already running? use `maildesk backup` against it instead)", path)
		}
		return nil, fmt.Errorf("store: open %s: %w", path, err)
	}
	// bbolt keeps the mode of an existing file; tighten it anyway.
	_ = os.Chmod(path, 0o600)
	st := &Store{db: db, seal: s, path: path, now: opts.Now, cache: newReadCache()}
	if err := st.checkKey(); err != nil {
		db.Close()
		return nil, err
	}
	if err := st.migrate(); err != nil {
		db.Close()
		return nil, err
	}
	return st, nil
}

var keyCheckPlain = []byte("maildesk key check v1")

func (s *Store) checkKey() error {
	var sealed []byte
	err := s.db.View(func(tx *bolt.Tx) error {
		if b := tx.Bucket(bucketMeta); b != nil {
			if v := b.Get(keyKeyCheck); v != nil {
				sealed = append([]byte(nil), v...)
			}
		}
		return nil
	})
	if err != nil {
		return fmt.Errorf("store: read key check: %w", err)
	}
	if sealed == nil {
		return nil // new database: migrate writes the check value
	}
	if _, err := s.seal.open(sealed, keyKeyCheck); err != nil {
		return fmt.Errorf("store: %s was sealed with another encryption key than the key file given: start with the key file this database was created with (or restore a backup taken with it); nothing was changed: %w", s.path, ErrWrongKey)
	}
	return nil
}

func (s *Store) migrate() error {
	return s.db.Update(func(tx *bolt.Tx) error {
		for _, name := range allBuckets {
			if _, err := tx.CreateBucketIfNotExists(name); err != nil {
				return fmt.Errorf("store: create bucket %s: %w", name, err)
			}
		}
		meta := tx.Bucket(bucketMeta)
		if meta.Get(keyKeyCheck) == nil {
			if err := meta.Put(keyKeyCheck, s.seal.seal(keyCheckPlain, keyKeyCheck)); err != nil {
				return err
			}
		}
		var v uint64
		if raw := meta.Get(keySchema); raw != nil {
			v = binary.BigEndian.Uint64(raw)
		}
		if v > SchemaVersion {
			return fmt.Errorf("store: %s has schema version %d, newer than this MailDesk understands (%d): run a newer maildesk", s.path, v, SchemaVersion)
		}
		for ; v < SchemaVersion; v++ {
			if err := migrations[v](tx); err != nil {
				return fmt.Errorf("store: migrate schema %d to %d: %w", v, v+1, err)
			}
		}
		return meta.Put(keySchema, u64(SchemaVersion))
	})
}

// Close closes the database.
func (s *Store) Close() error { return s.db.Close() }

// Path is the database file.
func (s *Store) Path() string { return s.path }

// Ping checks that the database answers a read transaction (health, watchdog).
func (s *Store) Ping() error {
	return s.db.View(func(tx *bolt.Tx) error {
		if tx.Bucket(bucketMeta) == nil {
			return errors.New("store: meta bucket missing")
		}
		return nil
	})
}

// Backup writes a consistent copy of the whole database to w while the store
// stays in use, and returns the number of bytes written.
func (s *Store) Backup(w io.Writer) (int64, error) {
	var n int64
	err := s.db.View(func(tx *bolt.Tx) error {
		var err error
		n, err = tx.WriteTo(w)
		return err
	})
	if err != nil {
		return n, fmt.Errorf("store: backup: %w", err)
	}
	return n, nil
}

// Size is the database file's size in bytes.
func (s *Store) Size() int64 {
	var n int64
	_ = s.db.View(func(tx *bolt.Tx) error { n = tx.Size(); return nil })
	return n
}

func u64(v uint64) []byte {
	b := make([]byte, 8)
	binary.BigEndian.PutUint64(b, v)
	return b
}

func getJSON(b *bolt.Bucket, key []byte, v any) error {
	raw := b.Get(key)
	if raw == nil {
		return ErrNotFound
	}
	return json.Unmarshal(raw, v)
}

func putJSON(b *bolt.Bucket, key []byte, v any) error {
	raw, err := json.Marshal(v)
	if err != nil {
		return err
	}
	return b.Put(key, raw)
}

// sub returns the nested bucket for a mailbox under top, creating it when
// create is true; nil when it does not exist and create is false.
func sub(tx *bolt.Tx, top []byte, mailboxID string, create bool) (*bolt.Bucket, error) {
	b := tx.Bucket(top)
	if create {
		return b.CreateBucketIfNotExists([]byte(mailboxID))
	}
	return b.Bucket([]byte(mailboxID)), nil
}
