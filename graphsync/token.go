package graphsync

import (
	"context"
	"errors"
)

// TokenSource hands out a Graph access token for a mailbox, acquiring it
// silently (refreshing when needed) before every Graph call.
type TokenSource interface {
	Token(ctx context.Context, mailboxID string) (string, error)
}

// ReauthError means Microsoft refused to refresh the mailbox's tokens
// (invalid_grant, interaction_required, revoked consent): only its owner
// signing in again helps. Syncing of that mailbox must stop.
type ReauthError struct {
	MailboxID string
	Code      string // e.g. invalid_grant, interaction_required, no_token
	AADSTS    string // e.g. AADSTS700082, AADSTS50173, AADSTS65001
	Reason    string // Microsoft's error_description, first line
}

func (e *ReauthError) Error() string {
	msg := "mailbox " + e.MailboxID + " needs its owner to sign in again (" + e.Code
	if e.AADSTS != "" {
		msg += " " + e.AADSTS
	}
	return msg + ")"
}

// IsReauth reports whether err says the owner must sign in again.
func IsReauth(err error) bool {
	var r *ReauthError
	return errors.As(err, &r)
}
