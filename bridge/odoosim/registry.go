package odoosim

import (
	"sort"
	"strings"
)

func f(typ int) *fieldDef                 { return &fieldDef{typ: typ} }
func req(typ int) *fieldDef               { return &fieldDef{typ: typ, required: true} }
func rel(typ int, model string) *fieldDef { return &fieldDef{typ: typ, rel: model} }

// Groups.
const (
	groupUser   = "base.group_user"
	groupSystem = "base.group_system"
	groupSale   = "sales_team.group_sale_salesman"
)

// ir.model ids per version, as recorded (87 for res.partner on 18, 90 on 19).
func irModelIDs(version int) map[string]int64 {
	base := int64(87)
	if version >= 19 {
		base = 90
	}
	return map[string]int64{
		"res.partner": base, "res.users": base - 2, "mail.message": base + 20, "mail.activity": base + 30,
		"mail.activity.type": base + 31, "crm.lead": base + 120, "maildesk.mailbox": base + 400,
		"ir.attachment": base - 40, "ir.model": 1,
	}
}

// messagesOf lists mail.message ids on a record, newest first.
func messagesOf(d *db, model string, id int64) []int64 {
	var out []int64
	for _, mid := range d.sortedIDs("mail.message") {
		r := d.tables["mail.message"].recs[mid]
		if r["model"] == model && toInt(r["res_id"]) == id {
			out = append(out, mid)
		}
	}
	sort.Slice(out, func(i, j int) bool { return out[i] > out[j] })
	return out
}

func activitiesOf(d *db, model string, id int64) []int64 {
	var out []int64
	for _, aid := range d.sortedIDs("mail.activity") {
		r := d.tables["mail.activity"].recs[aid]
		if r["res_model"] == model && toInt(r["res_id"]) == id && r["active"] != false {
			out = append(out, aid)
		}
	}
	return out
}

// threadFields adds mail.thread's fields to a model.
func threadFields(model string, fs map[string]*fieldDef) map[string]*fieldDef {
	fs["message_ids"] = &fieldDef{typ: tO2M, rel: "mail.message", compute: func(d *db, r record) any {
		return orEmpty(messagesOf(d, model, r["id"].(int64)))
	}}
	fs["activity_ids"] = &fieldDef{typ: tO2M, rel: "mail.activity", compute: func(d *db, r record) any {
		return orEmpty(activitiesOf(d, model, r["id"].(int64)))
	}}
	fs["message_follower_ids"] = &fieldDef{typ: tO2M, compute: func(d *db, r record) any {
		return []int64{1}
	}}
	return fs
}

func orEmpty(l []int64) []int64 {
	if l == nil {
		return []int64{}
	}
	return l
}

func (s *Server) buildModels() map[string]*modelDef {
	v := s.opts.Version
	ms := map[string]*modelDef{}
	add := func(m *modelDef) {
		if m.methods == nil {
			m.methods = map[string]*methodDef{}
		}
		if m.fields["create_date"] == nil {
			m.fields["create_date"] = f(tDatetime)
		}
		for k, md := range ormMethods() {
			if _, ok := m.methods[k]; !ok {
				m.methods[k] = md
			}
		}
		ms[m.name] = m
	}
	partner := &modelDef{name: "res.partner", desc: "Contact", fields: threadFields("res.partner", map[string]*fieldDef{
		"name": f(tChar), "email": f(tChar), "phone": f(tChar), "is_company": f(tBool), "active": f(tBool),
		"parent_id": rel(tM2O, "res.partner"), "comment": f(tHTML), "type": f(tChar),
		"email_normalized": {typ: tChar, compute: func(d *db, r record) any {
			s, _ := r["email"].(string)
			if n := normalizeEmail(s); n != "" {
				return n
			}
			return false
		}},
	}), writeGroup: groupUser}
	partner.checkCreate = func(d *db, e *env, vals record) *oerr {
		if n, _ := vals["name"].(string); n == "" {
			if typ, _ := vals["type"].(string); typ == "" || typ == "contact" {
				return validationError("The operation cannot be completed: Contacts require a name")
			}
		}
		return nil
	}
	partner.checkWrite = func(d *db, e *env, ids []int64, vals record) *oerr {
		if p, ok := vals["parent_id"]; ok {
			pid := toInt(p)
			for _, id := range ids {
				// walk up from the new parent: reaching id is a cycle
				for cur, n := pid, 0; cur != 0 && n < 100; n++ {
					if cur == id {
						return validationError("You cannot create recursive Partner hierarchies.")
					}
					cur = toInt(d.raw(d.models["res.partner"], d.get("res.partner", cur), "parent_id"))
				}
			}
		}
		return nil
	}
	partner.afterCreate = func(d *db, e *env, id int64) {
		d.postMessage(e, "res.partner", id, record{"body": "<p>Contact created</p>", "message_type": "notification", "subtype_id": int64(2)})
	}
	partner.methods = map[string]*methodDef{"message_post": messagePostMethod()}
	add(partner)

	groupsField := "groups_id"
	if v >= 19 {
		groupsField = "group_ids"
	}
	users := &modelDef{name: "res.users", desc: "User", fields: map[string]*fieldDef{
		"name": f(tChar), "login": req(tChar), "password": f(tChar), "partner_id": rel(tM2O, "res.partner"),
		"active": f(tBool), "share": f(tBool), "email": f(tChar), groupsField: rel(tM2M, "res.groups"),
		"_groups": f(tJSON), "_apikeys": f(tJSON),
	}, writeGroup: groupSystem}
	users.checkUnlink = func(d *db, e *env, ids []int64) *oerr {
		for _, id := range ids {
			if id == 1 || id == 2 {
				return userError("You can not remove the admin user as it is used internally for resources created by Odoo (updates, module installation, ...)")
			}
		}
		return nil
	}
	users.checkCreate = func(d *db, e *env, vals record) *oerr {
		login, _ := vals["login"].(string)
		for _, r := range d.table("res.users").recs {
			if r["login"] == login {
				return validationError("You can not have two users with the same login!")
			}
		}
		name, _ := vals["name"].(string)
		if name == "" {
			name = login
		}
		pid, _ := d.create(&env{uid: 1}, d.models["res.partner"], []map[string]any{{"name": name, "email": vals["email"]}})
		vals["partner_id"] = pid[0]
		vals["_groups"] = []string{groupUser}
		return nil
	}
	users.methods = map[string]*methodDef{
		"context_get": {model: true, fn: func(d *db, e *env, m *modelDef, ids []int64, kw map[string]any) (any, *oerr) {
			return map[string]any{"lang": "en_US", "tz": false, "uid": e.uid}, nil
		}},
	}
	add(users)

	msg := &modelDef{name: "mail.message", desc: "Message", recName: "subject", fields: map[string]*fieldDef{
		"body": f(tHTML), "subject": f(tChar), "message_type": f(tChar), "subtype_id": rel(tM2O, "mail.message.subtype"),
		"author_id": rel(tM2O, "res.partner"), "email_from": f(tChar), "date": f(tDatetime), "model": f(tChar),
		"res_id": f(tInt), "message_id": f(tChar), "partner_ids": rel(tM2M, "res.partner"),
		"notification_ids": rel(tO2M, "mail.notification"), "attachment_ids": rel(tM2M, "ir.attachment"),
		"parent_id": rel(tM2O, "mail.message"), "record_name": f(tChar), "maildesk_graph_id": f(tChar),
		"maildesk_conversation_id": f(tChar),
		"reply_to":                 f(tChar), "incoming_email_to": f(tChar), "incoming_email_cc": f(tChar),
	}}
	add(msg)
	subtype := &modelDef{name: "mail.message.subtype", desc: "Message subtypes", fields: map[string]*fieldDef{"name": f(tChar), "internal": f(tBool)}}
	add(subtype)

	act := &modelDef{name: "mail.activity", desc: "Activity", recName: "summary", fields: map[string]*fieldDef{
		"res_model_id": rel(tM2O, "ir.model"), "res_model": f(tChar), "res_id": f(tInt), "res_name": f(tChar),
		"activity_type_id": rel(tM2O, "mail.activity.type"), "summary": f(tChar), "note": f(tHTML),
		"date_deadline": f(tDate), "user_id": rel(tM2O, "res.users"), "state": f(tChar), "active": f(tBool),
		"date_done": f(tDate),
	}}
	act.checkCreate = func(d *db, e *env, vals record) *oerr {
		mid := toInt(vals["res_model_id"])
		if mid == 0 {
			if rm, _ := vals["res_model"].(string); rm != "" {
				mid = irModelIDs(d.version)[rm]
			}
		}
		if mid == 0 || toInt(vals["res_id"]) == 0 {
			return validationError("The operation cannot be completed: Activities have to be linked to records with a not null res_id.")
		}
		model := ""
		for name, id := range irModelIDs(d.version) {
			if id == mid {
				model = name
			}
		}
		vals["res_model_id"] = mid
		vals["res_model"] = model
		vals["res_name"] = d.displayName(model, toInt(vals["res_id"]))
		if vals["date_deadline"] == nil {
			vals["date_deadline"] = d.now().UTC().Format("2006-01-02")
		}
		if vals["user_id"] == nil {
			vals["user_id"] = e.uid
		}
		if vals["state"] == nil {
			vals["state"] = "planned"
		}
		return nil
	}
	add(act)
	add(&modelDef{name: "mail.activity.type", desc: "Activity Type", fields: map[string]*fieldDef{
		"name": f(tChar), "category": f(tChar), "res_model": f(tChar), "keep_done": f(tBool), "active": f(tBool),
		"delay_count": f(tInt),
	}})
	add(&modelDef{name: "ir.model", desc: "Models", fields: map[string]*fieldDef{"model": f(tChar), "name": f(tChar)}})
	add(&modelDef{name: "ir.model.data", desc: "Model Data", fields: map[string]*fieldDef{
		"module": f(tChar), "name": f(tChar), "model": f(tChar), "res_id": f(tInt)}})
	add(&modelDef{name: "res.groups", desc: "Access Groups", fields: map[string]*fieldDef{"name": f(tChar)}})
	add(&modelDef{name: "ir.attachment", desc: "Attachment", fields: map[string]*fieldDef{
		"name": f(tChar), "mimetype": f(tChar), "datas": f(tChar), "res_model": f(tChar), "res_id": f(tInt),
		"file_size": f(tInt), "description": f(tChar)}})
	add(&modelDef{name: "res.users.apikeys", desc: "Users API Keys", fields: map[string]*fieldDef{
		"name": f(tChar), "scope": f(tChar), "user_id": rel(tM2O, "res.users"), "expiration_date": f(tDatetime)},
		readGroup: groupSystem, writeGroup: groupSystem})
	add(&modelDef{name: "res.users.apikeys.description", desc: "API Key Description", fields: map[string]*fieldDef{
		"name": f(tChar), "duration": f(tChar)},
		methods: map[string]*methodDef{"make_key": {fn: func(d *db, e *env, m *modelDef, ids []int64, kw map[string]any) (any, *oerr) {
			return nil, userError("This method can only be accessed over HTTP")
		}}}})
	lead := &modelDef{name: "crm.lead", desc: "Lead/Opportunity", fields: threadFields("crm.lead", map[string]*fieldDef{
		"name": req(tChar), "partner_id": rel(tM2O, "res.partner"), "email_from": f(tChar), "type": f(tChar),
		"user_id": rel(tM2O, "res.users"), "description": f(tHTML), "active": f(tBool), "contact_name": f(tChar),
	}), readGroup: groupSale, writeGroup: groupSale}
	if v >= 19 {
		lead.desc = "Lead"
	}
	lead.methods = map[string]*methodDef{"message_post": messagePostMethod()}
	add(lead)
	mbx := &modelDef{name: "maildesk.mailbox", desc: "MailDesk Mailbox", fields: threadFields("maildesk.mailbox", map[string]*fieldDef{
		"name": f(tChar), "email": f(tChar), "sidecar_mailbox_id": f(tChar), "active": f(tBool),
	}), writeGroup: groupSystem}
	mbx.methods = map[string]*methodDef{
		"maildesk_ingest": {params: []param{{"items", true}}, fn: ingestMethod},
		"maildesk_notify": {params: []param{{"notices", true}}, fn: notifyMethod},
		"message_post":    messagePostMethod(),
	}
	add(mbx)
	return ms
}

// ormMethods are the public BaseModel methods every model has.
func ormMethods() map[string]*methodDef {
	return map[string]*methodDef{
		"search_read": {model: true, varkw: true, params: []param{{"domain", false}, {"fields", false}, {"offset", false}, {"limit", false}, {"order", false}},
			fn: func(d *db, e *env, m *modelDef, ids []int64, kw map[string]any) (any, *oerr) {
				for k := range kw {
					if !isParam(k, "domain", "fields", "offset", "limit", "order") {
						return nil, typeError("BaseModel._read_format() got an unexpected keyword argument '%s'", k)
					}
				}
				if err := d.checkAccess(e, m, false); err != nil {
					return nil, err
				}
				found, err := d.filter(m, kw["domain"], e)
				if err != nil {
					return nil, err
				}
				found = orderLimit(d, m, found, kw)
				return d.readRecords(e, m, found, kw["fields"])
			}},
		"search": {model: true, params: []param{{"domain", true}, {"offset", false}, {"limit", false}, {"order", false}},
			fn: func(d *db, e *env, m *modelDef, ids []int64, kw map[string]any) (any, *oerr) {
				if err := d.checkAccess(e, m, false); err != nil {
					return nil, err
				}
				found, err := d.filter(m, kw["domain"], e)
				if err != nil {
					return nil, err
				}
				return orEmpty(orderLimit(d, m, found, kw)), nil
			}},
		"search_count": {model: true, params: []param{{"domain", false}, {"limit", false}},
			fn: func(d *db, e *env, m *modelDef, ids []int64, kw map[string]any) (any, *oerr) {
				if err := d.checkAccess(e, m, false); err != nil {
					return nil, err
				}
				found, err := d.filter(m, kw["domain"], e)
				return len(found), err
			}},
		"read": {params: []param{{"fields", false}, {"load", false}},
			fn: func(d *db, e *env, m *modelDef, ids []int64, kw map[string]any) (any, *oerr) {
				if err := d.checkAccess(e, m, false); err != nil {
					return nil, err
				}
				return d.readRecords(e, m, ids, kw["fields"])
			}},
		"create": {model: true, params: []param{{"vals_list", true}},
			fn: func(d *db, e *env, m *modelDef, ids []int64, kw map[string]any) (any, *oerr) {
				var list []map[string]any
				single := false
				switch x := kw["vals_list"].(type) {
				case map[string]any:
					list, single = []map[string]any{x}, true
				case []any:
					for _, v := range x {
						mv, ok := v.(map[string]any)
						if !ok {
							return nil, valueError("create() expects dicts")
						}
						list = append(list, mv)
					}
				default:
					return nil, valueError("create() expects a list of dicts")
				}
				out, err := d.create(e, m, list)
				if err != nil {
					return nil, err
				}
				if single && !e.json2 {
					return out[0], nil
				}
				return out, nil
			}},
		"write": {params: []param{{"vals", true}},
			fn: func(d *db, e *env, m *modelDef, ids []int64, kw map[string]any) (any, *oerr) {
				vals, _ := kw["vals"].(map[string]any)
				if err := d.write(e, m, ids, vals); err != nil {
					return nil, err
				}
				return true, nil
			}},
		"unlink": {fn: func(d *db, e *env, m *modelDef, ids []int64, kw map[string]any) (any, *oerr) {
			if err := d.unlink(e, m, ids); err != nil {
				return nil, err
			}
			return true, nil
		}},
	}
}

func isParam(k string, names ...string) bool {
	for _, n := range names {
		if k == n {
			return true
		}
	}
	return false
}

func orderLimit(d *db, m *modelDef, ids []int64, kw map[string]any) []int64 {
	if o, _ := kw["order"].(string); strings.HasPrefix(strings.TrimSpace(o), "id desc") {
		sort.Slice(ids, func(i, j int) bool { return ids[i] > ids[j] })
	}
	if off := int(toInt(kw["offset"])); off > 0 {
		if off >= len(ids) {
			return nil
		}
		ids = ids[off:]
	}
	if l := int(toInt(kw["limit"])); l > 0 && l < len(ids) {
		ids = ids[:l]
	}
	return ids
}

func messagePostMethod() *methodDef {
	return &methodDef{varkw: true, fn: func(d *db, e *env, m *modelDef, ids []int64, kw map[string]any) (any, *oerr) {
		if len(ids) != 1 {
			return nil, valueError("Expected singleton: %s%v", m.name, ids)
		}
		if d.get(m.name, ids[0]) == nil {
			return nil, missingError(m.name, ids, e.uid)
		}
		vals := record{}
		body, _ := kw["body"].(string)
		if isHTML, _ := kw["body_is_html"].(bool); isHTML {
			vals["body"] = body
		} else if body != "" {
			vals["body"] = plaintextToHTML(body)
		}
		for _, k := range []string{"subject", "message_type", "email_from", "message_id", "date"} {
			if s, ok := kw[k].(string); ok {
				vals[k] = s
			}
		}
		if vals["message_type"] == nil {
			vals["message_type"] = "notification"
		}
		vals["subtype_id"] = int64(2)
		if x, _ := kw["subtype_xmlid"].(string); x == "mail.mt_comment" {
			vals["subtype_id"] = int64(1)
		}
		if a := toInt(kw["author_id"]); a != 0 {
			vals["author_id"] = a
		}
		if p, ok := toIDs(kw["partner_ids"]); ok {
			vals["partner_ids"] = p
		}
		if p, ok := toIDs(kw["attachment_ids"]); ok {
			vals["attachment_ids"] = p
		}
		id := d.postMessage(e, m.name, ids[0], vals)
		if d.version >= 19 {
			return []int64{id}, nil
		}
		return id, nil
	}}
}

// postMessage stores a mail.message on a record and indexes its Message-Id.
func (d *db) postMessage(e *env, model string, resID int64, vals record) int64 {
	vals["model"] = model
	vals["res_id"] = resID
	if vals["date"] == nil {
		vals["date"] = d.now().UTC().Format("2006-01-02 15:04:05")
	}
	if vals["author_id"] == nil {
		if u := d.get("res.users", e.uid); u != nil {
			vals["author_id"] = u["partner_id"]
		}
	}
	if vals["email_from"] == nil {
		if a := d.get("res.partner", toInt(vals["author_id"])); a != nil {
			vals["email_from"] = "\"" + str(a["name"]) + "\" <" + str(a["email"]) + ">"
		}
	}
	if vals["record_name"] == nil {
		vals["record_name"] = d.displayName(model, resID)
	}
	id := d.insert("mail.message", 0, vals)
	if mid, _ := vals["message_id"].(string); mid != "" {
		d.byMessageID[mid] = append(d.byMessageID[mid], id)
	}
	if gid, _ := vals["maildesk_graph_id"].(string); gid != "" {
		d.byGraphID[gid] = append(d.byGraphID[gid], id)
	}
	if cid, _ := vals["maildesk_conversation_id"].(string); cid != "" {
		d.byConversation[cid] = append(d.byConversation[cid], id)
	}
	return id
}

func str(v any) string {
	s, _ := v.(string)
	return s
}
