package bridge_test

import (
	"context"
	"crypto/rand"
	"fmt"
	"testing"
	"time"

	"github.com/rs/zerolog"

	"github.com/maildesk/maildesk/bridge"
	"github.com/maildesk/maildesk/graphsync"
)

// BenchmarkSend sends Odoo-built replies through message.send against the
// simulator (no added latency, so it measures MailDesk's own cost) and
// reports sends per second and Graph requests per send.
func BenchmarkSend(b *testing.B) {
	for _, tc := range []struct {
		name string
		att  int
	}{{"small", 0}, {"attachment_10MB", 10 << 20}} {
		b.Run(tc.name, func(b *testing.B) {
			e := newSendEnv(b)
			m := e.mailbox("anna@contoso.com", "personal", "anna@contoso.com", 0)
			// Graph allows 150 MB of uploads per 5 minutes and mailbox, i.e.
			// 15 such sends: the benchmark measures the path, not that wait.
			sender, err := bridge.NewSender(bridge.SenderConfig{Store: e.st, Graph: e.graph,
				Mailboxes: bridge.NewMailboxes(e.st, zerolog.Nop()), Log: zerolog.Nop(),
				Uploads: graphsync.NewUploadBudgets(0, time.Millisecond, nil)})
			if err != nil {
				b.Fatal(err)
			}
			var att []byte
			if tc.att > 0 {
				att = make([]byte, tc.att)
				_, _ = rand.Read(att)
			}
			mimes := make([]string, b.N)
			for i := range mimes {
				mimes[i] = b64(odooReply(m.Email, "carl@customer.example", fmt.Sprintf("<bench-%d@odoo.contoso.com>", i), att))
			}
			ctx := context.Background()
			before := e.rt.count()
			b.ResetTimer()
			start := time.Now()
			for i := 0; i < b.N; i++ {
				if _, err := sender.Send(ctx, anna, bridge.SendParams{MailboxID: m.ID, RequestID: fmt.Sprint("b-", i), MIMEBase64: mimes[i]}); err != nil {
					b.Fatal(err)
				}
			}
			el := time.Since(start)
			b.StopTimer()
			b.ReportMetric(float64(b.N)/el.Seconds(), "sends/s")
			b.ReportMetric(float64(e.rt.count()-before)/float64(b.N), "graph_requests/send")
			if n := len(e.sim.Sent(m.Email)); n != b.N {
				b.Fatalf("%d sent, want %d", n, b.N)
			}
		})
	}
}
