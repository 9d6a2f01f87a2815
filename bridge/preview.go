package bridge

import (
	"time"

	"github.com/maildesk/maildesk/bridge/odoo"
	"github.com/maildesk/maildesk/store"
)

// Preview bounds.
const (
	PreviewMaxDays      = 3650
	PreviewDefaultLimit = 500
	PreviewMaxLimit     = 5000
)

// PreviewParams are mailbox.preview_items' params.
type PreviewParams struct {
	MailboxID string `json:"mailbox_id"`
	// Days back from now (default: the mailbox's backfill_days, or 3650 when
	// it backfills all mail); 1..3650.
	Days int `json:"days"`
	// Limit caps the items (default 500, at most 5000).
	Limit int `json:"limit"`
}

// PreviewResult is mailbox.preview_items' answer: the newest items first;
// Total counts all the window holds, Truncated says Items stops short of it.
type PreviewResult struct {
	Items     []odoo.IngestItem `json:"items"`
	Truncated bool              `json:"truncated"`
	Total     int               `json:"total"`
}

// PreviewItems answers mailbox.preview_items: the mailbox's indexed mail of
// the last days, newest first, each as the ingest item the pusher sends for
// it (ItemEnvelope, the same code sync builds items on) without body, raw
// MIME and attachments — so Odoo can run its routing decisions on them and
// show what would land, writing nothing. It reads the index only: no Graph
// request. Whoever may list the mailbox's messages may call it.
func (s *Messages) PreviewItems(a Actor, p PreviewParams) (PreviewResult, error) {
	mb, err := s.boxes.Load(a, p.MailboxID)
	if err != nil {
		return PreviewResult{}, err
	}
	days := p.Days
	if days == 0 {
		days = mb.BackfillDays
		if days <= 0 || days > PreviewMaxDays {
			days = PreviewMaxDays
		}
	}
	if days < 1 || days > PreviewMaxDays {
		return PreviewResult{}, Invalid("days must be between 1 and %d, not %d", PreviewMaxDays, p.Days)
	}
	limit := p.Limit
	if limit == 0 {
		limit = PreviewDefaultLimit
	}
	if limit < 1 || limit > PreviewMaxLimit {
		return PreviewResult{}, Invalid("limit must be between 1 and %d, not %d", PreviewMaxLimit, p.Limit)
	}
	since := time.Now().Add(-time.Duration(days) * 24 * time.Hour)
	keep := func(m *store.Message) bool {
		// Known only from an update (no content), or sent through MailDesk
		// (Odoo has it; never pushed): no ingest item.
		return m.Delivery != store.DeliveryNone && m.Delivery != store.DeliverySentByUs
	}
	msgs, total, err := s.st.RecentMessages(mb.ID, since, limit, keep)
	if err != nil {
		return PreviewResult{}, Internal(err)
	}
	out := PreviewResult{Items: make([]odoo.IngestItem, 0, len(msgs)), Total: total, Truncated: total > len(msgs)}
	for _, m := range msgs {
		out.Items = append(out.Items, ItemEnvelope(&mb, m, directionOf(m.Folder)))
	}
	return out, nil
}
