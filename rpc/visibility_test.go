package rpc

import (
	"testing"
)

// Over RPC: users see only their mailboxes; another's mailbox is an AccessError.
func TestVisibilityOverRPC(t *testing.T) {
	e := newEnv(t, Config{})
	var anna, bob struct {
		ID string `json:"id"`
	}
	e.mustCall("mailbox.create", with(map[string]any{"email": "anna@example.com", "kind": "personal"}, ctxUID(2)), &anna)
	e.mustCall("mailbox.create", with(map[string]any{"email": "bob@example.com", "kind": "personal", "user_ids": []int{4}}, ctxUID(3)), &bob)
	ids := func(ctx map[string]any) []string {
		var mbs []struct {
			ID string `json:"id"`
		}
		e.mustCall("mailbox.list", with(nil, ctx), &mbs)
		var out []string
		for _, m := range mbs {
			out = append(out, m.ID)
		}
		return out
	}
	if got := ids(ctxUID(2)); len(got) != 1 || got[0] != anna.ID {
		t.Errorf("anna sees %v", got)
	}
	if got := ids(ctxUID(4)); len(got) != 1 || got[0] != bob.ID {
		t.Errorf("assigned user sees %v", got)
	}
	if got := ids(ctxUID(9)); len(got) != 0 {
		t.Errorf("stranger sees %v", got)
	}
	if got := ids(ctxAdmin()); len(got) != 2 {
		t.Errorf("admin sees %v", got)
	}
	before := e.snapshot()
	_, errObj := e.call("mailbox.get", with(map[string]any{"mailbox_id": bob.ID}, ctxUID(2)))
	if errObj == nil || errObj.Data.Name != NameAccessError || errObj.Data.Code != "forbidden" || errObj.Code != 200 {
		t.Fatalf("get other's mailbox: %+v", errObj)
	}
	for _, m := range []string{"mailbox.update", "mailbox.delete"} {
		_, errObj = e.call(m, with(map[string]any{"mailbox_id": bob.ID}, ctxUID(2)))
		if errObj == nil || errObj.Data.Name != NameAccessError {
			t.Errorf("%s other's mailbox: %+v", m, errObj)
		}
	}
	_, errObj = e.call("audit.list", with(map[string]any{"mailbox_id": bob.ID}, ctxUID(2)))
	if errObj == nil || errObj.Data.Name != NameAccessError {
		t.Errorf("audit of other's mailbox: %+v", errObj)
	}
	if string(before) != string(e.snapshot()) {
		t.Error("refused calls changed the database")
	}
	var page struct {
		Entries []struct {
			Action string `json:"action"`
			UID    int64  `json:"uid"`
		} `json:"entries"`
	}
	e.mustCall("audit.list", with(map[string]any{"mailbox_id": bob.ID}, ctxUID(4)), &page)
	if len(page.Entries) != 1 || page.Entries[0].Action != "mailbox.create" || page.Entries[0].UID != 3 {
		t.Errorf("audit: %+v", page)
	}
	var ok bool
	e.mustCall("mailbox.delete", with(map[string]any{"mailbox_id": anna.ID}, ctxUID(2)), &ok)
	if !ok {
		t.Error("delete answered false")
	}
}

func TestAuditPaging(t *testing.T) {
	e := newEnv(t, Config{})
	for _, a := range []string{"a1@example.com", "a2@example.com", "a3@example.com"} {
		e.mustCall("mailbox.create", with(map[string]any{"email": a, "kind": "personal"}, ctxUID(2)), nil)
	}
	var p1, p2 struct {
		Entries []struct {
			Detail map[string]any `json:"detail"`
		} `json:"entries"`
		Next string `json:"next_cursor"`
	}
	e.mustCall("audit.list", with(map[string]any{"limit": 2}, ctxAdmin()), &p1)
	if len(p1.Entries) != 2 || p1.Next == "" || p1.Entries[0].Detail["email"] != "a3@example.com" {
		t.Fatalf("page 1: %+v", p1)
	}
	e.mustCall("audit.list", with(map[string]any{"limit": 2, "cursor": p1.Next}, ctxAdmin()), &p2)
	if len(p2.Entries) != 1 || p2.Next != "" || p2.Entries[0].Detail["email"] != "a1@example.com" {
		t.Fatalf("page 2: %+v", p2)
	}
	if _, errObj := e.call("audit.list", with(nil, ctxUID(2))); errObj == nil || errObj.Data.Name != NameAccessError {
		t.Fatalf("non-admin full audit: %+v", errObj)
	}
}
