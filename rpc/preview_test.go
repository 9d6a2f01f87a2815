package rpc

import (
	"encoding/json"
	"testing"
	"time"

	"github.com/rs/zerolog"

	"github.com/maildesk/maildesk/bridge"
	"github.com/maildesk/maildesk/store"
)

// mailbox.preview_items over RPC: who may list the mailbox's messages may
// preview it (owner, assigned users, the bridge/admin caller), nobody else;
// the items are ingest items without content.
func TestPreviewItemsOverRPC(t *testing.T) {
	e := newEnv(t, Config{})
	msgs := bridge.NewMessages(e.st, bridge.NewMailboxes(e.st, zerolog.Nop()), nil, 0)
	if err := e.srv.Register("mailbox", &PreviewService{Messages: msgs}); err != nil {
		t.Fatal(err)
	}
	var mb struct {
		ID string `json:"id"`
	}
	e.mustCall("mailbox.create", with(map[string]any{"email": "anna@example.com", "kind": "personal", "user_ids": []int{4}, "backfill_days": 7}, ctxUID(3)), &mb)
	now := time.Now().UTC().Truncate(time.Second)
	var items []store.PageItem
	for i, at := range []time.Duration{time.Hour, 2 * time.Hour, 6 * 24 * time.Hour, 8 * 24 * time.Hour} {
		id := string(rune('a' + i))
		items = append(items, store.PageItem{Direction: "in", Payload: []byte(`{}`), Message: store.Message{
			ID: id, Folder: "inbox", InternetMessageID: "<" + id + "@x>", ConversationID: "c1", Subject: "s " + id,
			From: store.Address{Name: "Carl", Email: "carl@customer.example"}, To: []store.Address{{Email: "anna@example.com"}},
			ReceivedAt: now.Add(-at), Sensitivity: "normal", InReplyTo: "<r@x>", References: []string{"<q@x>", "<r@x>"}}})
	}
	items[1].Message.Sensitivity = "private"
	if _, err := e.st.ApplyPage(mb.ID, store.Page{Folder: "inbox", Items: items}); err != nil {
		t.Fatal(err)
	}
	var res struct {
		Items     []map[string]any `json:"items"`
		Truncated bool             `json:"truncated"`
		Total     int              `json:"total"`
	}
	for _, ctx := range []map[string]any{ctxUID(3), ctxUID(4), ctxAdmin()} {
		e.mustCall("mailbox.preview_items", with(map[string]any{"mailbox_id": mb.ID}, ctx), &res)
		if res.Total != 3 || len(res.Items) != 3 || res.Truncated {
			t.Fatalf("default window (backfill_days 7): %+v", res)
		}
	}
	first, _ := json.Marshal(res.Items[0])
	want := `{"conversation_id":"c1","direction":"in","folder":"inbox","from":{"email":"carl@customer.example","name":"Carl"},"graph_id":"a",` +
		`"headers":{"in-reply-to":"\u003cr@x\u003e","message-id":"\u003ca@x\u003e","references":"\u003cq@x\u003e \u003cr@x\u003e"},"internet_message_id":"\u003ca@x\u003e",` +
		`"mailbox":"` + mb.ID + `","options":{"log_sent_as_activity":true,"main_user_id":3,"mode":"log"},"received_at":"` + now.Add(-time.Hour).Format(time.RFC3339) + `","sensitivity":"normal","subject":"s a","to":[{"email":"anna@example.com"}]}`
	if string(first) != want {
		t.Fatalf("item\n got %s\nwant %s", first, want)
	}
	if res.Items[1]["sensitivity"] != "private" {
		t.Fatalf("second item %v", res.Items[1])
	}
	e.mustCall("mailbox.preview_items", with(map[string]any{"mailbox_id": mb.ID, "days": 30, "limit": 2}, ctxUID(3)), &res)
	if res.Total != 4 || len(res.Items) != 2 || !res.Truncated {
		t.Fatalf("30 days, limit 2: %+v", res)
	}
	if _, errObj := e.call("mailbox.preview_items", with(map[string]any{"mailbox_id": mb.ID}, ctxUID(9))); errObj == nil || errObj.Data.Name != NameAccessError {
		t.Fatalf("stranger: %+v", errObj)
	}
	for _, bad := range []map[string]any{{"days": 0.5}, {"days": 3651}, {"limit": 5001}, {"limit": -1}} {
		bad["mailbox_id"] = mb.ID
		if _, errObj := e.call("mailbox.preview_items", with(bad, ctxUID(3))); errObj == nil {
			t.Fatalf("%v accepted", bad)
		}
	}
}
