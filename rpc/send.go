package rpc

import (
	"net/http"

	"github.com/maildesk/maildesk/bridge"
)

// SendService serves message.send, message.save_draft, message.send_draft,
// message.mark_read, message.flag, message.move and message.log_to_record
// (other message.* methods live in other services of the same namespace).
// Register it under "message".
type SendService struct {
	Sender  *bridge.Sender
	Actions *bridge.Actions
}

// Send answers message.send.
func (s *SendService) Send(r *http.Request, p *bridge.SendParams, out *bridge.SendResult) error {
	v, err := s.Sender.Send(r.Context(), ActorOf(r), *p)
	*out = v
	return err
}

// SaveDraft answers message.save_draft.
func (s *SendService) SaveDraft(r *http.Request, p *bridge.DraftParams, out *bridge.DraftResult) error {
	v, err := s.Sender.SaveDraft(r.Context(), ActorOf(r), *p)
	*out = v
	return err
}

// SendDraft answers message.send_draft.
func (s *SendService) SendDraft(r *http.Request, p *bridge.SendDraftParams, out *bridge.SendResult) error {
	v, err := s.Sender.SendDraft(r.Context(), ActorOf(r), *p)
	*out = v
	return err
}

// MarkRead answers message.mark_read with true.
func (s *SendService) MarkRead(r *http.Request, p *bridge.MarkReadParams, out *bool) error {
	v, err := s.Actions.MarkRead(r.Context(), ActorOf(r), *p)
	*out = v
	return err
}

// Flag answers message.flag with true.
func (s *SendService) Flag(r *http.Request, p *bridge.FlagParams, out *bool) error {
	v, err := s.Actions.Flag(r.Context(), ActorOf(r), *p)
	*out = v
	return err
}

// Move answers message.move.
func (s *SendService) Move(r *http.Request, p *bridge.MoveParams, out *bridge.MoveResult) error {
	v, err := s.Actions.Move(r.Context(), ActorOf(r), *p)
	*out = v
	return err
}

// LogToRecord answers message.log_to_record.
func (s *SendService) LogToRecord(r *http.Request, p *bridge.LogParams, out *bridge.LogResult) error {
	v, err := s.Actions.LogToRecord(r.Context(), ActorOf(r), *p)
	*out = v
	return err
}
