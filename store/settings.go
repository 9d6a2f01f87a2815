package store

import (
	"errors"
	"fmt"
	"time"

	bolt "go.etcd.io/bbolt"
)

// Settings are the sidecar's global settings. Secret fields are kept apart,
// sealed, and never serialised with the rest (json:"-").
type Settings struct {
	Azure    AzureSettings `json:"azure"`
	Odoo     OdooSettings  `json:"odoo"`
	Defaults Defaults      `json:"defaults"`
	// Retention bounds how long the audit log and the message index keep
	// their entries.
	Retention Retention `json:"retention"`
	// UpdatedAt is when settings last changed.
	UpdatedAt time.Time `json:"updated_at"`
}

// AzureSettings name the Entra ID (Azure AD) app the mailboxes sign in to.
type AzureSettings struct {
	Tenant      string `json:"tenant"`       // tenant id or domain; "organizations" for multi-tenant
	ClientID    string `json:"client_id"`    // application (client) id
	RedirectURI string `json:"redirect_uri"` // Odoo's /maildesk/oauth/callback, registered on the app
	// Authority overrides https://login.microsoftonline.com (the simulator).
	Authority string `json:"authority,omitempty"`
	// ClientSecret is sealed in the secrets bucket.
	ClientSecret string `json:"-"`
	// CertificatePEM (certificate + private key) is an alternative credential; sealed.
	CertificatePEM string `json:"-"`
}

// OdooSettings say where the sidecar delivers mail.
type OdooSettings struct {
	URL      string `json:"url"`
	DB       string `json:"db"`
	Login    string `json:"login"`
	Protocol string `json:"protocol"` // "jsonrpc", "json2" or "" (detect)
	// APIKey is sealed in the secrets bucket.
	APIKey string `json:"-"`
}

// Defaults apply to new mailboxes and the scheduler.
type Defaults struct {
	BackfillDays      int      `json:"backfill_days"`
	PollIntervalS     int      `json:"poll_interval_s"`
	Folders           []string `json:"folders"`
	MaxMessageBytes   int64    `json:"max_message_bytes"`
	MaxRecipients     int      `json:"max_recipients"`
	LogSentAsActivity bool     `json:"log_sent_as_activity"`
}

// Retention is how many days entries are kept; 0 keeps them forever. The
// sidecar prunes older ones periodically (bridge.Retention).
type Retention struct {
	AuditDays   int `json:"audit_days"`   // audit log entries, by when they were written
	MessageDays int `json:"message_days"` // message index entries, by when the mail was received
}

// Default retention: a year of audit log and of message index.
const (
	DefaultAuditDays   = 365
	DefaultMessageDays = 365
)

// Secret names in the secrets bucket.
const (
	secretAzureClientSecret = "azure.client_secret"
	secretAzureCertificate  = "azure.certificate_pem"
	secretOdooAPIKey        = "odoo.api_key"
)

// DefaultSettings are what a new database starts with.
func DefaultSettings() Settings {
	return Settings{Defaults: Defaults{
		BackfillDays:      30,
		PollIntervalS:     60,
		Folders:           []string{"inbox", "sentitems"},
		MaxMessageBytes:   35 << 20,
		MaxRecipients:     500,
		LogSentAsActivity: true,
	}, Retention: Retention{AuditDays: DefaultAuditDays, MessageDays: DefaultMessageDays}}
}

// Settings returns the settings with secrets opened.
func (s *Store) Settings() (Settings, error) {
	st := DefaultSettings()
	err := s.db.View(func(tx *bolt.Tx) error {
		if err := getJSON(tx.Bucket(bucketSettings), keySettings, &st); err != nil && !errors.Is(err, ErrNotFound) {
			return err
		}
		sec := tx.Bucket(bucketSecrets)
		for name, dst := range map[string]*string{
			secretAzureClientSecret: &st.Azure.ClientSecret,
			secretAzureCertificate:  &st.Azure.CertificatePEM,
			secretOdooAPIKey:        &st.Odoo.APIKey,
		} {
			v := sec.Get([]byte(name))
			if v == nil {
				continue
			}
			plain, err := s.seal.open(v, []byte(name))
			if err != nil {
				return fmt.Errorf("secret %s: %w", name, err)
			}
			*dst = string(plain)
		}
		return nil
	})
	if err != nil {
		return Settings{}, fmt.Errorf("store: read settings: %w", err)
	}
	return st, nil
}

// SaveSettings writes settings; secret fields are sealed. An empty secret
// field removes that secret.
func (s *Store) SaveSettings(st Settings) error { return s.SaveSettingsAudit(st, nil) }

// SaveSettingsAudit is SaveSettings that appends audit (when not nil) in
// the same transaction.
func (s *Store) SaveSettingsAudit(st Settings, audit *AuditEntry) error {
	st.UpdatedAt = s.now().UTC()
	err := s.db.Update(func(tx *bolt.Tx) error {
		if err := putJSON(tx.Bucket(bucketSettings), keySettings, st); err != nil {
			return err
		}
		sec := tx.Bucket(bucketSecrets)
		for name, val := range map[string]string{
			secretAzureClientSecret: st.Azure.ClientSecret,
			secretAzureCertificate:  st.Azure.CertificatePEM,
			secretOdooAPIKey:        st.Odoo.APIKey,
		} {
			if val == "" {
				if err := sec.Delete([]byte(name)); err != nil {
					return err
				}
				continue
			}
			if err := sec.Put([]byte(name), s.seal.seal([]byte(val), []byte(name))); err != nil {
				return err
			}
		}
		if audit != nil {
			e := *audit
			return appendAudit(tx, s.now(), &e)
		}
		return nil
	})
	if err != nil {
		return fmt.Errorf("store: save settings: %w", err)
	}
	s.SettingsSaved()
	return nil
}
