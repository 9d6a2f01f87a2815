package store

// Every bucket the database holds. Per-mailbox data lives in nested buckets
// named by mailbox id under the bucket listed here, so deleting a mailbox is a
// handful of DeleteBucket calls.
var (
	bucketMeta     = []byte("meta")           // schema version, key check
	bucketSettings = []byte("settings")       // "settings" → Settings JSON (no secrets)
	bucketSecrets  = []byte("secrets")        // name → sealed secret
	bucketMailbox  = []byte("mailboxes")      // mailbox id → MailboxConfig
	bucketStatus   = []byte("mailbox_status") // mailbox id → MailboxStatus
	bucketEmails   = []byte("mailbox_emails") // lower-case address → mailbox id (duplicates refused in one lookup)
	bucketOAuth    = []byte("oauth_states")   // state → sealed OAuthState
	bucketTokens   = []byte("token_caches")   // mailbox id → sealed MSAL cache
	bucketCursors  = []byte("cursors")        // mailbox id / folder → Cursor
	bucketMessages = []byte("messages")       // mailbox id / graph id → Message
	bucketOrder    = []byte("msg_order")      // mailbox id / folder\x00inv-time\x00id → id
	bucketMsgIDs   = []byte("msg_ids")        // mailbox id / internet message id → graph id or sent marker
	bucketOutbox   = []byte("outbox")         // big-endian seq → OutboxItem
	bucketDue      = []byte("due")            // mailbox id → next sync time (unix nanos)
	bucketAudit    = []byte("audit")          // big-endian seq → AuditEntry
	bucketSends    = []byte("sends")          // mailbox id / request id → SendRecord
	bucketNotices  = []byte("notices")        // big-endian seq → Notice for Odoo users
)

var allBuckets = [][]byte{
	bucketMeta, bucketSettings, bucketSecrets, bucketMailbox, bucketStatus, bucketEmails, bucketOAuth, bucketTokens,
	bucketCursors, bucketMessages, bucketOrder, bucketMsgIDs, bucketOutbox, bucketDue,
	bucketAudit, bucketSends, bucketNotices,
}

// perMailbox lists the buckets holding nested per-mailbox buckets.
var perMailbox = [][]byte{bucketCursors, bucketMessages, bucketOrder, bucketMsgIDs, bucketSends}

var (
	keySchema   = []byte("schema_version")
	keyKeyCheck = []byte("key_check")
	keySettings = []byte("settings")
)
