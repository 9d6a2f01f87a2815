package store

import "sync"

// Hooks are what a store runs after a commit: both backends embed them.
type Hooks struct {
	mu         sync.Mutex
	onQueued   []func()
	onSettings []func()
}

// OnSettings registers fn to run after settings were saved (the pusher
// retries at once when Odoo was just paired). fn must not block.
func (h *Hooks) OnSettings(fn func()) {
	h.mu.Lock()
	defer h.mu.Unlock()
	h.onSettings = append(h.onSettings, fn)
}

// OnQueued registers fn to run after every commit that added outbox items
// or a notice (the pusher's kick). fn must not block.
func (h *Hooks) OnQueued(fn func()) {
	h.mu.Lock()
	defer h.mu.Unlock()
	h.onQueued = append(h.onQueued, fn)
}

// Queued runs the OnQueued hooks (after the commit).
func (h *Hooks) Queued() { h.run(&h.onQueued) }

// SettingsSaved runs the OnSettings hooks (after the commit).
func (h *Hooks) SettingsSaved() { h.run(&h.onSettings) }

func (h *Hooks) run(hooks *[]func()) {
	h.mu.Lock()
	fns := *hooks
	h.mu.Unlock()
	for _, fn := range fns {
		fn()
	}
}
