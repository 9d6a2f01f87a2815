package bridge_test

import (
	"os"
	"strconv"
	"testing"
	"time"

	"github.com/maildesk/maildesk/bridge/odoo"
	"github.com/maildesk/maildesk/graphsync/m365sim"
)

func envInt(name string, def int) int {
	if v, err := strconv.Atoi(os.Getenv(name)); err == nil && v > 0 {
		return v
	}
	return def
}

// BenchmarkBackfill backfills one seeded mailbox (30% with attachments) at
// TimeScale 1 with Graph's limits on and prints messages/s, Graph requests
// per message and 429s. Size: MAILDESK_BENCH_MESSAGES (default 2,000; the
// acceptance figure is 20,000). MAILDESK_BENCH_MAX_ATTACHMENT caps
// attachment sizes in bytes (default 1 MiB; the generator's default is
// 30 MB). MAILDESK_BENCH_LATENCY_MS adds Graph latency per request.
func BenchmarkBackfill(b *testing.B) {
	n := envInt("MAILDESK_BENCH_MESSAGES", 2000)
	maxAtt := envInt("MAILDESK_BENCH_MAX_ATTACHMENT", 1<<20)
	lat := time.Duration(envInt("MAILDESK_BENCH_LATENCY_MS", 0)) * time.Millisecond
	for i := 0; i < b.N; i++ {
		b.StopTimer()
		r := newRig(b, rigOpts{scale: 1, throttle: true, latency: lat, slice: time.Hour, batchSlots: envInt("MAILDESK_BENCH_BATCH_SLOTS", 0)})
		upn := "bench@" + r.sim.Domain()
		r.sim.GenerateMailbox(upn, n, m365sim.GenOptions{MaxAttachment: maxAtt, NoSamples: true})
		id := r.mailbox(upn, odoo.ModeLog, 0)
		before := r.sim.Stats(upn)
		b.StartTimer()
		start := time.Now()
		r.syncUntilDone(id, 0)
		el := time.Since(start)
		b.StopTimer()
		got := r.checkExactlyOnce(id, upn)
		st := r.sim.Stats(upn)
		msgs := float64(len(got))
		b.ReportMetric(msgs/el.Seconds(), "msg/s")
		b.ReportMetric(float64(st.Requests-before.Requests)/msgs, "req/msg")
		b.ReportMetric(float64(st.Throttled-before.Throttled), "429s")
		b.ReportMetric(msgs, "messages")
		b.Logf("%d messages in %v: %.1f msg/s, %d Graph requests (%d in %d batches, %d delta), %.3f req/msg, %d 429s, max in flight %d",
			len(got), el.Round(time.Millisecond), msgs/el.Seconds(), st.Requests-before.Requests, st.BatchInner, st.Batches, st.Delta,
			float64(st.Requests-before.Requests)/msgs, st.Throttled-before.Throttled, st.MaxInFlight)
	}
}
