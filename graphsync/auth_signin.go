package graphsync

import (
	"context"
	"crypto/rand"
	"crypto/sha256"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"strings"
	"time"

	"github.com/AzureAD/microsoft-authentication-library-for-go/apps/confidential"

	"github.com/maildesk/maildesk/store"
)

// NewPKCE returns a fresh PKCE verifier (RFC 7636: 43 characters of
// base64url from 32 random bytes) and its S256 challenge.
func NewPKCE() (verifier, challenge string, err error) {
	verifier, err = RandomToken(32)
	if err != nil {
		return "", "", err
	}
	sum := sha256.Sum256([]byte(verifier))
	return verifier, base64.RawURLEncoding.EncodeToString(sum[:]), nil
}

// RandomToken returns n random bytes as unpadded base64url.
func RandomToken(n int) (string, error) {
	b := make([]byte, n)
	if _, err := rand.Read(b); err != nil {
		return "", fmt.Errorf("graphsync: no randomness: %w", err)
	}
	return base64.RawURLEncoding.EncodeToString(b), nil
}

// SignInRequest is what the sign-in URL of one mailbox carries.
type SignInRequest struct {
	Mailbox   store.Mailbox
	State     string // random, single use, bound to the mailbox by the caller
	Challenge string // PKCE S256 challenge
	LoginHint string // the address expected to sign in
}

// AuthCodeURL returns Microsoft's sign-in URL for the mailbox: its scopes
// (plus offline_access openid profile), state, PKCE S256 challenge,
// login_hint and prompt=select_account.
func (a *Auth) AuthCodeURL(ctx context.Context, r SignInRequest) (string, error) {
	cfg, err := a.config()
	if err != nil {
		return "", err
	}
	// A throwaway client: the URL needs the authority's endpoints, not a cache.
	c, err := a.newClient(cfg, &tokenCache{st: a.st, mailboxID: r.Mailbox.ID, staging: true})
	if err != nil {
		return "", err
	}
	scopes := append(Scopes(r.Mailbox.Kind), oidcScopes...)
	raw, err := c.AuthCodeURL(ctx, cfg.clientID, cfg.redirectURI, scopes)
	if err != nil {
		return "", fmt.Errorf("graphsync: sign-in URL from %s: %w", cfg.authority, err)
	}
	u, err := url.Parse(raw)
	if err != nil {
		return "", fmt.Errorf("graphsync: sign-in URL: %w", err)
	}
	// MSAL Go's AuthCodeURL has no state or PKCE option (FACTS.md), and its
	// prompt type is internal: add them here.
	q := u.Query()
	q.Set("state", r.State)
	q.Set("code_challenge", r.Challenge)
	q.Set("code_challenge_method", "S256")
	q.Set("prompt", "select_account")
	if r.LoginHint != "" {
		q.Set("login_hint", r.LoginHint)
	}
	u.RawQuery = q.Encode()
	return u.String(), nil
}

// AdminConsentURL is the one-click link with which a Global Administrator
// grants MailDesk's delegated permissions for the whole tenant. tenant
// overrides the configured one when not empty.
func (a *Auth) AdminConsentURL(tenant string) (string, error) {
	st, err := a.st.Settings()
	if err != nil {
		return "", fmt.Errorf("graphsync: admin consent URL: %w", err)
	}
	az := st.Azure
	if tenant == "" {
		tenant = az.Tenant
	}
	if az.ClientID == "" || tenant == "" || az.RedirectURI == "" {
		return "", fmt.Errorf("graphsync: %w: the admin consent link needs the client id, tenant and redirect URI", ErrNotConfigured)
	}
	base := strings.TrimRight(az.Authority, "/")
	if base == "" {
		base = DefaultAuthority
	}
	q := url.Values{}
	q.Set("client_id", az.ClientID)
	q.Set("redirect_uri", az.RedirectURI)
	q.Set("scope", strings.Join(AdminConsentScopes(), " "))
	return base + "/" + url.PathEscape(tenant) + "/v2.0/adminconsent?" + q.Encode(), nil
}

// SignIn is a redeemed authorization code whose tokens are not stored yet:
// the caller checks the account first, then calls Commit (or drops it, and
// nothing reaches the store).
type SignIn struct {
	HomeAccountID string // MSAL account id (uid.utid)
	Username      string // preferred_username of the account that signed in

	a         *Auth
	mailboxID string
	kind      string
	fp        string
	client    confidential.Client
	cache     *tokenCache
	token     string
}

// Redeem redeems the code with the PKCE verifier. The tokens stay in memory
// until Commit. A refusal is an *MSALError (expired or replayed code,
// verifier mismatch, wrong client secret).
func (a *Auth) Redeem(ctx context.Context, m store.Mailbox, code, verifier string) (*SignIn, error) {
	cfg, err := a.config()
	if err != nil {
		return nil, err
	}
	cache := &tokenCache{st: a.st, mailboxID: m.ID, staging: true}
	c, err := a.newClient(cfg, cache)
	if err != nil {
		return nil, err
	}
	res, err := c.AcquireTokenByAuthCode(ctx, code, cfg.redirectURI, Scopes(m.Kind), confidential.WithChallenge(verifier))
	if err != nil {
		if me := parseMSALError(err); me != nil {
			a.log.Warn().Str("mailbox", m.ID).Str("error", me.Code).Str("aadsts", me.AADSTS).Msg("graphsync: code redemption refused")
			return nil, me
		}
		return nil, fmt.Errorf("graphsync: redeem sign-in code of %s: %w", m.ID, err)
	}
	user := res.IDToken.PreferredUsername
	if user == "" {
		user = res.Account.PreferredUsername
	}
	return &SignIn{HomeAccountID: res.Account.HomeAccountID, Username: user, a: a, mailboxID: m.ID,
		kind: m.Kind, fp: cfg.fingerprint, client: c, cache: cache, token: res.AccessToken}, nil
}

// ErrNoMailboxAccess means the signed-in account cannot open the mailbox.
var ErrNoMailboxAccess = errors.New("the signed-in account cannot open this mailbox")

// CheckMailboxAccess opens the mailbox's Inbox with the new token
// (GET /users/{address}/mailFolders/inbox): for shared mailboxes, proof that
// Exchange gives the signed-in delegate access. A 401/403/404 wraps
// ErrNoMailboxAccess.
func (s *SignIn) CheckMailboxAccess(ctx context.Context, address string) error {
	ctx, cancel := context.WithTimeout(ctx, 30*time.Second)
	defer cancel()
	u := s.a.base + "/users/" + url.PathEscape(address) + "/mailFolders/inbox?$select=id"
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, u, nil)
	if err != nil {
		return fmt.Errorf("graphsync: mailbox check: %w", err)
	}
	req.Header.Set("Authorization", "Bearer "+s.token)
	resp, err := s.a.http.Do(req)
	if err != nil {
		return fmt.Errorf("graphsync: open %s: %w", address, err)
	}
	defer resp.Body.Close()
	body, _ := io.ReadAll(io.LimitReader(resp.Body, 64<<10))
	switch {
	case resp.StatusCode == http.StatusOK:
		return nil
	case resp.StatusCode == http.StatusUnauthorized || resp.StatusCode == http.StatusForbidden || resp.StatusCode == http.StatusNotFound:
		return fmt.Errorf("graphsync: open %s: Graph answered %d %s: %w", address, resp.StatusCode, graphErrorCode(body), ErrNoMailboxAccess)
	default:
		return fmt.Errorf("graphsync: open %s: Graph answered %d %s", address, resp.StatusCode, graphErrorCode(body))
	}
}

// IsAccount reports whether the account that signed in is address: its
// preferred_username, or else (an alias, a renamed UPN) the mail or
// userPrincipalName Graph gives for /me with the new token.
func (s *SignIn) IsAccount(ctx context.Context, address string) (bool, error) {
	if strings.EqualFold(s.Username, address) {
		return true, nil
	}
	ctx, cancel := context.WithTimeout(ctx, 30*time.Second)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, s.a.base+"/me?$select=mail,userPrincipalName", nil)
	if err != nil {
		return false, fmt.Errorf("graphsync: account check: %w", err)
	}
	req.Header.Set("Authorization", "Bearer "+s.token)
	resp, err := s.a.http.Do(req)
	if err != nil {
		return false, fmt.Errorf("graphsync: account check: %w", err)
	}
	defer resp.Body.Close()
	body, _ := io.ReadAll(io.LimitReader(resp.Body, 64<<10))
	if resp.StatusCode != http.StatusOK {
		return false, fmt.Errorf("graphsync: account check: Graph answered %d %s", resp.StatusCode, graphErrorCode(body))
	}
	var me struct {
		Mail string `json:"mail"`
		UPN  string `json:"userPrincipalName"`
	}
	if err := json.Unmarshal(body, &me); err != nil {
		return false, fmt.Errorf("graphsync: account check: %w", err)
	}
	return strings.EqualFold(me.Mail, address) || strings.EqualFold(me.UPN, address), nil
}

// graphErrorCode pulls error.code out of a Graph error body.
func graphErrorCode(body []byte) string {
	var e struct {
		Error struct {
			Code string `json:"code"`
		} `json:"error"`
	}
	if json.Unmarshal(body, &e) == nil {
		return e.Error.Code
	}
	return ""
}

// Commit stores the sign-in's token cache (sealed) as the mailbox's and
// makes its client the one Token uses.
func (s *SignIn) Commit() error {
	if err := s.cache.commit(); err != nil {
		return fmt.Errorf("graphsync: store tokens of %s: %w", s.mailboxID, err)
	}
	s.token = ""
	mc := &mailboxClient{client: s.client, cache: s.cache, homeID: s.HomeAccountID, kind: s.kind, fp: s.fp}
	s.a.mu.Lock()
	s.a.clients[s.mailboxID] = mc
	s.a.mu.Unlock()
	return nil
}
