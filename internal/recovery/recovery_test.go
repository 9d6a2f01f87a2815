package recovery

import (
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/rs/zerolog"
)

func TestPanicIsCountedNotFatal(t *testing.T) {
	g := New(zerolog.Nop(), prometheus.NewRegistry())
	done := make(chan struct{})
	g.Go("boom", func() { defer close(done); panic("x") })
	<-done
	deadline := time.Now().Add(2 * time.Minute) // ends a stuck test only
	for g.Panics() != 1 {
		if time.Now().After(deadline) {
			t.Fatalf("panics = %d, want 1", g.Panics())
		}
		time.Sleep(time.Millisecond)
	}
}
