package recovery

import (
	"context"
	"sync/atomic"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/testutil"
	"github.com/rs/zerolog"
)

func waitFor(t *testing.T, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(2 * time.Minute) // ends a stuck test only
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(time.Millisecond)
	}
}

// A loop that panics is started again after a backoff, each restart is
// counted (metric and Status), and the supervisor says it is down while it
// waits to restart.
func TestSupervisorRestartsAPanickingLoop(t *testing.T) {
	reg := prometheus.NewRegistry()
	g := New(zerolog.Nop(), reg)
	s := g.Supervisor("pusher", SuperviseOptions{BackoffBase: time.Millisecond, BackoffMax: 4 * time.Millisecond})
	if st := s.Status(); st.State != StateNotStarted {
		t.Fatalf("before Run: %+v", st)
	}
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	var runs atomic.Int32
	release := make(chan struct{})
	done := make(chan struct{})
	go func() {
		defer close(done)
		s.Run(ctx, func(ctx context.Context) {
			if runs.Add(1) <= 3 {
				panic("boom")
			}
			<-release
			<-ctx.Done()
		})
	}()
	waitFor(t, "the fourth run", func() bool { return runs.Load() == 4 && s.Status().State == StateRunning })
	st := s.Status()
	if st.Restarts != 3 || st.LastPanic != "boom" || st.PanicAt.IsZero() {
		t.Fatalf("status after 3 panics: %+v", st)
	}
	if n := testutil.ToFloat64(g.restarts.WithLabelValues("pusher")); n != 3 {
		t.Fatalf("maildesk_component_restarts_total{component=pusher} = %v, want 3", n)
	}
	if g.Panics() != 3 {
		t.Fatalf("panics = %d", g.Panics())
	}
	close(release)
	cancel()
	<-done
	if st := s.Status(); st.State != StateStopped {
		t.Fatalf("after ctx ended: %+v", st)
	}

	// Restarting: down until the backoff ends.
	slow := g.Supervisor("scheduler", SuperviseOptions{BackoffBase: time.Hour, BackoffMax: time.Hour})
	ctx2, cancel2 := context.WithCancel(context.Background())
	done2 := make(chan struct{})
	go func() { defer close(done2); slow.Run(ctx2, func(context.Context) { panic("bang") }) }()
	waitFor(t, "restarting", func() bool { return slow.Status().State == StateRestarting })
	if st := slow.Status(); st.NextStart.Before(time.Now().Add(50*time.Minute)) || st.Restarts != 1 {
		t.Fatalf("restarting status %+v", st)
	}
	cancel2()
	<-done2
	if st := slow.Status(); st.State != StateStopped {
		t.Fatalf("cancelled during backoff: %+v", st)
	}
}

// A loop that returns on its own is not restarted.
func TestSupervisorLeavesAReturnedLoopStopped(t *testing.T) {
	g := New(zerolog.Nop(), nil)
	s := g.Supervisor("housekeeping", SuperviseOptions{})
	n := 0
	s.Run(context.Background(), func(context.Context) { n++ })
	if n != 1 || s.Status().State != StateStopped || s.Restarts() != 0 {
		t.Fatalf("runs %d, status %+v", n, s.Status())
	}
}
