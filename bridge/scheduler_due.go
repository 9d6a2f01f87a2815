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
//
// stored is what the store holds for each mailbox, as the scheduler last
// wrote or read it. It equals at, except for mailboxes whose next due time
// was written ahead (Scheduler.writeAhead): there the store already holds
// the time after the coming attempt, so launching it needs no write.
type dueQueue struct {
	mu     sync.Mutex
	at     map[string]time.Time
	stored map[string]time.Time
	h      dueHeap
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

// reset replaces the queue with due, and what the store holds with stored
// (nil: the same as due).
func (q *dueQueue) reset(due, stored map[string]time.Time) {
	q.mu.Lock()
	defer q.mu.Unlock()
	if stored == nil {
		stored = due
	}
	q.stored = make(map[string]time.Time, len(stored))
	for id, t := range stored {
		q.stored[id] = t
	}
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
	if q.stored == nil {
		q.stored = map[string]time.Time{}
	}
	q.stored[id] = at
	q.setLocked(id, at)
}

// setLocal records a mailbox's new due time that the store does not hold:
// it holds a later one, written ahead.
func (q *dueQueue) setLocal(id string, at time.Time) {
	q.mu.Lock()
	defer q.mu.Unlock()
	q.setLocked(id, at)
}

// markStored records times the store now holds (written ahead).
func (q *dueQueue) markStored(due map[string]time.Time) {
	q.mu.Lock()
	defer q.mu.Unlock()
	if q.stored == nil {
		q.stored = map[string]time.Time{}
	}
	for id, t := range due {
		q.stored[id] = t
	}
}

// current is a mailbox's due time for a rescan that read stored from the
// store: the queue's time where the store holds what this scheduler wrote
// (it may be ahead of the queue: writeAhead), else the store's (someone
// else wrote it, or the mailbox is new to the queue).
func (q *dueQueue) current(id string, stored time.Time) time.Time {
	q.mu.Lock()
	defer q.mu.Unlock()
	if st, ok := q.stored[id]; ok && st.Equal(stored) {
		if at, ok := q.at[id]; ok {
			return at
		}
	}
	return stored
}

// queuedAt is a mailbox's due time in the queue.
func (q *dueQueue) queuedAt(id string) (time.Time, bool) {
	q.mu.Lock()
	defer q.mu.Unlock()
	t, ok := q.at[id]
	return t, ok
}

// storedFrom reports whether the store holds for id a due time at t or
// later (written ahead: an attempt before t is recorded already).
func (q *dueQueue) storedFrom(id string, t time.Time) bool {
	q.mu.Lock()
	defer q.mu.Unlock()
	st, known := q.stored[id]
	return known && !st.Before(t)
}

// within returns the mailboxes due by limit, without taking them: a walk
// of the heap that stops at entries due later (their subtrees are later
// still), so it costs about the number of entries returned.
func (q *dueQueue) within(limit time.Time) []dueEntry {
	q.mu.Lock()
	defer q.mu.Unlock()
	var out []dueEntry
	stack := []int{0}
	for len(stack) > 0 {
		i := stack[len(stack)-1]
		stack = stack[:len(stack)-1]
		if i >= len(q.h) || q.h[i].at.After(limit) {
			continue
		}
		if e := q.h[i]; q.valid(e) {
			out = append(out, e)
		}
		stack = append(stack, 2*i+1, 2*i+2)
	}
	return out
}

// valid says whether a heap entry is the mailbox's current due time.
func (q *dueQueue) valid(e dueEntry) bool {
	cur, ok := q.at[e.id]
	return ok && cur.Equal(e.at)
}

func (q *dueQueue) setLocked(id string, at time.Time) {
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
		if !q.valid(e) {
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
