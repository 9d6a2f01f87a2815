package odoosim

import (
	"bytes"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"net/mail"
	"strings"
	"time"

	"github.com/jhillyerd/enmime"
)

// The ingest contract as the addon reads it (shared/API.md "Sidecar → Odoo").
// Decoded independently of bridge/odoo so a drift in the client's JSON shows up.
type inAddress struct {
	Name  string `json:"name"`
	Email string `json:"email"`
}

type inAttachment struct {
	Name        string `json:"name"`
	ContentType string `json:"content_type"`
	DataBase64  string `json:"data_base64"`
	ContentID   string `json:"content_id"`
	IsInline    bool   `json:"is_inline"`
}

type inItem struct {
	GraphID           string            `json:"graph_id"`
	Mailbox           string            `json:"mailbox"`
	Folder            string            `json:"folder"`
	Direction         string            `json:"direction"`
	InternetMessageID string            `json:"internet_message_id"`
	ConversationID    string            `json:"conversation_id"`
	ReceivedAt        string            `json:"received_at"`
	Sensitivity       string            `json:"sensitivity"`
	MIMEBase64        string            `json:"mime_base64"`
	Subject           string            `json:"subject"`
	From              *inAddress        `json:"from"`
	To                []inAddress       `json:"to"`
	Cc                []inAddress       `json:"cc"`
	Headers           map[string]string `json:"headers"`
	BodyHTML          string            `json:"body_html"`
	Attachments       []inAttachment    `json:"attachments"`
	Options           struct {
		Mode              string `json:"mode"`
		GatewayModel      string `json:"gateway_model"`
		LogSentAsActivity bool   `json:"log_sent_as_activity"`
		MainUserID        int64  `json:"main_user_id"`
		CreateContacts    bool   `json:"create_contacts"`
		SentByMailDesk    bool   `json:"sent_by_maildesk"`
	} `json:"options"`
	Target *struct {
		Model string `json:"model"`
		ResID int64  `json:"res_id"`
	} `json:"target"`
}

// IngestStats counts maildesk_ingest calls.
type IngestStats struct {
	Calls      int
	Items      int
	BatchSizes []int
	// Mailboxes holds the Odoo mailbox id of each call, parallel to BatchSizes.
	Mailboxes []int64
}

func ingestMethod(d *db, e *env, m *modelDef, ids []int64, kw map[string]any) (any, *oerr) {
	if len(ids) != 1 {
		return nil, valueError("Expected singleton: maildesk.mailbox%v", ids)
	}
	mbx := d.get("maildesk.mailbox", ids[0])
	if mbx == nil {
		return nil, missingError("maildesk.mailbox", ids, e.uid)
	}
	items, ok := kw["items"].([]any)
	if !ok {
		return nil, validationError("items must be a list")
	}
	d.ingest.Calls++
	d.ingest.Items += len(items)
	d.ingest.BatchSizes = append(d.ingest.BatchSizes, len(items))
	d.ingest.Mailboxes = append(d.ingest.Mailboxes, ids[0])
	if c := d.itemCost(); c > 0 && len(items) > 0 {
		time.Sleep(c * time.Duration(len(items))) // the simulated work of a one-worker Odoo
	}
	out := make([]any, 0, len(items))
	for _, raw := range items {
		out = append(out, d.ingestOne(e, mbx, raw))
	}
	return out, nil
}

func notifyMethod(d *db, e *env, m *modelDef, ids []int64, kw map[string]any) (any, *oerr) {
	if len(ids) != 1 || d.get("maildesk.mailbox", ids[0]) == nil {
		return nil, missingError("maildesk.mailbox", ids, e.uid)
	}
	notices, ok := kw["notices"].([]any)
	if !ok {
		return nil, validationError("notices must be a list")
	}
	for _, n := range notices {
		nm, ok := n.(map[string]any)
		if !ok {
			return nil, validationError("a notice must be an object")
		}
		c := map[string]any{"odoo_mailbox_id": ids[0]}
		for k, v := range nm {
			c[k] = v
		}
		d.notices = append(d.notices, c)
	}
	return true, nil
}

type ingestResult struct {
	graphID  string
	status   string
	msgIDs   []int64
	records  [][2]any
	activity int64
	err      string
}

func (r ingestResult) odict() odict {
	recs := make([]any, len(r.records))
	for i, rr := range r.records {
		recs[i] = []any{rr[0], rr[1]}
	}
	var act any = false
	if r.activity != 0 {
		act = r.activity
	}
	o := odict{{"graph_id", r.graphID}, {"status", r.status}, {"odoo_message_ids", orEmpty(r.msgIDs)}, {"records", recs}, {"activity_id", act}}
	if r.err != "" {
		o = append(o, kv{"error", r.err})
	} else {
		o = append(o, kv{"error", false})
	}
	return o
}

// parsed is an item reduced to what posting needs.
type parsed struct {
	subject   string
	from      *inAddress
	to, cc    []inAddress
	headers   map[string]string
	bodyHTML  string
	atts      []inAttachment
	messageID string
	date      string
	// conversationID is Graph's conversationId (the addon's maildesk_conversation_id).
	conversationID string
}

func (d *db) ingestOne(e *env, mbx record, raw any) (res odict) {
	var it inItem
	b, _ := json.Marshal(raw)
	if err := json.Unmarshal(b, &it); err != nil {
		return ingestResult{status: "error", err: "invalid item: " + err.Error()}.odict()
	}
	r := ingestResult{graphID: it.GraphID}
	defer func() {
		if p := recover(); p != nil {
			r.status, r.err = "error", fmt.Sprint("internal error: ", p)
			res = r.odict()
		}
	}()
	fail := func(msg string) odict {
		r.status, r.err = "error", msg
		return r.odict()
	}
	if it.GraphID == "" {
		return fail("graph_id is required")
	}
	if reason, ok := d.refuse[toInt(mbx["id"])]; ok {
		return fail(reason)
	}
	if it.Direction != "in" && it.Direction != "out" {
		return fail(fmt.Sprintf("direction must be in or out, not %q", it.Direction))
	}
	p, err := parseItem(&it)
	if err != nil {
		return fail(err.Error())
	}
	p.conversationID = it.ConversationID
	// duplicate: Message-Id or Graph id already in Odoo. A targeted item
	// (the user chose "log to record") is a duplicate only when that record
	// already holds the message: logging mail Odoo has elsewhere adds it there.
	dup := d.findDuplicates(p.messageID, it.GraphID)
	if it.Target != nil {
		dup = d.onRecord(dup, it.Target.Model, it.Target.ResID)
	}
	if len(dup) > 0 {
		r.status = "duplicate"
		r.msgIDs = dup
		r.records = d.recordsOf(dup)
		return r.odict()
	}
	if it.Target == nil {
		// The addon's privacy rule: mail Outlook marks private or
		// confidential is never logged unless a user logs it to a record.
		switch strings.ToLower(it.Sensitivity) {
		case "private", "confidential":
			r.status, r.err = "excluded", "not logged: private (Outlook sensitivity)"
			return r.odict()
		}
	}
	mode := it.Options.Mode
	if mode == "" {
		mode = "log"
	}
	if mode != "log" && mode != "gateway" {
		return fail(fmt.Sprintf("mode must be log or gateway, not %q", mode))
	}
	var targets [][2]any
	switch {
	case it.Target != nil:
		if d.models[it.Target.Model] == nil || d.models[it.Target.Model].methods["message_post"] == nil {
			return fail(fmt.Sprintf("target model %s cannot hold messages", it.Target.Model))
		}
		if d.get(it.Target.Model, it.Target.ResID) == nil {
			return fail(fmt.Sprintf("target %s(%d) does not exist", it.Target.Model, it.Target.ResID))
		}
		targets = [][2]any{{it.Target.Model, it.Target.ResID}}
	default:
		if t, ok := d.threadOf(p); ok {
			targets = [][2]any{t}
			break
		}
		if mode == "gateway" && it.Direction == "in" {
			gm := it.Options.GatewayModel
			if gm == "" {
				gm = "crm.lead"
			}
			if d.models[gm] == nil || d.models[gm].methods["message_post"] == nil {
				return fail(fmt.Sprintf("gateway model %s does not exist", gm))
			}
			id, oe := d.gatewayRecord(e, gm, p, it.Options.CreateContacts)
			if oe != nil {
				return fail(oe.msg)
			}
			targets = [][2]any{{gm, id}}
			break
		}
		var addrs []inAddress
		if it.Direction == "in" {
			if p.from != nil {
				addrs = []inAddress{*p.from}
			}
		} else {
			addrs = append(append(addrs, p.to...), p.cc...)
		}
		own := normalizeEmail(str(mbx["email"]))
		for _, pid := range d.partnersFor(e, addrs, own, it.Options.CreateContacts) {
			targets = append(targets, [2]any{"res.partner", pid})
		}
	}
	if len(targets) == 0 {
		r.status = "unrouted"
		return r.odict()
	}
	author := int64(0)
	if p.from != nil {
		if ids := d.partnersByEmail(normalizeEmail(p.from.Email)); len(ids) > 0 {
			author = ids[0]
		}
	}
	for _, t := range targets {
		model, resID := t[0].(string), t[1].(int64)
		vals := record{"body": p.bodyHTML, "message_type": "email", "subtype_id": int64(2),
			"message_id": p.messageID, "maildesk_graph_id": it.GraphID, "date": p.date}
		if p.conversationID != "" {
			vals["maildesk_conversation_id"] = p.conversationID
		}
		if p.subject != "" {
			vals["subject"] = p.subject
		}
		if p.from != nil {
			vals["email_from"] = formatAddr(*p.from)
		}
		if author != 0 {
			vals["author_id"] = author
		}
		var attIDs []int64
		for _, a := range p.atts {
			attIDs = append(attIDs, d.insert("ir.attachment", 0, record{"name": a.Name, "mimetype": a.ContentType,
				"datas": a.DataBase64, "res_model": model, "res_id": resID, "file_size": int64(base64.StdEncoding.DecodedLen(len(a.DataBase64)))}))
		}
		if attIDs != nil {
			vals["attachment_ids"] = attIDs
		}
		r.msgIDs = append(r.msgIDs, d.postMessage(e, model, resID, vals))
		r.records = append(r.records, t)
	}
	if it.Direction == "out" && it.Options.LogSentAsActivity && !it.Options.SentByMailDesk {
		r.activity = d.outboxActivity(e, targets[0], p, it.Options.MainUserID)
	}
	r.status = "posted"
	return r.odict()
}

func parseItem(it *inItem) (*parsed, error) {
	p := &parsed{headers: map[string]string{}}
	if it.MIMEBase64 != "" {
		raw, err := base64.StdEncoding.DecodeString(it.MIMEBase64)
		if err != nil {
			return nil, fmt.Errorf("mime_base64: %v", err)
		}
		env, err := enmime.ReadEnvelope(bytes.NewReader(raw))
		if err != nil {
			return nil, fmt.Errorf("mime: %v", err)
		}
		for _, k := range env.GetHeaderKeys() {
			p.headers[strings.ToLower(k)] = env.GetHeader(k)
		}
		p.subject = env.GetHeader("Subject")
		if l, err := env.AddressList("From"); err == nil && len(l) > 0 {
			p.from = &inAddress{Name: l[0].Name, Email: l[0].Address}
		}
		p.to = addrList(env, "To")
		p.cc = addrList(env, "Cc")
		if env.HTML != "" {
			p.bodyHTML = env.HTML
		} else {
			p.bodyHTML = plaintextToHTML(env.Text)
		}
		for _, set := range [][]*enmime.Part{env.Attachments, env.Inlines} {
			for _, a := range set {
				p.atts = append(p.atts, inAttachment{Name: a.FileName, ContentType: a.ContentType,
					DataBase64: base64.StdEncoding.EncodeToString(a.Content), ContentID: a.ContentID})
			}
		}
	} else {
		if it.From == nil && it.Subject == "" && it.BodyHTML == "" && len(it.Headers) == 0 {
			return nil, fmt.Errorf("item has neither mime_base64 nor structured fields")
		}
		for k, v := range it.Headers {
			p.headers[strings.ToLower(k)] = v
		}
		p.subject, p.from, p.to, p.cc, p.bodyHTML, p.atts = it.Subject, it.From, it.To, it.Cc, it.BodyHTML, it.Attachments
		for _, a := range p.atts {
			if _, err := base64.StdEncoding.DecodeString(a.DataBase64); err != nil {
				return nil, fmt.Errorf("attachment %q: data_base64: %v", a.Name, err)
			}
		}
	}
	p.messageID = normalizeMsgID(it.InternetMessageID)
	if p.messageID == "" {
		p.messageID = normalizeMsgID(p.headers["message-id"])
	}
	p.date = time.Now().UTC().Format("2006-01-02 15:04:05")
	if it.ReceivedAt != "" {
		t, err := time.Parse(time.RFC3339, it.ReceivedAt)
		if err != nil {
			return nil, fmt.Errorf("received_at: %v", err)
		}
		p.date = t.UTC().Format("2006-01-02 15:04:05")
	}
	return p, nil
}

func addrList(env *enmime.Envelope, h string) []inAddress {
	l, err := env.AddressList(h)
	if err != nil {
		return nil
	}
	out := make([]inAddress, 0, len(l))
	for _, a := range l {
		out = append(out, inAddress{Name: a.Name, Email: a.Address})
	}
	return out
}

func formatAddr(a inAddress) string {
	if a.Name == "" {
		return a.Email
	}
	return (&mail.Address{Name: a.Name, Address: a.Email}).String()
}

// onRecord keeps the messages that sit on model(resID).
func (d *db) onRecord(msgIDs []int64, model string, resID int64) []int64 {
	var out []int64
	for _, id := range msgIDs {
		if r := d.get("mail.message", id); r != nil && str(r["model"]) == model && toInt(r["res_id"]) == resID {
			out = append(out, id)
		}
	}
	return out
}

func (d *db) findDuplicates(messageID, graphID string) []int64 {
	seen := map[int64]bool{}
	var out []int64
	add := func(ids []int64) {
		for _, id := range ids {
			if !seen[id] && d.get("mail.message", id) != nil {
				seen[id] = true
				out = append(out, id)
			}
		}
	}
	if messageID != "" {
		add(d.byMessageID[messageID])
	}
	if graphID != "" {
		add(d.byGraphID[graphID])
	}
	return out
}

func (d *db) recordsOf(msgIDs []int64) [][2]any {
	seen := map[string]bool{}
	var out [][2]any
	for _, id := range msgIDs {
		m := d.get("mail.message", id)
		k := fmt.Sprint(m["model"], m["res_id"])
		if !seen[k] {
			seen[k] = true
			out = append(out, [2]any{m["model"], toInt(m["res_id"])})
		}
	}
	return out
}

// threadOf finds the record of the newest known message named by In-Reply-To
// or References. A mail logged on several contacts has one copy per contact:
// among the copies of the newest referenced mail, the sender's own contact wins.
// Failing that, the record of the first message of the item's Graph
// conversation that Odoo holds (as the addon's maildesk_conversation_id).
func (d *db) threadOf(p *parsed) ([2]any, bool) {
	refs := msgIDTokens(p.headers["in-reply-to"] + " " + p.headers["references"])
	best := int64(0)
	var bestRef string
	for _, ref := range refs {
		for _, id := range d.byMessageID[ref] {
			if id > best && d.get("mail.message", id) != nil {
				best, bestRef = id, ref
			}
		}
	}
	if best == 0 {
		return d.conversationOf(p.conversationID)
	}
	var sender []int64
	if p.from != nil {
		sender = d.partnersByEmail(normalizeEmail(p.from.Email))
	}
	pick := best
	for _, id := range d.byMessageID[bestRef] {
		m := d.get("mail.message", id)
		if m != nil && m["model"] == "res.partner" && containsID(sender, toInt(m["res_id"])) {
			pick = id
			break
		}
	}
	m := d.get("mail.message", pick)
	model, _ := m["model"].(string)
	resID := toInt(m["res_id"])
	if d.get(model, resID) == nil {
		return [2]any{}, false
	}
	return [2]any{model, resID}, true
}

// conversationOf is the record of the oldest message of a Graph conversation.
func (d *db) conversationOf(conv string) ([2]any, bool) {
	if conv == "" {
		return [2]any{}, false
	}
	for _, id := range d.byConversation[conv] {
		m := d.get("mail.message", id)
		if m == nil {
			continue
		}
		model, _ := m["model"].(string)
		if resID := toInt(m["res_id"]); d.get(model, resID) != nil {
			return [2]any{model, resID}, true
		}
	}
	return [2]any{}, false
}

func containsID(l []int64, id int64) bool {
	for _, x := range l {
		if x == id {
			return true
		}
	}
	return false
}

// normalizeMsgID puts a Message-Id in angle brackets, as stored by Odoo.
func normalizeMsgID(s string) string {
	s = strings.TrimSpace(s)
	if s == "" || strings.HasPrefix(s, "<") {
		return s
	}
	return "<" + s + ">"
}

func msgIDTokens(s string) []string {
	var out []string
	for {
		i := strings.Index(s, "<")
		if i < 0 {
			return out
		}
		j := strings.Index(s[i:], ">")
		if j < 0 {
			return out
		}
		out = append(out, s[i:i+j+1])
		s = s[i+j+1:]
	}
}

func (d *db) partnersByEmail(norm string) []int64 {
	if norm == "" {
		return nil
	}
	if d.emailIdx == nil || d.emailIdxGen != d.partnerGen {
		d.emailIdx = map[string][]int64{}
		for _, id := range d.sortedIDs("res.partner") {
			r := d.tables["res.partner"].recs[id]
			if r["active"] == false {
				continue
			}
			if n := partnerNorm(r); n != "" {
				d.emailIdx[n] = append(d.emailIdx[n], id)
			}
		}
		d.emailIdxGen = d.partnerGen
	}
	return d.emailIdx[norm]
}

// partnerNorm is the partner's email_normalized, cached on the record until its email changes.
func partnerNorm(r record) string {
	e, _ := r["email"].(string)
	if src, ok := r["_norm_src"].(string); ok && src == e {
		n, _ := r["_norm"].(string)
		return n
	}
	n := normalizeEmail(e)
	r["_norm_src"], r["_norm"] = e, n
	return n
}

// partnersFor returns one partner per address (skipping own), creating unknown ones when asked.
func (d *db) partnersFor(e *env, addrs []inAddress, own string, create bool) []int64 {
	seen := map[int64]bool{}
	var out []int64
	for _, a := range addrs {
		n := normalizeEmail(a.Email)
		if n == "" || n == own {
			continue
		}
		ids := d.partnersByEmail(n)
		if len(ids) == 0 && create {
			name := a.Name
			if name == "" {
				name = a.Email
			}
			created, oe := d.create(&env{uid: e.uid}, d.models["res.partner"], []map[string]any{{"name": name, "email": a.Email}})
			if oe == nil {
				ids = created
			}
		}
		if len(ids) > 0 && !seen[ids[0]] {
			seen[ids[0]] = true
			out = append(out, ids[0])
		}
	}
	return out
}

func (d *db) gatewayRecord(e *env, model string, p *parsed, createContacts bool) (int64, *oerr) {
	name := p.subject
	if name == "" {
		name = "(no subject)"
	}
	vals := map[string]any{"name": name}
	m := d.models[model]
	if p.from != nil {
		if m.fields["email_from"] != nil {
			vals["email_from"] = formatAddr(*p.from)
		}
		if m.fields["partner_id"] != nil {
			if ids := d.partnersFor(e, []inAddress{*p.from}, "", createContacts); len(ids) > 0 {
				vals["partner_id"] = float64(ids[0])
			} else if m.fields["contact_name"] != nil && p.from.Name != "" {
				vals["contact_name"] = p.from.Name
			}
		}
	}
	ids, oe := d.create(&env{uid: 1}, m, []map[string]any{vals})
	if oe != nil {
		return 0, oe
	}
	return ids[0], nil
}

func (d *db) outboxActivity(e *env, target [2]any, p *parsed, mainUser int64) int64 {
	var typeID int64
	for _, id := range d.sortedIDs("mail.activity.type") {
		if d.tables["mail.activity.type"].recs[id]["name"] == OutboxActivityType {
			typeID = id
		}
	}
	user := mainUser
	if user == 0 || d.get("res.users", user) == nil {
		user = e.uid
	}
	model := target[0].(string)
	summary := p.subject
	if summary == "" {
		summary = "(no subject)"
	}
	day := p.date[:10]
	return d.insert("mail.activity", 0, record{
		"res_model_id": irModelIDs(d.version)[model], "res_model": model, "res_id": target[1].(int64),
		"res_name": d.displayName(model, target[1].(int64)), "activity_type_id": typeID, "summary": summary,
		"note": p.bodyHTML, "date_deadline": day, "user_id": user,
		// keep_done: marked done at once and kept, inactive
		"state": "done", "active": false, "date_done": day,
	})
}
