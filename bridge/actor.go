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

// name is the audit log's actor: "odoo" for an Odoo user, "sidecar" for
// the sidecar itself (UID 0).
func (a Actor) name() string {
	if a.UID == 0 {
		return "sidecar"
	}
	return "odoo"
}
