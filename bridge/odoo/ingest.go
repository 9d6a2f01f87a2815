package odoo

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
)

// ID is a record id that decodes from what Odoo versions answer for one
// record: an int (17/18), a one-element list (19), or false/null (none → 0).
type ID int64

// UnmarshalJSON accepts 7, [7], false and null.
func (id *ID) UnmarshalJSON(b []byte) error {
	v, err := DecodeID(b)
	if err != nil {
		return err
	}
	*id = ID(v)
	return nil
}

// DecodeID decodes "int or [int]" (and false/null as 0).
func DecodeID(raw []byte) (int64, error) {
	raw = bytes.TrimSpace(raw)
	if len(raw) == 0 || string(raw) == "null" || string(raw) == "false" {
		return 0, nil
	}
	var n int64
	if err := json.Unmarshal(raw, &n); err == nil {
		return n, nil
	}
	var l []int64
	if err := json.Unmarshal(raw, &l); err == nil {
		if len(l) == 0 {
			return 0, nil
		}
		if len(l) == 1 {
			return l[0], nil
		}
		return 0, fmt.Errorf("odoo: expected one id, got %d", len(l))
	}
	return 0, fmt.Errorf("odoo: expected an id, got %.40s", raw)
}

// IDs decodes "int or [int,...]" (and false/null as empty) into a list.
type IDs []int64

// UnmarshalJSON accepts 7, [7, 8], false and null.
func (ids *IDs) UnmarshalJSON(b []byte) error {
	b = bytes.TrimSpace(b)
	if string(b) == "null" || string(b) == "false" {
		*ids = nil
		return nil
	}
	var n int64
	if err := json.Unmarshal(b, &n); err == nil {
		*ids = IDs{n}
		return nil
	}
	var l []int64
	if err := json.Unmarshal(b, &l); err != nil {
		return fmt.Errorf("odoo: expected ids, got %.40s", b)
	}
	*ids = l
	return nil
}

// RecordRef is a [model, id] pair, e.g. ["res.partner", 7].
type RecordRef struct {
	Model string
	ID    int64
}

// MarshalJSON writes ["model", id].
func (r RecordRef) MarshalJSON() ([]byte, error) { return json.Marshal([]any{r.Model, r.ID}) }

// UnmarshalJSON reads ["model", id].
func (r *RecordRef) UnmarshalJSON(b []byte) error {
	var pair []json.RawMessage
	if err := json.Unmarshal(b, &pair); err != nil || len(pair) != 2 {
		return fmt.Errorf("odoo: record ref must be [model, id], got %.60s", b)
	}
	if err := json.Unmarshal(pair[0], &r.Model); err != nil {
		return fmt.Errorf("odoo: record ref model: %w", err)
	}
	id, err := DecodeID(pair[1])
	if err != nil {
		return fmt.Errorf("odoo: record ref id: %w", err)
	}
	r.ID = id
	return nil
}

// Address is a name and an e-mail address.
type Address struct {
	Name  string `json:"name,omitempty"`
	Email string `json:"email"`
}

// Attachment of a structured ingest item.
type Attachment struct {
	Name        string `json:"name"`
	ContentType string `json:"content_type,omitempty"`
	DataBase64  string `json:"data_base64"`
	ContentID   string `json:"content_id,omitempty"`
	IsInline    bool   `json:"is_inline,omitempty"`
}

// Ingest modes.
const (
	ModeLog     = "log"
	ModeGateway = "gateway"
)

// IngestOptions travel with each item: the mailbox's settings at push time.
type IngestOptions struct {
	Mode              string `json:"mode"` // "log" | "gateway"
	GatewayModel      string `json:"gateway_model,omitempty"`
	LogSentAsActivity bool   `json:"log_sent_as_activity,omitempty"`
	MainUserID        int64  `json:"main_user_id,omitempty"`
	CreateContacts    bool   `json:"create_contacts,omitempty"`
	// SentByMailDesk: the message was sent through message.send, so Odoo already has it.
	SentByMailDesk bool `json:"sent_by_maildesk,omitempty"`
	// Backfill: the message came from the backfill listing (mail from before
	// the mailbox was connected): Odoo notifies no one of it, whatever its date.
	Backfill bool `json:"backfill,omitempty"`
}

// Target logs an item on a chosen record.
type Target struct {
	Model string `json:"model"`
	ResID int64  `json:"res_id"`
}

// IngestItem is one message for maildesk.mailbox.maildesk_ingest. Either
// MIMEBase64 or the structured fields are set.
type IngestItem struct {
	GraphID           string `json:"graph_id"`
	Mailbox           string `json:"mailbox"`
	Folder            string `json:"folder"`
	Direction         string `json:"direction"` // "in" | "out"
	InternetMessageID string `json:"internet_message_id"`
	// ConversationID is Graph's conversationId: Odoo puts a reply without
	// threading headers on the record holding its conversation.
	ConversationID string `json:"conversation_id,omitempty"`
	ReceivedAt     string `json:"received_at"` // RFC 3339 UTC
	// Sensitivity is Outlook's (normal | personal | private | confidential),
	// on structured and raw-MIME items alike: Odoo never logs private or
	// confidential mail unless a user chose to (a targeted item).
	Sensitivity string `json:"sensitivity,omitempty"`

	MIMEBase64 string `json:"mime_base64,omitempty"`

	Subject     string            `json:"subject,omitempty"`
	From        *Address          `json:"from,omitempty"`
	To          []Address         `json:"to,omitempty"`
	Cc          []Address         `json:"cc,omitempty"`
	Headers     map[string]string `json:"headers,omitempty"` // lower-case name → value
	BodyHTML    string            `json:"body_html,omitempty"`
	Attachments []Attachment      `json:"attachments,omitempty"`

	Options IngestOptions `json:"options"`
	Target  *Target       `json:"target,omitempty"`
}

// Ingest statuses.
const (
	StatusPosted    = "posted"
	StatusDuplicate = "duplicate"
	StatusUnrouted  = "unrouted"
	// StatusExcluded: Odoo deliberately did not log the item (private mail,
	// internal mail, an excluded address or conversation, "log only what I
	// choose"); Error says why. Done like unrouted: never retried.
	StatusExcluded = "excluded"
	StatusError    = "error"
)

// IngestResult is Odoo's answer for one item.
type IngestResult struct {
	GraphID        string      `json:"graph_id"`
	Status         string      `json:"status"`
	OdooMessageIDs IDs         `json:"odoo_message_ids"`
	Records        []RecordRef `json:"records"`
	ActivityID     ID          `json:"activity_id"`
	Error          Text        `json:"error,omitempty"`
}

// Text is a string that Odoo may send as false (Python's habit for "no value").
type Text string

// UnmarshalJSON accepts a string, false or null.
func (t *Text) UnmarshalJSON(b []byte) error {
	b = bytes.TrimSpace(b)
	if string(b) == "false" || string(b) == "null" {
		*t = ""
		return nil
	}
	var s string
	if err := json.Unmarshal(b, &s); err != nil {
		return fmt.Errorf("odoo: expected text, got %.40s", b)
	}
	*t = Text(s)
	return nil
}

// Ingest hands a batch to maildesk.mailbox.maildesk_ingest on the Odoo mailbox
// record odooMailboxID. One result per item, in order; a call-level failure is
// an *Error (the whole batch then stays to be retried).
func (c *Client) Ingest(ctx context.Context, odooMailboxID int64, items []IngestItem) ([]IngestResult, error) {
	if items == nil {
		items = []IngestItem{}
	}
	var res []IngestResult
	if err := c.Call(ctx, "maildesk.mailbox", "maildesk_ingest", []int64{odooMailboxID},
		map[string]any{"items": items}, &res); err != nil {
		return nil, err
	}
	if len(res) != len(items) {
		return res, &Error{Kind: KindUnknown, Op: "maildesk.mailbox.maildesk_ingest",
			Message: fmt.Sprintf("got %d results for %d items", len(res), len(items))}
	}
	return res, nil
}

// Notice is a mailbox event for Odoo users, e.g.
// {Kind: "reauth_required", Mailbox: "mbx_..", Email: "...", Reason: "..."}.
type Notice struct {
	Kind    string `json:"kind"`
	Mailbox string `json:"mailbox"`
	Email   string `json:"email,omitempty"`
	Reason  string `json:"reason,omitempty"`
	// Extra carries anything else; merged into the notice object.
	Extra map[string]any `json:"-"`
}

// MarshalJSON merges Extra into the object.
func (n Notice) MarshalJSON() ([]byte, error) {
	m := map[string]any{}
	for k, v := range n.Extra {
		m[k] = v
	}
	m["kind"] = n.Kind
	m["mailbox"] = n.Mailbox
	if n.Email != "" {
		m["email"] = n.Email
	}
	if n.Reason != "" {
		m["reason"] = n.Reason
	}
	return json.Marshal(m)
}

// Notify calls maildesk.mailbox.maildesk_notify.
func (c *Client) Notify(ctx context.Context, odooMailboxID int64, notices []Notice) error {
	if notices == nil {
		notices = []Notice{}
	}
	return c.Call(ctx, "maildesk.mailbox", "maildesk_notify", []int64{odooMailboxID},
		map[string]any{"notices": notices}, nil)
}
