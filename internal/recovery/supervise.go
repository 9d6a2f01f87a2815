package recovery

import (
	"context"
	"fmt"
	"runtime/debug"
	"sync"
	"time"

	"github.com/prometheus/client_golang/prometheus"
)

// Supervisor states.
const (
	StateNotStarted = "not_started"
	StateRunning    = "running"
	StateRestarting = "restarting" // panicked; waiting out its backoff
	StateStopped    = "stopped"    // returned (or its context ended)
)

// SuperviseOptions shape a Supervisor's restarts. Zero fields take defaults.
type SuperviseOptions struct {
	// BackoffBase is the wait before the first restart; it doubles with
	// each panic in a row up to BackoffMax (default 1 s to 1 min).
	BackoffBase, BackoffMax time.Duration
	// Healthy is how long a run must last for the next panic to count as
	// the first in a row again (default 1 min).
	Healthy time.Duration
}

// Supervisor keeps one long-lived loop (the scheduler, the pusher) running:
// a panic is logged with its stack and counted like any other (Panics,
// maildesk_goroutine_panics_total), then the loop is started again after a
// backoff and the restart is counted in
// maildesk_component_restarts_total{component}. State says whether it is
// up, for health checks. A loop that returns is not restarted.
type Supervisor struct {
	g    *Group
	name string
	opts SuperviseOptions

	mu        sync.Mutex
	state     string
	restarts  int
	lastPanic string
	panicAt   time.Time
	nextStart time.Time
}

var restartsOpts = prometheus.CounterOpts{
	Name: "maildesk_component_restarts_total",
	Help: "Restarts of a background component (scheduler, pusher, ...) after it panicked.",
}

// Supervisor returns a supervisor for the component name; Run starts it.
func (g *Group) Supervisor(name string, opts SuperviseOptions) *Supervisor {
	if opts.BackoffBase <= 0 {
		opts.BackoffBase = time.Second
	}
	if opts.BackoffMax <= 0 {
		opts.BackoffMax = time.Minute
	}
	if opts.Healthy <= 0 {
		opts.Healthy = time.Minute
	}
	g.restartsOnce.Do(func() {
		if g.reg != nil {
			_ = g.reg.Register(g.restarts)
		}
	})
	return &Supervisor{g: g, name: name, opts: opts, state: StateNotStarted}
}

// Run runs fn until ctx ends or fn returns, restarting it after panics.
// It blocks; start it in its own goroutine.
func (s *Supervisor) Run(ctx context.Context, fn func(ctx context.Context)) {
	inARow := 0
	for {
		s.set(StateRunning, time.Time{})
		start := time.Now()
		val, panicked := s.call(ctx, fn)
		if !panicked || ctx.Err() != nil {
			s.set(StateStopped, time.Time{})
			return
		}
		if time.Since(start) >= s.opts.Healthy {
			inARow = 0
		}
		inARow++
		delay := s.opts.BackoffBase << min(inARow-1, 30)
		if delay > s.opts.BackoffMax || delay <= 0 {
			delay = s.opts.BackoffMax
		}
		// One step: Status never shows the new count with the old state.
		s.mu.Lock()
		s.restarts++
		s.lastPanic, s.panicAt = fmt.Sprint(val), time.Now()
		s.state, s.nextStart = StateRestarting, time.Now().Add(delay)
		n := s.restarts
		s.mu.Unlock()
		s.g.restarts.WithLabelValues(s.name).Inc()
		s.g.log.Error().Str("component", s.name).Int("restart", n).Dur("backoff", delay).Msg("component panicked; restarting it after the backoff")
		t := time.NewTimer(delay)
		select {
		case <-ctx.Done():
			t.Stop()
			s.set(StateStopped, time.Time{})
			return
		case <-t.C:
		}
	}
}

func (s *Supervisor) call(ctx context.Context, fn func(ctx context.Context)) (val any, panicked bool) {
	defer func() {
		if r := recover(); r != nil {
			val, panicked = r, true
			s.g.panics.Add(1)
			s.g.metric.Inc()
			s.g.log.Error().Str("goroutine", s.name).Interface("panic", r).Bytes("stack", debug.Stack()).Msg("background goroutine panicked; it was stopped and counted")
		}
	}()
	fn(ctx)
	return nil, false
}

func (s *Supervisor) set(state string, next time.Time) {
	s.mu.Lock()
	s.state, s.nextStart = state, next
	s.mu.Unlock()
}

// Status is a supervisor's state for health checks.
type Status struct {
	State     string
	Restarts  int
	LastPanic string
	PanicAt   time.Time
	NextStart time.Time // while restarting
}

// Status says whether the component runs and how often it was restarted.
func (s *Supervisor) Status() Status {
	s.mu.Lock()
	defer s.mu.Unlock()
	return Status{State: s.state, Restarts: s.restarts, LastPanic: s.lastPanic, PanicAt: s.panicAt, NextStart: s.nextStart}
}

// Restarts is how many times the component was restarted.
func (s *Supervisor) Restarts() int { return s.Status().Restarts }

// RestartsOf is the restart counter of one component (tests, metrics).
func (g *Group) RestartsOf(component string) prometheus.Counter {
	return g.restarts.WithLabelValues(component)
}
