package rpc

import (
	"encoding/json"
	"testing"
	"time"

	"github.com/maildesk/maildesk/store"
)

// mailbox.retry_failed over JSON-RPC: who may see the mailbox may retry its
// failed messages; the answer counts them; mailbox.get shows the failures.
func TestRetryFailedOverRPC(t *testing.T) {
	e := newEnv(t, Config{})
	var box struct {
		ID string `json:"id"`
	}
	e.mustCall("mailbox.create", with(map[string]any{"email": "info@example.com", "kind": "shared", "user_ids": []int{5}}, ctxUID(2)), &box)
	items := []store.PageItem{
		{Message: store.Message{ID: "m1", InternetMessageID: "<m1@x>", ReceivedAt: time.Unix(1, 0)}, Direction: "in", Payload: []byte(`{}`)},
		{Message: store.Message{ID: "m2", InternetMessageID: "<m2@x>", ReceivedAt: time.Unix(2, 0)}, Direction: "in", Payload: []byte(`{}`)},
	}
	if _, err := e.st.ApplyPage(box.ID, store.Page{Folder: "inbox", Items: items}); err != nil {
		t.Fatal(err)
	}
	due, _ := e.st.DueOutbox(time.Now(), 10, 0, nil)
	const reason = "You are not allowed to access 'Currency' (res.currency) records."
	for i := 0; i < 2; i++ {
		var acks []store.OutboxAck
		for _, it := range due {
			acks = append(acks, store.OutboxAck{Seq: it.Seq, Status: "error", Error: reason, RetryAt: time.Now()})
		}
		if err := e.st.AckOutbox(acks, 2); err != nil {
			t.Fatal(err)
		}
	}
	var view struct {
		Delivery struct {
			Failed       int64  `json:"failed"`
			FailedReason string `json:"failed_reason"`
		} `json:"delivery"`
	}
	e.mustCall("mailbox.get", with(map[string]any{"mailbox_id": box.ID}, ctxUID(5)), &view)
	if view.Delivery.Failed != 2 || view.Delivery.FailedReason != reason {
		t.Fatalf("mailbox.get delivery %+v", view.Delivery)
	}
	before := e.snapshot()
	_, errObj := e.call("mailbox.retry_failed", with(map[string]any{"mailbox_id": box.ID}, ctxUID(9)))
	if errObj == nil || errObj.Data.Name != NameAccessError || errObj.Data.Code != "forbidden" {
		t.Fatalf("a stranger's retry_failed: %+v", errObj)
	}
	if string(before) != string(e.snapshot()) {
		t.Fatal("a refused retry_failed changed the database")
	}
	var res map[string]json.RawMessage
	e.mustCall("mailbox.retry_failed", with(map[string]any{"mailbox_id": box.ID}, ctxUID(5)), &res)
	if string(res["requeued"]) != "2" || len(res) != 1 {
		t.Fatalf("retry_failed answered %v", res)
	}
	e.mustCall("mailbox.get", with(map[string]any{"mailbox_id": box.ID}, ctxAdmin()), &view)
	if view.Delivery.Failed != 0 || view.Delivery.FailedReason != "" {
		t.Fatalf("after retry_failed: %+v", view.Delivery)
	}
	if st, _ := e.st.OutboxStats(); st[box.ID].Items != 2 || st[box.ID].Failed != 0 {
		t.Fatalf("outbox after retry_failed: %+v", st)
	}
}
