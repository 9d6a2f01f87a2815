package bridge_test

import (
	"testing"

	"github.com/maildesk/maildesk/bridge/odoo"
	"github.com/maildesk/maildesk/graphsync/m365sim"
)

// In log mode the backfill listing carries the attachments
// ($expand=attachments): no $batch request per message with attachments,
// so a backfill stays within Graph's 10,000 requests per 10 minutes at
// 50 msg/s (0.33 requests per message at most; a request each made 0.37).
func TestBackfillAttachmentsRideInPages(t *testing.T) {
	r := newRig(t, rigOpts{})
	upn := "expand@" + r.sim.Domain()
	r.sim.GenerateMailbox(upn, 300, m365sim.GenOptions{MaxAttachment: 16 << 10, NoSamples: true})
	id := r.mailbox(upn, odoo.ModeLog, 0)
	before := r.sim.Stats(upn)
	r.syncUntilDone(id, 0)
	got := r.checkExactlyOnce(id, upn)
	st := r.sim.Stats(upn)
	withAtt := 0
	for gid, it := range got {
		if len(it.Attachments) > 0 {
			withAtt++
		}
		for _, a := range it.Attachments {
			if a.DataBase64 == "" {
				t.Errorf("%s: attachment %q without bytes", gid, a.Name)
			}
		}
	}
	if withAtt < 50 {
		t.Fatalf("only %d of %d messages came with attachments", withAtt, len(got))
	}
	reqs := st.Requests - before.Requests
	if perMsg := float64(reqs) / float64(len(got)); perMsg > 0.15 {
		t.Fatalf("%d Graph requests for %d messages (%.2f per message, %d inside $batch)", reqs, len(got), perMsg, st.BatchInner-before.BatchInner)
	}
}
