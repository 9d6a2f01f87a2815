// Package inboxgen writes a large synthetic mailbox into a store's index:
// the 50,000-message inbox of issue 14's numbers, for the sidecar's RPC
// benchmark (rpc.BenchmarkInbox50k) and the measured inbox in a real Odoo
// (odoo-addon/e2e/bench_inbox.py, through the seedinbox program).
package inboxgen

import (
	"fmt"
	"time"

	"github.com/maildesk/maildesk/store"
)

// Words of the subjects and snippets; a search for one of them and a
// number matches a few messages.
var Words = []string{"offer", "invoice", "meeting", "delivery", "question", "contract", "order", "visit"}

// Seed indexes n messages in mailbox id (address email) through ApplyPage,
// a page of 1,000 at a time: four fifths in the Inbox, the rest in Sent
// Items, one every three minutes, the newest at newest; one in seven
// unread, from 300 correspondents. Their outbox items are answered
// "unrouted" (Odoo found no record: the mail stays in the MailDesk inbox),
// so a running sidecar pushes none of them to Odoo. Ids start with
// "AAMkSEED-", Message-Ids end with "@customerN.example".
func Seed(st *store.Store, id, email string, n int, newest time.Time) error {
	start := newest.Add(-time.Duration(n-1) * 3 * time.Minute)
	const page = 1000
	for base := 0; base < n; base += page {
		for _, folder := range []string{"inbox", "sentitems"} {
			var items []store.PageItem
			for i := base; i < min(base+page, n); i++ {
				if (i%5 == 4) != (folder == "sentitems") {
					continue
				}
				items = append(items, store.PageItem{Direction: "in", Payload: []byte(`{}`), Message: store.Message{
					ID: fmt.Sprintf("AAMkSEED-%07d", i), Folder: folder, InternetMessageID: fmt.Sprintf("<m%d@customer%d.example>", i, i%300),
					Subject: fmt.Sprintf("%s %d", Words[i%len(Words)], i), ReceivedAt: start.Add(time.Duration(i) * 3 * time.Minute),
					From: store.Address{Name: fmt.Sprintf("Customer %d", i%300), Email: fmt.Sprintf("c%d@customer%d.example", i%300, i%300)},
					To:   []store.Address{{Email: email}}, IsRead: i%7 != 0,
					Snippet: "Hello, about the " + Words[(i/3)%len(Words)] + " we discussed last week: please find the details below and tell me what you think",
				}})
			}
			res, err := st.ApplyPage(id, store.Page{Folder: folder, Items: items})
			if err != nil {
				return err
			}
			acks := make([]store.OutboxAck, len(res.OutboxSeqs))
			for k, seq := range res.OutboxSeqs {
				acks[k] = store.OutboxAck{Seq: seq, Status: store.DeliveryUnrouted}
			}
			if err := st.AckOutbox(acks, 0); err != nil {
				return err
			}
		}
	}
	return nil
}
