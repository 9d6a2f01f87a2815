// Package recovery runs background goroutines that cannot take the process
// down: a panic is logged with its stack, counted, and the goroutine ends.
// Tests fail when Panics() is not zero.
package recovery

import (
	"runtime/debug"
	"sync"
	"sync/atomic"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/rs/zerolog"
)

// Group counts panics of the goroutines it starts.
type Group struct {
	log    zerolog.Logger
	panics atomic.Int64
	metric prometheus.Counter

	reg          prometheus.Registerer
	restarts     *prometheus.CounterVec
	restartsOnce sync.Once
}

// New returns a Group logging to log; reg may be nil (no metric).
func New(log zerolog.Logger, reg prometheus.Registerer) *Group {
	g := &Group{log: log, metric: prometheus.NewCounter(prometheus.CounterOpts{
		Name: "maildesk_goroutine_panics_total",
		Help: "Panics recovered in background goroutines (each is a bug).",
	})}
	g.reg = reg
	g.restarts = prometheus.NewCounterVec(restartsOpts, []string{"component"})
	if reg != nil {
		_ = reg.Register(g.metric)
	}
	return g
}

// Go runs fn in a new goroutine that recovers from panics.
func (g *Group) Go(name string, fn func()) {
	go func() {
		defer g.Recover(name)
		fn()
	}()
}

// Recover is deferred at the top of a goroutine started elsewhere.
func (g *Group) Recover(name string) {
	if r := recover(); r != nil {
		g.panics.Add(1)
		g.metric.Inc()
		g.log.Error().Str("goroutine", name).Interface("panic", r).Bytes("stack", debug.Stack()).Msg("background goroutine panicked; it was stopped and counted")
	}
}

// Panics is how many panics were recovered.
func (g *Group) Panics() int64 { return g.panics.Load() }
