package store

import (
	"bytes"
	"path/filepath"
	"testing"
	"time"
)

func TestSetDueMany(t *testing.T) {
	st, err := Open(filepath.Join(t.TempDir(), "db"), bytes.Repeat([]byte{1}, KeySize), Options{NoSync: true})
	if err != nil {
		t.Fatal(err)
	}
	defer st.Close()
	t0 := time.Unix(1_700_000_000, 5)
	if err := st.SetDue("a", t0); err != nil {
		t.Fatal(err)
	}
	if err := st.SetDueMany(map[string]time.Time{"a": t0.Add(time.Minute), "b": t0.Add(time.Hour)}); err != nil {
		t.Fatal(err)
	}
	if err := st.SetDueMany(nil); err != nil {
		t.Fatal(err)
	}
	due, err := st.DueTimes()
	if err != nil {
		t.Fatal(err)
	}
	if len(due) != 2 || !due["a"].Equal(t0.Add(time.Minute)) || !due["b"].Equal(t0.Add(time.Hour)) {
		t.Fatalf("due times %v", due)
	}
}
