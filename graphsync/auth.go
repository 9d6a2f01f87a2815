package graphsync

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"net/http"
	"net/url"
	"strings"
	"sync"
	"time"

	"github.com/AzureAD/microsoft-authentication-library-for-go/apps/confidential"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/rs/zerolog"

	"github.com/maildesk/maildesk/store"
)

// DefaultAuthority is Microsoft's public identity platform.
const DefaultAuthority = "https://login.microsoftonline.com"

// graphResource prefixes every Graph scope.
const graphResource = "https://graph.microsoft.com/"

// Delegated Graph permissions a mailbox needs (DESIGN.md). Shared mailboxes
// also need the *.Shared ones; no application permission is ever asked for.
var (
	personalScopes = []string{graphResource + "Mail.ReadWrite", graphResource + "Mail.Send", graphResource + "User.Read"}
	sharedScopes   = []string{graphResource + "Mail.ReadWrite.Shared", graphResource + "Mail.Send.Shared"}
	// oidcScopes go into the sign-in URL only: MSAL adds them to token
	// requests itself, but AuthCodeURL puts only what it is given in the URL.
	oidcScopes = []string{"offline_access", "openid", "profile"}
)

// Scopes returns the Graph scopes a mailbox of kind ("personal" or "shared")
// asks for, without the OpenID ones.
func Scopes(kind string) []string {
	out := append([]string(nil), personalScopes...)
	if kind == "shared" {
		out = append(out, sharedScopes...)
	}
	return out
}

// AdminConsentScopes lists every scope MailDesk may ask for, for the
// one-click admin consent link.
func AdminConsentScopes() []string {
	return append(Scopes("shared"), "offline_access")
}

// AuthOptions configure Auth. The zero value talks to Microsoft with a 30 s
// timeout.
type AuthOptions struct {
	// HTTPClient carries every identity and Graph-check request. It must have
	// a Timeout and trust the authority's certificate (the simulator's CA in
	// tests and demos). Default: 30 s timeout, system roots.
	HTTPClient *http.Client
	// GraphBaseURL is where the shared-mailbox access check goes
	// (default DefaultBaseURL; the simulator's GraphBaseURL()).
	GraphBaseURL string
	// Log receives what happened (mailbox ids, error codes); never tokens,
	// codes, verifiers or secrets.
	Log zerolog.Logger
	// Registerer receives the token metrics (nil: not registered).
	Registerer prometheus.Registerer
}

// AppConfig is where Auth reads the Azure app (settings.azure); a change
// of settings.updated_at makes it read the app again.
type AppConfig interface {
	Settings() (store.Settings, error)
}

// TokenCaches keeps each mailbox's MSAL cache (sealed by the store; nil
// when there is none).
type TokenCaches interface {
	TokenCache(mailboxID string) ([]byte, error)
	PutTokenCache(mailboxID string, cache []byte) error
}

// AuthStore is what Auth needs of storage: the app config and the token
// caches. *store.Store is one.
type AuthStore interface {
	AppConfig
	TokenCaches
}

// Account is the Microsoft account a mailbox signed in as.
type Account struct {
	MailboxID     string
	Kind          string // personal | shared: the scopes asked for
	HomeAccountID string // MSAL account (uid.utid)
}

// Accounts says which account a mailbox signed in as. Mailbox state is the
// bridge's: it answers an error wrapping store.ErrNotFound for a mailbox
// that does not exist, ErrNotConnected for one without an account, and a
// *ReauthError (with the Account filled) for one whose owner must sign in
// again. Auth decides nothing about mailbox state.
type Accounts interface {
	Account(mailboxID string) (Account, error)
}

// Auth is the MSAL side of MailDesk: one confidential client per mailbox,
// its token cache kept sealed in the store. It implements TokenSource. Safe
// for concurrent use.
type Auth struct {
	st       AuthStore
	accounts Accounts
	http     *http.Client
	base     string
	log      zerolog.Logger

	mu      sync.Mutex
	cfg     *authConfig // nil until read; dropped when settings change
	clients map[string]*mailboxClient

	tokens *prometheus.CounterVec
	held   prometheus.GaugeFunc
}

// authConfig is the Azure app as the settings describe it.
type authConfig struct {
	authority   string // e.g. https://login.microsoftonline.com/contoso.com
	base        string // authority without the tenant
	tenant      string
	clientID    string
	redirectURI string
	overridden  bool // authority is not Microsoft's: no instance discovery
	cred        confidential.Credential
	updatedAt   time.Time
	fingerprint string
}

// mailboxClient is one mailbox's MSAL client. mu serialises acquisitions so
// two Graph calls of one mailbox never refresh twice at once.
type mailboxClient struct {
	mu     sync.Mutex
	client confidential.Client
	cache  *tokenCache
	homeID string
	kind   string
	fp     string
}

// NewAuth builds the MSAL side over the app config and token caches (st)
// and the bridge's view of which account each mailbox signed in as.
func NewAuth(st AuthStore, accounts Accounts, opts AuthOptions) *Auth {
	hc := opts.HTTPClient
	if hc == nil {
		hc = &http.Client{Timeout: 30 * time.Second}
	}
	base := strings.TrimRight(opts.GraphBaseURL, "/")
	if base == "" {
		base = DefaultBaseURL
	}
	a := &Auth{st: st, accounts: accounts, http: hc, base: base, log: opts.Log, clients: map[string]*mailboxClient{}}
	a.tokens = prometheus.NewCounterVec(prometheus.CounterOpts{
		Name: "maildesk_token_acquisitions_total",
		Help: "Silent token acquisitions by outcome: ok, reauth (the owner must sign in again), error (transient or app problem).",
	}, []string{"outcome"})
	a.held = prometheus.NewGaugeFunc(prometheus.GaugeOpts{
		Name: "maildesk_msal_clients",
		Help: "MSAL clients (one per connected mailbox in use) held in memory.",
	}, func() float64 { return float64(a.Clients()) })
	if opts.Registerer != nil {
		_ = opts.Registerer.Register(a.tokens)
		_ = opts.Registerer.Register(a.held)
	}
	return a
}

// ErrNotConfigured means the settings lack the Azure app (client id, tenant,
// redirect URI, secret or certificate).
var ErrNotConfigured = errors.New("the Microsoft 365 app is not configured")

// ErrNotConnected means the mailbox has no signed-in account.
var ErrNotConnected = errors.New("mailbox is not connected")

// config returns the Azure app from the settings, rebuilding it (and
// dropping every client) when the settings changed since the last call.
func (a *Auth) config() (*authConfig, error) {
	st, err := a.st.Settings()
	if err != nil {
		return nil, fmt.Errorf("graphsync: auth settings: %w", err)
	}
	a.mu.Lock()
	defer a.mu.Unlock()
	if a.cfg != nil && a.cfg.updatedAt.Equal(st.UpdatedAt) {
		return a.cfg, nil
	}
	cfg, err := buildConfig(st.Azure)
	if err != nil {
		return nil, err
	}
	cfg.updatedAt = st.UpdatedAt
	if a.cfg == nil || a.cfg.fingerprint != cfg.fingerprint {
		// Another app, secret or authority: clients built for the old one
		// must not be used again. Their caches stay in the store.
		a.clients = map[string]*mailboxClient{}
	}
	a.cfg = cfg
	return cfg, nil
}

func buildConfig(az store.AzureSettings) (*authConfig, error) {
	var missing []string
	if az.ClientID == "" {
		missing = append(missing, "client id")
	}
	if az.Tenant == "" {
		missing = append(missing, "tenant")
	}
	if az.RedirectURI == "" {
		missing = append(missing, "redirect URI")
	}
	if az.ClientSecret == "" && az.CertificatePEM == "" {
		missing = append(missing, "client secret or certificate")
	}
	if len(missing) > 0 {
		return nil, fmt.Errorf("graphsync: %w: missing %s", ErrNotConfigured, strings.Join(missing, ", "))
	}
	base := strings.TrimRight(az.Authority, "/")
	overridden := base != "" && !strings.EqualFold(base, DefaultAuthority)
	if base == "" {
		base = DefaultAuthority
	}
	if u, err := url.Parse(base); err != nil || u.Scheme != "https" || u.Host == "" {
		return nil, fmt.Errorf("graphsync: %w: authority %q is not an https URL", ErrNotConfigured, az.Authority)
	}
	var cred confidential.Credential
	var err error
	if az.CertificatePEM != "" {
		certs, key, cerr := confidential.CertFromPEM([]byte(az.CertificatePEM), "")
		if cerr != nil {
			// cerr may quote the PEM parser, never the key itself.
			return nil, fmt.Errorf("graphsync: %w: the certificate is not a PEM certificate with its private key: %v", ErrNotConfigured, cerr)
		}
		cred, err = confidential.NewCredFromCert(certs, key)
	} else {
		cred, err = confidential.NewCredFromSecret(az.ClientSecret)
	}
	if err != nil {
		return nil, fmt.Errorf("graphsync: %w: credential: %v", ErrNotConfigured, err)
	}
	h := sha256.New()
	for _, s := range []string{base, az.Tenant, az.ClientID, az.RedirectURI, az.ClientSecret, az.CertificatePEM} {
		h.Write([]byte(s))
		h.Write([]byte{0})
	}
	return &authConfig{
		authority: base + "/" + az.Tenant, base: base, tenant: az.Tenant, clientID: az.ClientID,
		redirectURI: az.RedirectURI, overridden: overridden, cred: cred,
		fingerprint: hex.EncodeToString(h.Sum(nil)),
	}, nil
}

// newClient builds an MSAL client over cache.
func (a *Auth) newClient(cfg *authConfig, cache *tokenCache) (confidential.Client, error) {
	opts := []confidential.Option{confidential.WithCache(cache), confidential.WithHTTPClient(a.http)}
	if cfg.overridden {
		// A local authority (the simulator) is not in Microsoft's instance list.
		opts = append(opts, confidential.WithInstanceDiscovery(false))
	}
	c, err := confidential.New(cfg.authority, cfg.clientID, cfg.cred, opts...)
	if err != nil {
		return confidential.Client{}, fmt.Errorf("graphsync: MSAL client for %s: %w", cfg.authority, err)
	}
	return c, nil
}

// client returns the mailbox's MSAL client, building it on first use or when
// the settings or the signed-in account changed.
func (a *Auth) client(m Account) (*mailboxClient, error) {
	cfg, err := a.config()
	if err != nil {
		return nil, err
	}
	a.mu.Lock()
	mc := a.clients[m.MailboxID]
	a.mu.Unlock()
	if mc != nil && mc.fp == cfg.fingerprint && mc.homeID == m.HomeAccountID && mc.kind == m.Kind {
		return mc, nil
	}
	cache := &tokenCache{st: a.st, mailboxID: m.MailboxID}
	c, err := a.newClient(cfg, cache)
	if err != nil {
		return nil, err
	}
	mc = &mailboxClient{client: c, cache: cache, homeID: m.HomeAccountID, kind: m.Kind, fp: cfg.fingerprint}
	a.mu.Lock()
	if cur := a.clients[m.MailboxID]; cur != nil && cur.fp == mc.fp && cur.homeID == mc.homeID && cur.kind == mc.kind {
		mc = cur // another caller won the race
	} else {
		a.clients[m.MailboxID] = mc
	}
	a.mu.Unlock()
	return mc, nil
}

// Forget drops the mailbox's client from memory (after a disconnect or a
// delete; the store erases the cache itself).
func (a *Auth) Forget(mailboxID string) {
	a.mu.Lock()
	delete(a.clients, mailboxID)
	a.mu.Unlock()
}

// Sweep drops the clients of mailboxes that were deleted or lost their
// account (disconnected elsewhere) and returns how many it dropped.
func (a *Auth) Sweep() (int, error) {
	a.mu.Lock()
	ids := make([]string, 0, len(a.clients))
	for id := range a.clients {
		ids = append(ids, id)
	}
	a.mu.Unlock()
	n := 0
	for _, id := range ids {
		acct, err := a.accounts.Account(id)
		gone := errors.Is(err, store.ErrNotFound) || errors.Is(err, ErrNotConnected)
		if err != nil && !gone && !IsReauth(err) {
			return n, fmt.Errorf("graphsync: sweep MSAL clients: %w", err)
		}
		a.mu.Lock()
		if mc := a.clients[id]; mc != nil && (gone || acct.HomeAccountID == "" || acct.HomeAccountID != mc.homeID) {
			delete(a.clients, id)
			n++
		}
		a.mu.Unlock()
	}
	return n, nil
}

// Clients is how many MSAL clients are held in memory.
func (a *Auth) Clients() int {
	a.mu.Lock()
	defer a.mu.Unlock()
	return len(a.clients)
}

// Token implements TokenSource: a Graph access token for the mailbox,
// acquired silently (from the cache, or refreshed) before every Graph call.
// A refusal that only the owner signing in again can cure is a *ReauthError;
// a mailbox that was never connected gives ErrNotConnected.
func (a *Auth) Token(ctx context.Context, mailboxID string) (string, error) {
	m, err := a.accounts.Account(mailboxID)
	if err != nil {
		if errors.Is(err, store.ErrNotFound) {
			a.Forget(mailboxID)
		}
		if IsReauth(err) {
			return "", err
		}
		return "", fmt.Errorf("graphsync: token for %s: %w", mailboxID, err)
	}
	if m.HomeAccountID == "" {
		return "", fmt.Errorf("graphsync: token for %s: %w", mailboxID, ErrNotConnected)
	}
	mc, err := a.client(m)
	if err != nil {
		return "", err
	}
	mc.mu.Lock()
	defer mc.mu.Unlock()
	acct, err := mc.client.Account(ctx, m.HomeAccountID)
	if err != nil {
		return "", fmt.Errorf("graphsync: token for %s: read cache: %w", mailboxID, err)
	}
	if acct.IsZero() {
		return "", &ReauthError{MailboxID: mailboxID, Code: "no_token", Reason: "no signed-in account is stored for this mailbox"}
	}
	res, err := mc.client.AcquireTokenSilent(ctx, Scopes(m.Kind), confidential.WithSilentAccount(acct))
	if err != nil {
		err = a.tokenError(mailboxID, err)
		if IsReauth(err) {
			a.count("reauth")
		} else {
			a.count("error")
		}
		return "", err
	}
	a.count("ok")
	return res.AccessToken, nil
}

func (a *Auth) count(outcome string) {
	if a.tokens != nil {
		a.tokens.WithLabelValues(outcome).Inc()
	}
}

// tokenError classifies a failed silent acquisition.
func (a *Auth) tokenError(mailboxID string, err error) error {
	me := parseMSALError(err)
	if me == nil {
		if strings.Contains(err.Error(), "no token found") {
			a.log.Warn().Str("mailbox", mailboxID).Msg("graphsync: no refresh token in the cache; the owner must sign in again")
			return &ReauthError{MailboxID: mailboxID, Code: "no_token", Reason: "no refresh token is stored for this mailbox"}
		}
		// Network trouble, timeouts: transient, the caller retries later.
		return fmt.Errorf("graphsync: token for %s: %w", mailboxID, err)
	}
	if me.needsSignIn() {
		a.log.Warn().Str("mailbox", mailboxID).Str("error", me.Code).Str("aadsts", me.AADSTS).Msg("graphsync: Microsoft refused to refresh the mailbox's tokens; the owner must sign in again")
		return &ReauthError{MailboxID: mailboxID, Code: me.Code, AADSTS: me.AADSTS, Reason: me.Reason}
	}
	a.log.Error().Str("mailbox", mailboxID).Str("error", me.Code).Str("aadsts", me.AADSTS).Int("status", me.Status).Msg("graphsync: token refresh failed")
	return fmt.Errorf("graphsync: token for %s: %w", mailboxID, me)
}

// Invalidator is implemented by TokenSources that can drop a mailbox's
// cached access token (Auth, bridge.Connector). On a Graph 401 the Client
// (budgetTransport) calls Invalidate and retries the request once with the
// token Token then acquires (refreshed), or fails with its *ReauthError.
type Invalidator interface {
	Invalidate(ctx context.Context, mailboxID string) error
}

var (
	_ TokenSource = (*Auth)(nil)
	_ Invalidator = (*Auth)(nil)
)

// Invalidate drops the mailbox's cached access tokens (keeping its refresh
// token), so the next Token call asks Microsoft again. The Graph client
// calls it when Graph answers 401 InvalidAuthenticationToken for a token
// MSAL still believed valid (revoked sessions, continuous access
// evaluation, a restarted simulator); if the refresh is then refused,
// Token returns a *ReauthError.
func (a *Auth) Invalidate(ctx context.Context, mailboxID string) error {
	a.mu.Lock()
	mc := a.clients[mailboxID]
	a.mu.Unlock()
	if mc != nil {
		mc.mu.Lock()
		defer mc.mu.Unlock()
	}
	raw, err := a.st.TokenCache(mailboxID)
	if err != nil {
		return fmt.Errorf("graphsync: invalidate tokens of %s: %w", mailboxID, err)
	}
	if raw != nil {
		out, err := dropAccessTokens(raw)
		if err != nil {
			return fmt.Errorf("graphsync: invalidate tokens of %s: %w", mailboxID, err)
		}
		if err := a.st.PutTokenCache(mailboxID, out); err != nil {
			return fmt.Errorf("graphsync: invalidate tokens of %s: %w", mailboxID, err)
		}
	}
	if mc != nil {
		mc.cache.reload()
	}
	return nil
}
