package m365sim

import (
	"encoding/base64"
	"encoding/json"
	"net/url"
	"sort"
	"strconv"
	"strings"
)

// Delta page sizes. Graph documents a default of 10 for messages and no
// maximum; we cap odata.maxpagesize at 200 (the figure Microsoft staff give
// for other delta resources; FACTS.md).
const (
	deltaDefaultPage = 10
	deltaMaxPage     = 200
)

// deltaState is what a nextLink/deltaLink carries (opaque to clients:
// base64url JSON). A round covers the changes with sequence in (From, To].
type deltaState struct {
	U    string `json:"u"`           // mailbox oid
	F    string `json:"f"`           // folder id
	G    uint64 `json:"g"`           // folder generation (bumped by ExpireDeltaState)
	From uint64 `json:"a"`           // changes after this sequence
	To   uint64 `json:"b,omitempty"` // round snapshot; 0 in a deltaLink
	Cur  uint64 `json:"c,omitempty"` // last sequence emitted in this round
	Sel  string `json:"s,omitempty"` // $select baked in
	PS   int    `json:"p,omitempty"` // page size baked in
	Flt  string `json:"r,omitempty"` // $filter baked in
	Exp  bool   `json:"e,omitempty"` // $expand=attachments
	CT   string `json:"t,omitempty"` // changeType filter
	E    string `json:"z,omitempty"` // epoch of the simulator run that issued it
}

func encodeState(st deltaState) string {
	b, _ := json.Marshal(st)
	return base64.RawURLEncoding.EncodeToString(b)
}

func decodeState(tok string) (deltaState, bool) {
	var st deltaState
	b, err := base64.RawURLEncoding.DecodeString(tok)
	if err != nil || json.Unmarshal(b, &st) != nil {
		return st, false
	}
	return st, true
}

// ExpireDeltaState makes every outstanding delta/next link of the folder
// fail with 410 SyncStateNotFound (folder: id or well-known name).
func (s *Sim) ExpireDeltaState(upn, folderName string) {
	u := s.user(upn)
	if u == nil {
		return
	}
	u.mb.mu.Lock()
	defer u.mb.mu.Unlock()
	if f := u.mb.folder(folderName); f != nil {
		f.gen++
	}
}

func (s *Sim) serveDelta(g *greq, f *folder) {
	q := g.r.URL.Query()
	mb := g.target.mb
	var st deltaState
	tok := q.Get("$skiptoken")
	if tok == "" {
		tok = q.Get("$deltatoken")
	}
	if tok != "" {
		var ok bool
		st, ok = decodeState(tok)
		if ok && st.E != s.epoch {
			// Issued by another run of the simulator (before a restart): this
			// run has no such sync state. Graph answers an unknown or aged-out
			// token so (sample 16); the client must resync the folder.
			mb.mu.Lock()
			hi := strconv.FormatUint(f.gen, 10)
			mb.mu.Unlock()
			g.error(410, "SyncStateNotFound", "The sync state generation is not found; generation="+strconv.FormatUint(st.G, 10)+";[highest="+hi+"]["+hi+"].")
			return
		}
		if !ok || st.F != f.id || st.U != g.target.ID {
			g.error(400, "ErrorInvalidSyncStateData", "The sync state data is corrupted or otherwise invalid.")
			return
		}
	} else {
		st = deltaState{U: g.target.ID, F: f.id, E: s.epoch, Sel: q.Get("$select"), Flt: q.Get("$filter"),
			Exp: strings.EqualFold(q.Get("$expand"), "attachments"), CT: strings.ToLower(q.Get("changeType"))}
		if ob := strings.ToLower(strings.Join(strings.Fields(q.Get("$orderby")), " ")); ob != "" && ob != "receiveddatetime desc" {
			g.error(400, "ErrorInvalidUrlQuery", "The $orderby of a delta query supports only receivedDateTime desc.")
			return
		}
		if n, err := strconv.Atoi(q.Get("$top")); err == nil && n > 0 {
			st.PS = n
		}
	}
	if g.maxPage > 0 {
		st.PS = g.maxPage
	}
	ps := st.PS
	if ps <= 0 {
		ps = deltaDefaultPage
	}
	if ps > deltaMaxPage {
		ps = deltaMaxPage
	}
	if g.shortPage {
		ps = max(1, ps/3)
	}
	flt, err := parseFilter(st.Flt, true)
	if err != nil {
		g.error(400, "ErrorInvalidUrlQueryFilter", "The query filter contains one or more invalid nodes: "+err.Error())
		return
	}
	sel := selectSet(url.Values{"$select": {st.Sel}})

	mb.mu.Lock()
	if tok != "" && st.G != f.gen {
		mb.mu.Unlock()
		g.error(410, "SyncStateNotFound", "The sync state generation is not found; generation="+strconv.FormatUint(st.G, 10)+";[highest="+strconv.FormatUint(f.gen, 10)+"]["+strconv.FormatUint(f.gen, 10)+"].")
		return
	}
	st.G = f.gen
	if st.To == 0 { // a new round: snapshot the sequence
		st.To = mb.seq
		st.Cur = st.From
	}
	log := f.log
	i := sort.Search(len(log), func(i int) bool { return log[i].seq > st.Cur })
	vals := make([]any, 0, ps)
	seen := map[*message]bool{}
	for ; i < len(log) && log[i].seq <= st.To; i++ {
		e := log[i]
		if len(vals) == ps {
			break
		}
		st.Cur = e.seq
		if e.removed {
			if st.From == 0 || st.CT == "created" || (e.m.folder == f && !e.m.deleted) {
				continue
			}
			id := e.oldRest
			if g.immutable {
				id = e.m.imm
			}
			vals = append(vals, map[string]any{"@odata.type": "#microsoft.graph.message", "id": id, "@removed": map[string]any{"reason": "deleted"}})
			continue
		}
		m := e.m
		if m.folder != f || m.deleted || m.seq != e.seq || seen[m] {
			continue // superseded by a later event
		}
		isNew := m.addedSeq > st.From
		if !isNew && st.CT == "created" {
			continue
		}
		if isNew && !flt.match(m) {
			continue
		}
		seen[m] = true
		if isNew {
			vals = append(vals, s.renderMessage(mb, m, sel, g, st.Exp, true))
		} else {
			// Strictest plausible: updated items carry only what changed
			// (FACTS.md: id, isRead, parentFolderId whatever $select says).
			vals = append(vals, map[string]any{"@odata.type": "#microsoft.graph.message", "@odata.etag": `W/"` + m.changeKey() + `"`,
				"id": g.id(m), "isRead": m.isRead, "parentFolderId": f.id})
		}
	}
	done := i >= len(log) || log[i].seq > st.To
	mb.mu.Unlock()

	link := s.GraphBaseURL() + "/users/" + g.target.ID + "/mailFolders('" + f.id + "')/messages/delta?"
	body := map[string]any{"@odata.context": s.GraphBaseURL() + "/$metadata#Collection(message)", "value": vals}
	if done {
		next := deltaState{U: st.U, F: st.F, G: st.G, From: st.To, Sel: st.Sel, PS: st.PS, Flt: st.Flt, Exp: st.Exp, CT: st.CT, E: st.E}
		body["@odata.deltaLink"] = link + "$deltatoken=" + encodeState(next)
	} else {
		body["@odata.nextLink"] = link + "$skiptoken=" + encodeState(st)
	}
	writeJSONCT(g.w, 200, "application/json; odata.metadata=minimal; odata.streaming=true; IEEE754Compatible=false; charset=utf-8", body)
}
