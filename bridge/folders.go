package bridge

import (
	"context"
	"fmt"
	"strings"

	"github.com/maildesk/maildesk/graphsync"
	"github.com/maildesk/maildesk/store"
)

// FolderTree lists every folder of the mailbox in Microsoft 365, subfolders
// included, as a flat list (parents before children) for the folder picker
// of the addon: id, display name, path, parent id, well-known name (for the
// well-known folders), Graph's counts and whether the mailbox syncs it.
// Folders are chosen by well-known name where there is one, else by id.
func (s *Messages) FolderTree(ctx context.Context, a Actor, p FolderListParams) ([]FolderView, error) {
	mb, err := s.boxes.Load(a, p.MailboxID)
	if err != nil {
		return nil, err
	}
	gm, err := s.graph.Mailbox(mb.ID, mb.Email)
	if err != nil {
		return nil, Internal(err)
	}
	ctx, cancel := context.WithTimeout(ctx, 2*s.timeout)
	defer cancel()
	nodes, err := gm.ListFolderTree(ctx, 0)
	if err != nil {
		return nil, folderFailure(mb, err)
	}
	// Graph v1.0 does not name well-known folders in listings: resolve
	// their ids (a mailbox may lack some, e.g. archive).
	wellKnown := map[string]string{}
	for _, name := range WellKnownFolders {
		f, err := gm.GetFolder(ctx, name)
		if err != nil {
			if graphsync.IsReauth(err) || ctx.Err() != nil {
				return nil, folderFailure(mb, err)
			}
			continue
		}
		wellKnown[f.ID] = name
	}
	synced := map[string]bool{}
	for _, f := range mb.Folders {
		synced[strings.ToLower(f)] = true
	}
	out := make([]FolderView, 0, len(nodes))
	for _, n := range nodes {
		v := FolderView{ID: n.ID, Name: n.DisplayName, WellKnown: wellKnown[n.ID], Unread: n.Unread, Total: n.Total,
			ParentID: n.ParentID, Path: n.Path, Depth: n.Depth}
		v.Synced = synced[strings.ToLower(n.ID)] || (v.WellKnown != "" && synced[v.WellKnown])
		out = append(out, v)
	}
	return out, nil
}

func folderFailure(mb store.Mailbox, err error) error {
	if graphsync.IsReauth(err) || graphsync.StatusOf(err) == 429 {
		return graphFailure(mb, err)
	}
	return &Error{Kind: KindUser, Code: "graph_error", Message: fmt.Sprintf("MailDesk could not read the folders of %s from Microsoft 365; try again later", mb.Email), Err: err}
}
