package odoosim

import (
	"testing"

	"github.com/maildesk/maildesk/bridge/odoo"
)

// A reply without In-Reply-To/References lands on the record of its Graph
// conversation, as the addon does with maildesk_conversation_id — in a later
// batch and inside one batch, for mail received and mail sent from Outlook.
func TestIngestByConversationID(t *testing.T) {
	r := newRig(t, 18)
	opts := odoo.IngestOptions{Mode: odoo.ModeGateway, GatewayModel: "crm.lead"}
	first := item("c1", "<c1@ex>", "prospect@else.example", "Need desks")
	first.Options, first.ConversationID = opts, "CONV-1"
	res := r.ingest(first)
	lead := res[0].Records[0]
	if res[0].Status != odoo.StatusPosted || lead.Model != "crm.lead" {
		t.Fatalf("first: %+v", res[0])
	}
	again := item("c2", "<c2@ex>", "prospect@else.example", "Re: Need desks")
	again.Options, again.ConversationID = opts, "CONV-1"
	sent := item("c3", "<c3@corp.example>", "me@corp.example", "RE: Need desks")
	sent.Direction, sent.Folder, sent.To = "out", "sentitems", []odoo.Address{{Email: "prospect@else.example"}}
	sent.Options, sent.ConversationID = opts, "CONV-1"
	// another conversation started and answered inside one batch
	other := item("c4", "<c4@ex>", "buyer@else.example", "Need lamps")
	other.Options, other.ConversationID = opts, "CONV-2"
	otherReply := item("c5", "<c5@ex>", "buyer@else.example", "Re: Need lamps")
	otherReply.Options, otherReply.ConversationID = opts, "CONV-2"
	res = r.ingest(again, sent, other, otherReply)
	for i, want := range []odoo.RecordRef{lead, lead} {
		if res[i].Status != odoo.StatusPosted || len(res[i].Records) != 1 || res[i].Records[0] != want {
			t.Errorf("item %d: %+v, want on %v", i, res[i], want)
		}
	}
	if res[2].Records[0] == lead || res[3].Records[0] != res[2].Records[0] {
		t.Errorf("in-batch conversation: %+v then %+v", res[2], res[3])
	}
	if n := len(r.s.Records("crm.lead")); n != 2 {
		t.Errorf("%d leads, want 2 (no \"Re:\" lead)", n)
	}
}
