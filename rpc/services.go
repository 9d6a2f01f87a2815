package rpc

import (
	"net/http"

	"github.com/maildesk/maildesk/bridge"
)

// SystemService serves system.version and system.health.
type SystemService struct{ System *bridge.System }

// Version answers system.version.
func (s *SystemService) Version(r *http.Request, _ *NoParams, out *bridge.VersionInfo) error {
	v, err := s.System.Version()
	*out = v
	return err
}

// Health answers system.health.
func (s *SystemService) Health(r *http.Request, _ *NoParams, out *bridge.Health) error {
	*out = s.System.Health(r.Context())
	return nil
}

// SettingsService serves settings.get and settings.set.
type SettingsService struct{ Settings *bridge.Settings }

// Get answers settings.get.
func (s *SettingsService) Get(r *http.Request, _ *NoParams, out *bridge.SettingsView) error {
	v, err := s.Settings.Get(ActorOf(r))
	*out = v
	return err
}

// Set answers settings.set.
func (s *SettingsService) Set(r *http.Request, p *bridge.SettingsParams, out *bridge.SettingsView) error {
	v, err := s.Settings.Set(ActorOf(r), *p)
	*out = v
	return err
}

// MailboxService serves mailbox.create/update/delete/list/get. Other mailbox.*
// methods live in other services of the same namespace (see doc.go).
type MailboxService struct{ Mailboxes *bridge.Mailboxes }

// Create answers mailbox.create.
func (s *MailboxService) Create(r *http.Request, p *bridge.MailboxCreateParams, out *bridge.MailboxView) error {
	v, err := s.Mailboxes.Create(ActorOf(r), p.MailboxFields)
	*out = v
	return err
}

// Update answers mailbox.update.
func (s *MailboxService) Update(r *http.Request, p *bridge.MailboxUpdateParams, out *bridge.MailboxView) error {
	v, err := s.Mailboxes.Update(ActorOf(r), *p)
	*out = v
	return err
}

// Delete answers mailbox.delete with true.
func (s *MailboxService) Delete(r *http.Request, p *bridge.MailboxRef, out *bool) error {
	if err := s.Mailboxes.Delete(ActorOf(r), p.MailboxID); err != nil {
		return err
	}
	*out = true
	return nil
}

// List answers mailbox.list.
func (s *MailboxService) List(r *http.Request, _ *NoParams, out *[]bridge.MailboxView) error {
	v, err := s.Mailboxes.List(ActorOf(r))
	*out = v
	return err
}

// Get answers mailbox.get.
func (s *MailboxService) Get(r *http.Request, p *bridge.MailboxRef, out *bridge.MailboxView) error {
	v, err := s.Mailboxes.Get(ActorOf(r), p.MailboxID)
	*out = v
	return err
}

// AuditService serves audit.list.
type AuditService struct{ Audit *bridge.AuditLog }

// List answers audit.list.
func (s *AuditService) List(r *http.Request, p *bridge.AuditParams, out *bridge.AuditPage) error {
	v, err := s.Audit.List(ActorOf(r), *p)
	*out = v
	return err
}
