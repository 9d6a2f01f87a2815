package bridge

import (
	"context"
	"sync/atomic"
	"testing"
)

type flagOwner struct{ on atomic.Bool }

func (o *flagOwner) Holds(string) (int64, bool) { return 1, o.on.Load() }
func (o *flagOwner) OnChange(func())            {}

// The pusher delivers only the mailboxes this node holds: another node's
// items wait for their holder.
func TestPusherDeliversOnlyHeldMailboxes(t *testing.T) {
	e := newPushEnv(t, 5)
	owner := &flagOwner{}
	e.p.cfg.Owner = owner
	n, err := e.p.DeliverOnce(context.Background())
	if err != nil || n != 0 || len(e.odoo.Messages()) != 0 {
		t.Fatalf("delivered %d (Odoo has %d) for a mailbox another node holds: %v", n, len(e.odoo.Messages()), err)
	}
	owner.on.Store(true)
	if n, err := e.p.DeliverOnce(context.Background()); err != nil || n != 5 {
		t.Fatalf("delivered %d once held: %v", n, err)
	}
	if got := len(e.odoo.Messages()); got != 5 {
		t.Fatalf("Odoo has %d messages", got)
	}
}
