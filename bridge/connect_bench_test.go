package bridge

import (
	"context"
	"fmt"
	"runtime"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/maildesk/maildesk/graphsync/m365sim"
)

// BenchmarkRefresh200Mailboxes connects 200 mailboxes, then per iteration
// expires every access token (in the simulator and in MSAL's caches) and
// refreshes all 200 at once, as the sync engine would after an hour of
// quiet. It reports the wall time of one refresh-all, the peak heap and Sys
// while it runs, and the heap each connected mailbox costs.
func BenchmarkRefresh200Mailboxes(b *testing.B) {
	const n = 200
	e := newConnectEnv(b, m365sim.Options{Seed: 9})
	ids := make([]string, n)
	runtime.GC()
	var ms0 runtime.MemStats
	runtime.ReadMemStats(&ms0)
	for i := range ids {
		upn := fmt.Sprintf("user%03d@contoso.com", i)
		e.sim.AddUser(upn, upn)
		m := e.mailbox(b, upn, "personal", "")
		e.connect(b, m.ID, upn)
		ids[i] = m.ID
	}
	e.answers = nil
	runtime.GC()
	var ms1 runtime.MemStats
	runtime.ReadMemStats(&ms1)
	if e.auth.Clients() != n {
		b.Fatalf("%d clients", e.auth.Clients())
	}
	ctx := context.Background()

	var peakHeap, peakSys uint64
	var total time.Duration
	b.ResetTimer()
	for it := 0; it < b.N; it++ {
		b.StopTimer()
		e.sim.ExpireAccessTokens()
		for _, id := range ids {
			if err := e.c.Invalidate(ctx, id); err != nil {
				b.Fatal(err)
			}
		}
		stop := make(chan struct{})
		var sampled sync.WaitGroup
		sampled.Add(1)
		go func() {
			defer sampled.Done()
			var ms runtime.MemStats
			t := time.NewTicker(5 * time.Millisecond)
			defer t.Stop()
			for {
				runtime.ReadMemStats(&ms)
				if ms.HeapInuse > atomic.LoadUint64(&peakHeap) {
					atomic.StoreUint64(&peakHeap, ms.HeapInuse)
				}
				if ms.Sys > atomic.LoadUint64(&peakSys) {
					atomic.StoreUint64(&peakSys, ms.Sys)
				}
				select {
				case <-stop:
					return
				case <-t.C:
				}
			}
		}()
		b.StartTimer()
		start := time.Now()
		var wg sync.WaitGroup
		var failed atomic.Int64
		for _, id := range ids {
			wg.Add(1)
			go func(id string) {
				defer wg.Done()
				if _, err := e.c.Token(ctx, id); err != nil {
					failed.Add(1)
				}
			}(id)
		}
		wg.Wait()
		total += time.Since(start)
		b.StopTimer()
		close(stop)
		sampled.Wait()
		if failed.Load() > 0 {
			b.Fatalf("%d refreshes failed", failed.Load())
		}
		b.StartTimer()
	}
	b.StopTimer()
	for _, id := range ids {
		if m, _ := e.st.Mailbox(id); m.State != StateConnected {
			b.Fatalf("%s is %s after the refresh", id, m.State)
		}
	}
	// What the sidecar itself holds per mailbox: restart (a fresh Auth), load
	// every client from the store with its cached token set, and compare the
	// heap (the simulator's state does not change: the tokens are valid).
	e.restart(b)
	runtime.GC()
	var ms2, ms3 runtime.MemStats
	runtime.ReadMemStats(&ms2)
	for _, id := range ids {
		if _, err := e.c.Token(ctx, id); err != nil {
			b.Fatal(err)
		}
	}
	runtime.GC()
	runtime.ReadMemStats(&ms3)
	b.ReportMetric(float64(int64(ms3.HeapInuse)-int64(ms2.HeapInuse))/float64(n)/1024, "KB-client/mailbox")
	b.ReportMetric(float64(total.Milliseconds())/float64(b.N), "ms/refresh-all")
	b.ReportMetric(float64(total.Microseconds())/float64(b.N*n)/1000, "ms/mailbox")
	b.ReportMetric(float64(peakHeap)/(1<<20), "MB-heap-peak")
	b.ReportMetric(float64(peakSys)/(1<<20), "MB-sys-peak")
	b.ReportMetric(float64(int64(ms1.HeapInuse)-int64(ms0.HeapInuse))/float64(n)/1024, "KB-heap-with-sim/mailbox")
}
