package bridge

import (
	"fmt"
	"net/url"
	"regexp"
	"strings"
	"sync"
	"time"

	"github.com/rs/zerolog"

	"github.com/maildesk/maildesk/store"
)

// Settings reads and changes the sidecar's global settings (the Azure app,
// the Odoo target, defaults for new mailboxes). Secrets are write-only: they
// are sealed by the store, never returned (only {"set": true}), never logged,
// never audited with their values. Only MailDesk administrators
// (Actor.Admin) may read or change settings.
type Settings struct {
	st  SettingsStore
	log zerolog.Logger

	mu        sync.Mutex // serialises read-modify-write of Set
	listeners []func(store.Settings)
}

// SettingsStore keeps the settings (secrets sealed) and writes a change
// with its audit entry in one transaction.
type SettingsStore interface {
	Settings() (store.Settings, error)
	SaveSettingsAudit(st store.Settings, audit *store.AuditEntry) error
}

// NewSettings returns the settings manager over st.
func NewSettings(st SettingsStore, log zerolog.Logger) *Settings {
	return &Settings{st: st, log: log}
}

// OnChange registers fn to run (synchronously, after the write) whenever
// settings change, e.g. to rebuild MSAL clients or the Odoo client. Register
// before serving. fn gets the settings with secrets opened: never log them.
func (s *Settings) OnChange(fn func(store.Settings)) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.listeners = append(s.listeners, fn)
}

// SecretState is how a secret is shown: whether it is set, never its value.
type SecretState struct {
	Set bool `json:"set"`
}

// SettingsView is what settings.get and settings.set answer.
type SettingsView struct {
	Azure     AzureView       `json:"azure"`
	Odoo      OdooView        `json:"odoo"`
	Defaults  store.Defaults  `json:"defaults"`
	Retention store.Retention `json:"retention"`
	UpdatedAt *time.Time      `json:"updated_at"`
}

// AzureView is the Azure app without its secret.
type AzureView struct {
	Tenant       string      `json:"tenant"`
	ClientID     string      `json:"client_id"`
	RedirectURI  string      `json:"redirect_uri"`
	Authority    string      `json:"authority"`
	ClientSecret SecretState `json:"client_secret"`
	Certificate  SecretState `json:"certificate_pem"`
}

// OdooView is the Odoo target without its API key.
type OdooView struct {
	URL      string      `json:"url"`
	DB       string      `json:"db"`
	Login    string      `json:"login"`
	Protocol string      `json:"protocol"`
	APIKey   SecretState `json:"api_key"`
}

// SettingsParams are settings.set's params. Absent fields keep their value;
// a secret given as "" is removed.
type SettingsParams struct {
	Azure    *AzureParams    `json:"azure"`
	Odoo     *OdooParams     `json:"odoo"`
	Defaults *DefaultsParams `json:"defaults"`
	// Retention: days the audit log and the message index keep entries.
	Retention *RetentionParams `json:"retention"`
}

// RetentionParams change the retention: 0 keeps entries forever, else
// between MinRetentionDays and MaxRetentionDays.
type RetentionParams struct {
	AuditDays   *int `json:"audit_days"`
	MessageDays *int `json:"message_days"`
}

// The retention a setting may ask for, besides 0 (forever).
const (
	MinRetentionDays = 30
	MaxRetentionDays = 36500
)

// AzureParams change the Azure app.
type AzureParams struct {
	Tenant         *string `json:"tenant"`
	ClientID       *string `json:"client_id"`
	ClientSecret   *string `json:"client_secret"`
	CertificatePEM *string `json:"certificate_pem"`
	RedirectURI    *string `json:"redirect_uri"`
	Authority      *string `json:"authority"`
}

// OdooParams change the Odoo target.
type OdooParams struct {
	URL      *string `json:"url"`
	DB       *string `json:"db"`
	Login    *string `json:"login"`
	APIKey   *string `json:"api_key"`
	Protocol *string `json:"protocol"`
}

// DefaultsParams change the defaults.
type DefaultsParams struct {
	BackfillDays      *int      `json:"backfill_days"`
	PollIntervalS     *int      `json:"poll_interval_s"`
	Folders           *[]string `json:"folders"`
	MaxMessageBytes   *int64    `json:"max_message_bytes"`
	MaxRecipients     *int      `json:"max_recipients"`
	LogSentAsActivity *bool     `json:"log_sent_as_activity"`
}

// SettingsViewOf shows settings without secrets.
func SettingsViewOf(st store.Settings) SettingsView {
	d := st.Defaults
	if d.Folders == nil {
		d.Folders = []string{}
	}
	return SettingsView{
		Azure: AzureView{Tenant: st.Azure.Tenant, ClientID: st.Azure.ClientID, RedirectURI: st.Azure.RedirectURI,
			Authority: st.Azure.Authority, ClientSecret: SecretState{st.Azure.ClientSecret != ""},
			Certificate: SecretState{st.Azure.CertificatePEM != ""}},
		Odoo: OdooView{URL: st.Odoo.URL, DB: st.Odoo.DB, Login: st.Odoo.Login, Protocol: st.Odoo.Protocol,
			APIKey: SecretState{st.Odoo.APIKey != ""}},
		Defaults:  d,
		Retention: st.Retention,
		UpdatedAt: tp(st.UpdatedAt),
	}
}

// Get returns the settings as admins see them.
func (s *Settings) Get(a Actor) (SettingsView, error) {
	if !a.Admin {
		return SettingsView{}, Forbidden("Only MailDesk administrators may read the sidecar's settings")
	}
	st, err := s.st.Settings()
	if err != nil {
		return SettingsView{}, Internal(err)
	}
	return SettingsViewOf(st), nil
}

var (
	reTenant   = regexp.MustCompile(`^[A-Za-z0-9.-]{1,253}$`)
	reClientID = regexp.MustCompile(`^[A-Za-z0-9-]{1,64}$`)
	reDBName   = regexp.MustCompile(`^[A-Za-z0-9_.-]{1,63}$`)
)

func validURL(raw string, allowHTTP bool) bool {
	u, err := url.Parse(raw)
	if err != nil || u.Host == "" || u.User != nil {
		return false
	}
	if u.Scheme == "https" {
		return true
	}
	if u.Scheme != "http" {
		return false
	}
	if allowHTTP {
		return true
	}
	h := u.Hostname()
	return h == "localhost" || h == "127.0.0.1" || h == "::1"
}

// Set validates and applies a change; it answers the new settings. Every
// problem is reported at once and nothing is written when there is one.
func (s *Settings) Set(a Actor, p SettingsParams) (SettingsView, error) {
	if !a.Admin {
		return SettingsView{}, Forbidden("Only MailDesk administrators may change the sidecar's settings")
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	st, err := s.st.Settings()
	if err != nil {
		return SettingsView{}, Internal(err)
	}
	var errs, changed []string
	bad := func(format string, args ...any) { errs = append(errs, fmt.Sprintf(format, args...)) }
	str := func(name string, dst *string, v *string, ok func(string) bool, what string) {
		if v == nil {
			return
		}
		val := strings.TrimSpace(*v)
		if val != "" && ok != nil && !ok(val) {
			bad("%s %s", name, what)
			return
		}
		if *dst != val {
			changed = append(changed, name)
		}
		*dst = val
	}
	secret := func(name string, dst *string, v *string) {
		if v == nil {
			return
		}
		if *v != "" && strings.TrimSpace(*v) != *v {
			bad("%s must not start or end with spaces", name)
			return
		}
		if *dst != *v {
			changed = append(changed, name)
		}
		*dst = *v
	}
	if z := p.Azure; z != nil {
		str("azure.tenant", &st.Azure.Tenant, z.Tenant, reTenant.MatchString, `must be a tenant id, a domain, "organizations" or "common"`)
		str("azure.client_id", &st.Azure.ClientID, z.ClientID, reClientID.MatchString, "must be the application (client) id, a GUID")
		str("azure.redirect_uri", &st.Azure.RedirectURI, z.RedirectURI, func(v string) bool { return validURL(v, false) },
			"must be an https URL (http only for localhost), normally Odoo's /maildesk/oauth/callback")
		str("azure.authority", &st.Azure.Authority, z.Authority, func(v string) bool { return validURL(v, false) },
			"must be an https URL (http only for localhost)")
		secret("azure.client_secret", &st.Azure.ClientSecret, z.ClientSecret)
		secret("azure.certificate_pem", &st.Azure.CertificatePEM, z.CertificatePEM)
		if z.CertificatePEM != nil && *z.CertificatePEM != "" && !strings.Contains(*z.CertificatePEM, "-----BEGIN ") {
			bad("azure.certificate_pem must be PEM text (certificate and private key)")
		}
	}
	if o := p.Odoo; o != nil {
		str("odoo.url", &st.Odoo.URL, o.URL, func(v string) bool { return validURL(v, true) }, "must be an http(s) URL such as https://odoo.example.com")
		str("odoo.db", &st.Odoo.DB, o.DB, reDBName.MatchString, "must be an Odoo database name")
		str("odoo.login", &st.Odoo.Login, o.Login, func(v string) bool { return len(v) <= 254 }, "is too long")
		str("odoo.protocol", &st.Odoo.Protocol, o.Protocol, func(v string) bool { return v == "jsonrpc" || v == "json2" },
			`must be "jsonrpc", "json2" or "" (detect)`)
		secret("odoo.api_key", &st.Odoo.APIKey, o.APIKey)
	}
	if d := p.Defaults; d != nil {
		intIn := func(name string, dst *int, v *int, lo, hi int) {
			if v == nil {
				return
			}
			if *v < lo || *v > hi {
				bad("defaults.%s must be between %d and %d, not %d", name, lo, hi, *v)
				return
			}
			if *dst != *v {
				changed = append(changed, "defaults."+name)
			}
			*dst = *v
		}
		intIn("backfill_days", &st.Defaults.BackfillDays, d.BackfillDays, 0, 3650)
		intIn("poll_interval_s", &st.Defaults.PollIntervalS, d.PollIntervalS, 10, 86400)
		intIn("max_recipients", &st.Defaults.MaxRecipients, d.MaxRecipients, 1, 10000)
		if d.MaxMessageBytes != nil {
			if *d.MaxMessageBytes < 1<<10 || *d.MaxMessageBytes > 150<<20 {
				bad("defaults.max_message_bytes must be between 1 KB and 150 MB")
			} else if st.Defaults.MaxMessageBytes != *d.MaxMessageBytes {
				changed = append(changed, "defaults.max_message_bytes")
				st.Defaults.MaxMessageBytes = *d.MaxMessageBytes
			}
		}
		if d.Folders != nil {
			fs := []string{}
			for _, f := range *d.Folders {
				n, ok := NormalizeFolder(strings.TrimSpace(f))
				if !ok {
					bad("defaults.folders: %q is neither a well-known folder (%s) nor a Graph folder id", f, strings.Join(WellKnownFolders, ", "))
					continue
				}
				fs = append(fs, n)
			}
			if len(*d.Folders) == 0 {
				bad("defaults.folders must name at least one folder")
			}
			if strings.Join(fs, ",") != strings.Join(st.Defaults.Folders, ",") {
				changed = append(changed, "defaults.folders")
			}
			st.Defaults.Folders = fs
		}
		if d.LogSentAsActivity != nil {
			if st.Defaults.LogSentAsActivity != *d.LogSentAsActivity {
				changed = append(changed, "defaults.log_sent_as_activity")
			}
			st.Defaults.LogSentAsActivity = *d.LogSentAsActivity
		}
	}
	if r := p.Retention; r != nil {
		days := func(name string, dst *int, v *int) {
			if v == nil {
				return
			}
			if *v != 0 && (*v < MinRetentionDays || *v > MaxRetentionDays) {
				bad("retention.%s must be 0 (keep forever) or between %d and %d days, not %d", name, MinRetentionDays, MaxRetentionDays, *v)
				return
			}
			if *dst != *v {
				changed = append(changed, "retention."+name)
			}
			*dst = *v
		}
		days("audit_days", &st.Retention.AuditDays, r.AuditDays)
		days("message_days", &st.Retention.MessageDays, r.MessageDays)
	}
	if len(errs) > 0 {
		return SettingsView{}, Invalid("%s", strings.Join(errs, "; "))
	}
	if len(changed) == 0 {
		return SettingsViewOf(st), nil
	}
	// Only field names: secret values never reach the audit log or the log.
	if err := s.st.SaveSettingsAudit(st, &store.AuditEntry{UID: a.UID, Actor: a.name(), Action: "settings.set", Detail: map[string]any{"changed": changed}}); err != nil {
		return SettingsView{}, Internal(err)
	}
	s.log.Info().Strs("changed", changed).Int64("uid", a.UID).Msg("settings changed")
	saved, err := s.st.Settings()
	if err != nil {
		return SettingsView{}, Internal(err)
	}
	for _, fn := range s.listeners {
		fn(saved)
	}
	return SettingsViewOf(saved), nil
}
