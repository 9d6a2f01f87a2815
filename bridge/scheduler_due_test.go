package bridge

import (
	"fmt"
	"reflect"
	"testing"
	"time"
)

// The due queue hands out due mailboxes earliest first, at most n, leaves
// busy ones due, forgets superseded times, and says when to look again.
func TestDueQueueTake(t *testing.T) {
	t0 := time.Unix(1_700_000_000, 0)
	var q dueQueue
	q.reset(map[string]time.Time{"a": t0.Add(3 * time.Second), "b": t0.Add(time.Second), "c": t0.Add(2 * time.Second), "d": t0.Add(time.Minute)}, nil)
	q.set("a", t0) // moved earlier (a Kick): its old entry is stale
	busy := map[string]bool{"b": true}
	ids, next, starved := q.take(t0.Add(5*time.Second), 1, func(id string) bool { return busy[id] })
	if !reflect.DeepEqual(ids, []string{"a"}) || !starved || !next.IsZero() {
		t.Fatalf("take 1: %v next %v starved %v", ids, next, starved)
	}
	ids, next, starved = q.take(t0.Add(5*time.Second), 8, func(id string) bool { return busy[id] })
	if !reflect.DeepEqual(ids, []string{"c"}) || starved || !next.Equal(t0.Add(time.Minute)) {
		t.Fatalf("take 2: %v next %v starved %v", ids, next, starved)
	}
	// b was busy: still due once it is not.
	delete(busy, "b")
	if ids, _, _ = q.take(t0.Add(5*time.Second), 8, func(string) bool { return false }); !reflect.DeepEqual(ids, []string{"b"}) {
		t.Fatalf("take 3: %v", ids)
	}
	// A taken mailbox comes back with its new time; a requeued one at its old.
	q.set("a", t0.Add(30*time.Second))
	q.requeue("c")
	if ids, next, _ = q.take(t0.Add(40*time.Second), 8, func(string) bool { return false }); !reflect.DeepEqual(ids, []string{"c", "a"}) || !next.Equal(t0.Add(time.Minute)) {
		t.Fatalf("take 4: %v next %v", ids, next)
	}
}

// Moving due times again and again does not grow the heap without bound.
func TestDueQueueStaleEntriesBounded(t *testing.T) {
	var q dueQueue
	t0 := time.Unix(1_700_000_000, 0)
	for i := 0; i < 10; i++ {
		q.set(fmt.Sprint("m", i), t0)
	}
	for k := 1; k < 10000; k++ {
		q.set(fmt.Sprint("m", k%10), t0.Add(time.Duration(k)*time.Second))
	}
	if len(q.h) > 2*len(q.at)+64 {
		t.Fatalf("%d heap entries for %d mailboxes", len(q.h), len(q.at))
	}
}
