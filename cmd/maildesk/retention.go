package main

import (
	"context"

	"github.com/maildesk/maildesk/bridge"
)

// wireRetention starts the pruning of the audit log and the message index
// to the days settings.retention keeps (bridge/retention.go).
func wireRetention(a *App) error {
	r := bridge.NewRetention(a.Store, bridge.RetentionOptions{
		Log: a.Log.With().Str("component", "retention").Logger(), Registerer: a.Registry,
	})
	sup := a.AddWorker("retention", r.Run)
	a.System.AddComponent("retention", func(ctx context.Context) bridge.ComponentStatus { return workerHealth(sup) })
	return nil
}
