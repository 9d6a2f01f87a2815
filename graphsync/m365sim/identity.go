package m365sim

import (
	"context"
	"crypto/sha256"
	"crypto/subtle"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"html/template"
	"io"
	"net/http"
	"net/url"
	"sort"
	"strings"
	"time"
)

// Lifetimes at TimeScale 1 (Entra ID defaults).
const (
	accessTokenLife = 3599 * time.Second  // expires_in of a real token response
	refreshInactive = 90 * 24 * time.Hour // refresh token inactivity limit (AADSTS700082)
	authCodeLife    = 10 * time.Minute    // authorization codes
	authTxnLife     = 15 * time.Minute    // consent page transactions
)

// defaultClientID and defaultSecret identify DefaultApp.
const (
	defaultClientID = "6e4b2f3a-1d2c-4b5a-9e8f-7a6b5c4d3e2f"
	defaultSecret   = "maildesk-sim-secret"
)

// DefaultApp is always registered: the demo and `serve --simulate` use it.
// Its redirect rule accepts any loopback URL (http or https, any port, any path).
func DefaultApp() App {
	return App{
		ClientID:     defaultClientID,
		ClientSecret: defaultSecret,
		Name:         "MailDesk (simulated)",
		RedirectURIs: []string{"http://127.0.0.1:*", "https://127.0.0.1:*", "http://localhost:*", "https://localhost:*", "http://[::1]:*"},
	}
}

type authTxn struct {
	app               *App
	redirect          string
	scopes            []string
	state, nonce      string
	challenge, method string
	responseMode      string
	loginHint         string
	expires           time.Time
}

type authCode struct {
	user      *User
	app       *App
	redirect  string
	scopes    []string
	challenge string
	nonce     string
	expires   time.Time
	used      bool
}

type accessToken struct {
	user    *User
	app     *App
	scopes  map[string]bool // lower-case short names: mail.readwrite, mail.send ...
	expires time.Time
	issued  time.Time
}

type refreshToken struct {
	user     *User
	app      *App
	scopes   []string
	issued   time.Time
	lastUsed time.Time
	expired  bool
}

// RegisterApp adds or replaces an application.
func (s *Sim) RegisterApp(a App) {
	s.mu.Lock()
	defer s.mu.Unlock()
	cp := a
	cp.RedirectURIs = append([]string(nil), a.RedirectURIs...)
	if cp.Name == "" {
		cp.Name = "App " + a.ClientID
	}
	s.apps[a.ClientID] = &cp
	if s.consent[a.ClientID] == nil {
		s.consent[a.ClientID] = map[string]bool{}
	}
}

func (a *App) redirectOK(uri string) bool {
	for _, r := range a.RedirectURIs {
		if strings.HasSuffix(r, "*") {
			if strings.HasPrefix(uri, strings.TrimSuffix(r, "*")) {
				return true
			}
		} else if r == uri {
			return true
		}
	}
	return false
}

// AddUser adds a person with a mailbox; returns the existing one if known.
func (s *Sim) AddUser(upn, displayName string) *User {
	return s.addUser(upn, displayName, false)
}

// AddSharedMailbox adds a shared mailbox and who may use it.
func (s *Sim) AddSharedMailbox(address, displayName string, grants ...Grant) *User {
	u := s.addUser(address, displayName, true)
	s.mu.Lock()
	for _, g := range grants {
		u.grants[strings.ToLower(g.User)] = g
	}
	s.mu.Unlock()
	return u
}

// Grant adds or replaces a grant on a shared mailbox.
func (s *Sim) Grant(mailbox string, g Grant) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if u := s.users[strings.ToLower(mailbox)]; u != nil {
		u.grants[strings.ToLower(g.User)] = g
	}
}

func (s *Sim) addUser(upn, name string, shared bool) *User {
	s.mu.Lock()
	defer s.mu.Unlock()
	key := strings.ToLower(upn)
	if u := s.users[key]; u != nil {
		return u
	}
	u := &User{ID: guidFrom(s.opts.Seed, "user", key), UPN: upn, DisplayName: name, Shared: shared,
		index: len(s.userList) + 1, grants: map[string]Grant{}}
	u.mb = newMailbox(u)
	u.mb.runSalt = s.runSalt()
	s.users[key] = u
	s.usersID[u.ID] = u
	s.userList = append(s.userList, u)
	s.stats[key] = &Stats{}
	return u
}

// Users lists all users and shared mailboxes in creation order.
func (s *Sim) Users() []*User {
	s.mu.Lock()
	defer s.mu.Unlock()
	return append([]*User(nil), s.userList...)
}

func (s *Sim) user(idOrUPN string) *User {
	s.mu.Lock()
	defer s.mu.Unlock()
	if u := s.usersID[idOrUPN]; u != nil {
		return u
	}
	return s.users[strings.ToLower(idOrUPN)]
}

// RevokeUser revokes every refresh and access token of the user
// (as a password reset or "revoke sessions" does): AADSTS50173 on refresh,
// 401 on Graph.
func (s *Sim) RevokeUser(upn string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	u := s.users[strings.ToLower(upn)]
	if u == nil {
		return
	}
	u.tokensValidFrom = time.Now()
	for k, at := range s.access {
		if at.user == u {
			delete(s.access, k)
		}
	}
}

// RevokeAccessTokens drops the user's access tokens and keeps its refresh
// tokens valid, as when Graph stops accepting a token its client still
// believes valid (continuous access evaluation, a token-signing key
// rollover): Graph answers 401 InvalidAuthenticationToken until the client
// refreshes.
func (s *Sim) RevokeAccessTokens(upn string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	u := s.users[strings.ToLower(upn)]
	for k, at := range s.access {
		if at.user == u {
			delete(s.access, k)
		}
	}
}

// RejectTokens makes the next n Graph requests made with the user's tokens
// answer 401 InvalidAuthenticationToken, whatever token they carry and
// however fresh it is (n < 0: every request until RejectTokens(upn, 0)).
// Refreshing still works. Counted in the user's Stats.Rejected.
func (s *Sim) RejectTokens(upn string, n int) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if u := s.users[strings.ToLower(upn)]; u != nil {
		u.rejectTokens = n
	}
}

func (s *Sim) countGrant(grantType string) {
	s.mu.Lock()
	s.tgrants[grantType]++
	s.mu.Unlock()
}

// TokenGrants counts the token endpoint's successful answers by grant type
// ("authorization_code", "refresh_token").
func (s *Sim) TokenGrants(grantType string) int64 {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.tgrants[grantType]
}

// ExpireAccessTokens makes every access token expired now.
func (s *Sim) ExpireAccessTokens() {
	s.mu.Lock()
	defer s.mu.Unlock()
	past := time.Now().Add(-time.Second)
	for _, at := range s.access {
		at.expires = past
	}
}

// ExpireRefreshTokens makes the user's refresh tokens expired for
// inactivity (AADSTS700082).
func (s *Sim) ExpireRefreshTokens(upn string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	for _, rt := range s.refresh {
		if strings.EqualFold(rt.user.UPN, upn) {
			rt.expired = true
		}
	}
}

// RequireConsent drops every user's consent for the app: refreshes get
// invalid_grant/consent_required (AADSTS65001) and /authorize shows the
// consent page again.
func (s *Sim) RequireConsent(clientID string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.consent[clientID] = map[string]bool{}
}

// RequireMFA makes the user's next refreshes fail with interaction_required
// (AADSTS50079) until the user signs in interactively again.
func (s *Sim) RequireMFA(upn string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if u := s.users[strings.ToLower(upn)]; u != nil {
		u.requireMFA = true
	}
}

// GrantConsent records consent without a browser (e.g. admin consent).
func (s *Sim) GrantConsent(clientID, upn string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if u := s.users[strings.ToLower(upn)]; u != nil && s.consent[clientID] != nil {
		s.consent[clientID][u.ID] = true
	}
}

// IssueToken grants consent and returns an access token for upn without a
// browser (tests, curl). Scopes are short names such as "Mail.ReadWrite";
// none means Mail.ReadWrite, Mail.Send, User.Read and the .Shared ones.
func (s *Sim) IssueToken(upn, clientID string, scopes ...string) (string, error) {
	s.mu.Lock()
	u := s.users[strings.ToLower(upn)]
	app := s.apps[clientID]
	if u == nil || app == nil {
		s.mu.Unlock()
		return "", fmt.Errorf("m365sim: issue token: unknown user %q or app %q", upn, clientID)
	}
	s.consent[clientID][u.ID] = true
	s.mu.Unlock()
	if len(scopes) == 0 {
		scopes = []string{"Mail.ReadWrite", "Mail.Send", "User.Read", "Mail.ReadWrite.Shared", "Mail.Send.Shared"}
	}
	set := map[string]bool{}
	for _, sc := range normScopes(strings.Join(scopes, " ")) {
		set[sc] = true
	}
	at := randToken("sim-at.", 32)
	now := time.Now()
	s.mu.Lock()
	s.access[at] = &accessToken{user: u, app: app, scopes: set, expires: now.Add(s.scaled(accessTokenLife)), issued: now}
	s.mu.Unlock()
	return at, nil
}

// serveIdentity routes /{tenant}/... identity endpoints.
func (s *Sim) serveIdentity(w http.ResponseWriter, r *http.Request) {
	parts := strings.SplitN(strings.TrimPrefix(r.URL.Path, "/"), "/", 2)
	if len(parts) != 2 || !s.tenantOK(parts[0]) {
		http.Error(w, "not found", http.StatusNotFound)
		return
	}
	switch parts[1] {
	case "v2.0/.well-known/openid-configuration":
		s.serveOIDC(w, r, parts[0])
	case "oauth2/v2.0/authorize":
		s.serveAuthorize(w, r)
	case "oauth2/v2.0/authorize/consent":
		s.serveConsent(w, r)
	case "oauth2/v2.0/token":
		s.serveToken(w, r)
	case "v2.0/adminconsent":
		s.serveAdminConsent(w, r)
	case "discovery/v2.0/keys":
		writeJSON(w, 200, map[string]any{"keys": []any{}})
	default:
		http.Error(w, "not found", http.StatusNotFound)
	}
}

func (s *Sim) tenantOK(t string) bool {
	switch strings.ToLower(t) {
	case strings.ToLower(s.tenant), s.domain, "organizations", "common":
		return true
	}
	return false
}

func (s *Sim) serveOIDC(w http.ResponseWriter, r *http.Request, tenantPath string) {
	base := s.url + "/" + s.tenant
	body := map[string]any{
		"token_endpoint":                        base + "/oauth2/v2.0/token",
		"token_endpoint_auth_methods_supported": []string{"client_secret_post", "private_key_jwt", "client_secret_basic"},
		"jwks_uri":                              base + "/discovery/v2.0/keys",
		"response_modes_supported":              []string{"query", "fragment", "form_post"},
		"subject_types_supported":               []string{"pairwise"},
		"id_token_signing_alg_values_supported": []string{"RS256"},
		"response_types_supported":              []string{"code", "id_token", "code id_token", "id_token token"},
		"scopes_supported":                      []string{"openid", "profile", "email", "offline_access"},
		"issuer":                                base + "/v2.0",
		"request_uri_parameter_supported":       false,
		"userinfo_endpoint":                     s.url + "/oidc/userinfo",
		"authorization_endpoint":                base + "/oauth2/v2.0/authorize",
		"device_authorization_endpoint":         base + "/oauth2/v2.0/devicecode",
		"http_logout_supported":                 true,
		"frontchannel_logout_supported":         true,
		"end_session_endpoint":                  base + "/oauth2/v2.0/logout",
		"claims_supported":                      []string{"sub", "iss", "cloud_instance_name", "cloud_instance_host_name", "cloud_graph_host_name", "msgraph_host", "aud", "exp", "iat", "auth_time", "acr", "nonce", "preferred_username", "name", "tid", "ver", "at_hash", "c_hash", "email"},
		"tenant_region_scope":                   "WW",
		"cloud_instance_name":                   "microsoftonline.com",
		"cloud_graph_host_name":                 "graph.windows.net",
		"msgraph_host":                          strings.TrimPrefix(s.url, "https://"),
		"rbac_url":                              "https://pas.windows.net",
	}
	w.Header().Set("Cache-Control", "max-age=86400, private")
	writeJSONCT(w, 200, "application/json; charset=utf-8", body)
}

// normScopes lower-cases scopes and strips the Graph resource prefix.
func normScopes(raw string) []string {
	var out []string
	for _, sc := range strings.Fields(raw) {
		l := strings.ToLower(sc)
		if i := strings.LastIndex(l, "/"); i >= 0 && strings.HasPrefix(l, "http") {
			l = l[i+1:]
		}
		if l == "" {
			continue
		}
		if l == ".default" {
			// The app's configured permissions (all apps here are configured alike).
			out = append(out, "mail.readwrite", "mail.send", "user.read", "mail.readwrite.shared", "mail.send.shared")
			continue
		}
		out = append(out, l)
	}
	return out
}

func oidcOnly(sc string) bool {
	switch sc {
	case "openid", "profile", "offline_access", "email":
		return true
	}
	return false
}

var consentPage = template.Must(template.New("consent").Parse(`<!doctype html>
<html><head><meta charset="utf-8"><title>Permissions requested</title></head>
<body style="font-family:sans-serif;max-width:32em;margin:3em auto">
<h1>Permissions requested</h1>
<p><b>{{.App}}</b> (simulated Microsoft 365, tenant {{.Tenant}}) wants to:</p>
<ul>{{range .Scopes}}<li>{{.}}</li>{{end}}</ul>
<form method="post" action="{{.Action}}">
<input type="hidden" name="txn" value="{{.Txn}}">
<p><label>Sign in as <input name="login" value="{{.Login}}" size="30"></label></p>
{{if .Users}}<p>Known users: {{range .Users}}<code>{{.}}</code> {{end}}</p>{{end}}
<button name="decision" value="accept" id="accept">Accept</button>
<button name="decision" value="deny" id="deny">Cancel</button>
</form></body></html>`))

func (s *Sim) serveAuthorize(w http.ResponseWriter, r *http.Request) {
	q := r.URL.Query()
	s.mu.Lock()
	app := s.apps[q.Get("client_id")]
	s.mu.Unlock()
	if app == nil {
		identityErrorPage(w, "unauthorized_client", fmt.Sprintf("AADSTS700016: Application with identifier '%s' was not found in the directory '%s'.", q.Get("client_id"), s.tenant))
		return
	}
	redirect := q.Get("redirect_uri")
	if !app.redirectOK(redirect) {
		identityErrorPage(w, "invalid_request", fmt.Sprintf("AADSTS50011: The redirect URI '%s' specified in the request does not match the redirect URIs configured for the application '%s'.", redirect, app.ClientID))
		return
	}
	mode := q.Get("response_mode")
	if mode == "" {
		mode = "query"
	}
	fail := func(code, desc string) {
		s.redirectResult(w, redirect, mode, url.Values{"error": {code}, "error_description": {desc}, "state": {q.Get("state")}})
	}
	if q.Get("response_type") != "code" {
		fail("unsupported_response_type", "AADSTS700054: response_type 'code' is required by this simulator.")
		return
	}
	if q.Get("code_challenge") == "" {
		fail("invalid_request", "AADSTS9002325: Proof Key for Code Exchange is required for this simulator's authorization code flow.")
		return
	}
	if m := q.Get("code_challenge_method"); m != "S256" {
		fail("invalid_request", "AADSTS501491: Invalid code_challenge_method: only S256 is accepted.")
		return
	}
	scopes := normScopes(q.Get("scope"))
	if len(scopes) == 0 {
		fail("invalid_request", "AADSTS900144: The request body must contain the following parameter: 'scope'.")
		return
	}
	txn := &authTxn{app: app, redirect: redirect, scopes: scopes, state: q.Get("state"), nonce: q.Get("nonce"),
		challenge: q.Get("code_challenge"), method: q.Get("code_challenge_method"), responseMode: mode,
		loginHint: q.Get("login_hint"), expires: time.Now().Add(s.scaled(authTxnLife))}
	id := randToken("txn-", 18)
	s.mu.Lock()
	s.txns[id] = txn
	var hinted *User
	if txn.loginHint != "" {
		hinted = s.users[strings.ToLower(txn.loginHint)]
	}
	consented := hinted != nil && s.consent[app.ClientID][hinted.ID]
	var known []string
	for i, u := range s.userList {
		if i >= 20 {
			break
		}
		if !u.Shared {
			known = append(known, u.UPN)
		}
	}
	s.mu.Unlock()
	if q.Get("prompt") == "none" {
		// No browser session exists here: silent sign-in works only for a
		// login_hint user who already consented.
		if !consented {
			s.mu.Lock()
			delete(s.txns, id)
			s.mu.Unlock()
			fail("login_required", "AADSTS50058: A silent sign-in request was sent but no user is signed in.")
			return
		}
		s.finishAuth(w, id, hinted.UPN, true)
		return
	}
	if s.opts.AutoApprove && consented && q.Get("prompt") != "consent" {
		s.finishAuth(w, id, hinted.UPN, true)
		return
	}
	w.Header().Set("Content-Type", "text/html; charset=utf-8")
	w.Header().Set("Cache-Control", "no-store")
	_ = consentPage.Execute(w, map[string]any{"App": app.Name, "Tenant": s.tenant, "Scopes": scopes,
		"Action": "/" + s.tenant + "/oauth2/v2.0/authorize/consent", "Txn": id, "Login": txn.loginHint, "Users": known})
}

func (s *Sim) serveConsent(w http.ResponseWriter, r *http.Request) {
	if r.Method != http.MethodPost {
		http.Error(w, "method not allowed", http.StatusMethodNotAllowed)
		return
	}
	if err := r.ParseForm(); err != nil {
		http.Error(w, "bad form", http.StatusBadRequest)
		return
	}
	s.finishAuth(w, r.PostForm.Get("txn"), r.PostForm.Get("login"), r.PostForm.Get("decision") == "accept")
}

func (s *Sim) finishAuth(w http.ResponseWriter, txnID, login string, accept bool) {
	s.mu.Lock()
	txn := s.txns[txnID]
	delete(s.txns, txnID)
	var u *User
	if txn != nil {
		u = s.users[strings.ToLower(login)]
	}
	s.mu.Unlock()
	if txn == nil || time.Now().After(txn.expires) {
		identityErrorPage(w, "invalid_request", "AADSTS50058: The sign-in session is unknown or expired; start again.")
		return
	}
	if !accept {
		s.redirectResult(w, txn.redirect, txn.responseMode, url.Values{"error": {"access_denied"},
			"error_description": {"AADSTS65004: User declined to consent to access the app."}, "state": {txn.state}})
		return
	}
	if u == nil || u.Shared {
		identityErrorPage(w, "invalid_request", fmt.Sprintf("AADSTS50034: The user account %s does not exist in the %s directory.", login, s.tenant))
		return
	}
	code := randToken("0.sim-code.", 32)
	s.mu.Lock()
	s.codes[code] = &authCode{user: u, app: txn.app, redirect: txn.redirect, scopes: txn.scopes, challenge: txn.challenge,
		nonce: txn.nonce, expires: time.Now().Add(s.scaled(authCodeLife))}
	s.consent[txn.app.ClientID][u.ID] = true
	u.requireMFA = false
	s.mu.Unlock()
	s.redirectResult(w, txn.redirect, txn.responseMode, url.Values{"code": {code}, "state": {txn.state}, "session_state": {guidFrom(s.opts.Seed, "session", u.ID)}})
}

var formPostPage = template.Must(template.New("fp").Parse(`<html><head><title>Working...</title></head><body onload="document.forms[0].submit()">
<form method="POST" action="{{.Action}}">{{range $k, $v := .Fields}}<input type="hidden" name="{{$k}}" value="{{$v}}">{{end}}
<noscript><button>Continue</button></noscript></form></body></html>`))

func (s *Sim) redirectResult(w http.ResponseWriter, redirect, mode string, v url.Values) {
	if v.Get("state") == "" {
		v.Del("state")
	}
	if mode == "form_post" {
		fields := map[string]string{}
		for k := range v {
			fields[k] = v.Get(k)
		}
		w.Header().Set("Content-Type", "text/html; charset=utf-8")
		_ = formPostPage.Execute(w, map[string]any{"Action": redirect, "Fields": fields})
		return
	}
	u, err := url.Parse(redirect)
	if err != nil {
		identityErrorPage(w, "invalid_request", "AADSTS50011: bad redirect_uri")
		return
	}
	if mode == "fragment" {
		u.Fragment = v.Encode()
	} else {
		q := u.Query()
		for k := range v {
			q.Set(k, v.Get(k))
		}
		u.RawQuery = q.Encode()
	}
	w.Header().Set("Location", u.String())
	w.WriteHeader(http.StatusFound)
}

func identityErrorPage(w http.ResponseWriter, code, desc string) {
	w.Header().Set("Content-Type", "text/html; charset=utf-8")
	w.WriteHeader(http.StatusBadRequest)
	fmt.Fprintf(w, "<!doctype html><html><body><h1>Sign in failed</h1><p>%s</p><p>%s</p></body></html>", template.HTMLEscapeString(code), template.HTMLEscapeString(desc))
}

// tokenError writes Microsoft's token error JSON (samples 77-81).
func (s *Sim) tokenError(w http.ResponseWriter, status int, errCode, suberror string, aadsts int, desc string) {
	trace, corr := newRequestID(), newRequestID()
	ts := time.Now().UTC().Format("2006-01-02 15:04:05Z")
	body := map[string]any{
		"error":             errCode,
		"error_description": fmt.Sprintf("AADSTS%d: %s\r\nTrace ID: %s\r\nCorrelation ID: %s\r\nTimestamp: %s", aadsts, desc, trace, corr, ts),
		"error_codes":       []int{aadsts},
		"timestamp":         ts,
		"trace_id":          trace,
		"correlation_id":    corr,
		"error_uri":         fmt.Sprintf("%s/error?code=%d", s.url, aadsts),
	}
	if suberror != "" {
		body["suberror"] = suberror
	}
	w.Header().Set("Cache-Control", "no-store, no-cache")
	writeJSONCT(w, status, "application/json; charset=utf-8", body)
}

func (s *Sim) serveToken(w http.ResponseWriter, r *http.Request) {
	if r.Method != http.MethodPost {
		http.Error(w, "method not allowed", http.StatusMethodNotAllowed)
		return
	}
	if err := r.ParseForm(); err != nil {
		s.tokenError(w, 400, "invalid_request", "", 900144, "The request body must be application/x-www-form-urlencoded.")
		return
	}
	f := r.PostForm
	clientID, secret := f.Get("client_id"), f.Get("client_secret")
	if u, p, ok := r.BasicAuth(); ok {
		clientID, secret = u, p
	}
	s.mu.Lock()
	app := s.apps[clientID]
	s.mu.Unlock()
	if app == nil {
		s.tokenError(w, 400, "unauthorized_client", "", 700016, fmt.Sprintf("Application with identifier '%s' was not found in the directory '%s'.", clientID, s.tenant))
		return
	}
	if subtle.ConstantTimeCompare([]byte(secret), []byte(app.ClientSecret)) != 1 {
		s.tokenError(w, 401, "invalid_client", "", 7000215, "Invalid client secret provided. Ensure the secret being sent in the request is the client secret value, not the client secret ID.")
		return
	}
	switch f.Get("grant_type") {
	case "authorization_code":
		s.redeemCode(w, app, f)
	case "refresh_token":
		s.redeemRefresh(w, app, f)
	default:
		s.tokenError(w, 400, "unsupported_grant_type", "", 70003, "The app requested an unsupported grant type '"+f.Get("grant_type")+"'.")
	}
}

func pkceS256(verifier string) string {
	sum := sha256.Sum256([]byte(verifier))
	return base64.RawURLEncoding.EncodeToString(sum[:])
}

func (s *Sim) redeemCode(w http.ResponseWriter, app *App, f url.Values) {
	code := f.Get("code")
	s.mu.Lock()
	c := s.codes[code]
	if c == nil || c.app != app {
		s.mu.Unlock()
		s.tokenError(w, 400, "invalid_grant", "", 9002313, "Invalid request. Request is malformed or invalid: the authorization code is unknown.")
		return
	}
	if c.used {
		s.mu.Unlock()
		s.tokenError(w, 400, "invalid_grant", "", 54005, "OAuth2 Authorization code was already redeemed, please retry with a new valid code or use an existing refresh token.")
		return
	}
	c.used = true // single use, whatever happens next
	s.mu.Unlock()
	if time.Now().After(c.expires) {
		s.tokenError(w, 400, "invalid_grant", "", 70008, "The provided authorization code or refresh token has expired due to inactivity. Send a new interactive authorization request for this user and resource.")
		return
	}
	if f.Get("redirect_uri") != c.redirect {
		s.tokenError(w, 400, "invalid_grant", "", 500112, "The reply address does not match the reply address provided when requesting Authorization code.")
		return
	}
	v := f.Get("code_verifier")
	if v == "" {
		s.tokenError(w, 400, "invalid_grant", "", 50148, "The code_verifier does not match the code_challenge supplied in the authorization request for PKCE (code_verifier missing).")
		return
	}
	if subtle.ConstantTimeCompare([]byte(pkceS256(v)), []byte(c.challenge)) != 1 {
		s.tokenError(w, 400, "invalid_grant", "", 501481, "The Code_Verifier does not match the code_challenge supplied in the authorization request.")
		return
	}
	scopes := mergeScopes(c.scopes, normScopes(f.Get("scope")))
	s.countGrant("authorization_code")
	s.issueTokens(w, c.user, app, scopes, c.nonce, f.Get("client_info") == "1", f.Get("scope"))
}

func mergeScopes(a, b []string) []string {
	set := map[string]bool{}
	for _, x := range a {
		set[x] = true
	}
	for _, x := range b {
		set[x] = true
	}
	out := make([]string, 0, len(set))
	for x := range set {
		out = append(out, x)
	}
	sort.Strings(out)
	return out
}

func (s *Sim) redeemRefresh(w http.ResponseWriter, app *App, f url.Values) {
	s.mu.Lock()
	rt := s.refresh[f.Get("refresh_token")]
	s.mu.Unlock()
	now := time.Now()
	if rt == nil || rt.app != app {
		s.tokenError(w, 400, "invalid_grant", "", 9002313, "Invalid request. Request is malformed or invalid: the refresh token is unknown.")
		return
	}
	s.mu.Lock()
	u := rt.user
	revoked := !u.tokensValidFrom.IsZero() && !rt.issued.After(u.tokensValidFrom)
	expired := rt.expired || now.Sub(rt.lastUsed) > s.scaled(refreshInactive)
	consented := s.consent[app.ClientID][u.ID]
	mfa := u.requireMFA
	s.mu.Unlock()
	switch {
	case revoked:
		s.tokenError(w, 400, "invalid_grant", "", 50173, fmt.Sprintf("The provided grant has expired due to it being revoked, a fresh auth token is needed. The user might have changed or reset their password. The grant was issued on '%s' and the TokensValidFrom date (before which tokens are not valid) for this user is '%s'.",
			rt.issued.UTC().Format("2006-01-02T15:04:05.0000000Z"), u.tokensValidFrom.UTC().Format("2006-01-02T15:04:05.0000000Z")))
		return
	case expired:
		s.tokenError(w, 400, "invalid_grant", "bad_token", 700082, fmt.Sprintf("The refresh token has expired due to inactivity. The token was issued on %s and was inactive for 90.00:00:00.", rt.issued.UTC().Format(time.RFC3339Nano)))
		return
	case !consented:
		s.tokenError(w, 400, "invalid_grant", "consent_required", 65001, fmt.Sprintf("The user or administrator has not consented to use the application with ID '%s' named '%s'. Send an interactive authorization request for this user and resource.", app.ClientID, app.Name))
		return
	case mfa:
		s.tokenError(w, 400, "interaction_required", "", 50079, "Due to a configuration change made by your administrator, or because you moved to a new location, you must enroll in multi-factor authentication to access '00000003-0000-0000-c000-000000000000'.")
		return
	}
	req := normScopes(f.Get("scope"))
	have := map[string]bool{}
	for _, sc := range rt.scopes {
		have[sc] = true
	}
	for _, sc := range req {
		if !have[sc] && !oidcOnly(sc) {
			s.tokenError(w, 400, "invalid_grant", "consent_required", 65001, fmt.Sprintf("The user or administrator has not consented to use the application with ID '%s' named '%s' for scope '%s'. Send an interactive authorization request for this user and resource.", app.ClientID, app.Name, sc))
			return
		}
	}
	s.mu.Lock()
	rt.lastUsed = now
	s.mu.Unlock()
	s.countGrant("refresh_token")
	s.issueTokens(w, u, app, rt.scopes, "", f.Get("client_info") == "1", f.Get("scope"))
}

func b64json(v any) string {
	b, _ := json.Marshal(v)
	return base64.RawURLEncoding.EncodeToString(b)
}

// issueTokens answers a token request with the shape of sample 75 (real
// ESTS key set): token_type, scope, expires_in, ext_expires_in,
// access_token, refresh_token, id_token, client_info.
func (s *Sim) issueTokens(w http.ResponseWriter, u *User, app *App, scopes []string, nonce string, clientInfo bool, askedScope string) {
	now := time.Now()
	life := s.scaled(accessTokenLife)
	if life < 2*time.Second {
		life = 2 * time.Second
	}
	at := randToken("sim-at.", 32)
	rtok := ""
	set := map[string]bool{}
	for _, sc := range scopes {
		set[sc] = true
	}
	s.mu.Lock()
	s.access[at] = &accessToken{user: u, app: app, scopes: set, expires: now.Add(life), issued: now}
	if set["offline_access"] { // no offline_access, no refresh token (Entra ID)
		rtok = randToken("sim-rt.", 48)
		s.refresh[rtok] = &refreshToken{user: u, app: app, scopes: scopes, issued: now, lastUsed: now}
	}
	s.mu.Unlock()
	iss := s.url + "/" + s.tenant + "/v2.0"
	claims := map[string]any{"ver": "2.0", "iss": iss, "sub": guidFrom(s.opts.Seed, "sub", u.ID, app.ClientID),
		"aud": app.ClientID, "exp": now.Add(time.Hour).Unix(), "iat": now.Unix(), "nbf": now.Unix(),
		"name": u.DisplayName, "preferred_username": u.UPN, "oid": u.ID, "tid": s.tenant}
	if nonce != "" {
		claims["nonce"] = nonce
	}
	idt := b64json(map[string]string{"typ": "JWT", "alg": "none"}) + "." + b64json(claims) + ".c2ltdWxhdGVk"
	scopeOut := strings.Join(strings.Fields(askedScope), " ")
	if scopeOut == "" {
		scopeOut = strings.Join(scopes, " ")
	}
	body := map[string]any{
		"token_type":     "Bearer",
		"scope":          scopeOut,
		"expires_in":     int(life / time.Second),
		"ext_expires_in": int(life / time.Second),
		"access_token":   at,
		"id_token":       idt,
	}
	if rtok != "" {
		body["refresh_token"] = rtok
	}
	if clientInfo {
		body["client_info"] = b64json(map[string]string{"uid": u.ID, "utid": s.tenant})
	}
	w.Header().Set("Cache-Control", "no-store, no-cache")
	w.Header().Set("Pragma", "no-cache")
	writeJSONCT(w, 200, "application/json; charset=utf-8", body)
}

func (s *Sim) serveAdminConsent(w http.ResponseWriter, r *http.Request) {
	q := r.URL.Query()
	s.mu.Lock()
	app := s.apps[q.Get("client_id")]
	s.mu.Unlock()
	if app == nil {
		identityErrorPage(w, "unauthorized_client", "AADSTS700016: Application with identifier '"+q.Get("client_id")+"' was not found.")
		return
	}
	redirect := q.Get("redirect_uri")
	if !app.redirectOK(redirect) {
		identityErrorPage(w, "invalid_request", "AADSTS50011: The redirect URI '"+redirect+"' does not match.")
		return
	}
	if q.Get("deny") == "1" {
		s.redirectResult(w, redirect, "query", url.Values{"error": {"access_denied"}, "error_description": {"AADSTS65004: The resource owner or authorization server denied the request."}, "state": {q.Get("state")}})
		return
	}
	s.mu.Lock()
	for _, u := range s.userList {
		s.consent[app.ClientID][u.ID] = true
	}
	s.mu.Unlock()
	v := url.Values{"admin_consent": {"True"}, "tenant": {s.tenant}, "state": {q.Get("state")}}
	if sc := q.Get("scope"); sc != "" {
		v.Set("scope", sc)
	}
	s.redirectResult(w, redirect, "query", v)
}

// SignIn acts as the user's browser: it opens authURL (adding login_hint),
// accepts the consent page as upn and returns the redirect location that
// carries code and state (or error and error_description).
func (s *Sim) SignIn(ctx context.Context, authURL, upn string) (*url.URL, error) {
	return s.signIn(ctx, authURL, upn, true)
}

// SignInDeny is SignIn where the user presses Cancel on the consent page:
// the redirect carries error=access_denied.
func (s *Sim) SignInDeny(ctx context.Context, authURL, upn string) (*url.URL, error) {
	return s.signIn(ctx, authURL, upn, false)
}

func (s *Sim) signIn(ctx context.Context, authURL, upn string, accept bool) (*url.URL, error) {
	u, err := url.Parse(authURL)
	if err != nil {
		return nil, fmt.Errorf("m365sim: sign-in: parse URL: %w", err)
	}
	q := u.Query()
	if q.Get("login_hint") == "" {
		q.Set("login_hint", upn)
	}
	u.RawQuery = q.Encode()
	c := &http.Client{Transport: s.client.Transport, Timeout: 30 * time.Second,
		CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, u.String(), nil)
	if err != nil {
		return nil, fmt.Errorf("m365sim: sign-in: %w", err)
	}
	resp, err := c.Do(req)
	if err != nil {
		return nil, fmt.Errorf("m365sim: sign-in: authorize: %w", err)
	}
	body, _ := io.ReadAll(io.LimitReader(resp.Body, 1<<20))
	resp.Body.Close()
	if loc := resp.Header.Get("Location"); resp.StatusCode == http.StatusFound && loc != "" {
		return url.Parse(loc)
	}
	if resp.StatusCode != 200 {
		return nil, fmt.Errorf("m365sim: sign-in: authorize answered %d: %s", resp.StatusCode, stripTags(string(body)))
	}
	txn := between(string(body), `name="txn" value="`, `"`)
	if txn == "" {
		return nil, errors.New("m365sim: sign-in: no consent form in the authorize page")
	}
	decision := "deny"
	if accept {
		decision = "accept"
	}
	form := url.Values{"txn": {txn}, "login": {upn}, "decision": {decision}}
	req, err = http.NewRequestWithContext(ctx, http.MethodPost, s.AuthorityURL()+"/oauth2/v2.0/authorize/consent", strings.NewReader(form.Encode()))
	if err != nil {
		return nil, fmt.Errorf("m365sim: sign-in: %w", err)
	}
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	resp, err = c.Do(req)
	if err != nil {
		return nil, fmt.Errorf("m365sim: sign-in: consent: %w", err)
	}
	body, _ = io.ReadAll(io.LimitReader(resp.Body, 1<<20))
	resp.Body.Close()
	if loc := resp.Header.Get("Location"); resp.StatusCode == http.StatusFound && loc != "" {
		return url.Parse(loc)
	}
	if resp.StatusCode == 200 && strings.Contains(string(body), `method="POST"`) {
		// form_post: turn the hidden fields into a URL for the caller.
		action := template.HTMLEscapeString(between(string(body), `action="`, `"`))
		out, err := url.Parse(htmlUnescape(action))
		if err != nil {
			return nil, fmt.Errorf("m365sim: sign-in: form_post action: %w", err)
		}
		v := out.Query()
		rest := string(body)
		for {
			i := strings.Index(rest, `type="hidden" name="`)
			if i < 0 {
				break
			}
			rest = rest[i+len(`type="hidden" name="`):]
			name := rest[:strings.Index(rest, `"`)]
			val := between(rest, `value="`, `"`)
			v.Set(htmlUnescape(name), htmlUnescape(val))
		}
		out.RawQuery = v.Encode()
		return out, nil
	}
	return nil, fmt.Errorf("m365sim: sign-in: consent answered %d: %s", resp.StatusCode, stripTags(string(body)))
}

func between(s, a, b string) string {
	i := strings.Index(s, a)
	if i < 0 {
		return ""
	}
	s = s[i+len(a):]
	j := strings.Index(s, b)
	if j < 0 {
		return ""
	}
	return s[:j]
}

func htmlUnescape(s string) string {
	r := strings.NewReplacer("&amp;", "&", "&lt;", "<", "&gt;", ">", "&#34;", `"`, "&#39;", "'", "&quot;", `"`)
	return r.Replace(s)
}

func stripTags(s string) string {
	var b strings.Builder
	in := false
	for _, c := range s {
		switch {
		case c == '<':
			in = true
		case c == '>':
			in = false
			b.WriteByte(' ')
		case !in:
			b.WriteRune(c)
		}
	}
	return strings.Join(strings.Fields(b.String()), " ")
}

// authenticate resolves the bearer token of a Graph request.
func (s *Sim) authenticate(r *http.Request) (*accessToken, string) {
	h := r.Header.Get("Authorization")
	if h == "" {
		return nil, "Access token is empty."
	}
	tok, ok := strings.CutPrefix(h, "Bearer ")
	if !ok {
		return nil, "Access token is empty."
	}
	s.mu.Lock()
	at := s.access[tok]
	s.mu.Unlock()
	if at == nil {
		return nil, "IDX14100: JWT is not well formed, there are no dots (.)."
	}
	if time.Now().After(at.expires) {
		return nil, "Access token has expired or is not yet valid."
	}
	s.mu.Lock()
	reject := at.user.rejectTokens != 0
	if at.user.rejectTokens > 0 {
		at.user.rejectTokens--
	}
	if reject {
		s.statsFor(at.user).Rejected++
		s.total.Rejected++
	}
	s.mu.Unlock()
	if reject {
		return nil, "Lifetime validation failed, the token is expired."
	}
	return at, ""
}
