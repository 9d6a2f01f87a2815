package bridge

import (
	"context"
	"encoding/json"
	"fmt"
	"slices"
	"time"

	"github.com/maildesk/maildesk/bridge/odoo"
	"github.com/maildesk/maildesk/graphsync"
	"github.com/maildesk/maildesk/store"
)

// Delivery states mailbox.redeliver may route again.
var redeliverable = []string{store.DeliveryExcluded, store.DeliveryUnrouted}

// RedeliverParams are mailbox.redeliver's params.
type RedeliverParams struct {
	MailboxID string `json:"mailbox_id"`
	// Days back from now (default: the mailbox's backfill window).
	Days int `json:"days"`
	// Statuses to route again (default excluded and unrouted).
	Statuses []string `json:"statuses"`
}

// RedeliverResult is mailbox.redeliver's answer.
type RedeliverResult struct {
	Queued bool `json:"queued"`
	// Messages is how many indexed messages match now; the syncer sends them
	// at the start of its next round.
	Messages int `json:"messages"`
}

// redeliverBatch is how many messages one step of a redelivery fetches
// from Graph and queues in one transaction.
const redeliverBatch = 20

// Redeliver asks for the mail Odoo kept back (excluded: "log only what I
// choose", privacy rules) or could not route (unrouted) to go to Odoo again,
// so it is routed by Odoo's current rules: the addon calls it when a mailbox
// is switched to automatic logging, and from "Apply rules to past mail".
// Like a backfill request it is a field of the mailbox that the syncer
// applies at the start of its next round (content is fetched from Graph
// again: the outbox keeps no payload once Odoo answered). Mail on a record
// already is never sent again.
func (c *SyncControl) Redeliver(a Actor, p RedeliverParams) (RedeliverResult, error) {
	m, err := c.syncable(a, p.MailboxID)
	if err != nil {
		return RedeliverResult{}, err
	}
	days := p.Days
	if days == 0 {
		days = m.BackfillDays
	}
	if days == 0 {
		days = 30
	}
	if days < 1 || days > 3650 {
		return RedeliverResult{}, Invalid("days must be between 1 and 3650, not %d", p.Days)
	}
	statuses := p.Statuses
	if len(statuses) == 0 {
		statuses = redeliverable
	}
	for _, st := range statuses {
		if !slices.Contains(redeliverable, st) {
			return RedeliverResult{}, Invalid("status %q cannot be delivered again: use excluded or unrouted", st)
		}
	}
	now := c.now().UTC()
	since := now.Add(-time.Duration(days) * 24 * time.Hour)
	_, n, err := c.st.RecentMessages(m.ID, since, 1, func(sm *store.Message) bool { return slices.Contains(statuses, sm.Delivery) })
	if err != nil {
		return RedeliverResult{}, Internal(err)
	}
	if _, err := updateStatus(c.st, m.ID, func(mb *store.MailboxStatus) error {
		req := store.RedeliverRequest{Since: since, Statuses: slices.Clone(statuses), RequestedAt: now}
		if old := mb.Redeliver; old != nil {
			// Not applied yet: one request covering both.
			if old.Since.Before(req.Since) {
				req.Since = old.Since
			}
			for _, st := range old.Statuses {
				if !slices.Contains(req.Statuses, st) {
					req.Statuses = append(req.Statuses, st)
				}
			}
		}
		mb.Redeliver = &req
		return nil
	}); err != nil {
		return RedeliverResult{}, Internal(err)
	}
	if err := c.st.Audit(store.AuditEntry{UID: a.UID, Actor: "odoo", Action: "mailbox.redeliver", MailboxID: m.ID,
		Detail: map[string]any{"email": m.Email, "days": days, "statuses": statuses, "messages": n}}); err != nil {
		return RedeliverResult{}, Internal(err)
	}
	if err := c.sched.Kick(m.ID); err != nil {
		return RedeliverResult{}, Internal(err)
	}
	return RedeliverResult{Queued: true, Messages: n}, nil
}

// redeliver applies a pending mailbox.redeliver: the matching index entries
// are fetched from Graph again and queued for Odoo as untargeted items, built
// as sync builds them. A message deleted meanwhile is skipped. The request is
// cleared once every match is queued; on an error it stays for the next
// round (entries queued already are not matched again).
func (s *Syncer) redeliver(ctx context.Context, mb store.Mailbox) error {
	req := mb.Redeliver
	entries, _, err := s.st.RecentMessages(mb.ID, req.Since, 0, func(sm *store.Message) bool {
		return slices.Contains(req.Statuses, sm.Delivery)
	})
	if err != nil {
		return err
	}
	if len(entries) > 0 {
		gm, err := s.cfg.Graph.Mailbox(mb.ID, mb.Email)
		if err != nil {
			return err
		}
		queued := 0
		for start := 0; start < len(entries); start += redeliverBatch {
			if err := ctx.Err(); err != nil {
				return err
			}
			chunk := entries[start:min(start+redeliverBatch, len(entries))]
			n, err := s.redeliverChunk(ctx, mb, gm, chunk, req.Statuses)
			queued += n
			if err != nil {
				return err
			}
		}
		s.log.Info().Str("mailbox", mb.ID).Int("matched", len(entries)).Int("queued", queued).Msg("redeliver: mail Odoo kept back or could not route goes to Odoo again")
	}
	_, err = updateStatus(s.st, mb.ID, func(m *store.MailboxStatus) error {
		if m.Redeliver != nil && m.Redeliver.RequestedAt.Equal(req.RequestedAt) {
			m.Redeliver = nil
		}
		return nil
	})
	return err
}

func (s *Syncer) redeliverChunk(ctx context.Context, mb store.Mailbox, gm *graphsync.Mailbox, chunk []store.Message, from []string) (int, error) {
	msgs := make([]*graphsync.Message, 0, len(chunk))
	kept := make([]store.Message, 0, len(chunk))
	for _, sm := range chunk {
		gmsg, err := gm.GetMessage(ctx, sm.ID)
		if err != nil {
			if graphsync.IsNotFound(err) {
				continue // deleted in Outlook meanwhile
			}
			return 0, err
		}
		gmsg.Full = true
		msgs = append(msgs, gmsg)
		kept = append(kept, sm)
	}
	if len(msgs) == 0 {
		return 0, nil
	}
	var err error
	if mb.Mode == odoo.ModeGateway {
		err = gm.FetchMIME(ctx, msgs, s.cfg.BatchParallel)
	} else {
		err = gm.FetchAttachments(ctx, msgs, s.cfg.BatchParallel)
	}
	if err != nil {
		return 0, err
	}
	items := make([]store.OutboxItem, 0, len(msgs))
	for i, gmsg := range msgs {
		sm := kept[i]
		direction := directionOf(sm.Folder)
		payload, err := json.Marshal(s.ingestItemOf(&mb, sm, direction, gmsg))
		if err != nil {
			return 0, fmt.Errorf("bridge: encode ingest item %s: %w", sm.ID, err)
		}
		items = append(items, store.OutboxItem{MailboxID: mb.ID, GraphID: sm.ID, Folder: sm.Folder, Direction: direction,
			InternetMessageID: sm.InternetMessageID, ReceivedAt: sm.ReceivedAt, Payload: payload})
	}
	return s.st.Requeue(mb.ID, items, from)
}
