package m365sim

import (
	"bufio"
	"compress/gzip"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"net"
	"net/http"
	"net/url"
	"regexp"
	"sort"
	"strconv"
	"strings"
	"time"
)

// greq is one Graph request being served.
type greq struct {
	sim       *Sim
	w         http.ResponseWriter
	r         *http.Request
	at        *accessToken
	target    *User
	segs      []string // path after me or users/{id}
	immutable bool
	textBody  bool
	maxPage   int
	reqID     string
	inner     bool
	shortPage bool // fault: cut the delta page short
}

func writeJSON(w http.ResponseWriter, status int, v any) {
	writeJSONCT(w, status, "application/json; odata.metadata=minimal; odata.streaming=true; IEEE754Compatible=false; charset=utf-8", v)
}

func writeJSONCT(w http.ResponseWriter, status int, ct string, v any) {
	b, err := json.Marshal(v)
	if err != nil {
		http.Error(w, err.Error(), 500)
		return
	}
	w.Header().Set("Content-Type", ct)
	w.Header().Set("Content-Length", strconv.Itoa(len(b)))
	w.WriteHeader(status)
	_, _ = w.Write(b)
}

// graphError writes Graph's error envelope (samples 56, 57).
func (g *greq) error(status int, code, msg string) {
	cid := g.r.Header.Get("client-request-id")
	if cid == "" {
		cid = g.reqID
	}
	writeJSONCT(g.w, status, "application/json", map[string]any{"error": map[string]any{
		"code": code, "message": msg,
		"innerError": map[string]any{"date": time.Now().UTC().Format("2006-01-02T15:04:05"), "request-id": g.reqID, "client-request-id": cid},
	}})
}

func (g *greq) notFound() {
	g.error(404, "ErrorItemNotFound", "The specified object was not found in the store.")
}

func (g *greq) badRequest(msg string) {
	g.error(400, "ErrorInvalidRequest", msg)
}

// splitPath splits an escaped path into unescaped segments and turns the
// OData key form name('key') into two segments.
func splitPath(escaped string) []string {
	var out []string
	for _, p := range strings.Split(strings.Trim(escaped, "/"), "/") {
		if p == "" {
			continue
		}
		seg, err := url.PathUnescape(p)
		if err != nil {
			seg = p
		}
		if i := strings.Index(seg, "('"); i > 0 && strings.HasSuffix(seg, "')") {
			out = append(out, seg[:i], seg[i+2:len(seg)-2])
			continue
		}
		out = append(out, seg)
	}
	return out
}

// prefer parses every Prefer header value.
func parsePrefer(h http.Header) map[string]string {
	out := map[string]string{}
	for _, v := range h.Values("Prefer") {
		for _, part := range strings.Split(v, ",") {
			k, val, _ := strings.Cut(strings.TrimSpace(part), "=")
			out[strings.ToLower(strings.TrimSpace(k))] = strings.Trim(strings.TrimSpace(val), `"`)
		}
	}
	return out
}

// statusWriter records the status for the debug log; it keeps Hijack
// (the reset fault needs it).
type statusWriter struct {
	http.ResponseWriter
	status int
}

func (w *statusWriter) WriteHeader(s int) {
	if w.status == 0 {
		w.status = s
	}
	w.ResponseWriter.WriteHeader(s)
}

func (w *statusWriter) Write(b []byte) (int, error) {
	if w.status == 0 {
		w.status = 200
	}
	return w.ResponseWriter.Write(b)
}

func (w *statusWriter) Hijack() (net.Conn, *bufio.ReadWriter, error) {
	if hj, ok := w.ResponseWriter.(http.Hijacker); ok {
		return hj.Hijack()
	}
	return nil, nil, fmt.Errorf("hijack not supported")
}

func (s *Sim) serveGraphTop(w http.ResponseWriter, r *http.Request) {
	if s.log.Debug().Enabled() {
		sw := &statusWriter{ResponseWriter: w}
		start := time.Now()
		defer func() {
			// Path only: query strings carry no secrets here, but keep logs short.
			s.log.Debug().Str("method", r.Method).Str("path", r.URL.Path).Int("status", sw.status).
				Dur("took", time.Since(start)).Msg("m365sim: graph request")
		}()
		w = sw
	}
	// The SDK's compression middleware gzips request bodies; Graph accepts that.
	if strings.EqualFold(r.Header.Get("Content-Encoding"), "gzip") {
		zr, err := gzip.NewReader(r.Body)
		if err != nil {
			http.Error(w, "bad gzip body", http.StatusBadRequest)
			return
		}
		r.Body = zr
		r.Header.Del("Content-Encoding")
	}
	segs := splitPath(strings.TrimPrefix(r.URL.EscapedPath(), "/v1.0"))
	if len(segs) == 1 && segs[0] == "$batch" {
		s.serveBatch(w, r)
		return
	}
	s.serveGraph(w, r, false)
}

// serveGraph serves one Graph request (also the inner requests of $batch).
func (s *Sim) serveGraph(w http.ResponseWriter, r *http.Request, inner bool) {
	g := &greq{sim: s, w: w, r: r, reqID: newRequestID(), inner: inner}
	w.Header().Set("request-id", g.reqID)
	if c := r.Header.Get("client-request-id"); c != "" {
		w.Header().Set("client-request-id", c)
	} else {
		w.Header().Set("client-request-id", g.reqID)
	}
	pref := parsePrefer(r.Header)
	g.immutable = strings.EqualFold(pref["idtype"], "ImmutableId")
	g.textBody = strings.EqualFold(pref["outlook.body-content-type"], "text")
	if n, err := strconv.Atoi(pref["odata.maxpagesize"]); err == nil && n > 0 {
		g.maxPage = n
	}
	var applied []string
	if g.immutable {
		applied = append(applied, `IdType="ImmutableId"`)
	}
	if g.textBody {
		applied = append(applied, `outlook.body-content-type="text"`)
	}
	if len(applied) > 0 {
		w.Header().Set("Preference-Applied", strings.Join(applied, ", "))
	}

	at, why := s.authenticate(r)
	if at == nil {
		w.Header().Set("WWW-Authenticate", `Bearer realm="", authorization_uri="`+s.AuthorityURL()+`/oauth2/authorize", client_id="00000003-0000-0000-c000-000000000000"`)
		s.countAnon()
		g.error(401, "InvalidAuthenticationToken", why)
		return
	}
	g.at = at
	segs := splitPath(strings.TrimPrefix(r.URL.EscapedPath(), "/v1.0"))
	if len(segs) == 0 {
		g.error(400, "BadRequest", "Invalid request.")
		return
	}
	switch segs[0] {
	case "me":
		g.target = at.user
		g.segs = segs[1:]
	case "users":
		if len(segs) < 2 {
			g.error(403, "Authorization_RequestDenied", "Insufficient privileges to complete the operation.")
			return
		}
		g.target = s.user(segs[1])
		if g.target == nil {
			s.countAnon()
			g.error(404, "ErrorInvalidUser", fmt.Sprintf("The requested user '%s' is invalid.", segs[1]))
			return
		}
		g.segs = segs[2:]
	case "subscriptions":
		g.target = at.user
		g.segs = segs
	default:
		g.error(400, "BadRequest", fmt.Sprintf("Resource not found for the segment '%s'.", segs[0]))
		return
	}

	release, ok := s.admit(g)
	if !ok {
		return
	}
	defer release()

	if segs[0] == "subscriptions" {
		s.serveSubscriptions(g)
		return
	}
	s.serveMailbox(g)
}

// access kinds for permission checks.
const (
	accRead = iota
	accWrite
	accSend
)

// allowed checks scopes and mailbox permissions; it writes the 403.
func (g *greq) allowed(kind int) bool {
	own := g.target == g.at.user
	sc := g.at.scopes
	var ok bool
	switch kind {
	case accRead:
		if own {
			ok = sc["mail.read"] || sc["mail.readwrite"] || sc["mail.readbasic"]
		} else {
			ok = sc["mail.read.shared"] || sc["mail.readwrite.shared"]
		}
	case accWrite:
		ok = (own && sc["mail.readwrite"]) || (!own && sc["mail.readwrite.shared"])
	case accSend:
		ok = (own && sc["mail.send"]) || (!own && sc["mail.send.shared"])
	}
	if !ok {
		g.error(403, "ErrorAccessDenied", "Access is denied. Check credentials and try again.")
		return false
	}
	if own {
		return true
	}
	g.sim.mu.Lock()
	gr, has := g.target.grants[strings.ToLower(g.at.user.UPN)]
	g.sim.mu.Unlock()
	switch kind {
	case accSend:
		if !has || !(gr.SendAs || gr.SendOnBehalf) {
			g.error(403, "ErrorSendAsDenied", "The user account which was used to submit this request does not have the right to send mail on behalf of the specified sending account., Cannot submit message.")
			return false
		}
	default:
		if !has || !gr.FullAccess {
			g.error(403, "ErrorAccessDenied", "Access is denied. Check credentials and try again.")
			return false
		}
	}
	return true
}

func (s *Sim) userJSON(u *User, sel map[string]bool) map[string]any {
	given, sur := u.DisplayName, ""
	if i := strings.LastIndex(u.DisplayName, " "); i > 0 {
		given, sur = u.DisplayName[:i], u.DisplayName[i+1:]
	}
	m := map[string]any{
		"@odata.context":    s.GraphBaseURL() + "/$metadata#users/$entity",
		"businessPhones":    []string{},
		"displayName":       u.DisplayName,
		"givenName":         given,
		"jobTitle":          nil,
		"mail":              u.UPN,
		"mobilePhone":       nil,
		"officeLocation":    nil,
		"preferredLanguage": "en-US",
		"surname":           sur,
		"userPrincipalName": u.UPN,
		"id":                u.ID,
	}
	if u.Shared {
		m["givenName"], m["surname"] = nil, nil
	}
	if sel != nil {
		for k := range m {
			if k != "id" && k != "@odata.context" && !sel[strings.ToLower(k)] {
				delete(m, k)
			}
		}
	}
	return m
}

func selectSet(q url.Values) map[string]bool {
	v := q.Get("$select")
	if v == "" {
		return nil
	}
	out := map[string]bool{}
	for _, f := range strings.Split(v, ",") {
		out[strings.ToLower(strings.TrimSpace(f))] = true
	}
	return out
}

func (s *Sim) serveMailbox(g *greq) {
	r, segs := g.r, g.segs
	q := r.URL.Query()
	mb := g.target.mb
	if sel := selectSet(q); sel["sensitivity"] && strings.Contains(strings.ToLower(r.URL.Path), "/messages") {
		// Graph v1.0's message has no sensitivity property (only event
		// and messageRulePredicates have one): Outlook's sensitivity
		// reaches clients as the Sensitivity header.
		g.error(400, "RequestBroker--ParseUri", "Could not find a property named 'sensitivity' on type 'microsoft.graph.message'.")
		return
	}
	if len(segs) == 0 {
		if r.Method != http.MethodGet {
			g.error(405, "Request_BadRequest", "Method not allowed.")
			return
		}
		writeJSON(g.w, 200, s.userJSON(g.target, selectSet(q)))
		return
	}
	switch segs[0] {
	case "sendMail":
		if r.Method != http.MethodPost {
			g.error(405, "ErrorInvalidRequest", "Method not allowed.")
			return
		}
		s.serveSendMail(g)
		return
	case "mailFolders", "mailfolders":
		if len(segs) == 1 {
			if !g.allowed(accRead) {
				return
			}
			s.listFolders(g)
			return
		}
		mb.mu.Lock()
		f := mb.folder(segs[1])
		mb.mu.Unlock()
		if f == nil {
			g.error(404, "ErrorInvalidIdMalformed", "Id is malformed.")
			return
		}
		if len(segs) == 2 {
			if !g.allowed(accRead) {
				return
			}
			mb.mu.Lock()
			body := s.folderJSON(mb, f)
			mb.mu.Unlock()
			body["@odata.context"] = s.GraphBaseURL() + "/$metadata#users('" + g.target.ID + "')/mailFolders/$entity"
			writeJSON(g.w, 200, body)
			return
		}
		if len(segs) == 3 && strings.EqualFold(segs[2], "childFolders") {
			if !g.allowed(accRead) {
				return
			}
			s.listChildFolders(g, f)
			return
		}
		if segs[2] != "messages" {
			g.error(400, "BadRequest", "Unsupported segment '"+segs[2]+"'.")
			return
		}
		if len(segs) == 3 {
			if r.Method == http.MethodPost {
				s.createDraft(g, f)
				return
			}
			if !g.allowed(accRead) {
				return
			}
			s.listMessages(g, f)
			return
		}
		if segs[3] == "delta" || segs[3] == "delta()" {
			if !g.allowed(accRead) {
				return
			}
			s.serveDelta(g, f)
			return
		}
		s.serveMessage(g, segs[3], segs[4:])
		return
	case "messages":
		if len(segs) == 1 {
			if r.Method == http.MethodPost {
				s.createDraft(g, nil)
				return
			}
			if !g.allowed(accRead) {
				return
			}
			s.listMessages(g, nil)
			return
		}
		if segs[1] == "delta" || segs[1] == "delta()" {
			g.error(400, "ErrorInvalidRequest", "Delta is only supported per mail folder: use /mailFolders/{id}/messages/delta.")
			return
		}
		s.serveMessage(g, segs[1], segs[2:])
		return
	}
	g.error(400, "BadRequest", fmt.Sprintf("Resource not found for the segment '%s'.", segs[0]))
}

func (s *Sim) folderJSON(mb *mailbox, f *folder) map[string]any {
	children := 0
	for _, c := range mb.folders {
		if c.parentID == f.id {
			children++
		}
	}
	return map[string]any{"id": f.id, "displayName": f.name, "parentFolderId": f.parentID, "childFolderCount": children,
		"unreadItemCount": f.unread, "totalItemCount": len(f.msgs), "isHidden": false}
}

// listFolders serves /mailFolders: the direct children of the root.
func (s *Sim) listFolders(g *greq) {
	s.listChildFolders(g, g.target.mb.byID[g.target.mb.root])
}

// AddFolder creates a mail folder in upn's mailbox under parent (an id or a
// well-known name; "" for the top level) and returns its id.
func (s *Sim) AddFolder(upn, parent, name string) (string, error) {
	u := s.user(upn)
	if u == nil {
		return "", fmt.Errorf("m365sim: add folder: unknown user %s", upn)
	}
	mb := u.mb
	mb.mu.Lock()
	defer mb.mu.Unlock()
	pid := ""
	if parent != "" {
		p := mb.folder(parent)
		if p == nil {
			return "", fmt.Errorf("m365sim: add folder: unknown parent %s", parent)
		}
		pid = p.id
	}
	return mb.addFolder(name, pid).id, nil
}

// listChildFolders serves /mailFolders/{id}/childFolders (GET lists the
// folder's direct children, POST creates one under it).
func (s *Sim) listChildFolders(g *greq, parent *folder) {
	mb := g.target.mb
	if g.r.Method == http.MethodPost {
		if !g.allowed(accWrite) {
			return
		}
		var body struct {
			DisplayName string `json:"displayName"`
		}
		if err := json.NewDecoder(g.r.Body).Decode(&body); err != nil || body.DisplayName == "" {
			g.badRequest("displayName is required.")
			return
		}
		mb.mu.Lock()
		f := mb.addFolder(body.DisplayName, parent.id)
		out := s.folderJSON(mb, f)
		mb.mu.Unlock()
		writeJSON(g.w, 201, out)
		return
	}
	q := g.r.URL.Query()
	top := 10
	if n, err := strconv.Atoi(q.Get("$top")); err == nil && n > 0 {
		top = n
	}
	skip, _ := strconv.Atoi(q.Get("$skip"))
	mb.mu.Lock()
	var fs []*folder
	for _, f := range mb.folders {
		if f.parentID == parent.id {
			fs = append(fs, f)
		}
	}
	sort.SliceStable(fs, func(i, j int) bool { return fs[i].name < fs[j].name })
	var vals []any
	for i := skip; i < len(fs) && i < skip+top; i++ {
		vals = append(vals, s.folderJSON(mb, fs[i]))
	}
	mb.mu.Unlock()
	body := map[string]any{"@odata.context": s.GraphBaseURL() + "/$metadata#users('" + g.target.ID + "')/mailFolders", "value": nonNil(vals)}
	if skip+top < len(fs) {
		nq := url.Values{"$top": {strconv.Itoa(top)}, "$skip": {strconv.Itoa(skip + top)}}
		next := "/mailFolders?"
		if parent.id != mb.root {
			next = "/mailFolders/" + parent.id + "/childFolders?"
		}
		body["@odata.nextLink"] = s.GraphBaseURL() + "/users/" + g.target.ID + next + nq.Encode()
	}
	writeJSON(g.w, 200, body)
}

func nonNil(v []any) []any {
	if v == nil {
		return []any{}
	}
	return v
}

var filterRe = regexp.MustCompile(`(?i)^\s*receivedDateTime\s+(ge|gt|le|lt)\s+(\S+)\s*$`)

// msgFilter is a parsed $filter: only receivedDateTime comparisons (and
// isRead eq for lists).
type msgFilter struct {
	op     string
	t      time.Time
	isRead *bool
}

func parseFilter(raw string, delta bool) (*msgFilter, error) {
	if raw == "" {
		return nil, nil
	}
	if m := filterRe.FindStringSubmatch(raw); m != nil {
		t, err := time.Parse(time.RFC3339, strings.Trim(m[2], "'"))
		if err != nil {
			return nil, fmt.Errorf("invalid date %q", m[2])
		}
		op := strings.ToLower(m[1])
		if delta && op != "ge" && op != "gt" {
			return nil, fmt.Errorf("delta accepts only receivedDateTime ge|gt")
		}
		return &msgFilter{op: op, t: t}, nil
	}
	if !delta {
		l := strings.ToLower(strings.Join(strings.Fields(raw), " "))
		switch l {
		case "isread eq true", "isread eq false":
			b := l == "isread eq true"
			return &msgFilter{isRead: &b}, nil
		}
	}
	return nil, fmt.Errorf("unsupported filter %q", raw)
}

func (f *msgFilter) match(m *message) bool {
	if f == nil {
		return true
	}
	if f.isRead != nil {
		return m.isRead == *f.isRead
	}
	switch f.op {
	case "ge":
		return !m.received.Before(f.t)
	case "gt":
		return m.received.After(f.t)
	case "le":
		return !m.received.After(f.t)
	case "lt":
		return m.received.Before(f.t)
	}
	return true
}

func (s *Sim) listMessages(g *greq, f *folder) {
	q := g.r.URL.Query()
	if q.Has("$search") {
		s.searchMessages(g, f)
		return
	}
	flt, err := parseFilter(q.Get("$filter"), false)
	if err != nil {
		g.error(400, "ErrorInvalidUrlQueryFilter", "The query filter contains one or more invalid nodes: "+err.Error())
		return
	}
	asc := false
	switch strings.ToLower(strings.Join(strings.Fields(q.Get("$orderby")), " ")) {
	case "", "receiveddatetime desc":
	case "receiveddatetime asc", "receiveddatetime":
		asc = true
	default:
		g.error(400, "ErrorInvalidProperty", "The $orderby supports only receivedDateTime in this simulator.")
		return
	}
	top := 10
	if n, err := strconv.Atoi(q.Get("$top")); err == nil && n > 0 {
		top = min(n, 1000)
	}
	skip, _ := strconv.Atoi(q.Get("$skip"))
	sel := selectSet(q)
	expand := strings.EqualFold(q.Get("$expand"), "attachments")
	mb := g.target.mb
	mb.mu.Lock()
	var all []*message
	if f != nil {
		all = f.msgs
	} else {
		for _, fo := range mb.folders {
			all = append(all, fo.msgs...)
		}
		all = append([]*message(nil), all...)
		sort.SliceStable(all, func(i, j int) bool { return all[i].received.Before(all[j].received) })
	}
	var vals []any
	matched := 0
	n := len(all)
	more := false
	for k := 0; k < n; k++ {
		i := n - 1 - k
		if asc {
			i = k
		}
		m := all[i]
		if !flt.match(m) {
			continue
		}
		matched++
		if matched <= skip {
			continue
		}
		if len(vals) == top {
			more = true
			break
		}
		vals = append(vals, s.renderMessage(mb, m, sel, g, expand, false))
	}
	mb.mu.Unlock()
	body := map[string]any{"@odata.context": s.GraphBaseURL() + "/$metadata#users('" + g.target.ID + "')/messages", "value": nonNil(vals)}
	if more {
		nq := url.Values{}
		for k, v := range q {
			nq[k] = v
		}
		nq.Set("$top", strconv.Itoa(top))
		nq.Set("$skip", strconv.Itoa(skip+top))
		u := *g.r.URL
		u.RawQuery = nq.Encode()
		body["@odata.nextLink"] = s.url + u.RequestURI()
	}
	writeJSON(g.w, 200, body)
}

func emailJSON(a addr) map[string]any {
	return map[string]any{"emailAddress": map[string]any{"name": a.Name, "address": a.Address}}
}

func emailsJSON(as []addr) []any {
	out := make([]any, 0, len(as))
	for _, a := range as {
		out = append(out, emailJSON(a))
	}
	return out
}

func (g *greq) id(m *message) string {
	if g.immutable {
		return m.imm
	}
	return m.rest
}

// renderMessage builds the JSON of a message (sample 01's default set);
// caller holds mb.mu.
func (s *Sim) renderMessage(mb *mailbox, m *message, sel map[string]bool, g *greq, expand, delta bool) map[string]any {
	want := func(k string) bool { return sel == nil || sel[strings.ToLower(k)] }
	out := map[string]any{"@odata.etag": `W/"` + m.changeKey() + `"`, "id": g.id(m)}
	if delta {
		out["@odata.type"] = "#microsoft.graph.message"
	}
	set := func(k string, v func() any) {
		if want(k) {
			out[k] = v()
		}
	}
	ts := func(t time.Time) any { return t.UTC().Format("2006-01-02T15:04:05Z") }
	set("createdDateTime", func() any { return ts(m.created) })
	set("lastModifiedDateTime", func() any { return ts(m.modified) })
	set("changeKey", func() any { return m.changeKey() })
	set("categories", func() any { return []string{} })
	set("receivedDateTime", func() any { return ts(m.received) })
	set("sentDateTime", func() any { return ts(m.sent) })
	set("hasAttachments", func() any { return m.hasAttachments() })
	set("internetMessageId", func() any { return m.msgID })
	set("subject", func() any { return m.subject })
	set("bodyPreview", func() any { return preview(m) })
	set("importance", func() any { return m.importance })
	set("parentFolderId", func() any { return m.folder.id })
	set("conversationId", func() any { return m.convID })
	set("conversationIndex", func() any { return base64.StdEncoding.EncodeToString([]byte(m.convID)[:min(22, len(m.convID))]) })
	set("isDeliveryReceiptRequested", func() any { return false })
	set("isReadReceiptRequested", func() any { return false })
	set("isRead", func() any { return m.isRead })
	set("isDraft", func() any { return m.isDraft })
	set("webLink", func() any {
		return "https://outlook.office365.com/owa/?ItemID=" + url.QueryEscape(m.imm) + "&exvsurl=1&viewmodel=ReadMessageItem"
	})
	set("inferenceClassification", func() any { return "focused" })
	set("body", func() any {
		if g.textBody || m.bodyHTML == "" {
			txt := m.bodyText
			if txt == "" && m.bodyHTML != "" {
				txt = stripTags(m.bodyHTML)
			}
			return map[string]any{"contentType": "text", "content": txt}
		}
		return map[string]any{"contentType": "html", "content": m.bodyHTML}
	})
	set("sender", func() any { return emailJSON(m.from) })
	set("from", func() any { return emailJSON(m.from) })
	set("toRecipients", func() any { return emailsJSON(m.to) })
	set("ccRecipients", func() any { return emailsJSON(m.cc) })
	set("bccRecipients", func() any { return emailsJSON(m.bcc) })
	set("replyTo", func() any { return emailsJSON(m.replyTo) })
	set("flag", func() any { return map[string]any{"flagStatus": orDefault(m.flagStatus, "notFlagged")} })
	if sel != nil && sel["internetmessageheaders"] && !m.isDraft {
		out["internetMessageHeaders"] = headersJSON(m)
	}
	if sel != nil && sel["uniquebody"] {
		out["uniqueBody"] = out["body"]
	}
	if expand {
		atts := make([]any, 0, len(m.atts))
		for _, a := range m.atts {
			atts = append(atts, s.attachmentJSON(m, a, true))
		}
		out["attachments"] = atts
		out["attachments@odata.context"] = s.GraphBaseURL() + "/$metadata#users('" + mb.user.ID + "')/messages('" + g.id(m) + "')/attachments"
	}
	return out
}

func preview(m *message) string {
	t := m.bodyText
	if t == "" {
		t = stripTags(m.bodyHTML)
	}
	t = strings.Join(strings.Fields(t), " ")
	r := []rune(t)
	if len(r) > 255 {
		r = r[:255]
	}
	return string(r)
}

func (s *Sim) attachmentJSON(m *message, a *attachment, withBytes bool) map[string]any {
	if a.item {
		return s.itemAttachmentJSON(a)
	}
	out := map[string]any{
		"@odata.type":             "#microsoft.graph.fileAttachment",
		"@odata.mediaContentType": a.contentType,
		"id":                      a.id,
		"lastModifiedDateTime":    a.modified.UTC().Format("2006-01-02T15:04:05Z"),
		"name":                    a.name,
		"contentType":             a.contentType,
		"size":                    a.size,
		"isInline":                a.inline,
		"contentId":               nilIfEmpty(a.contentID),
		"contentLocation":         nil,
	}
	if withBytes {
		out["contentBytes"] = base64.StdEncoding.EncodeToString(a.bytes())
	}
	return out
}

func nilIfEmpty(s string) any {
	if s == "" {
		return nil
	}
	return s
}

func (s *Sim) serveMessage(g *greq, id string, rest []string) {
	mb := g.target.mb
	r := g.r
	mb.mu.Lock()
	m := mb.message(id)
	mb.mu.Unlock()
	if m == nil {
		g.notFound()
		return
	}
	now := time.Now()
	if len(rest) == 0 {
		switch r.Method {
		case http.MethodGet:
			if !g.allowed(accRead) {
				return
			}
			q := r.URL.Query()
			mb.mu.Lock()
			body := s.renderMessage(mb, m, selectSet(q), g, strings.EqualFold(q.Get("$expand"), "attachments"), false)
			mb.mu.Unlock()
			body["@odata.context"] = s.GraphBaseURL() + "/$metadata#users('" + g.target.ID + "')/messages/$entity"
			writeJSON(g.w, 200, body)
		case http.MethodPatch:
			if !g.allowed(accWrite) {
				return
			}
			var patch map[string]json.RawMessage
			if err := json.NewDecoder(r.Body).Decode(&patch); err != nil {
				g.badRequest("Invalid JSON body.")
				return
			}
			mb.mu.Lock()
			changed := false
			if raw, ok := patch["isRead"]; ok {
				var b bool
				if json.Unmarshal(raw, &b) == nil {
					before := m.isRead
					mb.setRead(m, b, now)
					changed = changed || before != b
				}
			}
			if raw, ok := patch["subject"]; ok && m.isDraft {
				_ = json.Unmarshal(raw, &m.subject)
				mb.touch(m, now)
				changed = true
			}
			if raw, ok := patch["flag"]; ok {
				// followupFlag (Graph docs resources/followupflag.md):
				// flagStatus notFlagged | flagged | complete.
				var flag struct {
					FlagStatus string `json:"flagStatus"`
				}
				if json.Unmarshal(raw, &flag) != nil || !validFlagStatus(flag.FlagStatus) {
					mb.mu.Unlock()
					g.badRequest("Invalid value for flag.flagStatus.")
					return
				}
				if flag.FlagStatus == "notFlagged" {
					flag.FlagStatus = ""
				}
				if m.flagStatus != flag.FlagStatus {
					m.flagStatus = flag.FlagStatus
					mb.touch(m, now)
					changed = true
				}
			}
			if raw, ok := patch["importance"]; ok {
				_ = json.Unmarshal(raw, &m.importance)
				mb.touch(m, now)
				changed = true
			}
			body := s.renderMessage(mb, m, nil, g, false, false)
			f := m.folder
			mb.mu.Unlock()
			if changed {
				s.notifyChange(g.target, f, m, "updated")
			}
			writeJSON(g.w, 200, body)
		case http.MethodDelete:
			if !g.allowed(accWrite) {
				return
			}
			mb.mu.Lock()
			src := m.folder
			if m.folder.wellKnown == "deleteditems" {
				mb.hardDelete(m)
			} else {
				mb.move(m, mb.folder("deleteditems"), now)
			}
			mb.mu.Unlock()
			s.notifyChange(g.target, src, m, "deleted")
			g.w.WriteHeader(http.StatusNoContent)
		default:
			g.error(405, "ErrorInvalidRequest", "Method not allowed.")
		}
		return
	}
	switch rest[0] {
	case "$value":
		if !g.allowed(accRead) {
			return
		}
		s.countMIME(g.target)
		mb.mu.Lock()
		raw := s.mimeOf(mb, m)
		mb.mu.Unlock()
		g.w.Header().Set("Content-Type", "text/plain")
		g.w.Header().Set("Content-Length", strconv.Itoa(len(raw)))
		g.w.WriteHeader(200)
		_, _ = g.w.Write(raw)
	case "move":
		if r.Method != http.MethodPost || !g.allowed(accWrite) {
			if r.Method != http.MethodPost {
				g.error(405, "ErrorInvalidRequest", "Method not allowed.")
			}
			return
		}
		var body struct {
			DestinationID string `json:"destinationId"`
		}
		if err := json.NewDecoder(r.Body).Decode(&body); err != nil || body.DestinationID == "" {
			g.badRequest("destinationId is required.")
			return
		}
		mb.mu.Lock()
		dst := mb.folder(body.DestinationID)
		if dst == nil {
			mb.mu.Unlock()
			g.error(404, "ErrorInvalidIdMalformed", "Id is malformed.")
			return
		}
		src := m.folder
		mb.move(m, dst, now)
		out := s.renderMessage(mb, m, nil, g, false, false)
		mb.mu.Unlock()
		s.notifyChange(g.target, src, m, "deleted")
		s.notifyChange(g.target, dst, m, "created")
		writeJSON(g.w, 201, out)
	case "send":
		if r.Method != http.MethodPost {
			g.error(405, "ErrorInvalidRequest", "Method not allowed.")
			return
		}
		s.sendDraft(g, m)
	case "attachments":
		s.serveAttachments(g, m, rest[1:])
	case "permanentDelete":
		if r.Method != http.MethodPost {
			g.error(405, "ErrorInvalidRequest", "Method not allowed.")
			return
		}
		if !g.allowed(accWrite) {
			return
		}
		mb.mu.Lock()
		src := m.folder
		mb.hardDelete(m)
		mb.mu.Unlock()
		s.notifyChange(g.target, src, m, "deleted")
		g.w.WriteHeader(http.StatusNoContent)
	default:
		g.error(400, "BadRequest", fmt.Sprintf("Resource not found for the segment '%s'.", rest[0]))
	}
}

func (s *Sim) serveAttachments(g *greq, m *message, rest []string) {
	mb := g.target.mb
	r := g.r
	if len(rest) == 0 {
		switch r.Method {
		case http.MethodGet:
			if !g.allowed(accRead) {
				return
			}
			mb.mu.Lock()
			vals := make([]any, 0, len(m.atts))
			for _, a := range m.atts {
				vals = append(vals, s.attachmentJSON(m, a, true))
			}
			mb.mu.Unlock()
			writeJSON(g.w, 200, map[string]any{"@odata.context": s.GraphBaseURL() + "/$metadata#users('" + g.target.ID + "')/messages('" + g.id(m) + "')/attachments", "value": vals})
		case http.MethodPost:
			if !g.allowed(accWrite) {
				return
			}
			if !m.isDraft {
				g.error(400, "ErrorInvalidRequest", "Attachments can only be added to draft messages in this simulator.")
				return
			}
			var a jsonAttachment
			if err := json.NewDecoder(r.Body).Decode(&a); err != nil {
				g.badRequest("Invalid JSON body.")
				return
			}
			data, err := base64.StdEncoding.DecodeString(a.ContentBytes)
			if err != nil {
				g.badRequest("Invalid base64 in contentBytes.")
				return
			}
			if len(data) > 3*1024*1024 {
				g.error(413, "ErrorRequestEntityTooLarge", "The attachment is larger than 3 MB: use createUploadSession.")
				return
			}
			mb.mu.Lock()
			att := &attachment{name: a.Name, contentType: orDefault(a.ContentType, "application/octet-stream"), size: len(data), data: data, inline: a.IsInline, contentID: a.ContentID, modified: time.Now()}
			m.atts = append(m.atts, att)
			assignAttIDs(mb, m)
			mb.touch(m, time.Now())
			out := s.attachmentJSON(m, att, false)
			mb.mu.Unlock()
			writeJSON(g.w, 201, out)
		default:
			g.error(405, "ErrorInvalidRequest", "Method not allowed.")
		}
		return
	}
	if rest[0] == "createUploadSession" {
		s.createUploadSession(g, m)
		return
	}
	if !g.allowed(accRead) {
		return
	}
	mb.mu.Lock()
	var att *attachment
	for _, a := range m.atts {
		if a.id == rest[0] {
			att = a
		}
	}
	mb.mu.Unlock()
	if att == nil {
		g.notFound()
		return
	}
	if len(rest) > 1 && rest[1] == "$value" {
		data := att.bytes()
		g.w.Header().Set("Content-Type", att.contentType)
		g.w.Header().Set("Content-Length", strconv.Itoa(len(data)))
		g.w.WriteHeader(200)
		_, _ = g.w.Write(data)
		return
	}
	out := s.attachmentJSON(m, att, true)
	out["@odata.context"] = s.GraphBaseURL() + "/$metadata#users('" + g.target.ID + "')/messages('" + g.id(m) + "')/attachments/$entity"
	writeJSON(g.w, 200, out)
}

func orDefault(s, d string) string {
	if s == "" {
		return d
	}
	return s
}

func assignAttIDs(mb *mailbox, m *message) {
	for i, a := range m.atts {
		a.id = outlookID("AAMkAGatt", uint64(mb.user.index), m.num, uint64(i+1))
		if a.modified.IsZero() {
			a.modified = m.created
		}
	}
}

func validFlagStatus(s string) bool {
	return s == "notFlagged" || s == "flagged" || s == "complete"
}
