package store

import "errors"

// ErrNotHolder is what a store that fences its writes (PostgreSQL with
// leases, several sidecars on one database) answers to a commit for a
// mailbox whose lease this node no longer holds, or holds under another
// epoch: another node works the mailbox now, and nothing was written.
var ErrNotHolder = errors.New("store: this node does not hold the mailbox's lease (another node works it now); nothing was written")
