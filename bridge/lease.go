package bridge

import "context"

// Owner says which mailboxes this sidecar works: several sidecars on one
// PostgreSQL share the mailboxes through leases (store/pgstore.Leases);
// one sidecar (bbolt) holds them all (SoleOwner). The scheduler syncs and
// the pusher delivers only the mailboxes this node holds; the store they
// write through refuses commits for a mailbox whose lease was lost
// (store.ErrNotHolder), so a round running while the lease moved cannot
// commit.
type Owner interface {
	// Holds reports whether this node holds the mailbox's lease now, and
	// under which fencing epoch.
	Holds(mailboxID string) (epoch int64, ok bool)
	// OnChange registers fn, run (without blocking) after this node
	// gained or lost leases.
	OnChange(fn func())
}

type soleOwner struct{}

func (soleOwner) Holds(string) (int64, bool) { return 0, true }
func (soleOwner) OnChange(func())            {}

// SoleOwner is a single sidecar's Owner: it holds every mailbox.
var SoleOwner Owner = soleOwner{}

func holds(o Owner, mailboxID string) bool {
	if o == nil {
		return true
	}
	_, ok := o.Holds(mailboxID)
	return ok
}

// KickLocal makes a mailbox due now when this node holds it (a kick
// forwarded by another node); otherwise it does nothing: the kick's due
// time is in the store and the holder reads due times when it gains a
// lease.
func (s *Scheduler) KickLocal(mailboxID string) {
	if holds(s.cfg.Owner, mailboxID) {
		_ = s.Kick(mailboxID)
	}
}

// forward handles a Kick for a mailbox another node holds: the due time
// goes to the store (the holder reads it at its next rescan) and Forward
// tells the holder at once.
func (s *Scheduler) forward(mailboxID string) error {
	if err := s.st.SetDue(mailboxID, s.cfg.Now()); err != nil {
		return err
	}
	if s.cfg.Forward != nil {
		return s.cfg.Forward(mailboxID)
	}
	return nil
}

// leasesChanged runs when this node gained or lost leases: running rounds
// of mailboxes no longer held are cancelled, and the loop reads the due
// times again (gained mailboxes join the queue, lost ones leave it).
func (s *Scheduler) leasesChanged() {
	s.mu.Lock()
	for id, cancel := range s.rounds {
		if !holds(s.cfg.Owner, id) {
			cancel()
		}
	}
	s.mu.Unlock()
	s.rescanNow.Store(true)
	s.wake()
}

// roundContext is the context of one mailbox's round, cancelled when this
// node loses the mailbox's lease.
func (s *Scheduler) roundContext(ctx context.Context, id string) (context.Context, func()) {
	rctx, cancel := context.WithCancel(ctx)
	s.mu.Lock()
	s.rounds[id] = cancel
	s.mu.Unlock()
	return rctx, func() {
		s.mu.Lock()
		delete(s.rounds, id)
		s.mu.Unlock()
		cancel()
	}
}

// drop removes a mailbox from the queue (this node does not hold it).
func (q *dueQueue) drop(id string) {
	q.mu.Lock()
	defer q.mu.Unlock()
	delete(q.at, id) // its heap entries are stale now
}
