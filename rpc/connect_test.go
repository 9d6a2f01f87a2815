package rpc

import (
	"context"
	"encoding/json"
	"io"
	"net/http"
	"net/url"
	"strings"
	"testing"
	"time"

	"github.com/rs/zerolog"

	"github.com/maildesk/maildesk/bridge"
	"github.com/maildesk/maildesk/graphsync"
	"github.com/maildesk/maildesk/graphsync/m365sim"
	"github.com/maildesk/maildesk/store"
)

// connectRPC is the rpc env plus the simulator and the connect services.
func connectRPC(t *testing.T) (*env, *m365sim.Sim) {
	t.Helper()
	e := newEnv(t, Config{})
	sim, err := m365sim.New(m365sim.Options{Seed: 11})
	if err != nil {
		t.Fatal(err)
	}
	if err := sim.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = sim.Close() })
	app := m365sim.DefaultApp()
	s := store.DefaultSettings()
	s.Azure = store.AzureSettings{Tenant: sim.Tenant(), ClientID: app.ClientID, RedirectURI: e.http.URL + "/oauth/callback",
		Authority: sim.URL(), ClientSecret: app.ClientSecret}
	if err := e.st.SaveSettings(s); err != nil {
		t.Fatal(err)
	}
	log := zerolog.New(e.logs)
	auth := graphsync.NewAuth(e.st, bridge.NewAccounts(e.st), graphsync.AuthOptions{HTTPClient: &http.Client{Timeout: 20 * time.Second, Transport: sim.Transport()}, GraphBaseURL: sim.GraphBaseURL(), Log: log})
	if err := RegisterConnect(e.srv, bridge.NewConnector(e.st, auth, bridge.ConnectorOptions{Log: log}), log); err != nil {
		t.Fatal(err)
	}
	sim.AddUser("anna@contoso.com", "Anna Berg")
	return e, sim
}

func TestConnectOverJSONRPCAndCallback(t *testing.T) {
	e, sim := connectRPC(t)
	m, err := e.st.CreateMailbox(store.Mailbox{MailboxConfig: store.MailboxConfig{Email: "anna@contoso.com", Kind: "personal", OwnerUID: 2, MainUserID: 2, UserIDs: []int64{2}, Mode: "log"}, MailboxStatus: store.MailboxStatus{State: bridge.StateDraft}})
	if err != nil {
		t.Fatal(err)
	}
	var answers []string
	connect := func() *url.URL {
		res, errObj := e.call("mailbox.connect", with(map[string]any{"mailbox_id": m.ID}, ctxUID(2)))
		if errObj != nil {
			t.Fatalf("mailbox.connect: %+v", errObj)
		}
		answers = append(answers, string(res))
		var out struct {
			AuthURL   string    `json:"auth_url"`
			ExpiresAt time.Time `json:"expires_at"`
		}
		if err := json.Unmarshal(res, &out); err != nil || out.AuthURL == "" || out.ExpiresAt.IsZero() {
			t.Fatalf("mailbox.connect answer %s", res)
		}
		loc, err := sim.SignIn(context.Background(), out.AuthURL, "anna@contoso.com")
		if err != nil {
			t.Fatal(err)
		}
		return loc
	}

	// Odoo's callback hands code and state to oauth.complete.
	loc := connect()
	q := loc.Query()
	res, errObj := e.call("oauth.complete", with(map[string]any{"code": q.Get("code"), "state": q.Get("state")}, ctxUID(2)))
	if errObj != nil {
		t.Fatalf("oauth.complete: %+v", errObj)
	}
	answers = append(answers, string(res))
	var v struct {
		State       string `json:"state"`
		ConnectedAs string `json:"connected_as"`
	}
	if err := json.Unmarshal(res, &v); err != nil || v.State != "connected" || v.ConnectedAs != "anna@contoso.com" {
		t.Fatalf("oauth.complete answer %s", res)
	}
	// A replay is a UserError with a code.
	_, errObj = e.call("oauth.complete", with(map[string]any{"code": q.Get("code"), "state": q.Get("state")}, ctxUID(2)))
	if errObj == nil || errObj.Data.Name != "odoo.exceptions.UserError" || errObj.Data.Code != "invalid_state" {
		t.Fatalf("replay: %+v", errObj)
	}

	// The sidecar's own callback route (Microsoft redirects the browser there).
	loc = connect()
	get := func(raw string) (int, string) {
		resp, err := e.http.Client().Get(e.http.URL + "/oauth/callback?" + raw)
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		b, _ := io.ReadAll(resp.Body)
		if resp.Header.Get("Referrer-Policy") != "no-referrer" || !strings.HasPrefix(resp.Header.Get("Content-Type"), "text/html") {
			t.Errorf("callback headers %v", resp.Header)
		}
		return resp.StatusCode, string(b)
	}
	status, page := get(loc.RawQuery)
	if status != 200 || !strings.Contains(page, "Mailbox connected") || !strings.Contains(page, "anna@contoso.com") {
		t.Fatalf("callback: %d %s", status, page)
	}
	answers = append(answers, page)
	status, page = get(loc.RawQuery)
	if status != 400 || !strings.Contains(page, "already used") {
		t.Fatalf("callback replay: %d %s", status, page)
	}
	status, page = get(url.Values{"error": {"access_denied"}, "error_description": {"AADSTS65004: User declined to consent <b>x</b>"}}.Encode())
	if status != 400 || !strings.Contains(page, "declined") || strings.Contains(page, "<b>x</b>") {
		t.Fatalf("callback error: %d %s", status, page)
	}
	status, page = get("admin_consent=True&tenant=" + sim.Tenant())
	if status != 200 || !strings.Contains(page, "Admin consent granted") {
		t.Fatalf("admin consent callback: %d %s", status, page)
	}

	// consent.admin_url: MailDesk admins only.
	if _, errObj := e.call("consent.admin_url", with(nil, ctxUID(2))); errObj == nil || errObj.Data.Code != "forbidden" {
		t.Fatalf("admin_url as a user: %+v", errObj)
	}
	res, errObj = e.call("consent.admin_url", with(nil, ctxAdmin()))
	if errObj != nil || !strings.Contains(string(res), "adminconsent") {
		t.Fatalf("admin_url: %s %+v", res, errObj)
	}
	answers = append(answers, string(res))

	// mailbox.disconnect erases the tokens.
	res, errObj = e.call("mailbox.disconnect", with(map[string]any{"mailbox_id": m.ID}, ctxUID(2)))
	if errObj != nil || !strings.Contains(string(res), `"state":"disconnected"`) {
		t.Fatalf("disconnect: %s %+v", res, errObj)
	}
	answers = append(answers, string(res))
	if tok, _ := e.st.TokenCache(m.ID); tok != nil {
		t.Fatal("tokens kept")
	}
	all := strings.Join(answers, "\n") + e.logs.String()
	for _, bad := range []string{"sim-at.", "sim-rt.", m365sim.DefaultApp().ClientSecret, "home_account_id", q.Get("code")} {
		if strings.Contains(all, bad) {
			t.Errorf("%q leaked into an answer or the log", bad)
		}
	}
}
