package bridge

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/rs/zerolog"

	"github.com/maildesk/maildesk/graphsync"
	"github.com/maildesk/maildesk/store"
)

// StateTTL is how long a sign-in link stays valid.
const StateTTL = 15 * time.Minute

// Connector runs a mailbox's connection to Microsoft 365: the sign-in link
// (mailbox.connect), its completion (oauth.complete and the sidecar's own
// /oauth/callback), the admin consent link, disconnecting, and re-auth when
// Microsoft stops refreshing a mailbox's tokens. It is the sync engine's
// TokenSource: a refusal there moves the mailbox to reauth_required at once.
// Safe for concurrent use.
type Connector struct {
	st   Store
	auth *graphsync.Auth
	log  zerolog.Logger
	now  func() time.Time

	onConnected func(mailboxID string)
}

// OnConnected sets fn to run after a mailbox connected (the scheduler's
// kick, so its first round starts at once). Set it before serving.
func (c *Connector) OnConnected(fn func(mailboxID string)) { c.onConnected = fn }

// ConnectorOptions tune NewConnector.
type ConnectorOptions struct {
	Log zerolog.Logger
	Now func() time.Time // the clock for state expiry; default time.Now
}

// NewConnector builds the connector over the store and the MSAL side.
func NewConnector(st Store, auth *graphsync.Auth, opts ConnectorOptions) *Connector {
	if opts.Now == nil {
		opts.Now = time.Now
	}
	return &Connector{st: st, auth: auth, log: opts.Log, now: opts.Now}
}

var (
	_ graphsync.TokenSource = (*Connector)(nil)
	_ graphsync.Invalidator = (*Connector)(nil)
)

// ConnectParams are mailbox.connect's params.
type ConnectParams struct {
	MailboxID string `json:"mailbox_id"`
}

// ConnectResult is mailbox.connect's answer: the link the owner opens.
type ConnectResult struct {
	AuthURL   string    `json:"auth_url"`
	ExpiresAt time.Time `json:"expires_at"`
}

// CompleteParams are oauth.complete's params: what Microsoft put on the
// redirect (code and state, or error and error_description with state).
// MailboxID, when given, must be the mailbox the state was issued for.
type CompleteParams struct {
	Code             string `json:"code"`
	State            string `json:"state"`
	Error            string `json:"error"`
	ErrorDescription string `json:"error_description"`
	MailboxID        string `json:"mailbox_id"`
}

// AdminURLParams are consent.admin_url's params.
type AdminURLParams struct {
	Tenant string `json:"tenant"`
}

// AdminURLResult is consent.admin_url's answer.
type AdminURLResult struct {
	URL string `json:"url"`
}

func (c *Connector) load(a Actor, id string) (store.Mailbox, error) {
	if id == "" {
		return store.Mailbox{}, Invalid("Parameter mailbox_id is required")
	}
	m, err := c.st.Mailbox(id)
	if err != nil {
		if errors.Is(err, store.ErrNotFound) {
			return store.Mailbox{}, NotFound("Mailbox %s does not exist (it may have been deleted)", id)
		}
		return store.Mailbox{}, Internal(err)
	}
	if !CanManage(a, &m) {
		return store.Mailbox{}, Forbidden("Only the owner, the main user or a MailDesk administrator may connect or disconnect mailbox %s", m.Email)
	}
	return m, nil
}

// loginHint is who is expected to sign in: the owner's address, or for a
// shared mailbox the delegate named in sign_in_email.
func loginHint(m store.Mailbox) string {
	if m.Kind == "shared" {
		return m.SignInEmail
	}
	return m.Email
}

func notConfigured(err error) error {
	if errors.Is(err, graphsync.ErrNotConfigured) {
		msg := err.Error()
		if i := strings.Index(msg, graphsync.ErrNotConfigured.Error()); i >= 0 {
			msg = msg[i:]
		}
		return &Error{Kind: KindUser, Code: "not_configured", Message: "MailDesk cannot sign in to Microsoft 365 yet: " + msg + ". A MailDesk administrator sets it in Settings → MailDesk.", Err: err}
	}
	return nil
}

// Connect starts a mailbox's sign-in: it stores a fresh state (random,
// single use, bound to the mailbox, valid StateTTL) sealed with the PKCE
// verifier, and returns Microsoft's sign-in URL. A mailbox that is not
// connected becomes pending_consent; a connected one keeps syncing until the
// new sign-in completes (re-sign-in to change account or add permissions).
func (c *Connector) Connect(ctx context.Context, a Actor, p ConnectParams) (ConnectResult, error) {
	m, err := c.load(a, p.MailboxID)
	if err != nil {
		return ConnectResult{}, err
	}
	if m.Kind == "shared" && m.SignInEmail == "" {
		c.log.Info().Str("mailbox", m.ID).Msg("shared mailbox without sign_in_email: the sign-in page will ask who signs in")
	}
	state, err := graphsync.RandomToken(32)
	if err != nil {
		return ConnectResult{}, Internal(err)
	}
	verifier, challenge, err := graphsync.NewPKCE()
	if err != nil {
		return ConnectResult{}, Internal(err)
	}
	authURL, err := c.auth.AuthCodeURL(ctx, graphsync.SignInRequest{Mailbox: m, State: state, Challenge: challenge, LoginHint: loginHint(m)})
	if err != nil {
		if e := notConfigured(err); e != nil {
			return ConnectResult{}, e
		}
		c.log.Error().Err(err).Str("mailbox", m.ID).Msg("sign-in URL: Microsoft's identity platform did not answer")
		return ConnectResult{}, &Error{Kind: KindUser, Code: "graph_error", Message: "MailDesk could not reach Microsoft's sign-in service to start the connection of " + m.Email + "; try again in a minute (the sidecar's log has the details)", Err: err}
	}
	expires := c.now().Add(StateTTL).UTC()
	if err := c.st.PutOAuthState(store.OAuthState{State: state, MailboxID: m.ID, Verifier: verifier, ExpiresAt: expires, CreatedBy: a.UID, CreatedAt: c.now().UTC()}); err != nil {
		return ConnectResult{}, Internal(err)
	}
	switch m.State {
	case StateConnected, StateSyncing:
		// keep syncing with the current tokens until the new sign-in lands
	default:
		if _, err := Transition(c.st, a, m.ID, StatePendingConsent, "", "", nil); err != nil {
			return ConnectResult{}, AsError(err)
		}
	}
	c.audit(a, "mailbox.connect_started", m.ID, map[string]any{"login_hint": loginHint(m), "expires_at": expires})
	return ConnectResult{AuthURL: authURL, ExpiresAt: expires}, nil
}

// Complete finishes a sign-in with what Microsoft sent back. On success the
// tokens are stored (sealed), the account's home id and address kept, and the
// mailbox is connected; its sync position (cursors) is untouched, so a
// reconnected mailbox carries on where it stopped.
//
// Every failure is a clear UserError and leaves the mailbox's state and
// tokens as they were: an unknown, replayed or expired state, a state of
// another mailbox, a code Microsoft refuses, the wrong account, a delegate
// without access to the shared mailbox, Microsoft's own error (consent
// denied, admin consent missing). A mailbox waiting in pending_consent
// records the failure as its error so Odoo shows it.
func (c *Connector) Complete(ctx context.Context, a Actor, p CompleteParams) (MailboxView, error) {
	if p.State == "" {
		if p.Error != "" {
			return MailboxView{}, microsoftError(p, "")
		}
		return MailboxView{}, Invalid("Parameter state is required: pass on the state Microsoft sent back with the code")
	}
	if p.Code == "" && p.Error == "" {
		return MailboxView{}, Invalid("Parameter code (or error) is required: pass on what Microsoft sent back")
	}
	st, err := c.st.ConsumeOAuthState(p.State)
	switch {
	case errors.Is(err, store.ErrNotFound):
		c.audit(a, "mailbox.connect_failed", p.MailboxID, map[string]any{"code": "invalid_state"})
		return MailboxView{}, Errorf(KindUser, "invalid_state", "This sign-in link was already used or is not known to MailDesk. Start the connection again from the mailbox in Odoo (Connect).")
	case errors.Is(err, store.ErrExpired):
		email := st.MailboxID
		if m, merr := c.st.Mailbox(st.MailboxID); merr == nil {
			email = m.Email
		}
		c.audit(a, "mailbox.connect_failed", st.MailboxID, map[string]any{"code": "state_expired"})
		return MailboxView{}, Errorf(KindUser, "state_expired", "The sign-in link for %s expired (links are valid %d minutes). Start the connection again from the mailbox in Odoo (Connect).", email, int(StateTTL/time.Minute))
	case err != nil:
		return MailboxView{}, Internal(err)
	}
	if p.MailboxID != "" && p.MailboxID != st.MailboxID {
		c.audit(a, "mailbox.connect_failed", p.MailboxID, map[string]any{"code": "invalid_state", "state_mailbox": st.MailboxID})
		return MailboxView{}, Errorf(KindUser, "invalid_state", "This sign-in was started for another mailbox, not %s. Start the connection again from the mailbox you want to connect.", p.MailboxID)
	}
	m, err := c.st.Mailbox(st.MailboxID)
	if err != nil {
		if errors.Is(err, store.ErrNotFound) {
			return MailboxView{}, NotFound("The mailbox this sign-in was for no longer exists (it was deleted)")
		}
		return MailboxView{}, Internal(err)
	}
	if p.Error != "" {
		return MailboxView{}, c.fail(a, m, microsoftError(p, m.Email))
	}
	if m.State != StateConnected && !CanTransition(m.State, StateConnected) {
		return MailboxView{}, c.fail(a, m, Errorf(KindUser, "invalid_state", "Mailbox %s is %s: it cannot be connected from there. Start the connection again (Connect).", m.Email, m.State))
	}
	si, err := c.auth.Redeem(ctx, m, p.Code, st.Verifier)
	if err != nil {
		return MailboxView{}, c.fail(a, m, redeemError(m, err))
	}
	switch {
	case m.Kind == "shared":
		if err := si.CheckMailboxAccess(ctx, m.Email); err != nil {
			if errors.Is(err, graphsync.ErrNoMailboxAccess) {
				return MailboxView{}, c.fail(a, m, &Error{Kind: KindUser, Code: "no_mailbox_access", Err: err,
					Message: fmt.Sprintf("%s signed in but cannot open the shared mailbox %s. In Exchange, give %s Full Access to %s, then connect again.", si.Username, m.Email, si.Username, m.Email)})
			}
			return MailboxView{}, c.fail(a, m, &Error{Kind: KindUser, Code: "graph_error", Err: err,
				Message: fmt.Sprintf("MailDesk could not check that %s can open %s; try the connection again in a minute", si.Username, m.Email)})
		}
	default:
		ok, err := si.IsAccount(ctx, m.Email)
		if err != nil {
			return MailboxView{}, c.fail(a, m, &Error{Kind: KindUser, Code: "graph_error", Err: err,
				Message: fmt.Sprintf("MailDesk could not check that %s is %s; try the connection again in a minute", si.Username, m.Email)})
		}
		if !ok {
			return MailboxView{}, c.fail(a, m, Errorf(KindUser, "wrong_account",
				"%s signed in, but this mailbox is %s. Start the connection again and sign in as %s (use another browser profile if the wrong account is remembered).", si.Username, m.Email, m.Email))
		}
	}
	// Keep the old cache until the new state is written, so a failure below
	// leaves the mailbox exactly as it was.
	old, err := c.st.TokenCache(m.ID)
	if err != nil {
		return MailboxView{}, Internal(err)
	}
	if err := si.Commit(); err != nil {
		return MailboxView{}, Internal(err)
	}
	now := c.now().UTC()
	updated, err := Transition(c.st, a, m.ID, StateConnected, "", "", func(mb *store.MailboxStatus) {
		mb.HomeAccountID = si.HomeAccountID
		mb.ConnectedAs = si.Username
		mb.ConnectedAt = now
		mb.Failures = 0
	})
	if err != nil {
		c.restoreTokens(m.ID, old)
		return MailboxView{}, AsError(err)
	}
	c.dropReauthNotices(m.ID)
	c.audit(a, "mailbox.connected", m.ID, map[string]any{"connected_as": si.Username, "kind": m.Kind})
	c.log.Info().Str("mailbox", m.ID).Str("connected_as", si.Username).Msg("mailbox connected")
	if c.onConnected != nil {
		c.onConnected(m.ID)
	}
	return ViewOf(updated), nil
}

func (c *Connector) restoreTokens(id string, old []byte) {
	var err error
	if old == nil {
		err = c.st.DeleteTokenCache(id)
	} else {
		err = c.st.PutTokenCache(id, old)
	}
	c.auth.Forget(id)
	if err != nil {
		c.log.Error().Err(err).Str("mailbox", id).Msg("could not restore the previous token cache after a failed connect")
	}
}

// fail audits a failed completion and, for a mailbox waiting for its
// sign-in, records the error on it (its state stays pending_consent).
func (c *Connector) fail(a Actor, m store.Mailbox, e *Error) *Error {
	c.audit(a, "mailbox.connect_failed", m.ID, map[string]any{"code": e.Code})
	c.log.Warn().Str("mailbox", m.ID).Str("code", e.Code).Msg("sign-in not completed")
	if m.State == StatePendingConsent {
		if _, err := Transition(c.st, a, m.ID, StatePendingConsent, e.Code, e.Message, nil); err != nil {
			c.log.Error().Err(err).Str("mailbox", m.ID).Msg("could not record the sign-in error on the mailbox")
		}
	}
	return e
}

// microsoftError turns the error Microsoft put on the redirect into a
// UserError: consent denied, admin consent missing, or Microsoft's reason.
func microsoftError(p CompleteParams, email string) *Error {
	desc := firstLine(p.ErrorDescription)
	code := graphsync.AADSTSOf(p.ErrorDescription)
	who := "the mailbox"
	if email != "" {
		who = email
	}
	switch {
	case code == "AADSTS65001" || code == "AADSTS90094" || code == "AADSTS90008" || code == "AADSTS900941" || p.Error == "consent_required":
		return Errorf(KindUser, "consent_missing", "Your Microsoft 365 administrator must approve MailDesk first (admin consent): a Global Administrator or Cloud Application Administrator opens the link in Settings → MailDesk → Grant admin consent; then connect %s again. Microsoft said: %s", who, desc)
	case p.Error == "access_denied":
		return Errorf(KindUser, "consent_denied", "The sign-in for %s was cancelled: the permissions MailDesk asks for were declined. Start the connection again and choose Accept. Microsoft said: %s", who, desc)
	default:
		return Errorf(KindUser, "signin_failed", "Microsoft did not complete the sign-in for %s (%s): %s. Start the connection again.", who, p.Error, desc)
	}
}

// redeemError explains why Microsoft refused to redeem the code.
func redeemError(m store.Mailbox, err error) *Error {
	if e := notConfigured(err); e != nil {
		return AsError(e)
	}
	var me *graphsync.MSALError
	if errors.As(err, &me) {
		if me.Code == "invalid_client" || me.Code == "unauthorized_client" {
			return &Error{Kind: KindUser, Code: "not_configured", Err: err,
				Message: fmt.Sprintf("Microsoft rejected MailDesk's app credentials (%s %s): a MailDesk administrator must check the client id and renew the client secret or certificate in Settings → MailDesk. Microsoft said: %s", me.Code, me.AADSTS, me.Reason)}
		}
		return &Error{Kind: KindUser, Code: "signin_failed", Err: err,
			Message: fmt.Sprintf("Microsoft refused to finish the sign-in for %s (%s %s): %s. Start the connection again.", m.Email, me.Code, me.AADSTS, me.Reason)}
	}
	return &Error{Kind: KindUser, Code: "graph_error", Err: err,
		Message: fmt.Sprintf("MailDesk could not reach Microsoft to finish the sign-in for %s; start the connection again in a minute (the sidecar's log has the details)", m.Email)}
}

func firstLine(s string) string {
	if i := strings.IndexAny(s, "\r\n"); i >= 0 {
		s = s[:i]
	}
	s = strings.TrimSpace(s)
	if len(s) > 400 {
		s = s[:400] + "…"
	}
	return s
}

// Disconnect erases the mailbox's tokens and makes it disconnected. Its
// cursors and cached mail stay, so connecting again resumes.
func (c *Connector) Disconnect(ctx context.Context, a Actor, p ConnectParams) (MailboxView, error) {
	m, err := c.load(a, p.MailboxID)
	if err != nil {
		return MailboxView{}, err
	}
	if err := c.st.DeleteTokenCache(m.ID); err != nil {
		return MailboxView{}, Internal(err)
	}
	c.auth.Forget(m.ID)
	updated, err := TransitionAudited(c.st, a, m.ID, StateDisconnected, "", "", func(mb *store.MailboxStatus) {
		mb.HomeAccountID = ""
	}, "mailbox.disconnect", map[string]any{"tokens": "erased"})
	if err != nil {
		return MailboxView{}, AsError(err)
	}
	c.log.Info().Str("mailbox", m.ID).Msg("mailbox disconnected; tokens erased")
	return ViewOf(updated), nil
}

// Forget drops a deleted mailbox's MSAL client from memory (store.DeleteMailbox
// erases its token cache).
func (c *Connector) Forget(mailboxID string) { c.auth.Forget(mailboxID) }

// AdminConsentURL is consent.admin_url: the one-click admin consent link.
func (c *Connector) AdminConsentURL(a Actor, p AdminURLParams) (AdminURLResult, error) {
	if !a.Admin {
		return AdminURLResult{}, Forbidden("Only a MailDesk administrator may ask for the admin consent link")
	}
	u, err := c.auth.AdminConsentURL(p.Tenant)
	if err != nil {
		if e := notConfigured(err); e != nil {
			return AdminURLResult{}, e
		}
		return AdminURLResult{}, Internal(err)
	}
	return AdminURLResult{URL: u}, nil
}

// Token implements graphsync.TokenSource for the sync engine: a Graph access
// token, acquired silently before every Graph call. When Microsoft refuses
// (a *graphsync.ReauthError), the mailbox becomes reauth_required at once,
// with the reason and a notice queued for its main user; the error is
// returned unchanged so the caller stops syncing that mailbox.
func (c *Connector) Token(ctx context.Context, mailboxID string) (string, error) {
	tok, err := c.auth.Token(ctx, mailboxID)
	if err != nil && graphsync.IsReauth(err) {
		if merr := c.MarkReauth(ctx, mailboxID, err); merr != nil {
			c.log.Error().Err(merr).Str("mailbox", mailboxID).Msg("could not mark the mailbox reauth_required")
		}
	}
	return tok, err
}

// The Graph client drops a refused access token through Invalidate and, when
// Graph refuses even a refreshed one, records the lost sign-in through
// MarkReauth.
var (
	_ graphsync.Invalidator  = (*Connector)(nil)
	_ graphsync.ReauthMarker = (*Connector)(nil)
)

// Invalidate drops the mailbox's cached access token so the next Token call
// asks Microsoft (call it when Graph answers 401 InvalidAuthenticationToken).
func (c *Connector) Invalidate(ctx context.Context, mailboxID string) error {
	return c.auth.Invalidate(ctx, mailboxID)
}

// MarkReauth moves a connected (or syncing, or failing) mailbox to
// reauth_required with Microsoft's reason, and queues the notice for its
// main user (store.QueueNotice kind "reauth_required"; the pusher turns it
// into Odoo's maildesk_notify, an activity "Sign in again"). The scheduler skips the mailbox from then
// on; other mailboxes carry on. A mailbox already reauth_required, or not
// connected at all, is left alone. cause should be a *graphsync.ReauthError.
func (c *Connector) MarkReauth(ctx context.Context, mailboxID string, cause error) error {
	m, err := c.st.Mailbox(mailboxID)
	if err != nil {
		return fmt.Errorf("bridge: mark %s reauth_required: %w", mailboxID, err)
	}
	if m.State == StateReauthRequired || !CanTransition(m.State, StateReauthRequired) {
		return nil
	}
	reason := "Microsoft no longer accepts its sign-in"
	detail := map[string]any{}
	var re *graphsync.ReauthError
	if errors.As(cause, &re) {
		detail["error"] = re.Code
		if re.AADSTS != "" {
			detail["aadsts"] = re.AADSTS
		}
		if re.Reason != "" {
			reason = "Microsoft said: " + re.Reason
		}
	}
	msg := fmt.Sprintf("Mailbox %s needs its owner to sign in again (Connect). %s", m.Email, reason)
	_, err = Transition(c.st, Actor{}, mailboxID, StateReauthRequired, "reauth_required", msg, nil)
	if err != nil {
		var be *Error
		if errors.As(err, &be) && be.Code == "invalid_state" {
			return nil // changed meanwhile (disconnected...): nothing to do
		}
		return fmt.Errorf("bridge: mark %s reauth_required: %w", mailboxID, err)
	}
	if err := c.st.QueueNotice(store.Notice{MailboxID: mailboxID, Kind: "reauth_required", Reason: reason}); err != nil {
		c.log.Error().Err(err).Str("mailbox", mailboxID).Msg("could not queue the sign-in-again notice for Odoo")
	}
	c.auditActor("sidecar", Actor{}, "mailbox.reauth_required", mailboxID, detail)
	c.log.Warn().Str("mailbox", mailboxID).Interface("detail", detail).Msg("mailbox needs its owner to sign in again; syncing it stops")
	return nil
}

// dropReauthNotices removes sign-in-again notices Odoo has not received
// yet: the mailbox was reconnected, the activity would be stale.
func (c *Connector) dropReauthNotices(mailboxID string) {
	ns, err := c.st.Notices()
	if err != nil {
		c.log.Error().Err(err).Str("mailbox", mailboxID).Msg("read waiting notices")
		return
	}
	for _, n := range ns {
		if n.MailboxID == mailboxID && n.Kind == "reauth_required" {
			if err := c.st.DeleteNotice(n.Seq); err != nil {
				c.log.Error().Err(err).Str("mailbox", mailboxID).Msg("drop a stale sign-in-again notice")
			}
		}
	}
}

func (c *Connector) audit(a Actor, action, mailboxID string, detail map[string]any) {
	name := "odoo"
	if a.UID == 0 {
		name = "sidecar"
	}
	c.auditActor(name, a, action, mailboxID, detail)
}

func (c *Connector) auditActor(name string, a Actor, action, mailboxID string, detail map[string]any) {
	if err := c.st.Audit(store.AuditEntry{UID: a.UID, Actor: name, Action: action, MailboxID: mailboxID, Detail: detail}); err != nil {
		c.log.Error().Err(err).Str("action", action).Str("mailbox", mailboxID).Msg("audit entry not written")
	}
}
