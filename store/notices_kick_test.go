package store

import (
	"bytes"
	"path/filepath"
	"sync/atomic"
	"testing"
)

// A queued notice (sign in again, ...) kicks the pusher like a queued
// outbox item; without it the notice waited for the pusher's 30 s idle timer.
func TestQueueNoticeRunsOnQueued(t *testing.T) {
	st, err := Open(filepath.Join(t.TempDir(), "db"), bytes.Repeat([]byte{1}, KeySize), Options{NoSync: true})
	if err != nil {
		t.Fatal(err)
	}
	defer st.Close()
	var kicks atomic.Int32
	st.OnQueued(func() { kicks.Add(1) })
	if err := st.QueueNotice(Notice{MailboxID: "m1", Kind: "reauth_required"}); err != nil {
		t.Fatal(err)
	}
	if kicks.Load() != 1 {
		t.Fatalf("%d kicks after queueing a notice, want 1", kicks.Load())
	}
}
