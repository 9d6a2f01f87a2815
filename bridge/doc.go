// Package bridge holds MailDesk's product rules: the mailbox lifecycle and
// its states, who may see which mailbox, the scheduler that decides when a
// mailbox syncs, what goes to Odoo and how (chatter, activities, gateway),
// and the pusher that drains the durable outbox into Odoo.
//
// It speaks neither Graph HTTP nor bbolt directly: Microsoft is behind
// graphsync, the database behind store, Odoo behind bridge/odoo.
package bridge
