package bridge_test

import (
	"context"
	"encoding/json"
	"testing"

	"github.com/rs/zerolog"

	"github.com/maildesk/maildesk/bridge"
	"github.com/maildesk/maildesk/bridge/odoo"
	"github.com/maildesk/maildesk/graphsync/m365sim"
	"github.com/maildesk/maildesk/store"
)

// TestFolderTreeListsSubfolders: folder.list with all lists the mailbox's
// folders in Microsoft 365 with their subfolders (Graph's childFolders), a
// path and parent id each, the well-known names, and which ones sync.
func TestFolderTreeListsSubfolders(t *testing.T) {
	r := newRig(t, rigOpts{})
	upn := "sara@" + r.sim.Domain()
	r.sim.GenerateMailbox(upn, 5, m365sim.GenOptions{NoSamples: true, AttachmentRate: -1})
	clients, err := r.sim.AddFolder(upn, "inbox", "Clients")
	if err != nil {
		t.Fatal(err)
	}
	acme, err := r.sim.AddFolder(upn, clients, "ACME")
	if err != nil {
		t.Fatal(err)
	}
	projects, err := r.sim.AddFolder(upn, "", "Projects")
	if err != nil {
		t.Fatal(err)
	}
	id := r.mailbox(upn, odoo.ModeLog, 0)
	if _, err := bridge.SetConfig(r.st, id, func(m *store.MailboxConfig) {
		m.Folders = []string{"inbox", acme}
	}); err != nil {
		t.Fatal(err)
	}
	boxes := bridge.NewMailboxes(r.st, zerolog.Nop())
	msgs := bridge.NewMessages(r.st, boxes, r.graph, 0)
	tree, err := msgs.FolderTree(context.Background(), bridge.Actor{UID: 2}, bridge.FolderListParams{MailboxID: id, All: true})
	if err != nil {
		t.Fatal(err)
	}
	byPath := map[string]bridge.FolderView{}
	index := map[string]int{}
	for i, f := range tree {
		byPath[f.Path] = f
		index[f.ID] = i
	}
	inbox, ok := byPath["Inbox"]
	if !ok || inbox.WellKnown != "inbox" || !inbox.Synced || inbox.Depth != 0 {
		t.Fatalf("inbox: %+v (tree %+v)", inbox, tree)
	}
	c := byPath["Inbox/Clients"]
	if c.ID != clients || c.ParentID != inbox.ID || c.Depth != 1 || c.Synced || c.WellKnown != "" {
		t.Fatalf("Inbox/Clients: %+v", c)
	}
	a := byPath["Inbox/Clients/ACME"]
	if a.ID != acme || a.ParentID != clients || a.Depth != 2 || !a.Synced || a.Name != "ACME" {
		t.Fatalf("Inbox/Clients/ACME: %+v", a)
	}
	if index[clients] < index[inbox.ID] || index[acme] < index[clients] {
		t.Fatal("a subfolder is listed before its parent")
	}
	if p := byPath["Projects"]; p.ID != projects || p.Depth != 0 {
		t.Fatalf("Projects: %+v", p)
	}
	if s := byPath["Sent Items"]; s.WellKnown != "sentitems" || s.Synced {
		t.Fatalf("Sent Items: %+v", s)
	}
	if inbox.Total == 0 {
		t.Fatal("the inbox has no total count")
	}
	// Every id the tree gives is a folder the mailbox can be set to sync.
	if _, err := boxes.Update(bridge.Actor{UID: 1, Admin: true}, bridge.MailboxUpdateParams{MailboxID: id,
		MailboxFields: bridge.MailboxFields{Folders: &[]string{"inbox", a.ID, c.ID}}}); err != nil {
		t.Fatalf("folders from the tree refused: %v", err)
	}
	// Another user sees nothing of it.
	if _, err := msgs.FolderTree(context.Background(), bridge.Actor{UID: 99}, bridge.FolderListParams{MailboxID: id, All: true}); err == nil {
		t.Fatal("a user who cannot see the mailbox listed its folders")
	}
	// Without all, folder.list stays the synced folders of the index.
	synced, err := msgs.FolderList(bridge.Actor{UID: 2}, bridge.FolderListParams{MailboxID: id})
	if err != nil || len(synced) != 3 {
		t.Fatalf("synced folders: %+v %v", synced, err)
	}
}

// TestMailboxCountsUnread: the mailbox's counts carry the inbox's unread
// count, kept current by the sync rounds (new mail, read in Outlook).
func TestMailboxCountsUnread(t *testing.T) {
	r := newRig(t, rigOpts{})
	upn := "ugo@" + r.sim.Domain()
	r.sim.GenerateMailbox(upn, 40, m365sim.GenOptions{NoSamples: true, AttachmentRate: -1, UnreadRate: 0.5})
	id := r.mailbox(upn, odoo.ModeLog, 0)
	unreadInSim := func() (n int64, ids []string) {
		for _, m := range r.sim.Messages(upn, "inbox") {
			if !m.IsRead {
				n++
				ids = append(ids, m.ID)
			}
		}
		return
	}
	r.syncUntilDone(id, 0)
	want, unread := unreadInSim()
	if want < 2 {
		t.Fatal("the seeded inbox has no unread mail: the test checks nothing")
	}
	view := func() map[string]any {
		t.Helper()
		mb, err := r.st.Mailbox(id)
		if err != nil {
			t.Fatal(err)
		}
		b, _ := json.Marshal(bridge.ViewOf(mb))
		var v map[string]any
		if err := json.Unmarshal(b, &v); err != nil {
			t.Fatal(err)
		}
		return v["counts"].(map[string]any)
	}
	if got := view()["unread"]; got != float64(want) {
		t.Fatalf("counts.unread after the backfill = %v, the inbox has %d unread", got, want)
	}
	// Read in Outlook, and new unread mail: the next round follows.
	r.sim.MarkRead(upn, unread[0], true)
	r.sim.MarkRead(upn, unread[1], true)
	raw := "From: a@example.com\r\nTo: " + upn + "\r\nSubject: unread\r\nMessage-ID: <unread-1@example.com>\r\nContent-Type: text/plain\r\n\r\nx\r\n"
	if _, err := r.sim.DeliverMIME(upn, "inbox", []byte(raw)); err != nil {
		t.Fatal(err)
	}
	r.syncUntilDone(id, 0)
	want2, _ := unreadInSim()
	if got := view()["unread"]; got != float64(want2) || want2 != want-1 {
		t.Fatalf("counts.unread after changes = %v, the inbox has %d unread (was %d)", got, want2, want)
	}
}
