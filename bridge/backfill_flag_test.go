package bridge_test

import (
	"testing"

	"github.com/maildesk/maildesk/bridge/odoo"
	"github.com/maildesk/maildesk/graphsync/m365sim"
)

// Mail from the backfill listing is marked backfill (Odoo notifies no one of
// it, however recent it is); mail that arrives after the mailbox was
// connected is not.
func TestBackfillItemsAreMarked(t *testing.T) {
	for _, mode := range []string{odoo.ModeLog, odoo.ModeGateway} {
		t.Run(mode, func(t *testing.T) {
			r := newRig(t, rigOpts{})
			upn := mode + "@" + r.sim.Domain()
			r.sim.GenerateMailbox(upn, 30, m365sim.GenOptions{MaxAttachment: 4 << 10, NoSamples: true})
			id := r.mailbox(upn, mode, 0)
			r.syncUntilDone(id, 0)
			for gid, it := range r.checkExactlyOnce(id, upn) {
				if !it.Options.Backfill {
					t.Fatalf("backfilled item %s has options.backfill false", gid)
				}
			}
			raw := "From: live@example.com\r\nTo: " + upn + "\r\nSubject: live\r\nMessage-ID: <live-1@example.com>\r\nContent-Type: text/plain\r\n\r\nx\r\n"
			live, err := r.sim.DeliverMIME(upn, "inbox", []byte(raw))
			if err != nil {
				t.Fatal(err)
			}
			r.syncUntilDone(id, 0)
			it, ok := r.checkExactlyOnce(id, upn)[live]
			if !ok {
				t.Fatalf("live message %s never reached the outbox", live)
			}
			if it.Options.Backfill {
				t.Fatalf("mail that arrived after connecting is marked backfill")
			}
		})
	}
}
