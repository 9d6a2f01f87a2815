package bridge_test

import (
	"context"
	"strings"
	"testing"

	"github.com/rs/zerolog"

	"github.com/maildesk/maildesk/bridge"
	"github.com/maildesk/maildesk/store"
)

// TestSendOnlyOwnerAssignedOrAnyone: message.send goes through a mailbox only
// for its owner and assigned users, or anyone once the mailbox allows it.
// Seeing the mailbox (main user, MailDesk admin) is not enough; a refusal
// reaches no Graph endpoint, is an AccessError naming the mailbox, and the
// audit names the real Odoo user who tried.
func TestSendOnlyOwnerAssignedOrAnyone(t *testing.T) {
	e := newSendEnv(t)
	m := e.mailbox("anna@contoso.com", "personal", "anna@contoso.com", 0)
	// Owner 2, assigned 5, main user 7 (sees it, may not send as Anna).
	m, err := bridge.SetConfig(e.st, m.ID, func(m *store.MailboxConfig) {
		m.UserIDs, m.MainUserID = []int64{5}, 7
	})
	if err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	send := func(a bridge.Actor, n int) error {
		raw := odooReply("anna@contoso.com", "carl@customer.example", "<rights-"+string(rune('a'+n))+"@odoo.contoso.com>", nil)
		_, err := e.sender.Send(ctx, a, bridge.SendParams{MailboxID: m.ID, RequestID: "rights-" + string(rune('a'+n)),
			MIMEBase64: b64(raw), UserLogin: "user" + string(rune('a'+n)), UserName: "User " + string(rune('A'+n))})
		return err
	}
	before := e.rt.count()
	for i, a := range []bridge.Actor{
		{UID: 9},               // an internal user with nothing to do with the mailbox
		{UID: 7},               // main user: sees the mailbox
		{UID: 1, Admin: true},  // Odoo's superuser as MailDesk admin (what the addon sent before)
		{UID: 12, Admin: true}, // a MailDesk admin
		{UID: 0},               // no user at all
	} {
		err := send(a, i)
		be := bridge.AsError(err)
		if err == nil || be.Kind != bridge.KindAccess || be.Code != "forbidden" || !strings.Contains(be.Message, "anna@contoso.com") {
			t.Fatalf("uid %d: %v, want AccessError forbidden naming the mailbox", a.UID, err)
		}
		if a.UID > 0 && !strings.Contains(be.Message, "add the user to the mailbox's users") {
			t.Errorf("uid %d: refusal does not say what to do: %s", a.UID, be.Message)
		}
	}
	if n := e.rt.count() - before; n != 0 || len(e.sim.Sent("anna@contoso.com")) != 0 {
		t.Fatalf("refused sends reached Microsoft: %d Graph requests, %d sent", n, len(e.sim.Sent("anna@contoso.com")))
	}
	// The refusals are audited under the real user, with login and name.
	entries, _, err := e.st.AuditList(m.ID, 50, 0)
	if err != nil {
		t.Fatal(err)
	}
	refused := map[int64]store.AuditEntry{}
	for _, en := range entries {
		if en.Action == "message.send" && en.Detail["result"] == "refused" {
			refused[en.UID] = en
		}
	}
	if en, ok := refused[9]; !ok || en.Detail["code"] != "forbidden" || en.Detail["user_login"] != "usera" || en.Detail["user_name"] != "User A" {
		t.Fatalf("refusal of uid 9 not audited with the user: %+v (all: %+v)", en, refused)
	}
	if _, ok := refused[7]; !ok {
		t.Fatalf("refusal of uid 7 not audited: %+v", refused)
	}

	// Owner and assigned user send; the audit names each of them.
	if err := send(bridge.Actor{UID: 2}, 10); err != nil {
		t.Fatalf("owner: %v", err)
	}
	if err := send(bridge.Actor{UID: 5}, 11); err != nil {
		t.Fatalf("assigned user: %v", err)
	}
	// "Anyone may send from this address" lets every Odoo user send, over
	// the same mailbox.update the addon calls.
	mbx := bridge.NewMailboxes(e.st, zerolog.Nop())
	yes := true
	v, err := mbx.Update(bridge.Actor{UID: 2}, bridge.MailboxUpdateParams{MailboxID: m.ID, MailboxFields: bridge.MailboxFields{AnyoneMaySend: &yes}})
	if err != nil || !v.AnyoneMaySend {
		t.Fatalf("mailbox.update anyone_may_send: %+v %v", v, err)
	}
	if err := send(bridge.Actor{UID: 9}, 12); err != nil {
		t.Fatalf("anyone, uid 9: %v", err)
	}
	if err := send(bridge.Actor{UID: 0}, 13); err == nil {
		t.Fatal("anyone still needs a user (context.uid)")
	}
	if got := len(e.sim.Sent("anna@contoso.com")); got != 3 {
		t.Fatalf("%d sent, want 3", got)
	}
	entries, _, err = e.st.AuditList(m.ID, 50, 0)
	if err != nil {
		t.Fatal(err)
	}
	sent := map[int64]store.AuditEntry{}
	for _, en := range entries {
		if en.Action == "message.send" && en.Detail["result"] == "sent" {
			sent[en.UID] = en
		}
	}
	for uid, login := range map[int64]string{2: "userk", 5: "userl", 9: "userm"} {
		if en, ok := sent[uid]; !ok || en.Detail["user_login"] != login || en.Actor != "odoo" {
			t.Errorf("send by uid %d not audited as %s: %+v", uid, login, en)
		}
	}
	if _, ok := sent[1]; ok {
		t.Error("a send was audited as uid 1")
	}
}

// TestAnyoneMaySendIsAMailboxField: the option is off by default, set by
// mailbox.create/update (admins, owner), shown in the view and audited.
func TestAnyoneMaySendIsAMailboxField(t *testing.T) {
	r := newRig(t, rigOpts{})
	mbx := bridge.NewMailboxes(r.st, zerolog.Nop())
	email, kind := "info@contoso.com", "shared"
	v, err := mbx.Create(bridge.Actor{UID: 2}, bridge.MailboxFields{Email: &email, Kind: &kind})
	if err != nil {
		t.Fatal(err)
	}
	if v.AnyoneMaySend {
		t.Fatal("anyone_may_send is on by default")
	}
	yes := true
	if _, err := mbx.Update(bridge.Actor{UID: 5}, bridge.MailboxUpdateParams{MailboxID: v.ID, MailboxFields: bridge.MailboxFields{AnyoneMaySend: &yes}}); bridge.AsError(err).Kind != bridge.KindAccess {
		t.Fatalf("a stranger turned on anyone_may_send: %v", err)
	}
	v, err = mbx.Update(bridge.Actor{UID: 2}, bridge.MailboxUpdateParams{MailboxID: v.ID, MailboxFields: bridge.MailboxFields{AnyoneMaySend: &yes}})
	if err != nil || !v.AnyoneMaySend {
		t.Fatalf("%+v %v", v, err)
	}
	stored, err := r.st.Mailbox(v.ID)
	if err != nil || !stored.AnyoneMaySend || !bridge.MaySend(&stored, 42) {
		t.Fatalf("stored %+v %v", stored, err)
	}
	entries, _, err := r.st.AuditList(v.ID, 10, 0)
	if err != nil {
		t.Fatal(err)
	}
	if len(entries) == 0 || entries[0].Action != "mailbox.update" || !strings.Contains(strings.Join(toStrings(entries[0].Detail["changed"]), ","), "anyone_may_send") {
		t.Fatalf("change not audited: %+v", entries)
	}
}

func toStrings(v any) []string {
	var out []string
	switch l := v.(type) {
	case []string:
		return l
	case []any:
		for _, x := range l {
			if s, ok := x.(string); ok {
				out = append(out, s)
			}
		}
	}
	return out
}
