package bridge

import (
	"bytes"
	"errors"
	"path/filepath"
	"strconv"
	"strings"
	"testing"

	"github.com/rs/zerolog"

	"github.com/maildesk/maildesk/store"
)

func mbxStore(t *testing.T) *store.Store {
	t.Helper()
	st, err := store.Open(filepath.Join(t.TempDir(), "t.db"), bytes.Repeat([]byte{1}, store.KeySize), store.Options{NoSync: true})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { st.Close() })
	return st
}

func mbxS(s string) *string { return &s }
func mbxI64(i int64) *int64 { return &i }
func mbxInt(i int) *int     { return &i }
func mbxB(b bool) *bool     { return &b }

func mbxKindOf(err error) (Kind, string) {
	var e *Error
	if !errors.As(err, &e) {
		return -1, ""
	}
	return e.Kind, e.Code
}

var mbxAdmin = Actor{UID: 1, Admin: true}

func TestMailboxVisibility(t *testing.T) {
	st := mbxStore(t)
	m := NewMailboxes(st, zerolog.Nop())
	// Anna (2) owns her mailbox; support@ is shared, owned by mbxAdmin, main user 3, users 4 and 5.
	anna, err := m.Create(Actor{UID: 2}, MailboxFields{Email: mbxS("anna@example.com"), Kind: mbxS("personal")})
	if err != nil {
		t.Fatal(err)
	}
	if anna.OwnerUID != 2 || anna.MainUserID != 2 || anna.State != StateDraft {
		t.Fatalf("defaults: %+v", anna)
	}
	support, err := m.Create(mbxAdmin, MailboxFields{Email: mbxS("support@example.com"), Kind: mbxS("shared"), OwnerUID: mbxI64(1),
		MainUserID: mbxI64(3), UserIDs: &[]int64{5, 4, 4}, Mode: mbxS("gateway"), GatewayModel: mbxS("helpdesk.ticket"),
		SignInEmail: mbxS("it-mbxAdmin@example.com")})
	if err != nil {
		t.Fatal(err)
	}
	if got := support.UserIDs; len(got) != 2 || got[0] != 4 || got[1] != 5 {
		t.Fatalf("user ids not deduplicated and sorted: %v", got)
	}
	list := func(a Actor) []string {
		vs, err := m.List(a)
		if err != nil {
			t.Fatal(err)
		}
		var out []string
		for _, v := range vs {
			out = append(out, v.Email)
		}
		return out
	}
	for _, tc := range []struct {
		actor Actor
		want  string
	}{
		{Actor{UID: 2}, "anna@example.com"},
		{Actor{UID: 3}, "support@example.com"},
		{Actor{UID: 4}, "support@example.com"},
		{Actor{UID: 9}, ""},
		{Actor{}, ""},
		{mbxAdmin, "anna@example.com,support@example.com"},
	} {
		if got := strings.Join(list(tc.actor), ","); got != tc.want {
			t.Errorf("uid %d mbxAdmin %v sees %q, want %q", tc.actor.UID, tc.actor.Admin, got, tc.want)
		}
	}
	// Someone else's mailbox: AccessError; a missing one: MissingError.
	if _, err := m.Get(Actor{UID: 4}, anna.ID); !mbxIsKind(err, KindAccess, "forbidden") {
		t.Errorf("get other's mailbox: %v", err)
	}
	if _, err := m.Get(Actor{UID: 2}, "mbx_nope"); !mbxIsKind(err, KindMissing, "not_found") {
		t.Errorf("get missing: %v", err)
	}
	if v, err := m.Get(Actor{UID: 5}, support.ID); err != nil || v.Email != "support@example.com" {
		t.Errorf("assigned user: %v %v", v.Email, err)
	}
	// Assigned users see but do not manage; the main user manages; only mbxAdmins change owners.
	if _, err := m.Update(Actor{UID: 4}, MailboxUpdateParams{MailboxID: support.ID, MailboxFields: MailboxFields{BackfillDays: mbxInt(7)}}); !mbxIsKind(err, KindAccess, "forbidden") {
		t.Errorf("assigned user update: %v", err)
	}
	if v, err := m.Update(Actor{UID: 3}, MailboxUpdateParams{MailboxID: support.ID, MailboxFields: MailboxFields{BackfillDays: mbxInt(7)}}); err != nil || v.BackfillDays != 7 {
		t.Errorf("main user update: %v %+v", err, v)
	}
	if _, err := m.Update(Actor{UID: 3}, MailboxUpdateParams{MailboxID: support.ID, MailboxFields: MailboxFields{OwnerUID: mbxI64(3)}}); !mbxIsKind(err, KindAccess, "forbidden") {
		t.Errorf("main user changes owner: %v", err)
	}
	// Users create only mailboxes they own.
	if _, err := m.Create(Actor{UID: 2}, MailboxFields{Email: mbxS("b@example.com"), Kind: mbxS("personal"), OwnerUID: mbxI64(3)}); !mbxIsKind(err, KindAccess, "forbidden") {
		t.Errorf("create for someone else: %v", err)
	}
	if _, err := m.Create(Actor{}, MailboxFields{Email: mbxS("b@example.com"), Kind: mbxS("personal"), OwnerUID: mbxI64(3)}); !mbxIsKind(err, KindAccess, "forbidden") {
		t.Errorf("create without user: %v", err)
	}
	// Delete: the main user may not, the owner may.
	if err := m.Delete(Actor{UID: 3}, support.ID); !mbxIsKind(err, KindAccess, "forbidden") {
		t.Errorf("main user delete: %v", err)
	}
	if err := m.Delete(Actor{UID: 2}, anna.ID); err != nil {
		t.Fatal(err)
	}
	if _, err := m.Get(mbxAdmin, anna.ID); !mbxIsKind(err, KindMissing, "not_found") {
		t.Errorf("deleted mailbox still there: %v", err)
	}
	// Every change is audited with who.
	entries, _, err := st.AuditList("", 100, 0)
	if err != nil {
		t.Fatal(err)
	}
	var got []string
	for _, e := range entries {
		got = append(got, e.Action+"/"+strconv.FormatInt(e.UID, 10))
	}
	if strings.Join(got, " ") != "mailbox.delete/2 mailbox.update/3 mailbox.create/1 mailbox.create/2" {
		t.Errorf("audit: %v", got)
	}
}

func mbxIsKind(err error, k Kind, code string) bool {
	gk, gc := mbxKindOf(err)
	return gk == k && gc == code
}

func TestMailboxValidation(t *testing.T) {
	st := mbxStore(t)
	m := NewMailboxes(st, zerolog.Nop())
	cases := []struct {
		name string
		f    MailboxFields
		want string // substring of the message; "" = valid
	}{
		{"ok personal", MailboxFields{Email: mbxS("a1@example.com"), Kind: mbxS("personal")}, ""},
		{"ok all mail", MailboxFields{Email: mbxS("a2@example.com"), Kind: mbxS("personal"), BackfillDays: mbxInt(0), Folders: &[]string{"Inbox", "sentitems", "AAMkAGI2TG93AAA="}}, ""},
		{"missing email and kind", MailboxFields{}, "Parameter email is required; Parameter kind is required"},
		{"display name", MailboxFields{Email: mbxS("Anna <a@example.com>"), Kind: mbxS("personal")}, "is not a valid e-mail address"},
		{"no domain dot", MailboxFields{Email: mbxS("a@localhost"), Kind: mbxS("personal")}, "is not a valid e-mail address"},
		{"bad kind", MailboxFields{Email: mbxS("a3@example.com"), Kind: mbxS("team")}, "kind must be personal or shared"},
		{"bad mode", MailboxFields{Email: mbxS("a4@example.com"), Kind: mbxS("shared"), Mode: mbxS("forward")}, "mode must be log or gateway"},
		{"gateway without model", MailboxFields{Email: mbxS("a5@example.com"), Kind: mbxS("shared"), Mode: mbxS("gateway")}, "mode gateway needs gateway_model"},
		{"model in log mode", MailboxFields{Email: mbxS("a6@example.com"), Kind: mbxS("shared"), GatewayModel: mbxS("crm.lead")}, "gateway_model only applies to mode gateway"},
		{"bad model", MailboxFields{Email: mbxS("a7@example.com"), Kind: mbxS("shared"), Mode: mbxS("gateway"), GatewayModel: mbxS("Lead")}, "is not an Odoo model name"},
		{"negative user", MailboxFields{Email: mbxS("a8@example.com"), Kind: mbxS("personal"), UserIDs: &[]int64{3, -1}}, "user_ids must hold positive Odoo user ids, not -1"},
		{"zero main user", MailboxFields{Email: mbxS("a9@example.com"), Kind: mbxS("personal"), MainUserID: mbxI64(0)}, "main_user_id must be a positive"},
		{"bad folder", MailboxFields{Email: mbxS("b1@example.com"), Kind: mbxS("personal"), Folders: &[]string{"inbox", "Posteingang"}}, `folder "Posteingang" is neither`},
		{"no folders", MailboxFields{Email: mbxS("b2@example.com"), Kind: mbxS("personal"), Folders: &[]string{}}, "folders must name at least one folder"},
		{"backfill too long", MailboxFields{Email: mbxS("b3@example.com"), Kind: mbxS("personal"), BackfillDays: mbxInt(3651)}, "backfill_days must be between 0 (all mail) and 3650"},
		{"backfill negative", MailboxFields{Email: mbxS("b4@example.com"), Kind: mbxS("personal"), BackfillDays: mbxInt(-1)}, "backfill_days must be between"},
		{"sign-in on personal", MailboxFields{Email: mbxS("b5@example.com"), Kind: mbxS("personal"), SignInEmail: mbxS("x@example.com")}, "sign_in_email only applies to shared mailboxes"},
		{"bad sign-in", MailboxFields{Email: mbxS("b6@example.com"), Kind: mbxS("shared"), SignInEmail: mbxS("nobody")}, `sign_in_email "nobody" is not a valid`},
		{"negative odoo id", MailboxFields{Email: mbxS("b7@example.com"), Kind: mbxS("personal"), OdooID: mbxI64(-3)}, "odoo_id must be a positive"},
		{"every error at once", MailboxFields{Email: mbxS("x"), Kind: mbxS("y"), Mode: mbxS("z")}, `email "x" is not a valid e-mail address; kind must be personal or shared, not "y"; mode must be log or gateway, not "z"`},
		{"duplicate address", MailboxFields{Email: mbxS("A1@example.com"), Kind: mbxS("personal")}, "A mailbox for A1@example.com already exists"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			before, _ := st.Mailboxes()
			v, err := m.Create(Actor{UID: 2}, tc.f)
			if tc.want == "" {
				if err != nil {
					t.Fatalf("want valid, got %v", err)
				}
				if tc.f.Folders != nil && strings.Join(v.Folders, ",") != "inbox,sentitems,AAMkAGI2TG93AAA=" {
					t.Errorf("folders %v", v.Folders)
				}
				return
			}
			if err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("got %v, want %q", err, tc.want)
			}
			if k, _ := mbxKindOf(err); k != KindValidation {
				t.Errorf("kind %v", k)
			}
			after, _ := st.Mailboxes()
			if len(after) != len(before) {
				t.Errorf("a failed create stored a mailbox")
			}
		})
	}
}

func TestMailboxUpdateRules(t *testing.T) {
	st := mbxStore(t)
	m := NewMailboxes(st, zerolog.Nop())
	v, err := m.Create(Actor{UID: 2}, MailboxFields{Email: mbxS("sales@example.com"), Kind: mbxS("shared"), Mode: mbxS("gateway"), GatewayModel: mbxS("crm.lead")})
	if err != nil {
		t.Fatal(err)
	}
	// Switching to log mode clears the gateway model.
	u, err := m.Update(Actor{UID: 2}, MailboxUpdateParams{MailboxID: v.ID, MailboxFields: MailboxFields{Mode: mbxS("log"), CreateContacts: mbxB(true)}})
	if err != nil || u.GatewayModel != "" || !u.CreateContacts {
		t.Fatalf("%v %+v", err, u)
	}
	// A connected mailbox keeps its address until disconnected.
	if _, err := Transition(st, Actor{}, v.ID, StatePendingConsent, "", "", nil); err != nil {
		t.Fatal(err)
	}
	if _, err := m.Update(Actor{UID: 2}, MailboxUpdateParams{MailboxID: v.ID, MailboxFields: MailboxFields{Email: mbxS("other@example.com")}}); !mbxIsKind(err, KindUser, "invalid_state") {
		t.Fatalf("address change while connecting: %v", err)
	}
	got, _ := m.Get(Actor{UID: 2}, v.ID)
	if got.Email != "sales@example.com" {
		t.Fatalf("address changed: %s", got.Email)
	}
	// The view never carries the MSAL home account id.
	if _, err := updateStatus(st, v.ID, func(mb *store.MailboxStatus) error { mb.HomeAccountID = "uid-secret.utid"; return nil }); err != nil {
		t.Fatal(err)
	}
	got, _ = m.Get(Actor{UID: 2}, v.ID)
	if s := strings.ToLower(strings.Join([]string{got.ConnectedAs, got.Error}, " ")); strings.Contains(s, "uid-secret") {
		t.Fatal("home account id leaked")
	}
}

func TestEmailSyntax(t *testing.T) {
	good := []string{"a@example.com", "first.last+tag@sub.example.co.uk", "o'brien@example.ie", "x_y-z@ex-ample.org"}
	bad := []string{"", "a", "@example.com", "a@", "a@b", "a b@example.com", "<a@example.com>", "a@example.com ", "a@@example.com", "a@-example.com", "a@example.c"}
	for _, s := range good {
		if !ValidEmail(s) {
			t.Errorf("%q should be valid", s)
		}
	}
	for _, s := range bad {
		if ValidEmail(s) {
			t.Errorf("%q should be invalid", s)
		}
	}
}
