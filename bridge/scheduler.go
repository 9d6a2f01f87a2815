package bridge

import (
	"context"
	"errors"
	"math/rand/v2"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/rs/zerolog"

	"github.com/maildesk/maildesk/internal/recovery"
	"github.com/maildesk/maildesk/store"
)

// SchedulerConfig builds a Scheduler. Zero fields take defaults.
type SchedulerConfig struct {
	Store DueStore
	// Sync runs one round for a mailbox (Syncer.SyncMailbox).
	Sync func(ctx context.Context, mailboxID string) (RoundResult, error)
	// Workers bounds how many mailboxes sync at once (default 8).
	Workers int
	// PollInterval overrides settings.Defaults.PollIntervalS (tests).
	PollInterval time.Duration
	// Covered, when set, says a mailbox has live change notifications: it
	// then polls only as a safety net, 5× less often (at most every 15 min).
	Covered func(mailboxID string) bool
	// BackoffBase and BackoffMax shape the retry delay after failed rounds
	// (default 30 s doubling to 30 min, jittered).
	BackoffBase, BackoffMax time.Duration
	Recovery                *recovery.Group
	Log                     zerolog.Logger
	Now                     func() time.Time

	// Owner says which mailboxes this node syncs (SoleOwner when nil);
	// Forward tells the holder of a mailbox kicked here (lease.go).
	Owner   Owner
	Forward func(mailboxID string) error
}

// Scheduler decides when each mailbox syncs. One loop: a select over the
// context, a kick channel (capacity 1) and a timer set to the next due
// time kept in the store. At most one round per mailbox at a time (the busy
// set), up to Workers mailboxes in parallel. The next due time is in the
// store BEFORE each attempt, so a crash never causes a retry storm: written
// at launch, or ahead for every mailbox due within a few seconds in one
// transaction (writeAhead), which spares an idle fleet a disk sync per
// launch.
type Scheduler struct {
	cfg  SchedulerConfig
	st   DueStore
	kick chan struct{}
	wg   sync.WaitGroup

	// dueMu orders the due-time writes with the queue's record of them
	// (dueQueue.stored): a store write and its queue update are one step.
	dueMu   sync.Mutex
	aheadAt time.Time // when the loop next writes due times ahead

	mu       sync.Mutex
	busy     map[string]bool
	again    map[string]bool // kicked while busy
	starved  bool            // due mailboxes waited for a worker
	nextAt   time.Time       // when the loop looks again
	interval time.Duration
	lastScan time.Time
	due      dueQueue     // the store's due times, earliest first
	lastLoop atomic.Int64 // unix nanos (wall clock) of the loop's last pass

	rounds    map[string]func() // running rounds' cancels (lease.go)
	rescanNow atomic.Bool       // leases changed: read due times again

	// Rounds run on Workers long-lived goroutines, started by the first
	// launch and stopped when Run returns: a goroutine per round grew a
	// fresh stack through the Graph SDK's middlewares every time (6 % of
	// an idle fleet's CPU).
	jobs        chan func()
	workersOnce sync.Once
	stopOnce    sync.Once
}

func (s *Scheduler) startWorkers() {
	s.workersOnce.Do(func() {
		s.jobs = make(chan func(), s.cfg.Workers)
		for range s.cfg.Workers {
			s.cfg.Recovery.Go("sync worker", func() {
				for job := range s.jobs {
					job()
				}
			})
		}
	})
}

// stopWorkers ends the workers once the running rounds are done.
func (s *Scheduler) stopWorkers() {
	s.stopOnce.Do(func() {
		s.workersOnce.Do(func() {}) // never started: nothing to stop
		if s.jobs != nil {
			close(s.jobs)
		}
	})
}

// setDue writes a mailbox's next sync time to the store, then to the queue.
func (s *Scheduler) setDue(id string, at time.Time) error {
	s.dueMu.Lock()
	defer s.dueMu.Unlock()
	if err := s.st.SetDue(id, at); err != nil {
		return err
	}
	s.due.set(id, at)
	return nil
}

// NewScheduler checks cfg and builds a Scheduler; Run starts it.
func NewScheduler(cfg SchedulerConfig) (*Scheduler, error) {
	if cfg.Store == nil || cfg.Sync == nil {
		return nil, errors.New("bridge: scheduler needs a store and a sync func")
	}
	if cfg.Workers <= 0 {
		cfg.Workers = 8
	}
	if cfg.BackoffBase <= 0 {
		cfg.BackoffBase = 30 * time.Second
	}
	if cfg.BackoffMax <= 0 {
		cfg.BackoffMax = 30 * time.Minute
	}
	if cfg.Now == nil {
		cfg.Now = time.Now
	}
	if cfg.Recovery == nil {
		cfg.Recovery = recovery.New(cfg.Log, nil)
	}
	s := &Scheduler{cfg: cfg, st: cfg.Store, kick: make(chan struct{}, 1), busy: map[string]bool{}, again: map[string]bool{}, rounds: map[string]func(){}}
	if cfg.Owner != nil {
		cfg.Owner.OnChange(s.leasesChanged)
	}
	return s, nil
}

// Kick makes a mailbox due now (sync_now, a change notification, a fresh
// connection) and wakes the loop. An empty id only wakes the loop.
func (s *Scheduler) Kick(mailboxID string) error {
	if mailboxID != "" && !holds(s.cfg.Owner, mailboxID) {
		return s.forward(mailboxID)
	}
	if mailboxID != "" {
		s.mu.Lock()
		if s.busy[mailboxID] {
			// The running round may have read Graph before the change:
			// run again when it ends.
			s.again[mailboxID] = true
		}
		s.mu.Unlock()
		if err := s.setDue(mailboxID, s.cfg.Now()); err != nil {
			return err
		}
	}
	s.wake()
	return nil
}

func (s *Scheduler) wake() {
	select {
	case s.kick <- struct{}{}:
	default:
	}
}

// Busy reports whether a mailbox's round is under way.
func (s *Scheduler) Busy(mailboxID string) bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.busy[mailboxID]
}

// LastLoop is when the loop last made a pass (zero before Run). The loop
// passes at least every 15 s (rescanEvery), so an older pass means it is
// stuck.
func (s *Scheduler) LastLoop() time.Time {
	if n := s.lastLoop.Load(); n != 0 {
		return time.Unix(0, n)
	}
	return time.Time{}
}

// Run loops until ctx is cancelled, then waits for running rounds (they see
// the same ctx) and returns nil.
func (s *Scheduler) Run(ctx context.Context) error {
	s.recoverSyncing()
	s.rescan()
	timer := time.NewTimer(0)
	defer timer.Stop()
	for {
		select {
		case <-ctx.Done():
			s.wg.Wait()
			s.stopWorkers()
			return nil
		case <-s.kick:
		case <-timer.C:
		}
		s.lastLoop.Store(time.Now().UnixNano())
		if s.rescanNow.Swap(false) {
			s.recoverSyncing()
			s.rescan()
		} else if s.cfg.Now().Sub(s.lastScan) >= s.rescanEvery() {
			s.rescan()
		}
		if now := s.cfg.Now(); !now.Before(s.aheadAt) {
			s.aheadAt = now.Add(s.writeAhead(now))
		}
		next := s.launch(ctx)
		if scan := s.lastScan.Add(s.rescanEvery()); scan.Before(next) {
			next = scan
		}
		if s.aheadAt.Before(next) {
			next = s.aheadAt
		}
		s.mu.Lock()
		s.nextAt = next
		s.mu.Unlock()
		d := max(next.Sub(s.cfg.Now()), 5*time.Millisecond)
		if !timer.Stop() {
			select {
			case <-timer.C:
			default:
			}
		}
		timer.Reset(d)
	}
}

// recoverSyncing puts mailboxes a crash left in "syncing" back to connected.
func (s *Scheduler) recoverSyncing() {
	states, err := s.st.MailboxStates()
	if err != nil {
		s.cfg.Log.Error().Err(err).Msg("scheduler: list mailboxes")
		return
	}
	for id, state := range states {
		if state == StateSyncing && !s.Busy(id) && holds(s.cfg.Owner, id) {
			_, _ = updateStatus(s.st, id, func(m *store.MailboxStatus) error {
				if m.State == StateSyncing {
					m.State = StateConnected
				}
				return nil
			})
		}
	}
}

// rescan gives every syncable mailbox a due time when it has none (or one
// parked far ahead while it was not syncable), and refreshes the interval.
func (s *Scheduler) rescan() {
	now := s.cfg.Now()
	s.lastScan = now
	iv := s.cfg.PollInterval
	if iv <= 0 {
		iv = 60 * time.Second
		if st, err := s.st.Settings(); err == nil && st.Defaults.PollIntervalS > 0 {
			iv = time.Duration(st.Defaults.PollIntervalS) * time.Second
		}
	}
	s.mu.Lock()
	s.interval = iv
	s.mu.Unlock()
	s.dueMu.Lock()
	defer s.dueMu.Unlock()
	// Only the states are read (not every record in full): this runs
	// every 15 s whatever the fleet's size.
	states, err := s.st.MailboxStates()
	if err != nil {
		s.cfg.Log.Error().Err(err).Msg("scheduler: list mailboxes")
		return
	}
	due, err := s.st.DueTimes()
	if err != nil {
		s.cfg.Log.Error().Err(err).Msg("scheduler: due times")
		return
	}
	missing := map[string]time.Time{}
	for id, state := range states {
		if !Syncable(state) || !holds(s.cfg.Owner, id) {
			continue
		}
		if t, ok := due[id]; !ok || t.After(now.Add(s.intervalFor(id, false)+s.cfg.BackoffMax)) {
			missing[id] = now
		}
	}
	// One transaction for all of them (every mailbox at the first start).
	if err := s.st.SetDueMany(missing); err != nil {
		s.cfg.Log.Error().Err(err).Msg("scheduler: set due")
	} else {
		for id, t := range missing {
			due[id] = t
		}
	}
	// The store is the record: the queue starts again from it, with the
	// mailboxes that still exist (deleted ones leave it here). Where the
	// store holds what this scheduler wrote, the queue's time stands: the
	// store may be ahead of it (writeAhead). A time someone else wrote (a
	// kick forwarded by another node) replaces it.
	live := make(map[string]time.Time, len(states))
	for id := range states {
		t, ok := due[id]
		if !ok || !holds(s.cfg.Owner, id) {
			continue
		}
		live[id] = s.due.current(id, t)
	}
	s.due.reset(live, due)
}

// aheadHorizon is how far ahead writeAhead covers due mailboxes: a
// twelfth of the interval, at most 5 s (at 5,000 mailboxes polled every
// minute, about 400 mailboxes in one transaction every 2.5 s instead of a
// transaction per launch). Zero (not written ahead) below a 12 s interval.
func (s *Scheduler) aheadHorizon() time.Duration {
	h := min(s.pollInterval()/12, 5*time.Second)
	if h < time.Second {
		return 0
	}
	return h
}

// writeAhead writes, in one transaction, the due time after the coming
// attempt of every mailbox due within the horizon (its due time plus its
// interval), so their launches need no write of their own. A crash before
// such a launch costs that mailbox one poll (it waits for the time written
// ahead), never a second attempt. It returns when to run again.
func (s *Scheduler) writeAhead(now time.Time) time.Duration {
	h := s.aheadHorizon()
	if h <= 0 {
		return s.rescanEvery()
	}
	s.dueMu.Lock()
	defer s.dueMu.Unlock()
	plan := map[string]time.Time{}
	for _, e := range s.due.within(now.Add(h)) {
		if s.Busy(e.id) || !holds(s.cfg.Owner, e.id) {
			continue
		}
		iv := s.intervalFor(e.id, false)
		if s.due.storedFrom(e.id, e.at.Add(iv/2)) {
			continue // written ahead already
		}
		plan[e.id] = e.at.Add(iv)
	}
	if err := s.st.SetDueMany(plan); err != nil {
		s.cfg.Log.Error().Err(err).Msg("scheduler: write due times ahead")
		return h / 2
	}
	s.due.markStored(plan)
	return h / 2
}

// rescanEvery is how often mailboxes are checked for a missing due time
// (a mailbox connected without a Kick is picked up within it).
func (s *Scheduler) rescanEvery() time.Duration {
	return min(s.pollInterval(), 15*time.Second)
}

func (s *Scheduler) pollInterval() time.Duration {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.interval <= 0 {
		return 60 * time.Second
	}
	return s.interval
}

// intervalFor is the adaptive poll interval: the base interval; half of it
// right after a round that brought new mail (mail often comes in bursts);
// 5× (capped at 15 min) when change notifications cover the mailbox.
func (s *Scheduler) intervalFor(mailboxID string, gotMail bool) time.Duration {
	iv := s.pollInterval()
	if s.cfg.Covered != nil && s.cfg.Covered(mailboxID) {
		return min(5*iv, 15*time.Minute)
	}
	if gotMail {
		return max(iv/2, time.Second)
	}
	return iv
}

// launch starts rounds for due mailboxes (as many as workers allow) and
// returns when the loop should look again.
func (s *Scheduler) launch(ctx context.Context) time.Time {
	now := s.cfg.Now()
	next := now.Add(s.pollInterval())
	s.mu.Lock()
	running := len(s.busy)
	s.mu.Unlock()
	// Mailboxes due within a hundredth of the interval (at most 250 ms) go
	// now, together: one pass and one store write for several of them.
	window := min(s.pollInterval()/100, 250*time.Millisecond)
	s.dueMu.Lock()
	defer s.dueMu.Unlock()
	ids, later, starved := s.due.take(now.Add(window), max(s.cfg.Workers-running, 0), s.Busy)
	if !later.IsZero() && later.Before(next) {
		next = later
	}
	if starved {
		// A finishing worker kicks the loop.
		s.mu.Lock()
		s.starved = true
		s.mu.Unlock()
	}
	// The next attempt times are written before the attempts, unless
	// writeAhead wrote them.
	due := make(map[string]time.Time, len(ids))
	write := make(map[string]time.Time, len(ids))
	held := ids[:0]
	for _, id := range ids {
		if !holds(s.cfg.Owner, id) {
			s.due.drop(id) // lost meanwhile
			continue
		}
		held = append(held, id)
	}
	ids = held
	for _, id := range ids {
		iv := s.intervalFor(id, false)
		due[id] = now.Add(iv)
		if !s.due.storedFrom(id, now.Add(iv/2)) {
			write[id] = due[id]
		}
	}
	if err := s.st.SetDueMany(write); err != nil {
		s.cfg.Log.Error().Err(err).Msg("scheduler: set due")
		for _, id := range ids {
			s.due.requeue(id)
		}
		return now.Add(time.Second)
	}
	for _, id := range ids {
		if _, ok := write[id]; ok {
			s.due.set(id, due[id])
		} else {
			s.due.setLocal(id, due[id])
		}
		s.mu.Lock()
		s.busy[id] = true
		s.mu.Unlock()
		s.wg.Add(1)
		rctx, endRound := s.roundContext(ctx, id)
		s.startWorkers()
		// Never blocks: a job counts as busy from here, and launch takes
		// at most Workers minus the busy ones.
		s.jobs <- func() {
			defer s.wg.Done()
			defer endRound()
			defer func() {
				s.mu.Lock()
				delete(s.busy, id)
				// Wake the loop only when due mailboxes wait for a worker
				// (or this one must run again): an idle fleet's rounds then
				// do not each cost a pass over every due time.
				wake := s.starved || s.again[id]
				s.starved = false
				s.mu.Unlock()
				if wake {
					s.wake()
				}
			}()
			defer s.cfg.Recovery.Recover("sync " + id) // the worker goes on
			s.runOne(rctx, id)
		}
	}
	return next
}

func (s *Scheduler) runOne(ctx context.Context, id string) {
	res, err := s.cfg.Sync(ctx, id)
	if ctx.Err() != nil || !holds(s.cfg.Owner, id) {
		return // stopping, or the lease moved: the holder decides
	}
	now := s.cfg.Now()
	var at time.Time
	switch {
	case res.Skipped:
		// Not syncable (disconnected, reauth...): park it; Kick or the
		// rescan brings it back once it is connected again.
		at = now.Add(24 * time.Hour)
	case err != nil:
		failures := 1
		if m, merr := s.st.Mailbox(id); merr == nil && m.Failures > 0 {
			failures = m.Failures
		}
		at = now.Add(s.backoff(failures))
	case res.More:
		at = now
	default:
		if res.Queued == 0 {
			// The due time written before the attempt stands (it differs
			// only by the round's duration): save a write.
			at = time.Time{}
		} else {
			at = now.Add(s.intervalFor(id, true))
		}
	}
	s.mu.Lock()
	if s.again[id] {
		delete(s.again, id)
		if !res.Skipped && err == nil {
			at = now
		}
	}
	s.mu.Unlock()
	if at.IsZero() {
		return
	}
	if serr := s.setDue(id, at); serr != nil {
		s.cfg.Log.Error().Err(serr).Str("mailbox", id).Msg("scheduler: set due")
	}
	s.mu.Lock()
	early := at.Before(s.nextAt)
	s.mu.Unlock()
	if early {
		s.wake() // due before the loop would look again
	}
}

// backoff is the jittered, capped delay after failures failed rounds in a
// row: base·2^(n-1) capped at max, drawn uniformly from its upper half.
func (s *Scheduler) backoff(failures int) time.Duration {
	return Backoff(s.cfg.BackoffBase, s.cfg.BackoffMax, failures)
}

// Backoff is base·2^(n-1) capped at max, drawn uniformly from its upper half.
func Backoff(base, maxD time.Duration, n int) time.Duration {
	if n < 1 {
		n = 1
	}
	d := base << min(n-1, 30)
	if d > maxD || d <= 0 {
		d = maxD
	}
	return d/2 + time.Duration(rand.Int64N(int64(d/2)+1))
}

// SyncControl serves mailbox.sync_now and mailbox.backfill.
type SyncControl struct {
	st    Store
	boxes *Mailboxes
	sched *Scheduler
	now   func() time.Time
}

// NewSyncControl builds the sync_now/backfill service.
func NewSyncControl(st Store, boxes *Mailboxes, sched *Scheduler) *SyncControl {
	return &SyncControl{st: st, boxes: boxes, sched: sched, now: time.Now}
}

// Queued is the answer of sync_now and backfill.
type Queued struct {
	Queued bool `json:"queued"`
}

// BackfillParams are mailbox.backfill's params: since is a date
// (YYYY-MM-DD) or an RFC 3339 time; "" or "all" means all mail.
type BackfillParams struct {
	MailboxID string `json:"mailbox_id"`
	Since     string `json:"since"`
}

func (c *SyncControl) syncable(a Actor, id string) (store.Mailbox, error) {
	m, err := c.boxes.Load(a, id)
	if err != nil {
		return m, err
	}
	if !Syncable(m.State) {
		return m, Errorf(KindUser, "not_connected", "Mailbox %s is %s, not connected: connect it first", m.Email, m.State)
	}
	return m, nil
}

// SyncNow makes the mailbox due at once.
func (c *SyncControl) SyncNow(a Actor, p MailboxRef) (Queued, error) {
	m, err := c.syncable(a, p.MailboxID)
	if err != nil {
		return Queued{}, err
	}
	if err := c.sched.Kick(m.ID); err != nil {
		return Queued{}, Internal(err)
	}
	return Queued{Queued: true}, nil
}

// Backfill widens the backfill window to since and queues a round. Mail
// already in the index is not queued again; the listing restarts from the
// newest message so progress counts the whole new window. The restart is
// recorded as the mailbox's backfill request, which the syncer applies at
// the start of its next round (a round running now finishes as it was).
func (c *SyncControl) Backfill(a Actor, p BackfillParams) (Queued, error) {
	m, err := c.syncable(a, p.MailboxID)
	if err != nil {
		return Queued{}, err
	}
	var since time.Time
	switch s := strings.TrimSpace(p.Since); s {
	case "", "all":
	default:
		t, err := time.Parse(time.RFC3339, s)
		if err != nil {
			t, err = time.Parse("2006-01-02", s)
		}
		if err != nil {
			return Queued{}, Invalid("since must be a date (YYYY-MM-DD), an RFC 3339 time or \"all\", not %q", p.Since)
		}
		if t.After(c.now()) {
			return Queued{}, Invalid("since %q is in the future", p.Since)
		}
		since = t.UTC()
	}
	days := 0
	if !since.IsZero() {
		days = int(c.now().Sub(since).Hours()/24) + 1
	}
	// The window is config, widened first; the restart of the listing is
	// a status request the syncer applies at the start of its next round:
	// only the syncer writes cursors, so a round running now cannot undo it.
	if m.BackfillDays != 0 && (days == 0 || days > m.BackfillDays) {
		if _, err := c.st.UpdateMailboxConfig(m.ID, func(mb *store.MailboxConfig, _ store.MailboxStatus) (*store.AuditEntry, error) {
			if mb.BackfillDays != 0 && (days == 0 || days > mb.BackfillDays) {
				mb.BackfillDays = days
			}
			return nil, nil
		}); err != nil {
			return Queued{}, Internal(err)
		}
	}
	if _, err := updateStatus(c.st, m.ID, func(mb *store.MailboxStatus) error {
		req := store.BackfillRequest{Since: since, At: c.now().UTC()}
		if old := mb.BackfillRequest; old != nil {
			req.Seq = old.Seq
			if old.Since.IsZero() || (!since.IsZero() && old.Since.Before(since)) {
				req.Since = old.Since // a pending request was wider
			}
		}
		req.Seq++
		mb.BackfillRequest = &req
		return nil
	}); err != nil {
		return Queued{}, Internal(err)
	}
	if err := c.sched.Kick(m.ID); err != nil {
		return Queued{}, Internal(err)
	}
	return Queued{Queued: true}, nil
}
