package main

import (
	"context"
	"time"

	"github.com/maildesk/maildesk/bridge"
	"github.com/maildesk/maildesk/graphsync"
	"github.com/maildesk/maildesk/rpc"
)

// wireConnect builds the MSAL side and the Connector (the sync engine's
// TokenSource, kept in App.Connector), registers mailbox.connect,
// mailbox.disconnect, oauth.complete, consent.admin_url and /oauth/callback,
// prunes expired sign-in states and drops the MSAL clients of deleted
// mailboxes every 10 minutes.
func wireConnect(a *App) error {
	log := a.Log.With().Str("component", "connect").Logger()
	auth := graphsync.NewAuth(a.Store, bridge.NewAccounts(a.Store), graphsync.AuthOptions{
		HTTPClient:   a.Microsoft.HTTPClient(30 * time.Second),
		GraphBaseURL: a.Microsoft.GraphBaseURL,
		Log:          log,
		Registerer:   a.Registry,
	})
	a.Connector = bridge.NewConnector(a.Store, auth, bridge.ConnectorOptions{Log: log})
	if err := rpc.RegisterConnect(a.RPC, a.Connector, log); err != nil {
		return err
	}
	a.AddWorker("connect-housekeeping", func(ctx context.Context) {
		t := time.NewTicker(10 * time.Minute)
		defer t.Stop()
		for {
			select {
			case <-ctx.Done():
				return
			case <-t.C:
				if n, err := a.Store.PruneOAuthStates(); err != nil {
					log.Error().Err(err).Msg("prune expired sign-in states")
				} else if n > 0 {
					log.Info().Int("removed", n).Msg("expired sign-in states pruned")
				}
				if n, err := auth.Sweep(); err != nil {
					log.Error().Err(err).Msg("sweep MSAL clients of deleted mailboxes")
				} else if n > 0 {
					log.Info().Int("dropped", n).Msg("MSAL clients of deleted or disconnected mailboxes dropped")
				}
			}
		}
	})
	return nil
}
