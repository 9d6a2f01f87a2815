// Package store owns MailDesk's only database: one bbolt file.
//
// Everything the sidecar keeps lives here — settings, mailboxes, OAuth pending
// states, MSAL token caches, folder cursors, the message index, the outbox to
// Odoo, scheduling due times and the audit log. Nothing else opens the file.
//
// Rules this package enforces:
//   - Every bucket is named in buckets.go; the schema version lives in the meta
//     bucket and migrations run at Open.
//   - Secrets (the Azure client secret, the Odoo API key, token caches, PKCE
//     verifiers) are sealed with AES-256-GCM under the key file before they are
//     written. A key check value sealed at creation detects a wrong key at Open,
//     before anything is written.
//   - A page of a delta round (new messages, removals, outbox items and the
//     folder's cursor) is written in one transaction (ApplyPage), so a crash
//     never skips or duplicates a message.
//   - A mailbox is two records: its config (MailboxConfig, written by the
//     mailbox service through UpdateMailboxConfig) and its status
//     (MailboxStatus: state, account, progress, counts, delivery, requests;
//     written by the connector, syncer, pusher and scheduler through
//     UpdateMailboxStatus, ApplyPage, AckOutbox, ...). A writer of one never
//     rewrites the other. Folder cursors are records of their own, written by
//     the syncer only (ApplyPage, ApplyBackfillRequest).
//   - Values are copied out of transactions; callers never see bbolt memory.
package store
