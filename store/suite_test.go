package store_test

import (
	"bytes"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/maildesk/maildesk/store"
	"github.com/maildesk/maildesk/store/storetest"
)

// The bbolt store passes the store suite; its raw dump is the file.
func TestBboltStoreSuite(t *testing.T) {
	storetest.Run(t, func(t *testing.T, now func() time.Time) (storetest.Store, func() []byte) {
		path := filepath.Join(t.TempDir(), "maildesk.db")
		s, err := store.Open(path, bytes.Repeat([]byte{1}, store.KeySize), store.Options{Now: now, NoSync: true})
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { s.Close() })
		return s, func() []byte {
			s.Close()
			raw, err := os.ReadFile(path)
			if err != nil {
				t.Fatal(err)
			}
			return raw
		}
	})
}
