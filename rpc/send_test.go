package rpc

import (
	"context"
	"encoding/base64"
	"fmt"
	"strings"
	"testing"

	"github.com/rs/zerolog"

	"github.com/maildesk/maildesk/bridge"
	"github.com/maildesk/maildesk/graphsync"
	"github.com/maildesk/maildesk/store"
)

type noTokens struct{}

func (noTokens) Token(context.Context, string) (string, error) {
	return "", fmt.Errorf("no tokens in this test")
}

// TestSendServiceOverJSONRPC checks the wire: params decode, refusals come
// back as Odoo exceptions, and nothing reaches Graph (no Graph server exists).
func TestSendServiceOverJSONRPC(t *testing.T) {
	e := newEnv(t, Config{})
	graph, err := graphsync.New(graphsync.Config{BaseURL: "https://127.0.0.1:1/v1.0", Tokens: noTokens{}})
	if err != nil {
		t.Fatal(err)
	}
	mbx := bridge.NewMailboxes(e.st, zerolog.Nop())
	sender, err := bridge.NewSender(bridge.SenderConfig{Store: e.st, Graph: graph, Mailboxes: mbx})
	if err != nil {
		t.Fatal(err)
	}
	actions, err := bridge.NewActions(bridge.ActionsConfig{Store: e.st, Graph: graph, Mailboxes: mbx})
	if err != nil {
		t.Fatal(err)
	}
	if err := e.srv.Register("message", &SendService{Sender: sender, Actions: actions}); err != nil {
		t.Fatal(err)
	}
	m, err := e.st.CreateMailbox(store.Mailbox{MailboxConfig: store.MailboxConfig{Email: "anna@contoso.com", Kind: "personal", OwnerUID: 2, MainUserID: 2, Mode: "log"}, MailboxStatus: store.MailboxStatus{State: bridge.StateConnected}})
	if err != nil {
		t.Fatal(err)
	}
	var to []string
	for i := 0; i < 501; i++ {
		to = append(to, fmt.Sprintf("r%d@customer.example", i))
	}
	raw := "From: anna@contoso.com\r\nTo: " + strings.Join(to, ", ") + "\r\nSubject: x\r\nMessage-Id: <a@b.example>\r\n\r\nhi\r\n"
	for _, tc := range []struct {
		method string
		params map[string]any
		name   string
		code   string
	}{
		{"message.send", map[string]any{"mailbox_id": m.ID, "request_id": "r1", "mime_base64": base64.StdEncoding.EncodeToString([]byte(raw)), "user_login": "anna", "user_name": "Anna"}, "odoo.exceptions.UserError", "too_many_recipients"},
		{"message.send", map[string]any{"mailbox_id": m.ID, "mime_base64": "!!"}, "odoo.exceptions.ValidationError", "invalid_params"},
		{"message.send", map[string]any{"mailbox_id": m.ID, "mime": "x"}, "odoo.exceptions.ValidationError", "invalid_params"},
		{"message.mark_read", map[string]any{"mailbox_id": m.ID, "message_ids": []string{"AAMk1"}, "read": true}, "odoo.exceptions.MissingError", "not_found"},
		{"message.move", map[string]any{"mailbox_id": m.ID, "message_ids": []string{"AAMk1"}, "folder": "../etc"}, "odoo.exceptions.ValidationError", "invalid_params"},
		{"message.flag", map[string]any{"mailbox_id": m.ID, "message_ids": []string{"AAMk1"}, "flagged": true}, "odoo.exceptions.MissingError", "not_found"},
		{"message.flag", map[string]any{"mailbox_id": m.ID, "message_ids": []string{"AAMk1"}, "flagged": "yes"}, "odoo.exceptions.ValidationError", "invalid_params"},
		{"message.log_to_record", map[string]any{"mailbox_id": m.ID, "message_id": "AAMk1", "model": "res.partner", "res_id": 7}, "odoo.exceptions.UserError", "not_linked"},
		{"message.save_draft", map[string]any{"mailbox_id": m.ID, "mime_base64": "eA=="}, "odoo.exceptions.ValidationError", "invalid_params"},
		{"message.save_draft", map[string]any{"mailbox_id": m.ID, "subject": "x", "message_id": "no-brackets"}, "odoo.exceptions.ValidationError", "invalid_params"},
		{"message.save_draft", map[string]any{"mailbox_id": m.ID, "copy_attachments": []map[string]string{{"message_id": "AAMk1"}}}, "odoo.exceptions.ValidationError", "invalid_params"},
		{"message.send_draft", map[string]any{"mailbox_id": m.ID}, "odoo.exceptions.ValidationError", "invalid_params"},
		{"message.send_draft", map[string]any{"mailbox_id": "mbx_nope", "draft_id": "AAMk1"}, "odoo.exceptions.MissingError", "not_found"},
	} {
		_, errObj := e.call(tc.method, with(tc.params, ctxUID(2)))
		if errObj == nil || errObj.Data.Name != tc.name || errObj.Data.Code != tc.code {
			t.Errorf("%s %v: %+v, want %s %s", tc.method, tc.params["mime_base64"] != nil, errObj, tc.name, tc.code)
		}
	}
	for method, params := range map[string]map[string]any{
		"message.send":       {"mailbox_id": m.ID, "subject": "x", "to": []string{"c@x.example"}},
		"message.save_draft": {"mailbox_id": m.ID, "subject": "x"},
		"message.send_draft": {"mailbox_id": m.ID, "draft_id": "AAMk1"},
	} {
		_, errObj := e.call(method, with(params, ctxUID(9)))
		if errObj == nil || errObj.Data.Name != "odoo.exceptions.AccessError" || !strings.Contains(errObj.Data.Message, "may not send as anna@contoso.com") {
			t.Errorf("%s by another user: %+v", method, errObj)
		}
	}
	// A MailDesk admin sees every mailbox but sends only through their own
	// (or assigned, or open-to-anyone) ones; the refusal names the user.
	_, errObj := e.call("message.send", with(map[string]any{"mailbox_id": m.ID, "mime_base64": "eA==", "user_login": "boss"},
		map[string]any{"uid": 1, "maildesk_admin": true}))
	if errObj == nil || errObj.Data.Name != "odoo.exceptions.AccessError" || errObj.Data.Code != "forbidden" ||
		!strings.Contains(errObj.Data.Message, "boss (#1) may not send as anna@contoso.com") {
		t.Errorf("admin uid 1: %+v", errObj)
	}
}
