package bridge

import (
	"context"
	"io"
	"sort"
	"sync"
	"time"

	"github.com/maildesk/maildesk/store"
)

// Component states in system.health.
const (
	StatusOK            = "ok"
	StatusDegraded      = "degraded"
	StatusDown          = "down"
	StatusNotConfigured = "not_configured"
	StatusUnknown       = "unknown"
)

// ComponentStatus is one component's health.
type ComponentStatus struct {
	Status string `json:"status"`
	Detail string `json:"detail,omitempty"`
}

// BuildInfo is what system.version reports about the binary and its mode.
type BuildInfo struct {
	Version   string
	Commit    string
	Simulate  bool
	GraphBase string // e.g. https://graph.microsoft.com/v1.0, or the simulator's
}

// System answers system.version and system.health. Components other than
// the store report through AddComponent (graph, odoo, scheduler, ...).
type System struct {
	st   SystemStore
	info BuildInfo

	mu    sync.Mutex
	comps map[string]func(ctx context.Context) ComponentStatus
}

// SystemStore is what health, version and backup need of storage.
type SystemStore interface {
	Ping() error
	Mailboxes() ([]store.Mailbox, error)
	Settings() (store.Settings, error)
	Backup(w io.Writer) (int64, error)
}

// NewSystem returns the system service.
func NewSystem(st SystemStore, info BuildInfo) *System {
	return &System{st: st, info: info, comps: map[string]func(context.Context) ComponentStatus{}}
}

// SetMode records that Microsoft is the simulator (or another Graph root),
// for system.version.
func (s *System) SetMode(simulate bool, graphBase string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.info.Simulate = simulate
	s.info.GraphBase = graphBase
}

// AddComponent adds (or replaces) a named component's health check. fn must
// answer quickly (it runs on every system.health and /readyz) and must not
// put secrets into Detail.
func (s *System) AddComponent(name string, fn func(ctx context.Context) ComponentStatus) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.comps[name] = fn
}

// Ping checks that the store answers (/readyz, the systemd watchdog).
func (s *System) Ping(ctx context.Context) error { return s.st.Ping() }

// Backup writes a consistent copy of the whole database to w while the
// sidecar keeps running (GET /admin/backup); secrets stay sealed in it.
func (s *System) Backup(w io.Writer) (int64, error) { return s.st.Backup(w) }

// VersionInfo is system.version's answer.
type VersionInfo struct {
	Version   string     `json:"version"`
	Commit    string     `json:"commit"`
	Simulate  bool       `json:"simulate"`
	GraphBase string     `json:"graph_base"`
	Odoo      OdooTarget `json:"odoo"`
	Time      time.Time  `json:"time"`
}

// OdooTarget is where the sidecar delivers mail.
type OdooTarget struct {
	URL      string `json:"url"`
	DB       string `json:"db"`
	Protocol string `json:"protocol"`
}

// Version answers system.version. Anyone with the shared secret may call it.
func (s *System) Version() (VersionInfo, error) {
	s.mu.Lock()
	info := s.info
	s.mu.Unlock()
	v := VersionInfo{Version: info.Version, Commit: info.Commit, Simulate: info.Simulate,
		GraphBase: info.GraphBase, Time: time.Now().UTC().Truncate(time.Second)}
	st, err := s.st.Settings()
	if err != nil {
		return VersionInfo{}, Internal(err)
	}
	v.Odoo = OdooTarget{URL: st.Odoo.URL, DB: st.Odoo.DB, Protocol: st.Odoo.Protocol}
	return v, nil
}

// Health is system.health's answer.
type Health struct {
	Status     string                     `json:"status"` // ok | degraded | down
	Components map[string]ComponentStatus `json:"components"`
	Mailboxes  map[string]int             `json:"mailboxes"` // count per state, plus "total"
}

// Health checks the store and every registered component. The store, or
// any component, being down (the scheduler or pusher stopped or restarting
// after a panic) makes the status "down"; any other component not ok makes
// it "degraded".
func (s *System) Health(ctx context.Context) Health {
	h := Health{Status: StatusOK, Components: map[string]ComponentStatus{}, Mailboxes: map[string]int{
		"total": 0, StateConnected: 0, StateReauthRequired: 0, StateError: 0,
	}}
	if err := s.st.Ping(); err != nil {
		h.Components["store"] = ComponentStatus{Status: StatusDown, Detail: err.Error()}
		h.Status = StatusDown
	} else {
		h.Components["store"] = ComponentStatus{Status: StatusOK}
		if mbs, err := s.st.Mailboxes(); err == nil {
			for _, m := range mbs {
				h.Mailboxes["total"]++
				h.Mailboxes[m.State]++
			}
		}
	}
	for _, name := range []string{"graph", "odoo", "scheduler"} {
		h.Components[name] = ComponentStatus{Status: StatusUnknown, Detail: "not running in this build yet"}
	}
	for n, cs := range s.Components(ctx) {
		h.Components[n] = cs
		switch {
		case cs.Status == StatusDown:
			h.Status = StatusDown
		case h.Status == StatusOK && cs.Status != StatusOK && cs.Status != StatusNotConfigured:
			h.Status = StatusDegraded
		}
	}
	return h
}

// Components runs every registered component check (not the store's).
func (s *System) Components(ctx context.Context) map[string]ComponentStatus {
	s.mu.Lock()
	names := make([]string, 0, len(s.comps))
	fns := make(map[string]func(context.Context) ComponentStatus, len(s.comps))
	for n, fn := range s.comps {
		names = append(names, n)
		fns[n] = fn
	}
	s.mu.Unlock()
	sort.Strings(names)
	out := make(map[string]ComponentStatus, len(names))
	for _, n := range names {
		out[n] = fns[n](ctx)
	}
	return out
}
