package bridge

import (
	"container/heap"
	"sync"
	"time"
)

// dueQueue is the scheduler's copy of the store's due times (the store
// stays the record; the scheduler is its only writer): a map for the
// current time of each mailbox and a min-heap to find the earliest without
// reading and sorting every due time on each pass of the loop (at 5,000
// mailboxes polled every minute that pass ran about 80 times a second).
// Heap entries whose time is no longer the map's are stale and skipped.
type dueQueue struct {
	mu sync.Mutex
	at map[string]time.Time
	h  dueHeap
}

type dueEntry struct {
	id string
	at time.Time
}

type dueHeap []dueEntry

func (h dueHeap) Len() int           { return len(h) }
func (h dueHeap) Less(i, j int) bool { return h[i].at.Before(h[j].at) }
func (h dueHeap) Swap(i, j int)      { h[i], h[j] = h[j], h[i] }
func (h *dueHeap) Push(x any)        { *h = append(*h, x.(dueEntry)) }
func (h *dueHeap) Pop() any {
	old := *h
	e := old[len(old)-1]
	*h = old[:len(old)-1]
	return e
}

// reset replaces the queue with the store's due times.
func (q *dueQueue) reset(due map[string]time.Time) {
	q.mu.Lock()
	defer q.mu.Unlock()
	q.resetLocked(due)
}

func (q *dueQueue) resetLocked(due map[string]time.Time) {
	at := make(map[string]time.Time, len(due))
	h := make(dueHeap, 0, len(due))
	for id, t := range due {
		at[id] = t
		h = append(h, dueEntry{id, t})
	}
	heap.Init(&h)
	q.at, q.h = at, h
}

// set records a mailbox's new due time (after the store has it).
func (q *dueQueue) set(id string, at time.Time) {
	q.mu.Lock()
	defer q.mu.Unlock()
	if q.at == nil {
		q.at = map[string]time.Time{}
	}
	if cur, ok := q.at[id]; ok && cur.Equal(at) {
		return
	}
	q.at[id] = at
	heap.Push(&q.h, dueEntry{id, at})
	// Stale entries pile up as due times move; rebuild when they outnumber
	// the live ones.
	if len(q.h) > 2*len(q.at)+64 {
		q.resetLocked(q.at)
	}
}

// requeue puts a mailbox taken by take back at its current due time.
func (q *dueQueue) requeue(id string) {
	q.mu.Lock()
	defer q.mu.Unlock()
	if at, ok := q.at[id]; ok {
		heap.Push(&q.h, dueEntry{id, at})
	}
}

// take removes and returns up to n mailboxes due by now, earliest first,
// leaving busy ones due; starved says due mailboxes were left for lack of
// room, next is the earliest due time after now (zero when none). The
// caller sets a new due time for each mailbox taken (or requeues it).
func (q *dueQueue) take(now time.Time, n int, busy func(string) bool) (ids []string, next time.Time, starved bool) {
	q.mu.Lock()
	defer q.mu.Unlock()
	var kept []dueEntry
	for len(q.h) > 0 {
		e := q.h[0]
		if cur, ok := q.at[e.id]; !ok || !cur.Equal(e.at) {
			heap.Pop(&q.h) // stale
			continue
		}
		if e.at.After(now) {
			next = e.at
			break
		}
		if busy(e.id) {
			kept = append(kept, heap.Pop(&q.h).(dueEntry))
			continue
		}
		if len(ids) >= n {
			starved = true
			break
		}
		heap.Pop(&q.h)
		ids = append(ids, e.id)
	}
	for _, e := range kept {
		heap.Push(&q.h, e)
	}
	return ids, next, starved
}
