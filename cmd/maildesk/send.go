package main

import (
	"github.com/maildesk/maildesk/bridge"
	"github.com/maildesk/maildesk/graphsync"
	"github.com/maildesk/maildesk/rpc"
)

// wireSendWith registers message.send, message.mark_read, message.move and
// message.log_to_record over graph, the sync engine's Graph client: sends
// and actions then count against the same per-mailbox budget as sync (one
// client per mailbox keeps Graph's 4-in-flight limit). wireScheduler calls
// it with its client. The pusher is kicked after log_to_record when it is
// wired (it is looked up at call time); kick syncs a mailbox after a draft
// was sent from the inbox (its Sent Items copy then reaches Odoo soon).
func wireSendWith(a *App, graph *graphsync.Client, kick func(mailboxID string)) error {
	log := a.Log.With().Str("component", "send").Logger()
	sender, err := bridge.NewSender(bridge.SenderConfig{Store: a.Store, Graph: graph, Mailboxes: a.Mailboxes, Log: log, AfterSend: kick})
	if err != nil {
		return err
	}
	actions, err := bridge.NewActions(bridge.ActionsConfig{Store: a.Store, Graph: graph, Mailboxes: a.Mailboxes, Log: log,
		Kick: func() {
			if a.Pusher != nil {
				a.Pusher.Kick()
			}
		}})
	if err != nil {
		return err
	}
	return a.RPC.Register("message", &rpc.SendService{Sender: sender, Actions: actions})
}
