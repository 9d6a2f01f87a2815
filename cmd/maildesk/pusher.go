package main

import (
	"context"

	"github.com/maildesk/maildesk/bridge"
)

// wirePusher starts the pusher that drains the outbox into Odoo.
func wirePusher(a *App) error {
	a.Pusher = bridge.NewPusher(bridge.PusherConfig{
		Store: a.Work, Log: a.Log.With().Str("component", "pusher").Logger(),
		Registry: a.Registry, Group: a.Group, Owner: a.Owner,
	})
	a.System.AddComponent("odoo", func(ctx context.Context) bridge.ComponentStatus {
		if ok, reason := a.Pusher.Status(); !ok {
			return bridge.ComponentStatus{Status: "degraded", Detail: reason}
		}
		return bridge.ComponentStatus{Status: "ok"}
	})
	sup := a.AddWorker("pusher", a.Pusher.Run)
	a.System.AddComponent("pusher", func(ctx context.Context) bridge.ComponentStatus { return workerHealth(sup) })
	return nil
}
