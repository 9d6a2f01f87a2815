package bridge

// Actor is the Odoo user on whose behalf an RPC call runs (params.context).
// UID 0 is the sidecar itself (scheduler, pusher) or an Odoo admin task
// without a user.
type Actor struct {
	UID   int64  `json:"uid"`
	Lang  string `json:"lang,omitempty"`
	TZ    string `json:"tz,omitempty"`
	Admin bool   `json:"-"` // set by the RPC layer for settings calls made by Odoo admins
}
