package bridge

// RetryFailedResult is mailbox.retry_failed's answer.
type RetryFailedResult struct {
	Requeued int `json:"requeued"`
}

// RetryFailed puts a mailbox's failed messages (those Odoo refused the same
// way PusherConfig.FailLimit times) back in the delivery queue, due now.
// Whoever may see the mailbox may do it (owner, main user, assigned users,
// admins); it is audited.
func (s *Mailboxes) RetryFailed(a Actor, id string) (RetryFailedResult, error) {
	m, err := s.Load(a, id)
	if err != nil {
		return RetryFailedResult{}, err
	}
	n, err := s.st.RetryFailed(m.ID)
	if err != nil {
		return RetryFailedResult{}, Internal(err)
	}
	s.audit(a, "mailbox.retry_failed", m.ID, map[string]any{"requeued": n})
	s.log.Info().Str("mailbox", m.ID).Int64("uid", a.UID).Int("requeued", n).Msg("failed messages queued again for Odoo")
	return RetryFailedResult{Requeued: n}, nil
}
