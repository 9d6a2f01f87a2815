package graphsync

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"strings"
)

// ReauthMarker is implemented by TokenSources that record a mailbox's lost
// sign-in (bridge.Connector: state reauth_required and the "Sign in again"
// notice). The Graph client calls it when Graph refuses even a freshly
// refreshed access token, a refusal Token itself never sees.
type ReauthMarker interface {
	MarkReauth(ctx context.Context, mailboxID string, cause error) error
}

// freshToken is the token to retry with after Graph answered 401 to failed.
// When another request of the mailbox already refreshed, its token is used;
// otherwise the cached access token is dropped (Invalidator) and a new one
// acquired silently, which refreshes through MSAL. A refused refresh comes
// back as Token's *ReauthError.
func (m *Mailbox) freshToken(ctx context.Context, failed string) (string, error) {
	ts := m.c.cfg.Tokens
	tok, err := ts.Token(ctx, m.id)
	if err != nil {
		return "", err
	}
	if tok != failed && tok != "" {
		return tok, nil
	}
	inv, ok := ts.(Invalidator)
	if !ok {
		return tok, nil // cannot drop it: the retry shows whether it works
	}
	if err := inv.Invalidate(ctx, m.id); err != nil {
		return "", fmt.Errorf("graphsync: drop the refused access token of %s: %w", m.id, err)
	}
	return ts.Token(ctx, m.id)
}

// reauth401 is the answer to a second 401 in a row, the first one having
// been retried with a freshly acquired token: only the owner signing in
// again helps. The mailbox is marked (ReauthMarker) and the request fails
// with a *ReauthError.
func (m *Mailbox) reauth401(ctx context.Context, code, msg string) error {
	if code == "" {
		code = "InvalidAuthenticationToken"
	}
	reason := "Microsoft Graph answered 401 " + code + " even to a freshly refreshed access token"
	if msg != "" {
		reason += " (" + firstLine(msg) + ")"
	}
	re := &ReauthError{MailboxID: m.id, Code: "graph_401", Reason: reason}
	m.c.cfg.Log.Warn().Str("mailbox", m.id).Str("code", code).Msg("graphsync: Graph refuses the mailbox's refreshed token; the owner must sign in again")
	if mk, ok := m.c.cfg.Tokens.(ReauthMarker); ok {
		if err := mk.MarkReauth(ctx, m.id, re); err != nil && !errors.Is(err, context.Canceled) {
			m.c.cfg.Log.Error().Err(err).Str("mailbox", m.id).Msg("graphsync: could not mark the mailbox reauth_required")
		}
	}
	return re
}

// graphErrorBody reads code and message of a Graph error body (at most
// 64 KiB; nothing when it is not Graph's JSON error).
func graphErrorBody(body io.Reader) (code, msg string) {
	raw, _ := io.ReadAll(io.LimitReader(body, 64<<10))
	var e struct {
		Error struct {
			Code    string `json:"code"`
			Message string `json:"message"`
		} `json:"error"`
	}
	if json.Unmarshal(raw, &e) != nil {
		return "", ""
	}
	return strings.TrimSpace(e.Error.Code), strings.TrimSpace(e.Error.Message)
}
