package bridge

import (
	"errors"
	"fmt"
	"net/mail"
	"regexp"
	"slices"
	"sort"
	"strings"
	"time"

	"github.com/rs/zerolog"

	"github.com/maildesk/maildesk/store"
)

// Mailboxes manages mailbox records: validation, per-user visibility and the
// audit of every change. Safe for concurrent use.
//
// Who may do what (the addon enforces Odoo's own ACLs too):
//   - see (list, get): the owner, the main user, assigned users; admins all.
//   - create: admins, or a user creating a mailbox they own.
//   - update: admins, the owner and the main user; only admins change owner_uid.
//   - delete: admins and the owner.
type Mailboxes struct {
	st  Store
	log zerolog.Logger
}

// NewMailboxes returns the mailbox manager over st.
func NewMailboxes(st Store, log zerolog.Logger) *Mailboxes {
	return &Mailboxes{st: st, log: log}
}

// WellKnownFolders are the folder names Graph resolves in every mailbox.
var WellKnownFolders = []string{"inbox", "sentitems", "drafts", "deleteditems", "archive", "junkemail"}

// MailboxFields are the settable fields of a mailbox (mailbox.create and
// mailbox.update). nil means "not given": create uses the default, update
// keeps the current value.
type MailboxFields struct {
	Email             *string   `json:"email"`
	Kind              *string   `json:"kind"` // personal | shared
	OdooID            *int64    `json:"odoo_id"`
	OwnerUID          *int64    `json:"owner_uid"`
	SignInEmail       *string   `json:"sign_in_email"`
	UserIDs           *[]int64  `json:"user_ids"`
	MainUserID        *int64    `json:"main_user_id"`
	Mode              *string   `json:"mode"` // log | gateway
	GatewayModel      *string   `json:"gateway_model"`
	Folders           *[]string `json:"folders"`
	BackfillDays      *int      `json:"backfill_days"`
	LogSentAsActivity *bool     `json:"log_sent_as_activity"`
	CreateContacts    *bool     `json:"create_contacts"`
	// AnyoneMaySend: every Odoo user may send from this address (message.send).
	AnyoneMaySend *bool `json:"anyone_may_send"`
}

// MailboxCreateParams are mailbox.create's params.
type MailboxCreateParams struct {
	MailboxFields
}

// MailboxUpdateParams are mailbox.update's params.
type MailboxUpdateParams struct {
	MailboxID string `json:"mailbox_id"`
	MailboxFields
}

// MailboxRef names one mailbox (mailbox.get, mailbox.delete, ...).
type MailboxRef struct {
	MailboxID string `json:"mailbox_id"`
}

// MailboxView is a mailbox as RPC answers show it. It never carries tokens,
// the MSAL home account id or any other secret.
type MailboxView struct {
	ID                string   `json:"id"`
	Email             string   `json:"email"`
	Kind              string   `json:"kind"`
	OdooID            int64    `json:"odoo_id"`
	OwnerUID          int64    `json:"owner_uid"`
	SignInEmail       string   `json:"sign_in_email"`
	UserIDs           []int64  `json:"user_ids"`
	MainUserID        int64    `json:"main_user_id"`
	Mode              string   `json:"mode"`
	GatewayModel      string   `json:"gateway_model"`
	Folders           []string `json:"folders"`
	BackfillDays      int      `json:"backfill_days"`
	LogSentAsActivity bool     `json:"log_sent_as_activity"`
	CreateContacts    bool     `json:"create_contacts"`
	AnyoneMaySend     bool     `json:"anyone_may_send"`

	State       string     `json:"state"`
	StateSince  *time.Time `json:"state_since"`
	ErrorCode   string     `json:"error_code"`
	Error       string     `json:"error"`
	ConnectedAs string     `json:"connected_as"`
	ConnectedAt *time.Time `json:"connected_at"`

	LastSyncAt    *time.Time   `json:"last_sync_at"`
	LastSuccessAt *time.Time   `json:"last_success_at"`
	Progress      ProgressView `json:"progress"`
	Counts        store.Counts `json:"counts"`
	Delivery      DeliveryView `json:"delivery"`
	CreatedAt     *time.Time   `json:"created_at"`
	UpdatedAt     *time.Time   `json:"updated_at"`
}

// ProgressView is a backfill's progress.
type ProgressView struct {
	Done      int64      `json:"done"`
	Total     int64      `json:"total"`
	ETASecs   int64      `json:"eta_s"`
	StartedAt *time.Time `json:"started_at"`
	Finished  bool       `json:"finished"`
}

// DeliveryView says whether delivery to Odoo is delayed for a mailbox and
// how many of its messages failed (Odoo refused them FailLimit times the
// same way; mailbox.retry_failed queues them again) with Odoo's reason.
type DeliveryView struct {
	Delayed      bool       `json:"delayed"`
	Reason       string     `json:"reason"`
	Since        *time.Time `json:"since"`
	LastOKAt     *time.Time `json:"last_ok_at"`
	LastError    string     `json:"last_error"`
	Failed       int64      `json:"failed"`
	FailedReason string     `json:"failed_reason"`
	FailedAt     *time.Time `json:"failed_at"`
}

func tp(t time.Time) *time.Time {
	if t.IsZero() {
		return nil
	}
	t = t.UTC()
	return &t
}

// ViewOf is the RPC view of a stored mailbox.
func ViewOf(m store.Mailbox) MailboxView {
	users := m.UserIDs
	if users == nil {
		users = []int64{}
	}
	folders := m.Folders
	if folders == nil {
		folders = []string{}
	}
	return MailboxView{
		ID: m.ID, Email: m.Email, Kind: m.Kind, OdooID: m.OdooID, OwnerUID: m.OwnerUID,
		SignInEmail: m.SignInEmail, UserIDs: users, MainUserID: m.MainUserID, Mode: m.Mode,
		GatewayModel: m.GatewayModel, Folders: folders, BackfillDays: m.BackfillDays,
		LogSentAsActivity: m.LogSentAsActivity, CreateContacts: m.CreateContacts, AnyoneMaySend: m.AnyoneMaySend,
		State: m.State, StateSince: tp(m.StateSince), ErrorCode: m.ErrorCode, Error: m.Error,
		ConnectedAs: m.ConnectedAs, ConnectedAt: tp(m.ConnectedAt),
		LastSyncAt: tp(m.LastSyncAt), LastSuccessAt: tp(m.LastSuccessAt),
		Progress: ProgressView{Done: m.Progress.Done, Total: m.Progress.Total, ETASecs: m.Progress.ETASecs,
			StartedAt: tp(m.Progress.StartedAt), Finished: m.Progress.Finished},
		Counts: m.Counts,
		Delivery: DeliveryView{Delayed: m.Delivery.Delayed, Reason: m.Delivery.Reason, Since: tp(m.Delivery.Since),
			LastOKAt: tp(m.Delivery.LastOKAt), LastError: m.Delivery.LastError,
			Failed: m.Counts.Failed, FailedReason: m.Delivery.FailedReason, FailedAt: tp(m.Delivery.FailedAt)},
		CreatedAt: tp(m.CreatedAt), UpdatedAt: tp(m.UpdatedAt),
	}
}

// CanManage reports whether actor may change the mailbox's configuration.
func CanManage(a Actor, m *store.Mailbox) bool {
	return a.Admin || (a.UID > 0 && (m.OwnerUID == a.UID || m.MainUserID == a.UID))
}

// CanSee reports whether actor may see the mailbox: an admin, its owner,
// its main user or an assigned user.
func CanSee(a Actor, m *store.Mailbox) bool {
	if a.Admin {
		return true
	}
	uid := a.UID
	if uid <= 0 {
		return false
	}
	return m.OwnerUID == uid || m.MainUserID == uid || slices.Contains(m.UserIDs, uid)
}

// MaySend reports whether Odoo user uid may send mail through the mailbox:
// its owner and assigned users, or anyone when AnyoneMaySend is set. Seeing a
// mailbox (main user, MailDesk admin) is not enough.
func MaySend(m *store.Mailbox, uid int64) bool {
	if uid <= 0 {
		return false
	}
	return m.AnyoneMaySend || m.OwnerUID == uid || slices.Contains(m.UserIDs, uid)
}

// Load returns the mailbox id if actor may see it: MissingError when there is
// no such mailbox, AccessError when it belongs to others. Other bridge code
// uses it as the one visibility check.
func (s *Mailboxes) Load(a Actor, id string) (store.Mailbox, error) {
	if id == "" {
		return store.Mailbox{}, Invalid("Parameter mailbox_id is required")
	}
	m, err := s.st.Mailbox(id)
	if err != nil {
		if errors.Is(err, store.ErrNotFound) {
			return store.Mailbox{}, NotFound("Mailbox %s does not exist (it may have been deleted)", id)
		}
		return store.Mailbox{}, Internal(err)
	}
	if !CanSee(a, &m) {
		return store.Mailbox{}, Forbidden("You are not allowed to access mailbox %s: ask its owner or a MailDesk administrator to add you to its users", m.Email)
	}
	return m, nil
}

// List returns the mailboxes actor may see, ordered by address.
func (s *Mailboxes) List(a Actor) ([]MailboxView, error) {
	all, err := s.st.Mailboxes()
	if err != nil {
		return nil, Internal(err)
	}
	out := []MailboxView{}
	for i := range all {
		if CanSee(a, &all[i]) {
			out = append(out, ViewOf(all[i]))
		}
	}
	return out, nil
}

// Get returns one mailbox actor may see.
func (s *Mailboxes) Get(a Actor, id string) (MailboxView, error) {
	m, err := s.Load(a, id)
	if err != nil {
		return MailboxView{}, err
	}
	return ViewOf(m), nil
}

// Create validates and stores a new mailbox in state draft.
func (s *Mailboxes) Create(a Actor, p MailboxFields) (MailboxView, error) {
	if !a.Admin && a.UID <= 0 {
		return MailboxView{}, Forbidden("Creating a mailbox needs an acting Odoo user (context.uid)")
	}
	defs, err := s.st.Settings()
	if err != nil {
		return MailboxView{}, Internal(err)
	}
	m := store.Mailbox{
		MailboxConfig: store.MailboxConfig{
			Kind: "", Mode: "log",
			Folders:           append([]string(nil), defs.Defaults.Folders...),
			BackfillDays:      defs.Defaults.BackfillDays,
			LogSentAsActivity: defs.Defaults.LogSentAsActivity,
			UserIDs:           []int64{},
		},
		MailboxStatus: store.MailboxStatus{State: StateDraft},
	}
	if p.OwnerUID == nil && a.UID > 0 {
		uid := a.UID
		p.OwnerUID = &uid
	}
	var errs []string
	for _, req := range []struct {
		name  string
		given bool
	}{{"email", p.Email != nil}, {"kind", p.Kind != nil}, {"owner_uid", p.OwnerUID != nil}} {
		if !req.given {
			errs = append(errs, "Parameter "+req.name+" is required")
		}
	}
	errs = append(errs, apply(&m.MailboxConfig, p)...)
	if len(errs) > 0 {
		return MailboxView{}, Invalid("%s", strings.Join(errs, "; "))
	}
	if !a.Admin && m.OwnerUID != a.UID {
		return MailboxView{}, Forbidden("You may only create mailboxes you own (owner_uid %d is not you)", m.OwnerUID)
	}
	created, err := s.st.CreateMailboxAudit(m, func(c *store.Mailbox) *store.AuditEntry {
		return &store.AuditEntry{UID: a.UID, Actor: "odoo", Action: "mailbox.create",
			Detail: map[string]any{"email": c.Email, "kind": c.Kind, "mode": c.Mode}}
	})
	if err != nil {
		if errors.Is(err, store.ErrExists) {
			return MailboxView{}, Errorf(KindValidation, "duplicate", "A mailbox for %s already exists", m.Email)
		}
		return MailboxView{}, Internal(err)
	}
	s.log.Info().Str("mailbox", created.ID).Int64("uid", a.UID).Msg("mailbox created")
	return ViewOf(created), nil
}

// Update changes the given fields of a mailbox.
func (s *Mailboxes) Update(a Actor, p MailboxUpdateParams) (MailboxView, error) {
	cur, err := s.Load(a, p.MailboxID)
	if err != nil {
		return MailboxView{}, err
	}
	if !CanManage(a, &cur) {
		return MailboxView{}, Forbidden("Only the owner, the main user or a MailDesk administrator may change mailbox %s", cur.Email)
	}
	if p.OwnerUID != nil && *p.OwnerUID != cur.OwnerUID && !a.Admin {
		return MailboxView{}, Forbidden("Only a MailDesk administrator may change the owner of mailbox %s", cur.Email)
	}
	var changed []string
	updated, err := s.st.UpdateMailboxConfig(p.MailboxID, func(m *store.MailboxConfig, st store.MailboxStatus) (*store.AuditEntry, error) {
		before := *m
		if errs := apply(m, p.MailboxFields); len(errs) > 0 {
			return nil, Invalid("%s", strings.Join(errs, "; "))
		}
		identity := !strings.EqualFold(before.Email, m.Email) || before.Kind != m.Kind || !strings.EqualFold(before.SignInEmail, m.SignInEmail)
		if identity && st.State != StateDraft && st.State != StateDisconnected {
			return nil, Errorf(KindUser, "invalid_state", "Mailbox %s is %s: disconnect it before changing its address, kind or sign-in account", before.Email, st.State)
		}
		changed = diffFields(&before, m)
		if len(changed) == 0 {
			return nil, nil
		}
		return &store.AuditEntry{UID: a.UID, Actor: "odoo", Action: "mailbox.update", Detail: map[string]any{"changed": changed}}, nil
	})
	if err != nil {
		var be *Error
		if errors.As(err, &be) {
			return MailboxView{}, be
		}
		if errors.Is(err, store.ErrExists) {
			return MailboxView{}, Errorf(KindValidation, "duplicate", "Another mailbox already uses %s", deref(p.Email))
		}
		if errors.Is(err, store.ErrNotFound) {
			return MailboxView{}, NotFound("Mailbox %s does not exist (it may have been deleted)", p.MailboxID)
		}
		return MailboxView{}, Internal(err)
	}
	return ViewOf(updated), nil
}

// Delete removes a mailbox with its tokens, cursors and cached mail.
func (s *Mailboxes) Delete(a Actor, id string) error {
	m, err := s.Load(a, id)
	if err != nil {
		return err
	}
	if !a.Admin && m.OwnerUID != a.UID {
		return Forbidden("Only the owner or a MailDesk administrator may delete mailbox %s", m.Email)
	}
	if err := s.st.DeleteMailboxAudit(id, &store.AuditEntry{UID: a.UID, Actor: "odoo", Action: "mailbox.delete", Detail: map[string]any{"email": m.Email}}); err != nil {
		if errors.Is(err, store.ErrNotFound) {
			return NotFound("Mailbox %s does not exist (it may have been deleted)", id)
		}
		return Internal(err)
	}
	s.log.Info().Str("mailbox", id).Int64("uid", a.UID).Msg("mailbox deleted with its tokens and cached mail")
	return nil
}

func (s *Mailboxes) audit(a Actor, action, mailboxID string, detail map[string]any) {
	if err := s.st.Audit(store.AuditEntry{UID: a.UID, Actor: "odoo", Action: action, MailboxID: mailboxID, Detail: detail}); err != nil {
		s.log.Error().Err(err).Str("action", action).Str("mailbox", mailboxID).Msg("audit entry not written")
	}
}

func deref(p *string) string {
	if p == nil {
		return ""
	}
	return *p
}

var (
	reModel    = regexp.MustCompile(`^[a-z][a-z0-9_]*(\.[a-z0-9_]+)+$`)
	reFolderID = regexp.MustCompile(`^[A-Za-z0-9+/=_-]{16,512}$`) // Graph ids are long base64
	reDomain   = regexp.MustCompile(`^([A-Za-z0-9]([A-Za-z0-9-]{0,61}[A-Za-z0-9])?\.)+[A-Za-z]{2,63}$`)
)

// ValidEmail checks a bare address: local@domain, no display name.
func ValidEmail(s string) bool {
	if len(s) > 254 || strings.ContainsAny(s, " <>\t\r\n") {
		return false
	}
	a, err := mail.ParseAddress(s)
	if err != nil || a.Address != s {
		return false
	}
	at := strings.LastIndexByte(s, '@')
	return at > 0 && at <= 64 && reDomain.MatchString(s[at+1:])
}

// NormalizeFolder returns a well-known folder name in lower case or a Graph
// folder id unchanged; ok is false for anything else.
func NormalizeFolder(f string) (string, bool) {
	for _, w := range WellKnownFolders {
		if strings.EqualFold(f, w) {
			return w, true
		}
	}
	return f, reFolderID.MatchString(f)
}

// apply validates the given fields and writes them into m; it returns every
// problem found, not only the first.
func apply(m *store.MailboxConfig, p MailboxFields) []string {
	var errs []string
	bad := func(format string, args ...any) { errs = append(errs, fmt.Sprintf(format, args...)) }
	if p.Email != nil {
		e := strings.TrimSpace(*p.Email)
		if !ValidEmail(e) {
			bad("email %q is not a valid e-mail address", *p.Email)
		}
		m.Email = e
	}
	if p.Kind != nil {
		if *p.Kind != "personal" && *p.Kind != "shared" {
			bad("kind must be personal or shared, not %q", *p.Kind)
		}
		m.Kind = *p.Kind
	}
	if p.OdooID != nil {
		if *p.OdooID < 0 {
			bad("odoo_id must be a positive Odoo record id")
		}
		m.OdooID = *p.OdooID
	}
	if p.OwnerUID != nil {
		if *p.OwnerUID <= 0 {
			bad("owner_uid must be a positive Odoo user id")
		}
		m.OwnerUID = *p.OwnerUID
	}
	if p.UserIDs != nil {
		seen := map[int64]bool{}
		ids := []int64{}
		for _, u := range *p.UserIDs {
			if u <= 0 {
				bad("user_ids must hold positive Odoo user ids, not %d", u)
				continue
			}
			if !seen[u] {
				seen[u] = true
				ids = append(ids, u)
			}
		}
		sort.Slice(ids, func(i, j int) bool { return ids[i] < ids[j] })
		m.UserIDs = ids
	}
	if p.MainUserID != nil {
		if *p.MainUserID <= 0 {
			bad("main_user_id must be a positive Odoo user id")
		}
		m.MainUserID = *p.MainUserID
	}
	if m.MainUserID == 0 {
		m.MainUserID = m.OwnerUID
	}
	if p.SignInEmail != nil {
		e := strings.TrimSpace(*p.SignInEmail)
		if e != "" && !ValidEmail(e) {
			bad("sign_in_email %q is not a valid e-mail address", *p.SignInEmail)
		}
		m.SignInEmail = e
	}
	if m.Kind == "personal" && m.SignInEmail != "" && !strings.EqualFold(m.SignInEmail, m.Email) {
		bad("sign_in_email only applies to shared mailboxes (a personal mailbox signs in as itself)")
	}
	if p.Mode != nil {
		if *p.Mode != "log" && *p.Mode != "gateway" {
			bad("mode must be log or gateway, not %q", *p.Mode)
		}
		m.Mode = *p.Mode
	}
	if p.GatewayModel != nil {
		g := strings.TrimSpace(*p.GatewayModel)
		if g != "" && !reModel.MatchString(g) {
			bad("gateway_model %q is not an Odoo model name such as crm.lead", *p.GatewayModel)
		}
		if g != "" && m.Mode != "gateway" {
			bad("gateway_model only applies to mode gateway")
		}
		m.GatewayModel = g
	}
	if m.Mode == "gateway" && m.GatewayModel == "" {
		bad("mode gateway needs gateway_model (the Odoo model new conversations create, e.g. crm.lead or helpdesk.ticket)")
	}
	if m.Mode == "log" {
		m.GatewayModel = ""
	}
	if p.Folders != nil {
		seen := map[string]bool{}
		fs := []string{}
		for _, f := range *p.Folders {
			f, ok := NormalizeFolder(strings.TrimSpace(f))
			if !ok {
				bad("folder %q is neither a well-known folder (%s) nor a Graph folder id", f, strings.Join(WellKnownFolders, ", "))
				continue
			}
			if !seen[f] {
				seen[f] = true
				fs = append(fs, f)
			}
		}
		if len(fs) == 0 && len(*p.Folders) == 0 {
			bad("folders must name at least one folder")
		}
		if len(fs) > 50 {
			bad("folders may name at most 50 folders")
		}
		m.Folders = fs
	}
	if p.BackfillDays != nil {
		if *p.BackfillDays < 0 || *p.BackfillDays > 3650 {
			bad("backfill_days must be between 0 (all mail) and 3650, not %d", *p.BackfillDays)
		}
		m.BackfillDays = *p.BackfillDays
	}
	if p.LogSentAsActivity != nil {
		m.LogSentAsActivity = *p.LogSentAsActivity
	}
	if p.CreateContacts != nil {
		m.CreateContacts = *p.CreateContacts
	}
	if p.AnyoneMaySend != nil {
		m.AnyoneMaySend = *p.AnyoneMaySend
	}
	return errs
}

// diffFields names the configuration fields that differ.
func diffFields(a, b *store.MailboxConfig) []string {
	var out []string
	add := func(name string, differ bool) {
		if differ {
			out = append(out, name)
		}
	}
	add("email", a.Email != b.Email)
	add("kind", a.Kind != b.Kind)
	add("odoo_id", a.OdooID != b.OdooID)
	add("owner_uid", a.OwnerUID != b.OwnerUID)
	add("sign_in_email", a.SignInEmail != b.SignInEmail)
	add("user_ids", fmt.Sprint(a.UserIDs) != fmt.Sprint(b.UserIDs))
	add("main_user_id", a.MainUserID != b.MainUserID)
	add("mode", a.Mode != b.Mode)
	add("gateway_model", a.GatewayModel != b.GatewayModel)
	add("folders", strings.Join(a.Folders, ",") != strings.Join(b.Folders, ","))
	add("backfill_days", a.BackfillDays != b.BackfillDays)
	add("log_sent_as_activity", a.LogSentAsActivity != b.LogSentAsActivity)
	add("create_contacts", a.CreateContacts != b.CreateContacts)
	add("anyone_may_send", a.AnyoneMaySend != b.AnyoneMaySend)
	return out
}
