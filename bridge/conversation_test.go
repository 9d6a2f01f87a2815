package bridge_test

import (
	"testing"

	"github.com/maildesk/maildesk/bridge/odoo"
	"github.com/maildesk/maildesk/graphsync/m365sim"
)

// Every ingest item names its Graph conversation, in log and gateway mode,
// so Odoo can put a reply without threading headers on its conversation's
// record (issue 12 item 4).
func TestItemsCarryConversationID(t *testing.T) {
	for _, mode := range []string{odoo.ModeLog, odoo.ModeGateway} {
		t.Run(mode, func(t *testing.T) {
			r := newRig(t, rigOpts{})
			upn := mode + "@" + r.sim.Domain()
			r.sim.GenerateMailbox(upn, 30, m365sim.GenOptions{MaxAttachment: 4 << 10, NoSamples: true})
			id := r.mailbox(upn, mode, 0)
			r.syncUntilDone(id, 0)
			items := r.checkExactlyOnce(id, upn)
			for _, f := range []string{"inbox", "sentitems"} {
				for _, m := range r.sim.Messages(upn, f) {
					if m.ConversationID == "" {
						t.Fatalf("simulator message %s has no conversation id", m.ID)
					}
					if got := items[m.ID].ConversationID; got != m.ConversationID {
						t.Fatalf("%s item %s: conversation_id %q, want %q", f, m.ID, got, m.ConversationID)
					}
				}
			}
		})
	}
}
