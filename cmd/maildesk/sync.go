package main

import (
	"context"
	"fmt"

	"github.com/maildesk/maildesk/bridge"
	"github.com/maildesk/maildesk/graphsync"
	"github.com/maildesk/maildesk/rpc"
)

// wireScheduler builds the sync engine: one Graph client over the shared
// Microsoft transport (the Connector hands out tokens), the Syncer, the
// scheduler loop, and registers mailbox.sync_now, mailbox.backfill,
// folder.list, message.list, message.get and message.attachment.
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
	syncer, err := bridge.NewSyncer(bridge.SyncConfig{
		Store: a.Store, Graph: graph, Log: log,
		Metrics:  bridge.NewSyncMetrics(a.Registry, a.Store),
		OnReauth: a.Connector.MarkReauth,
	})
	if err != nil {
		return err
	}
	sched, err := bridge.NewScheduler(bridge.SchedulerConfig{
		Store: a.Store, Sync: syncer.SyncMailbox, Recovery: a.Group, Log: log,
	})
	if err != nil {
		return err
	}
	msgs := bridge.NewMessages(a.Store, a.Mailboxes, graph, 64<<20)
	if err := rpc.RegisterSync(a.RPC, bridge.NewSyncControl(a.Store, a.Mailboxes, sched), msgs); err != nil {
		return err
	}
	a.System.AddComponent("scheduler", func(ctx context.Context) bridge.ComponentStatus {
		return bridge.ComponentStatus{Status: "ok"}
	})
	a.AddWorker("scheduler", func(ctx context.Context) { _ = sched.Run(ctx) })
	return nil
}
