package m365sim

import (
	"context"
	"net/url"
	"strings"
	"sync"
	"testing"

	"github.com/AzureAD/microsoft-authentication-library-for-go/apps/cache"
	"github.com/AzureAD/microsoft-authentication-library-for-go/apps/confidential"
)

// memCache is a persisted cache stand-in (cache.ExportReplace).
type memCache struct {
	mu   sync.Mutex
	data []byte
}

func (c *memCache) Replace(ctx context.Context, u cache.Unmarshaler, _ cache.ReplaceHints) error {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.data == nil {
		return nil
	}
	return u.Unmarshal(c.data)
}

func (c *memCache) Export(ctx context.Context, m cache.Marshaler, _ cache.ExportHints) error {
	c.mu.Lock()
	defer c.mu.Unlock()
	b, err := m.Marshal()
	c.data = b
	return err
}

var graphScopes = []string{"https://graph.microsoft.com/Mail.ReadWrite", "https://graph.microsoft.com/Mail.Send", "https://graph.microsoft.com/User.Read"}

func msalClient(t *testing.T, s *Sim, c *memCache) confidential.Client {
	t.Helper()
	cred, err := confidential.NewCredFromSecret(defaultSecret)
	if err != nil {
		t.Fatal(err)
	}
	cl, err := confidential.New(s.AuthorityURL(), defaultClientID, cred,
		confidential.WithInstanceDiscovery(false), confidential.WithHTTPClient(s.Client()), confidential.WithCache(c))
	if err != nil {
		t.Fatal(err)
	}
	return cl
}

// msalSignIn runs the auth code flow with PKCE through MSAL and the
// simulated browser; it returns the code and verifier.
func msalSignIn(t *testing.T, s *Sim, cl confidential.Client, upn string) (code, verifier string) {
	t.Helper()
	ctx := context.Background()
	u, err := cl.AuthCodeURL(ctx, defaultClientID, testRedirect, append(graphScopes, "offline_access", "openid", "profile"))
	if err != nil {
		t.Fatal(err)
	}
	v, c := pkcePair()
	u += "&" + url.Values{"state": {"state-123"}, "code_challenge": {c}, "code_challenge_method": {"S256"}}.Encode()
	loc, err := s.SignIn(ctx, u, upn)
	if err != nil {
		t.Fatal(err)
	}
	if loc.Query().Get("state") != "state-123" {
		t.Fatalf("state not returned: %s", loc)
	}
	if !strings.HasPrefix(loc.String(), testRedirect) {
		t.Fatalf("redirected to %s", loc)
	}
	return loc.Query().Get("code"), v
}

func TestMSALAuthCodePKCEAndSilentRefresh(t *testing.T) {
	s := newSim(t, Options{})
	ctx := context.Background()
	c := &memCache{}
	cl := msalClient(t, s, c)
	code, verifier := msalSignIn(t, s, cl, testUser)
	res, err := cl.AcquireTokenByAuthCode(ctx, code, testRedirect, graphScopes, confidential.WithChallenge(verifier))
	if err != nil {
		t.Fatalf("redeem: %v", err)
	}
	u := s.user(testUser)
	if want := u.ID + "." + s.Tenant(); res.Account.HomeAccountID != want {
		t.Fatalf("home account id %q, want %q", res.Account.HomeAccountID, want)
	}
	if res.Account.PreferredUsername != testUser {
		t.Fatalf("preferred_username %q", res.Account.PreferredUsername)
	}
	if r := call(t, s, res.AccessToken, "GET", "/me", nil); r.status != 200 || r.json(t)["userPrincipalName"] != testUser {
		t.Fatalf("/me: %d %s", r.status, r.body)
	}

	// Replayed code: refused with AADSTS54005.
	if _, err := cl.AcquireTokenByAuthCode(ctx, code, testRedirect, graphScopes, confidential.WithChallenge(verifier)); err == nil || !strings.Contains(err.Error(), "54005") {
		t.Fatalf("replayed code: err = %v", err)
	}

	// A new client from the persisted cache refreshes silently (at
	// TimeScale 20 the access token lives ~3 minutes, under MSAL's 5-minute
	// refresh margin, so silent means a refresh_token grant).
	cl2 := msalClient(t, s, c)
	acct, err := cl2.Account(ctx, res.Account.HomeAccountID)
	if err != nil {
		t.Fatal(err)
	}
	res2, err := cl2.AcquireTokenSilent(ctx, graphScopes, confidential.WithSilentAccount(acct))
	if err != nil {
		t.Fatalf("silent: %v", err)
	}
	if res2.AccessToken == res.AccessToken {
		t.Fatal("silent call did not refresh")
	}
	if r := call(t, s, res2.AccessToken, "GET", "/me/mailFolders/inbox", nil); r.status != 200 {
		t.Fatalf("inbox with refreshed token: %d %s", r.status, r.body)
	}

	// Revoked: refresh fails with invalid_grant AADSTS50173, Graph says 401.
	s.RevokeUser(testUser)
	if _, err := cl2.AcquireTokenSilent(ctx, graphScopes, confidential.WithSilentAccount(acct)); err == nil || !strings.Contains(err.Error(), "invalid_grant") || !strings.Contains(err.Error(), "50173") {
		t.Fatalf("silent after revoke: err = %v", err)
	}
	if r := call(t, s, res2.AccessToken, "GET", "/me", nil); r.status != 401 || r.errCode(t) != "InvalidAuthenticationToken" {
		t.Fatalf("graph after revoke: %d %s", r.status, r.body)
	}
}

func TestMSALWrongVerifierRefused(t *testing.T) {
	s := newSim(t, Options{})
	cl := msalClient(t, s, &memCache{})
	code, _ := msalSignIn(t, s, cl, testUser)
	other, _ := pkcePair()
	_, err := cl.AcquireTokenByAuthCode(context.Background(), code, testRedirect, graphScopes, confidential.WithChallenge(other))
	if err == nil || !strings.Contains(err.Error(), "501481") {
		t.Fatalf("wrong verifier: err = %v", err)
	}
}

func TestMSALRefreshErrors(t *testing.T) {
	for _, tc := range []struct {
		name   string
		break_ func(s *Sim)
		want   []string
	}{
		{"expired", func(s *Sim) { s.ExpireRefreshTokens(testUser) }, []string{"invalid_grant", "700082"}},
		{"consent", func(s *Sim) { s.RequireConsent(defaultClientID) }, []string{"invalid_grant", "consent_required", "65001"}},
		{"mfa", func(s *Sim) { s.RequireMFA(testUser) }, []string{"interaction_required", "50079"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			s := newSim(t, Options{})
			ctx := context.Background()
			c := &memCache{}
			cl := msalClient(t, s, c)
			code, v := msalSignIn(t, s, cl, testUser)
			res, err := cl.AcquireTokenByAuthCode(ctx, code, testRedirect, graphScopes, confidential.WithChallenge(v))
			if err != nil {
				t.Fatal(err)
			}
			tc.break_(s)
			_, err = cl.AcquireTokenSilent(ctx, graphScopes, confidential.WithSilentAccount(res.Account))
			if err == nil {
				t.Fatal("silent refresh succeeded")
			}
			for _, w := range tc.want {
				if !strings.Contains(err.Error(), w) {
					t.Errorf("error %q lacks %q", err, w)
				}
			}
		})
	}
}
