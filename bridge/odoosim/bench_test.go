package odoosim

import (
	"context"
	"fmt"
	"testing"
	"time"

	"github.com/maildesk/maildesk/bridge/odoo"
)

// BenchmarkIngest measures messages per second into the stand-in through
// bridge/odoo, one batch in flight at a time, with 20 ms added to every Odoo
// call (a real Odoo's round trip and transaction cost), per batch size.
//
//	go test ./bridge/odoosim -run '^$' -bench Ingest -benchtime 2000x
func BenchmarkIngest(b *testing.B) {
	for _, size := range []int{1, 10, 50, 100, 200} {
		b.Run(fmt.Sprintf("batch=%d", size), func(b *testing.B) {
			s := New(Options{Version: 18, DB: "bench", Latency: 20 * time.Millisecond})
			if err := s.Start(); err != nil {
				b.Fatal(err)
			}
			defer s.Close()
			mbx := s.CreateMailbox("mbx_b", "me@corp.example")
			for i := 0; i < 50; i++ {
				s.AddPartner(fmt.Sprintf("Customer %d", i), fmt.Sprintf("c%d@example.com", i))
			}
			c, err := odoo.New(odoo.Config{URL: s.URL(), DB: s.DB(), Login: s.TechLogin(), APIKey: s.APIKey()})
			if err != nil {
				b.Fatal(err)
			}
			ctx := context.Background()
			if _, err := c.Authenticate(ctx); err != nil {
				b.Fatal(err)
			}
			items := make([]odoo.IngestItem, b.N)
			for i := range items {
				items[i] = odoo.IngestItem{GraphID: fmt.Sprintf("g%d", i), Mailbox: "mbx_b", Folder: "inbox", Direction: "in",
					InternetMessageID: fmt.Sprintf("<b%d@example.com>", i), ReceivedAt: "2026-11-02T09:14:03Z",
					Subject: fmt.Sprintf("Message %d", i), From: &odoo.Address{Email: fmt.Sprintf("c%d@example.com", i%50)},
					To: []odoo.Address{{Email: "me@corp.example"}}, BodyHTML: "<p>Hello, a body of a typical length for a business e-mail.</p>",
					Options: odoo.IngestOptions{Mode: odoo.ModeLog}}
			}
			b.ResetTimer()
			start := time.Now()
			posted := 0
			for lo := 0; lo < len(items); lo += size {
				hi := min(lo+size, len(items))
				res, err := c.Ingest(ctx, mbx, items[lo:hi])
				if err != nil {
					b.Fatal(err)
				}
				for _, r := range res {
					if r.Status == odoo.StatusPosted {
						posted++
					}
				}
			}
			el := time.Since(start)
			b.StopTimer()
			if posted != b.N {
				b.Fatalf("posted %d of %d", posted, b.N)
			}
			b.ReportMetric(float64(b.N)/el.Seconds(), "msgs/s")
			b.ReportMetric(float64(s.IngestCalls().Calls), "calls")
		})
	}
}

// BenchmarkIngestNewContacts measures the simulator's own cost (no latency) when
// every message comes from a new sender and creates a contact, batches of 200.
func BenchmarkIngestNewContacts(b *testing.B) {
	s := New(Options{Version: 19, DB: "bench"})
	if err := s.Start(); err != nil {
		b.Fatal(err)
	}
	defer s.Close()
	mbx := s.CreateMailbox("mbx_b", "me@corp.example")
	c, err := odoo.New(odoo.Config{URL: s.URL(), DB: s.DB(), Login: s.TechLogin(), APIKey: s.APIKey()})
	if err != nil {
		b.Fatal(err)
	}
	ctx := context.Background()
	items := make([]odoo.IngestItem, b.N)
	for i := range items {
		items[i] = odoo.IngestItem{GraphID: fmt.Sprintf("g%d", i), Mailbox: "mbx_b", Folder: "inbox", Direction: "in",
			InternetMessageID: fmt.Sprintf("<n%d@example.com>", i), ReceivedAt: "2026-11-02T09:14:03Z", Subject: "Hi",
			From: &odoo.Address{Name: fmt.Sprint("Sender ", i), Email: fmt.Sprintf("s%d@example.com", i)}, BodyHTML: "<p>x</p>",
			Options: odoo.IngestOptions{Mode: odoo.ModeLog, CreateContacts: true}}
	}
	b.ResetTimer()
	start := time.Now()
	for lo := 0; lo < len(items); lo += 200 {
		res, err := c.Ingest(ctx, mbx, items[lo:min(lo+200, len(items))])
		if err != nil {
			b.Fatal(err)
		}
		for _, r := range res {
			if r.Status != odoo.StatusPosted {
				b.Fatalf("%+v", r)
			}
		}
	}
	b.ReportMetric(float64(b.N)/time.Since(start).Seconds(), "msgs/s")
}
