package rpc

import (
	"bytes"
	"encoding/json"
	"io"
	"net/http"
	"os"
	"strings"
	"testing"
)

// After settings.set with a client secret and an API key, neither string is
// in the database file, the logs, or any answer — only {"set": true}.
func TestSecretsNeverLeave(t *testing.T) {
	const clientSecret = "Zq8~client-SECRET-value-4711"
	const apiKey = "odoo-api-key-0f9e8d7c6b5a4321"
	e := newEnv(t, Config{Debug: true})
	var answers []string
	record := func(method string, params map[string]any) json.RawMessage {
		res, errObj := e.call(method, params)
		b, _ := json.Marshal(map[string]any{"result": res, "error": errObj})
		answers = append(answers, string(b))
		return res
	}
	res := record("settings.set", with(map[string]any{
		"azure": map[string]any{"tenant": "contoso.onmicrosoft.com", "client_id": "11111111-2222-3333-4444-555555555555",
			"client_secret": clientSecret, "redirect_uri": "https://odoo.example.com/maildesk/oauth/callback"},
		"odoo": map[string]any{"url": "https://odoo.example.com", "db": "prod", "login": "maildesk-bot", "api_key": apiKey, "protocol": "json2"},
	}, ctxAdmin()))
	var view struct {
		Azure struct {
			ClientSecret map[string]bool `json:"client_secret"`
		} `json:"azure"`
		Odoo struct {
			APIKey map[string]bool `json:"api_key"`
		} `json:"odoo"`
	}
	if err := json.Unmarshal(res, &view); err != nil {
		t.Fatal(err)
	}
	if !view.Azure.ClientSecret["set"] || !view.Odoo.APIKey["set"] || len(view.Odoo.APIKey) != 1 {
		t.Fatalf("secrets should show as {\"set\": true}: %s", res)
	}
	record("settings.get", with(nil, ctxAdmin()))
	record("system.version", nil)
	record("system.health", nil)
	record("audit.list", with(nil, ctxAdmin()))
	// A bad settings.set (validation fails) must not echo the secret either.
	record("settings.set", with(map[string]any{"odoo": map[string]any{"api_key": apiKey, "url": "ftp://x"}}, ctxAdmin()))
	record("settings.set", with(map[string]any{"odoo": map[string]any{"api_key": apiKey, "colour": 1}}, ctxAdmin()))
	record("settings.set", with(map[string]any{"odoo": map[string]any{"api_key": 42}}, ctxAdmin()))
	// The backup route streams the same file: sealed too.
	req, _ := http.NewRequest(http.MethodGet, e.http.URL+"/admin/backup", nil)
	req.Header.Set("Authorization", "Bearer "+testSecret)
	resp, err := e.http.Client().Do(req)
	if err != nil {
		t.Fatal(err)
	}
	backup, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if resp.StatusCode != 200 || len(backup) == 0 {
		t.Fatalf("backup: HTTP %d, %d bytes", resp.StatusCode, len(backup))
	}

	// The store still opens them (they were saved, not dropped).
	st, err := e.st.Settings()
	if err != nil || st.Azure.ClientSecret != clientSecret || st.Odoo.APIKey != apiKey {
		t.Fatalf("secrets not stored: %v", err)
	}
	file, err := os.ReadFile(e.path)
	if err != nil {
		t.Fatal(err)
	}
	for _, secret := range []string{clientSecret, apiKey} {
		for where, hay := range map[string][]byte{
			"database file": file, "backup": backup, "logs": []byte(e.logs.String()), "answers": []byte(strings.Join(answers, "\n")),
		} {
			if bytes.Contains(hay, []byte(secret)) {
				t.Errorf("%s holds the secret %q", where, secret)
			}
		}
	}
	if !strings.Contains(strings.Join(answers, "\n"), `"azure.client_secret"`) {
		t.Errorf("audit should name the changed secret field: %s", answers[4])
	}
}
