// Package graphsync owns everything Microsoft: the MSAL client per mailbox
// with its token cache kept (sealed) in the store, the Graph client
// (msgraph-sdk-go) over one shared transport, the per-mailbox request budget
// (at most 4 requests in flight, 10,000 per 10 minutes, Retry-After
// honoured), delta rounds, MIME and attachments, sending and subscriptions.
// The Microsoft 365 simulator lives in graphsync/m365sim.
//
// It knows nothing about Odoo.
package graphsync
