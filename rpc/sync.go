package rpc

import (
	"net/http"

	"github.com/maildesk/maildesk/bridge"
)

// SyncService serves mailbox.sync_now, mailbox.backfill, mailbox.resync and
// mailbox.redeliver.
type SyncService struct{ Control *bridge.SyncControl }

// SyncNow answers mailbox.sync_now with {queued: true}.
func (s *SyncService) SyncNow(r *http.Request, p *bridge.MailboxRef, out *bridge.Queued) error {
	v, err := s.Control.SyncNow(ActorOf(r), *p)
	*out = v
	return err
}

// Backfill answers mailbox.backfill with {queued: true}.
func (s *SyncService) Backfill(r *http.Request, p *bridge.BackfillParams, out *bridge.Queued) error {
	v, err := s.Control.Backfill(ActorOf(r), *p)
	*out = v
	return err
}

// Resync answers mailbox.resync with {queued: true}: the mailbox syncs again
// from scratch (every folder's position dropped, backfill over its window).
func (s *SyncService) Resync(r *http.Request, p *bridge.MailboxRef, out *bridge.Queued) error {
	v, err := s.Control.Resync(ActorOf(r), *p)
	*out = v
	return err
}

// Redeliver answers mailbox.redeliver: the mail Odoo kept back or could not
// route goes to Odoo again at the start of the mailbox's next round.
func (s *SyncService) Redeliver(r *http.Request, p *bridge.RedeliverParams, out *bridge.RedeliverResult) error {
	v, err := s.Control.Redeliver(ActorOf(r), *p)
	*out = v
	return err
}

// FolderService serves folder.list.
type FolderService struct{ Messages *bridge.Messages }

// List answers folder.list.
func (s *FolderService) List(r *http.Request, p *bridge.FolderListParams, out *[]bridge.FolderView) error {
	if p.All {
		v, err := s.Messages.FolderTree(r.Context(), ActorOf(r), *p)
		*out = v
		return err
	}
	v, err := s.Messages.FolderList(ActorOf(r), *p)
	*out = v
	return err
}

// MessageReadService serves message.list, message.get and message.attachment.
type MessageReadService struct{ Messages *bridge.Messages }

// List answers message.list.
func (s *MessageReadService) List(r *http.Request, p *bridge.MessageListParams, out *bridge.MessageListResult) error {
	v, err := s.Messages.MessageList(ActorOf(r), *p)
	*out = v
	return err
}

// Get answers message.get.
func (s *MessageReadService) Get(r *http.Request, p *bridge.MessageGetParams, out *bridge.MessageDetail) error {
	v, err := s.Messages.MessageGet(r.Context(), ActorOf(r), *p)
	*out = v
	return err
}

// Attachment answers message.attachment.
func (s *MessageReadService) Attachment(r *http.Request, p *bridge.MessageAttachmentParams, out *bridge.AttachmentData) error {
	v, err := s.Messages.MessageAttachment(r.Context(), ActorOf(r), *p)
	*out = v
	return err
}

// Search answers message.search (Microsoft 365's own search, beyond the
// synced window).
func (s *MessageReadService) Search(r *http.Request, p *bridge.SearchParams, out *bridge.SearchResult) error {
	v, err := s.Messages.Search(r.Context(), ActorOf(r), *p)
	*out = v
	return err
}

// PreviewService serves mailbox.preview_items.
type PreviewService struct{ Messages *bridge.Messages }

// PreviewItems answers mailbox.preview_items: the mailbox's indexed mail of
// the last days as ingest items without body, MIME and attachments (no
// Graph request), for Odoo's routing preview. Same access as message.list.
func (s *PreviewService) PreviewItems(r *http.Request, p *bridge.PreviewParams, out *bridge.PreviewResult) error {
	v, err := s.Messages.PreviewItems(ActorOf(r), *p)
	*out = v
	return err
}

// RegisterSync adds mailbox.sync_now, mailbox.backfill, mailbox.resync, mailbox.redeliver,
// mailbox.preview_items, folder.list, message.list, message.get and
// message.attachment.
func RegisterSync(s *Server, ctl *bridge.SyncControl, msgs *bridge.Messages) error {
	if err := s.Register("mailbox", &SyncService{Control: ctl}); err != nil {
		return err
	}
	if err := s.Register("mailbox", &PreviewService{Messages: msgs}); err != nil {
		return err
	}
	if err := s.Register("folder", &FolderService{Messages: msgs}); err != nil {
		return err
	}
	return s.Register("message", &MessageReadService{Messages: msgs})
}
