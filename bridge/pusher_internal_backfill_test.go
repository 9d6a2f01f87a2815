package bridge

import (
	"encoding/json"
	"testing"

	"github.com/maildesk/maildesk/bridge/odoo"
	"github.com/maildesk/maildesk/store"
)

// The pusher lays the mailbox's current options over a waiting item but keeps
// what only the sync knew: sent by MailDesk, and backfill.
func TestDecodeItemKeepsBackfillAndSentFlags(t *testing.T) {
	raw, _ := json.Marshal(odoo.IngestItem{GraphID: "g1", Options: odoo.IngestOptions{Mode: odoo.ModeLog, Backfill: true, SentByMailDesk: true}})
	it, err := decodeItem(raw, &store.Mailbox{MailboxConfig: store.MailboxConfig{Mode: odoo.ModeGateway, GatewayModel: "crm.lead"}})
	if err != nil {
		t.Fatal(err)
	}
	if !it.Options.Backfill || !it.Options.SentByMailDesk || it.Options.Mode != odoo.ModeGateway {
		t.Fatalf("options after decode: %+v", it.Options)
	}
}
