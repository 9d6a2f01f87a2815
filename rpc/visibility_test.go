package rpc

import (
	"fmt"
	"testing"
)

// TestMailboxVisibilityOverJSONRPC: over HTTP, each Odoo user sees only the
// mailboxes they own, are main user of or are assigned to; mailbox.get (and
// update, delete) on another user's mailbox is an AccessError that changes
// nothing.
func TestMailboxVisibilityOverJSONRPC(t *testing.T) {
	e := newEnv(t, Config{})
	type view struct {
		ID    string `json:"id"`
		Email string `json:"email"`
	}
	var anna, shared view
	e.mustCall("mailbox.create", with(map[string]any{"email": "anna@example.com", "kind": "personal"}, ctxUID(2)), &anna)
	e.mustCall("mailbox.create", with(map[string]any{"email": "support@example.com", "kind": "shared",
		"main_user_id": 3, "user_ids": []int{4}}, ctxAdmin()), &shared)

	list := func(uid int64) []string {
		var vs []view
		e.mustCall("mailbox.list", with(nil, ctxUID(uid)), &vs)
		out := []string{}
		for _, v := range vs {
			out = append(out, v.Email)
		}
		return out
	}
	for uid, want := range map[int64]string{
		2: "[anna@example.com support@example.com]", // owner of anna@, creator (owner) of support@
		3: "[support@example.com]",                  // main user
		4: "[support@example.com]",                  // assigned
		5: "[]",                                     // nobody's
	} {
		if got := list(uid); fmt.Sprint(got) != want {
			t.Errorf("uid %d sees %v, want %s", uid, got, want)
		}
	}

	before := e.snapshot()
	for _, c := range []struct {
		method string
		params map[string]any
	}{
		{"mailbox.get", map[string]any{"mailbox_id": anna.ID}},
		{"mailbox.update", map[string]any{"mailbox_id": anna.ID, "user_ids": []int{5}}},
		{"mailbox.delete", map[string]any{"mailbox_id": anna.ID}},
	} {
		res, errObj := e.call(c.method, with(c.params, ctxUID(5)))
		if errObj == nil || errObj.Data.Name != NameAccessError || errObj.Data.Code != "forbidden" {
			t.Errorf("%s on another user's mailbox: result %s, error %+v; want AccessError/forbidden", c.method, res, errObj)
		}
	}
	if string(before) != string(e.snapshot()) {
		t.Error("refused calls changed the database")
	}
	var got view
	e.mustCall("mailbox.get", with(map[string]any{"mailbox_id": shared.ID}, ctxUID(4)), &got)
	if got.ID != shared.ID {
		t.Errorf("assigned user's mailbox.get: %+v", got)
	}
}
