package bridge_test

import (
	"testing"

	"github.com/rs/zerolog"

	"github.com/maildesk/maildesk/bridge"
	"github.com/maildesk/maildesk/bridge/odoo"
)

// message.list's address keeps the mail from, to or cc one contact, in
// every folder: received and sent.
func TestMessageListAddress(t *testing.T) {
	r := newRig(t, rigOpts{})
	upn := "hal@" + r.sim.Domain()
	r.sim.AddUser(upn, "Hal")
	mime := func(folder, headers string) string {
		id, err := r.sim.DeliverMIME(upn, folder, []byte(headers+"Content-Type: text/plain\r\n\r\nhi\r\n"))
		if err != nil {
			t.Fatal(err)
		}
		return id
	}
	from := mime("inbox", "From: Carl <Carl@Customer.example>\r\nTo: "+upn+"\r\nSubject: from carl\r\n")
	cc := mime("inbox", "From: Dora <dora@customer.example>\r\nTo: "+upn+"\r\nCc: carl@customer.example\r\nSubject: cc carl\r\n")
	mime("inbox", "From: Dora <dora@customer.example>\r\nTo: "+upn+"\r\nSubject: not carl\r\nX-Note: carl@customer.example\r\n")
	sent := mime("sentitems", "From: "+upn+"\r\nTo: carl@customer.example\r\nSubject: to carl\r\n")
	id := r.mailbox(upn, odoo.ModeLog, 0)
	r.syncUntilDone(id, 0)
	svc := bridge.NewMessages(r.st, bridge.NewMailboxes(r.st, zerolog.Nop()), r.graph, 1<<20)
	got := map[string]bool{}
	for _, folder := range []string{"inbox", "sentitems"} {
		res, err := svc.MessageList(bridge.Actor{UID: 2}, bridge.MessageListParams{MailboxID: id, Folder: folder, Address: " CARL@customer.example "})
		if err != nil {
			t.Fatal(err)
		}
		for _, m := range res.Messages {
			got[m.ID] = true
		}
	}
	if len(got) != 3 || !got[from] || !got[cc] || !got[sent] {
		t.Fatalf("mail with carl: %v; want from %s, cc %s, sent %s", got, from, cc, sent)
	}
}
