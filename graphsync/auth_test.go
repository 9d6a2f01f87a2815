package graphsync

import (
	"bytes"
	"crypto/rand"
	"crypto/rsa"
	"crypto/sha256"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/base64"
	"encoding/json"
	"encoding/pem"
	"errors"
	"fmt"
	"math/big"
	"net/http"
	"strings"
	"testing"
	"time"

	msalerrors "github.com/AzureAD/microsoft-authentication-library-for-go/apps/errors"

	"github.com/maildesk/maildesk/store"
)

func TestScopes(t *testing.T) {
	p := strings.Join(Scopes("personal"), " ")
	s := strings.Join(Scopes("shared"), " ")
	for _, want := range []string{"/Mail.ReadWrite", "/Mail.Send", "/User.Read"} {
		if !strings.Contains(p, want) || !strings.Contains(s, want) {
			t.Errorf("%s missing", want)
		}
	}
	if strings.Contains(p, ".Shared") || !strings.Contains(s, "Mail.ReadWrite.Shared") || !strings.Contains(s, "Mail.Send.Shared") {
		t.Errorf("personal %q shared %q", p, s)
	}
	if !strings.Contains(strings.Join(AdminConsentScopes(), " "), "offline_access") {
		t.Error("admin consent lacks offline_access")
	}
}

func TestPKCE(t *testing.T) {
	v, c, err := NewPKCE()
	if err != nil {
		t.Fatal(err)
	}
	sum := sha256.Sum256([]byte(v))
	if len(v) != 43 || c != base64.RawURLEncoding.EncodeToString(sum[:]) {
		t.Fatalf("verifier %d chars, challenge %q", len(v), c)
	}
	v2, _, _ := NewPKCE()
	if v2 == v {
		t.Fatal("verifier repeated")
	}
}

func callErr(status int, body string) error {
	return fmt.Errorf("wrapped: %w", msalerrors.CallErr{
		Resp: &http.Response{StatusCode: status},
		Err:  fmt.Errorf("http call(https://login/x/oauth2/v2.0/token)(POST) error: reply status code was %d:\n%s", status, body),
	})
}

func TestParseMSALError(t *testing.T) {
	cases := []struct {
		name       string
		err        error
		code, sts  string
		signInOnly bool
	}{
		{"revoked", callErr(400, `{"error":"invalid_grant","error_description":"AADSTS50173: The provided grant has expired due to it being revoked.\r\nTrace ID: abc\r\nCorrelation ID: def","error_codes":[50173]}`), "invalid_grant", "AADSTS50173", true},
		{"inactive", callErr(400, `{"error":"invalid_grant","error_description":"AADSTS700082: The refresh token has expired due to inactivity.","error_codes":[700082],"suberror":"bad_token"}`), "invalid_grant", "AADSTS700082", true},
		{"mfa", callErr(400, `{"error":"interaction_required","error_description":"AADSTS50079: you must enroll in multi-factor authentication","error_codes":[50079]}`), "interaction_required", "AADSTS50079", true},
		{"consent", callErr(400, `{"error":"invalid_grant","error_description":"AADSTS65001: The user or administrator has not consented","error_codes":[65001],"suberror":"consent_required"}`), "invalid_grant", "AADSTS65001", true},
		{"bad secret", callErr(401, `{"error":"invalid_client","error_description":"AADSTS7000215: Invalid client secret provided.","error_codes":[7000215]}`), "invalid_client", "AADSTS7000215", false},
		{"no codes, code from text", callErr(400, `{"error":"invalid_request","error_description":"AADSTS900144: The request body must contain 'scope'."}`), "invalid_request", "AADSTS900144", false},
		{"gateway", callErr(502, `<html>bad gateway</html>`), "http_502", "", false},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			me := parseMSALError(tc.err)
			if me == nil {
				t.Fatal("not recognised")
			}
			if me.Code != tc.code || me.AADSTS != tc.sts || me.needsSignIn() != tc.signInOnly {
				t.Fatalf("%+v signInOnly=%v", me, me.needsSignIn())
			}
			if strings.Contains(me.Reason, "Trace ID") {
				t.Errorf("reason keeps trace ids: %q", me.Reason)
			}
		})
	}
	if parseMSALError(errors.New("dial tcp: connection refused")) != nil {
		t.Error("a network error was taken for a refusal")
	}
}

func TestTokenErrorClassifies(t *testing.T) {
	a := &Auth{}
	err := a.tokenError("mbx_1", callErr(400, `{"error":"invalid_grant","error_description":"AADSTS50173: revoked","error_codes":[50173]}`))
	var re *ReauthError
	if !errors.As(err, &re) || re.MailboxID != "mbx_1" || re.AADSTS != "AADSTS50173" || re.Reason != "AADSTS50173: revoked" {
		t.Fatalf("revoked: %v", err)
	}
	if err := a.tokenError("mbx_1", errors.New("no token found")); !IsReauth(err) {
		t.Fatalf("empty cache: %v", err)
	}
	err = a.tokenError("mbx_1", callErr(401, `{"error":"invalid_client","error_codes":[7000215]}`))
	var me *MSALError
	if IsReauth(err) || !errors.As(err, &me) {
		t.Fatalf("bad secret must not ask the owner to sign in: %v", err)
	}
	if err := a.tokenError("mbx_1", errors.New("context deadline exceeded")); IsReauth(err) {
		t.Fatal("a timeout asked for a sign-in")
	}
}

func TestAADSTSOf(t *testing.T) {
	for in, want := range map[string]string{
		"AADSTS65004: User declined to consent":    "AADSTS65004",
		"foo AADSTS90094: admin approval\r\nTrace": "AADSTS90094",
		"no code":   "",
		"AADSTSxyz": "",
	} {
		if got := AADSTSOf(in); got != want {
			t.Errorf("AADSTSOf(%q) = %q, want %q", in, got, want)
		}
	}
}

func TestDropAccessTokensKeepsTheRest(t *testing.T) {
	in := []byte(`{"AccessToken":{"k":{"secret":"at"}},"RefreshToken":{"k":{"secret":"rt"}},"Account":{"a":{"home_account_id":"u.t"}},"AppMetadata":{}}`)
	out, err := dropAccessTokens(in)
	if err != nil {
		t.Fatal(err)
	}
	var m map[string]json.RawMessage
	if err := json.Unmarshal(out, &m); err != nil {
		t.Fatal(err)
	}
	if _, ok := m["AccessToken"]; ok || !bytes.Contains(out, []byte(`"rt"`)) || m["Account"] == nil || m["AppMetadata"] == nil {
		t.Fatalf("%s", out)
	}
	if _, err := dropAccessTokens([]byte("not json")); err == nil {
		t.Fatal("garbage accepted")
	}
}

func selfSignedPEM(t *testing.T) string {
	t.Helper()
	key, err := rsa.GenerateKey(rand.Reader, 2048)
	if err != nil {
		t.Fatal(err)
	}
	tmpl := &x509.Certificate{SerialNumber: big.NewInt(1), Subject: pkix.Name{CommonName: "maildesk"},
		NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(time.Hour)}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		t.Fatal(err)
	}
	kder, err := x509.MarshalPKCS8PrivateKey(key)
	if err != nil {
		t.Fatal(err)
	}
	return string(pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der})) +
		string(pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: kder}))
}

func TestBuildConfig(t *testing.T) {
	ok := store.AzureSettings{Tenant: "contoso.com", ClientID: "cid", RedirectURI: "https://odoo/cb", ClientSecret: "s3cret"}
	cfg, err := buildConfig(ok)
	if err != nil {
		t.Fatal(err)
	}
	if cfg.authority != DefaultAuthority+"/contoso.com" || cfg.overridden {
		t.Fatalf("default authority: %+v", cfg)
	}
	sim := ok
	sim.Authority = "https://127.0.0.1:8766/"
	cfg2, err := buildConfig(sim)
	if err != nil || cfg2.authority != "https://127.0.0.1:8766/contoso.com" || !cfg2.overridden || cfg2.fingerprint == cfg.fingerprint {
		t.Fatalf("override: %+v %v", cfg2, err)
	}
	cert := ok
	cert.ClientSecret = ""
	cert.CertificatePEM = selfSignedPEM(t)
	if _, err := buildConfig(cert); err != nil {
		t.Fatalf("certificate credential: %v", err)
	}
	bad := cert
	bad.CertificatePEM = "-----BEGIN CERTIFICATE-----\nnope\n-----END CERTIFICATE-----\n"
	if _, err := buildConfig(bad); !errors.Is(err, ErrNotConfigured) {
		t.Fatalf("bad certificate: %v", err)
	}
	_, err = buildConfig(store.AzureSettings{Tenant: "x"})
	if !errors.Is(err, ErrNotConfigured) || !strings.Contains(err.Error(), "client id") || !strings.Contains(err.Error(), "redirect URI") || !strings.Contains(err.Error(), "client secret or certificate") {
		t.Fatalf("missing fields: %v", err)
	}
	plain := ok
	plain.Authority = "http://login.example"
	if _, err := buildConfig(plain); !errors.Is(err, ErrNotConfigured) {
		t.Fatalf("http authority accepted: %v", err)
	}
}
