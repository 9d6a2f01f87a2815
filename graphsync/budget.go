package graphsync

import (
	"context"
	"fmt"
	"sync"
	"time"
)

// BudgetOptions are Graph's per app+mailbox limits (FACTS.md "throttling").
type BudgetOptions struct {
	// MaxInFlight is how many requests may be under way at once (default 4).
	MaxInFlight int
	// Limit requests per Window (default 10,000 per 10 minutes).
	Limit  int
	Window time.Duration
	// Buckets splits the window for counting (default 120). A request is
	// counted until the end of its bucket plus Window, so the budget never
	// admits more than Limit in any exact sliding window.
	Buckets int
	// Now replaces the clock in tests.
	Now func() time.Time
}

func (o *BudgetOptions) defaults() {
	if o.MaxInFlight <= 0 {
		o.MaxInFlight = 4
	}
	if o.Limit <= 0 {
		o.Limit = 10000
	}
	if o.Window <= 0 {
		o.Window = 10 * time.Minute
	}
	if o.Buckets <= 0 {
		o.Buckets = 120
	}
	if o.Now == nil {
		o.Now = time.Now
	}
}

// Budget keeps one mailbox within Graph's limits: at most MaxInFlight
// requests at once, at most Limit requests in any Window, and no request at
// all while a Retry-After pause runs. Every inner request of a $batch costs
// one unit. Safe for concurrent use.
type Budget struct {
	opts  BudgetOptions
	width time.Duration
	sem   chan struct{}
	// taking is a lock (capacity 1) held while taking slots.
	taking chan struct{}

	mu          sync.Mutex
	counts      []int32 // ring of len Buckets+1
	stamps      []int64 // absolute bucket number of each slot
	pausedUntil time.Time
	used        int64 // requests admitted in total
}

// NewBudget returns a budget with opts (zero fields take Graph's limits).
func NewBudget(opts BudgetOptions) *Budget {
	opts.defaults()
	return &Budget{
		opts:   opts,
		width:  opts.Window / time.Duration(opts.Buckets),
		sem:    make(chan struct{}, opts.MaxInFlight),
		taking: make(chan struct{}, 1),
		counts: make([]int32, opts.Buckets+1),
		stamps: make([]int64, opts.Buckets+1),
	}
}

// Used is how many request units were admitted so far.
func (b *Budget) Used() int64 {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.used
}

// InFlight is how many slots are taken.
func (b *Budget) InFlight() int { return len(b.sem) }

// Pause stops every request of the mailbox until t (Retry-After). A later
// pause extends an earlier one; an earlier one never shortens it.
func (b *Budget) Pause(until time.Time) {
	b.mu.Lock()
	if until.After(b.pausedUntil) {
		b.pausedUntil = until
	}
	b.mu.Unlock()
}

// PausedUntil is the end of the current pause (zero or past: none).
func (b *Budget) PausedUntil() time.Time {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.pausedUntil
}

// Acquire waits until the mailbox may send a request costing cost units
// that occupies slots concurrency slots, then reserves them. release gives
// the slots back (the units stay counted for the window).
func (b *Budget) Acquire(ctx context.Context, cost, slots int) (release func(), err error) {
	if cost < 1 {
		cost = 1
	}
	if cost > b.opts.Limit {
		return nil, fmt.Errorf("graphsync: budget: a request costing %d exceeds the limit of %d", cost, b.opts.Limit)
	}
	if slots < 1 {
		slots = 1
	}
	if slots > b.opts.MaxInFlight {
		slots = b.opts.MaxInFlight
	}
	// Pause and window first, without holding slots, so a paused mailbox
	// does not pin its slots.
	if err := b.waitCapacity(ctx, cost); err != nil {
		return nil, err
	}
	// Slots are taken under a lock, so two requests that each need
	// several slots cannot each hold part of them and wait forever.
	select {
	case b.taking <- struct{}{}:
	case <-ctx.Done():
		return nil, ctx.Err()
	}
	got := 0
	for got < slots {
		select {
		case b.sem <- struct{}{}:
			got++
		case <-ctx.Done():
			for ; got > 0; got-- {
				<-b.sem
			}
			<-b.taking
			return nil, ctx.Err()
		}
	}
	<-b.taking
	// A pause may have started while we waited for a slot: honour it.
	for {
		wait, ok := b.reserve(cost)
		if ok {
			break
		}
		t := time.NewTimer(wait)
		select {
		case <-t.C:
		case <-ctx.Done():
			t.Stop()
			for ; got > 0; got-- {
				<-b.sem
			}
			return nil, ctx.Err()
		}
	}
	var once sync.Once
	return func() {
		once.Do(func() {
			for i := 0; i < slots; i++ {
				<-b.sem
			}
		})
	}, nil
}

// waitCapacity blocks until a reserve of cost would succeed now (without
// reserving).
func (b *Budget) waitCapacity(ctx context.Context, cost int) error {
	for {
		b.mu.Lock()
		wait := b.waitLocked(cost)
		b.mu.Unlock()
		if wait <= 0 {
			return nil
		}
		t := time.NewTimer(wait)
		select {
		case <-t.C:
		case <-ctx.Done():
			t.Stop()
			return ctx.Err()
		}
	}
}

// reserve counts cost units now when the window and pause allow it;
// otherwise it says how long to wait.
func (b *Budget) reserve(cost int) (time.Duration, bool) {
	b.mu.Lock()
	defer b.mu.Unlock()
	if w := b.waitLocked(cost); w > 0 {
		return w, false
	}
	now := b.opts.Now()
	abs := now.UnixNano() / int64(b.width)
	i := int(abs % int64(len(b.counts)))
	if b.stamps[i] != abs {
		b.stamps[i], b.counts[i] = abs, 0
	}
	b.counts[i] += int32(cost)
	b.used += int64(cost)
	return 0, true
}

// waitLocked is how long until cost units fit (0: now).
func (b *Budget) waitLocked(cost int) time.Duration {
	now := b.opts.Now()
	if d := b.pausedUntil.Sub(now); d > 0 {
		return d
	}
	abs := now.UnixNano() / int64(b.width)
	n := int64(len(b.counts)) // Buckets+1 slots: the current one and Buckets before it
	total := 0
	for k := range b.counts {
		if abs-b.stamps[k] < n {
			total += int(b.counts[k])
		}
	}
	if total+cost <= b.opts.Limit {
		return 0
	}
	// Free units bucket by bucket, oldest first, until cost fits.
	need := total + cost - b.opts.Limit
	for age := n - 1; age >= 0; age-- {
		st := abs - age
		k := int(st % n)
		if b.stamps[k] != st {
			continue
		}
		need -= int(b.counts[k])
		if need <= 0 {
			// Bucket st stops counting at the start of bucket st+n.
			end := time.Unix(0, (st+n)*int64(b.width))
			if d := end.Sub(now); d > 0 {
				return d
			}
			return time.Millisecond
		}
	}
	return b.width
}
