package main

import (
	"context"
	"fmt"
	"strings"
	"time"

	"github.com/maildesk/maildesk/bridge"
	"github.com/maildesk/maildesk/graphsync"
	"github.com/maildesk/maildesk/internal/recovery"
	"github.com/maildesk/maildesk/rpc"
)

// wireScheduler builds the sync engine: one Graph client over the shared
// Microsoft transport (the Connector hands out tokens), the Syncer, the
// scheduler loop, and registers mailbox.sync_now, mailbox.backfill,
// folder.list, message.list, message.get and message.attachment; with a
// public URL, change notifications on /graph/notify and /graph/lifecycle.
func wireScheduler(a *App) error {
	if a.Connector == nil {
		return fmt.Errorf("sync: the connector must be wired first")
	}
	log := a.Log.With().Str("component", "sync").Logger()
	graph, err := graphsync.New(graphsync.Config{
		BaseURL:    a.Microsoft.GraphBaseURL,
		Transport:  a.Microsoft.Transport(),
		Tokens:     a.Connector,
		Registerer: a.Registry,
		Log:        log,
	})
	if err != nil {
		return err
	}
	// Odoo hears of new mail at once (maildesk_notify, batched per mailbox)
	// and pushes it to the inboxes open in browsers.
	live := bridge.NewLive(bridge.LiveConfig{Store: a.Store, Log: log})
	a.AddWorker("live", live.Run)
	syncer, err := bridge.NewSyncer(bridge.SyncConfig{
		Store: a.Work, Graph: graph, Log: log, OnInbox: live.InboxChanged,
		Metrics:    bridge.NewSyncMetrics(a.Registry, a.Store),
		OnReauth:   a.Connector.MarkReauth,
		LazyCursor: true,
		QuietIdle:  true,
	})
	if err != nil {
		return err
	}
	var sched *bridge.Scheduler
	var covered func(string) bool
	if a.Cfg.PublicURL != "" {
		// Change notifications for personal mailboxes: Graph reaches the
		// sidecar at its public URL; a notification only kicks a round.
		base := strings.TrimRight(a.Cfg.PublicURL, "/")
		n, err := bridge.NewNotifier(bridge.NotifierConfig{
			Store: a.Store, Graph: graph, Log: log, Owner: a.Owner,
			Kick:      func(id string) error { return sched.Kick(id) },
			NotifyURL: base + "/graph/notify", LifecycleURL: base + "/graph/lifecycle",
		})
		if err != nil {
			return err
		}
		a.RPC.Handle("POST /graph/notify", n.NotifyHandler())
		a.RPC.Handle("POST /graph/lifecycle", n.LifecycleHandler())
		a.AddWorker("subscriptions", n.Run)
		covered = n.Covered
	}
	sched, err = bridge.NewScheduler(bridge.SchedulerConfig{
		Store: a.Work, Sync: syncer.SyncMailbox, Recovery: a.Group, Log: log, Covered: covered,
		Owner: a.Owner, Forward: a.forwardKick,
	})
	if err != nil {
		return err
	}
	msgs := bridge.NewMessages(a.Store, a.Mailboxes, graph, 64<<20)
	if err := rpc.RegisterSync(a.RPC, bridge.NewSyncControl(a.Store, a.Mailboxes, sched), msgs); err != nil {
		return err
	}
	// message.send/mark_read/move/log_to_record share this client and so
	// each mailbox's Graph budget (cmd/maildesk/send.go).
	if err := wireSendWith(a, graph, func(id string) { _ = sched.Kick(id) }); err != nil {
		return err
	}
	a.System.AddComponent("graph", func(ctx context.Context) bridge.ComponentStatus {
		return graphHealth(a)
	})
	a.Scheduler = sched
	a.Connector.OnConnected(func(id string) { _ = sched.Kick(id) })
	sup := a.AddWorker("scheduler", func(ctx context.Context) { _ = sched.Run(ctx) })
	a.System.AddComponent("scheduler", func(ctx context.Context) bridge.ComponentStatus {
		return schedulerHealth(sup, sched.LastLoop(), time.Now())
	})
	return nil
}

// schedulerStuck is how long the scheduler's loop may go without a pass
// (it passes at least every 15 s) before it counts as down.
const schedulerStuck = 2 * time.Minute

// schedulerHealth is the supervised loop's health, and down when the loop
// runs but made no pass for schedulerStuck.
func schedulerHealth(sup *recovery.Supervisor, lastLoop, now time.Time) bridge.ComponentStatus {
	cs := workerHealth(sup)
	if cs.Status == bridge.StatusOK && !lastLoop.IsZero() && now.Sub(lastLoop) > schedulerStuck {
		return bridge.ComponentStatus{Status: bridge.StatusDown, Detail: fmt.Sprintf("the scheduler loop made no pass for %s", now.Sub(lastLoop).Round(time.Second))}
	}
	return cs
}

// graphHealth sums up how syncing with Microsoft goes: degraded while any
// mailbox that should sync has failed rounds, naming the latest error.
func graphHealth(a *App) bridge.ComponentStatus {
	ms, err := a.Store.Mailboxes()
	if err != nil {
		return bridge.ComponentStatus{Status: bridge.StatusUnknown, Detail: err.Error()}
	}
	active, failing, last := 0, 0, ""
	for _, m := range ms {
		if !bridge.Syncable(m.State) {
			continue
		}
		active++
		if m.Failures > 0 || m.State == bridge.StateError {
			failing++
			last = m.Email + ": " + m.Error
		}
	}
	switch {
	case active == 0:
		return bridge.ComponentStatus{Status: bridge.StatusNotConfigured, Detail: "no connected mailbox yet"}
	case failing > 0:
		return bridge.ComponentStatus{Status: bridge.StatusDegraded, Detail: fmt.Sprintf("%d of %d mailboxes fail to sync; latest: %s", failing, active, last)}
	}
	return bridge.ComponentStatus{Status: bridge.StatusOK, Detail: fmt.Sprintf("%d mailboxes syncing", active)}
}
