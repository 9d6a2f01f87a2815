package rpc

import (
	"net/http"

	"github.com/maildesk/maildesk/bridge"
)

// DeliveryService serves mailbox.retry_failed.
type DeliveryService struct{ Mailboxes *bridge.Mailboxes }

// RetryFailed answers mailbox.retry_failed with {"requeued": n}.
func (s *DeliveryService) RetryFailed(r *http.Request, p *bridge.MailboxRef, out *bridge.RetryFailedResult) error {
	v, err := s.Mailboxes.RetryFailed(ActorOf(r), p.MailboxID)
	*out = v
	return err
}
