package m365sim

import (
	"context"
	"encoding/base64"
	"encoding/json"
	"net/url"
	"strings"
	"testing"
)

func TestAuthorizeAndTokenRules(t *testing.T) {
	s := newSim(t, Options{})
	ctx := context.Background()

	// Deny on the consent page.
	_, c := pkcePair()
	loc, err := s.SignInDeny(ctx, authURL(s, allScopes, c, "s1"), testUser)
	if err != nil {
		t.Fatal(err)
	}
	if loc.Query().Get("error") != "access_denied" || !strings.Contains(loc.Query().Get("error_description"), "AADSTS65004") || loc.Query().Get("state") != "s1" {
		t.Fatalf("deny redirect: %s", loc)
	}

	// Unregistered redirect URI and unknown client: an error page, no redirect.
	bad := strings.Replace(authURL(s, allScopes, c, "s"), url.QueryEscape(testRedirect), url.QueryEscape("https://evil.example/cb"), 1)
	if _, err := s.SignIn(ctx, bad, testUser); err == nil || !strings.Contains(err.Error(), "AADSTS50011") {
		t.Fatalf("bad redirect: %v", err)
	}
	badClient := strings.Replace(authURL(s, allScopes, c, "s"), defaultClientID, "00000000-0000-0000-0000-000000000000", 1)
	if _, err := s.SignIn(ctx, badClient, testUser); err == nil || !strings.Contains(err.Error(), "AADSTS700016") {
		t.Fatalf("bad client: %v", err)
	}

	// No PKCE: redirected with invalid_request.
	noPKCE := strings.Replace(authURL(s, allScopes, c, "s"), "code_challenge="+c, "code_challenge=", 1)
	loc, err = s.SignIn(ctx, noPKCE, testUser)
	if err != nil || loc.Query().Get("error") != "invalid_request" {
		t.Fatalf("no PKCE: %v %v", loc, err)
	}

	// form_post response mode.
	v, c2 := pkcePair()
	loc, err = s.SignIn(ctx, authURL(s, allScopes, c2, "s2")+"&response_mode=form_post", testUser)
	if err != nil || loc.Query().Get("code") == "" || loc.Query().Get("state") != "s2" {
		t.Fatalf("form_post: %v %v", loc, err)
	}
	code := loc.Query().Get("code")

	// Wrong redirect at the token endpoint, then the code is spent.
	st, body := redeem(t, s, url.Values{"grant_type": {"authorization_code"}, "code": {code}, "redirect_uri": {"http://127.0.0.1:9/other"}, "code_verifier": {v}})
	if st != 400 || body["error"] != "invalid_grant" || !strings.Contains(body["error_description"].(string), "AADSTS500112") {
		t.Fatalf("redirect mismatch: %d %v", st, body)
	}
	st, body = redeem(t, s, url.Values{"grant_type": {"authorization_code"}, "code": {code}, "redirect_uri": {testRedirect}, "code_verifier": {v}})
	if st != 400 || body["error_codes"].([]any)[0].(float64) != 54005 {
		t.Fatalf("spent code: %d %v", st, body)
	}

	// Wrong client secret.
	form := url.Values{"grant_type": {"refresh_token"}, "refresh_token": {"x"}, "client_id": {defaultClientID}, "client_secret": {"nope"}}
	res, err := s.Client().PostForm(s.AuthorityURL()+"/oauth2/v2.0/token", form)
	if err != nil {
		t.Fatal(err)
	}
	res.Body.Close()
	if res.StatusCode != 401 {
		t.Fatalf("bad secret: %d", res.StatusCode)
	}

	// Successful redemption: id_token and client_info shapes.
	v, c3 := pkcePair()
	loc, _ = s.SignIn(ctx, authURL(s, allScopes, c3, "s3"), testUser)
	st, body = redeem(t, s, url.Values{"grant_type": {"authorization_code"}, "code": {loc.Query().Get("code")}, "redirect_uri": {testRedirect}, "code_verifier": {v}, "client_info": {"1"}})
	if st != 200 {
		t.Fatalf("redeem: %d %v", st, body)
	}
	parts := strings.Split(body["id_token"].(string), ".")
	payload, err := base64.RawURLEncoding.DecodeString(parts[1])
	if err != nil || len(parts) != 3 {
		t.Fatalf("id_token not unpadded base64url JWT: %v", err)
	}
	var claims map[string]any
	_ = json.Unmarshal(payload, &claims)
	u := s.user(testUser)
	if claims["oid"] != u.ID || claims["tid"] != s.Tenant() || claims["preferred_username"] != testUser || claims["iss"] != s.AuthorityURL()+"/v2.0" {
		t.Fatalf("claims: %v", claims)
	}
	ci, err := base64.RawURLEncoding.DecodeString(body["client_info"].(string))
	if err != nil || !strings.Contains(string(ci), `"uid":"`+u.ID+`"`) {
		t.Fatalf("client_info: %s %v", ci, err)
	}
	// Refresh rotates.
	rt := body["refresh_token"].(string)
	st, body2 := redeem(t, s, url.Values{"grant_type": {"refresh_token"}, "refresh_token": {rt}, "scope": {"https://graph.microsoft.com/Mail.ReadWrite offline_access"}})
	if st != 200 || body2["refresh_token"] == rt || body2["access_token"] == body["access_token"] {
		t.Fatalf("refresh: %d %v", st, body2)
	}
	// A scope never consented needs consent again.
	st, body2 = redeem(t, s, url.Values{"grant_type": {"refresh_token"}, "refresh_token": {rt}, "scope": {"https://graph.microsoft.com/Calendars.Read"}})
	if st != 400 || body2["suberror"] != "consent_required" {
		t.Fatalf("new scope: %d %v", st, body2)
	}
}

func TestAdminConsent(t *testing.T) {
	s := newSim(t, Options{AutoApprove: true})
	c := clientFromPEM(t, s.CAPEM())
	q := url.Values{"client_id": {defaultClientID}, "redirect_uri": {testRedirect}, "state": {"a1"}, "scope": {"https://graph.microsoft.com/.default"}}
	res, err := c.Get(s.AuthorityURL() + "/v2.0/adminconsent?" + q.Encode())
	if err != nil {
		t.Fatal(err)
	}
	res.Body.Close()
	loc, _ := url.Parse(res.Header.Get("Location"))
	if res.StatusCode != 302 || loc.Query().Get("admin_consent") != "True" || loc.Query().Get("tenant") != s.Tenant() || loc.Query().Get("state") != "a1" {
		t.Fatalf("admin consent: %d %s", res.StatusCode, loc)
	}
	// With consent and AutoApprove the authorize call redirects at once.
	_, ch := pkcePair()
	res, err = c.Get(authURL(s, allScopes, ch, "z") + "&login_hint=" + url.QueryEscape(testUser))
	if err != nil {
		t.Fatal(err)
	}
	res.Body.Close()
	if res.StatusCode != 302 || !strings.Contains(res.Header.Get("Location"), "code=") {
		t.Fatalf("auto approve: %d %v", res.StatusCode, res.Header)
	}
}

func TestNoOfflineAccessNoRefreshToken(t *testing.T) {
	s := newSim(t, Options{})
	v, c := pkcePair()
	loc, err := s.SignIn(context.Background(), authURL(s, "https://graph.microsoft.com/.default", c, "s"), testUser)
	if err != nil {
		t.Fatal(err)
	}
	st, body := redeem(t, s, url.Values{"grant_type": {"authorization_code"}, "code": {loc.Query().Get("code")}, "redirect_uri": {testRedirect}, "code_verifier": {v}})
	if st != 200 || body["refresh_token"] != nil {
		t.Fatalf("token: %d %v", st, body)
	}
	// .default grants the app's mail permissions.
	if r := call(t, s, body["access_token"].(string), "GET", "/me/mailFolders/inbox/messages", nil); r.status != 200 {
		t.Fatalf(".default token: %d", r.status)
	}
}

func TestPromptNone(t *testing.T) {
	s := newSim(t, Options{})
	_, c := pkcePair()
	u := authURL(s, allScopes, c, "p") + "&prompt=none&login_hint=" + url.QueryEscape(testUser)
	loc, err := s.SignIn(context.Background(), u, testUser)
	if err != nil || loc.Query().Get("error") != "login_required" {
		t.Fatalf("prompt=none before consent: %v %v", loc, err)
	}
	if _, err := s.SignIn(context.Background(), authURL(s, allScopes, c, "p"), testUser); err != nil {
		t.Fatal(err)
	}
	loc, err = s.SignIn(context.Background(), u, testUser)
	if err != nil || loc.Query().Get("code") == "" {
		t.Fatalf("prompt=none after consent: %v %v", loc, err)
	}
}
