package pgstore

import "time"

// LocalDeadline is until when this node counts its leases by its own
// clock (the start of its last good renewal plus 2/3 of the TTL), for the
// tests: they compare it with the database's expiry instead of timing when
// a test goroutine wakes up.
func (l *Leases) LocalDeadline() time.Time {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.deadline
}
