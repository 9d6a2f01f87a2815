package odoosim

import (
	"encoding/json"
	"fmt"
	"html"
	"net/mail"
	"sort"
	"strings"
	"time"
)

// field types
const (
	tChar = iota
	tText
	tHTML
	tInt
	tBool
	tM2O
	tO2M
	tM2M
	tDate
	tDatetime
	tJSON
)

type fieldDef struct {
	typ      int
	rel      string
	required bool
	// compute derives the value from the record (read-only fields).
	compute func(d *db, rec record) any
}

type record map[string]any

type modelDef struct {
	name    string
	desc    string
	fields  map[string]*fieldDef
	recName string
	// group needed to read / write (empty: any internal user)
	readGroup, writeGroup string
	methods               map[string]*methodDef
	// checkCreate validates vals before a create (Odoo constraints).
	checkCreate func(d *db, e *env, vals record) *oerr
	checkWrite  func(d *db, e *env, ids []int64, vals record) *oerr
	checkUnlink func(d *db, e *env, ids []int64) *oerr
	afterCreate func(d *db, e *env, id int64)
}

type table struct {
	def  *modelDef
	recs map[int64]record
}

// env is the calling user and context.
type env struct {
	uid     int64
	context map[string]any
	json2   bool
}

type param struct {
	name     string
	required bool
}

type methodDef struct {
	model  bool // @api.model: no ids
	params []param
	varkw  bool
	fn     func(d *db, e *env, m *modelDef, ids []int64, kw map[string]any) (any, *oerr)
}

// db is the simulator's whole database; guarded by Server.mu.
type db struct {
	version int
	now     func() time.Time
	models  map[string]*modelDef
	tables  map[string]*table
	seq     map[string]int64
	// indexes for ingest
	byMessageID map[string][]int64 // Message-Id → mail.message ids
	byGraphID   map[string][]int64
	// Graph conversationId → mail.message ids, oldest first
	byConversation map[string][]int64
	// e-mail index of active partners: valid while emailIdxGen == partnerGen
	emailIdx    map[string][]int64
	emailIdxGen int64
	partnerGen  int64
	ingest      IngestStats
	// itemCost returns the simulated time per ingest item.
	itemCost func() time.Duration
	notices  []map[string]any
	// refuse: Odoo mailbox id → the reason every ingest item of that mailbox
	// is answered "error" with (RefuseItems).
	refuse map[int64]string
}

func (d *db) table(model string) *table {
	t := d.tables[model]
	if t == nil {
		t = &table{def: d.models[model], recs: map[int64]record{}}
		d.tables[model] = t
	}
	return t
}

func (d *db) nextID(model string) int64 {
	d.seq[model]++
	return d.seq[model]
}

// insert stores a record with a given or next id (no checks).
func (d *db) insert(model string, id int64, r record) int64 {
	if id == 0 {
		id = d.nextID(model)
	} else if id > d.seq[model] {
		d.seq[model] = id
	}
	r["id"] = id
	if _, ok := r["create_date"]; !ok {
		r["create_date"] = d.now().UTC().Format("2006-01-02 15:04:05")
	}
	_, replaced := d.table(model).recs[id]
	d.table(model).recs[id] = r
	if model == "res.partner" {
		if d.emailIdx != nil && d.emailIdxGen == d.partnerGen && !replaced && r["active"] != false {
			// ids grow, so appending keeps each list sorted
			if n := partnerNorm(r); n != "" {
				d.emailIdx[n] = append(d.emailIdx[n], id)
			}
		} else {
			d.partnerGen++
		}
	}
	return id
}

func (d *db) get(model string, id int64) record {
	t := d.tables[model]
	if t == nil {
		return nil
	}
	return t.recs[id]
}

func (d *db) displayName(model string, id int64) any {
	r := d.get(model, id)
	if r == nil {
		return false
	}
	def := d.models[model]
	f := "name"
	if def != nil && def.recName != "" {
		f = def.recName
	}
	if v, ok := r[f].(string); ok {
		return v
	}
	return false
}

// sortedIDs returns a table's ids ascending.
func (d *db) sortedIDs(model string) []int64 {
	t := d.tables[model]
	if t == nil {
		return nil
	}
	ids := make([]int64, 0, len(t.recs))
	for id := range t.recs {
		ids = append(ids, id)
	}
	sort.Slice(ids, func(i, j int) bool { return ids[i] < ids[j] })
	return ids
}

// value returns a field as Odoo's read() renders it.
func (d *db) value(m *modelDef, r record, name string) any {
	if name == "id" {
		return r["id"]
	}
	if name == "display_name" {
		return d.displayName(m.name, r["id"].(int64))
	}
	f := m.fields[name]
	if f == nil {
		return false
	}
	if f.compute != nil {
		return f.compute(d, r)
	}
	v, ok := r[name]
	switch f.typ {
	case tM2O:
		id := toInt(v)
		if !ok || id == 0 {
			return false
		}
		return []any{id, d.displayName(f.rel, id)}
	case tO2M, tM2M:
		if !ok || v == nil {
			return []int64{}
		}
		return v
	case tInt:
		if !ok {
			return 0
		}
		return v
	case tBool:
		if !ok {
			return false
		}
		return v
	default:
		if !ok || v == nil || v == "" {
			return false
		}
		return v
	}
}

// raw returns the stored comparable value for domains (m2o as id).
func (d *db) raw(m *modelDef, r record, name string) any {
	if name == "id" {
		return r["id"]
	}
	f := m.fields[name]
	if f != nil && f.compute != nil {
		v := f.compute(d, r)
		if l, ok := v.([]any); ok && len(l) == 2 {
			return l[0]
		}
		return v
	}
	v, ok := r[name]
	if !ok {
		if f != nil && f.typ == tBool {
			return false
		}
		return nil
	}
	return v
}

func toInt(v any) int64 {
	switch x := v.(type) {
	case int64:
		return x
	case int:
		return int64(x)
	case float64:
		return int64(x)
	case json.Number:
		n, _ := x.Int64()
		return n
	case []any:
		if len(x) > 0 {
			return toInt(x[0])
		}
	}
	return 0
}

func toIDs(v any) ([]int64, bool) {
	switch x := v.(type) {
	case []any:
		out := make([]int64, 0, len(x))
		for _, e := range x {
			f, ok := e.(float64)
			if !ok {
				return nil, false
			}
			out = append(out, int64(f))
		}
		return out, true
	case []int64:
		return x, true
	case float64:
		return []int64{int64(x)}, true
	}
	return nil, false
}

// --- domains ---

func (d *db) filter(m *modelDef, domain any, e *env) ([]int64, *oerr) {
	terms, ok := domain.([]any)
	if domain != nil && !ok {
		return nil, valueError("Invalid domain: %v", domain)
	}
	// validate fields first, as Odoo does when building the query
	for _, t := range terms {
		if leaf, ok := t.([]any); ok {
			if len(leaf) != 3 {
				return nil, valueError("Invalid leaf %v", leaf)
			}
			fname, _ := leaf[0].(string)
			if fname != "id" && fname != "display_name" && m.fields[strings.Split(fname, ".")[0]] == nil {
				word := "leaf"
				if d.version >= 19 {
					word = "condition"
				}
				return nil, valueError("Invalid field %s.%s in %s %s", m.name, fname, word, pyLeaf(leaf))
			}
		}
	}
	activeTest := true
	if v, ok := e.context["active_test"].(bool); ok {
		activeTest = v
	}
	var out []int64
	for _, id := range d.sortedIDs(m.name) {
		r := d.tables[m.name].recs[id]
		if activeTest && m.fields["active"] != nil && !hasLeaf(terms, "active") {
			if a, ok := r["active"].(bool); ok && !a {
				continue
			}
		}
		pos := 0
		if evalDomain(d, m, r, terms, &pos) {
			out = append(out, id)
		}
	}
	return out, nil
}

func hasLeaf(terms []any, name string) bool {
	for _, t := range terms {
		if l, ok := t.([]any); ok && len(l) == 3 && l[0] == name {
			return true
		}
	}
	return false
}

func pyLeaf(leaf []any) string {
	parts := make([]string, len(leaf))
	for i, v := range leaf {
		switch x := v.(type) {
		case string:
			parts[i] = "'" + x + "'"
		case float64:
			parts[i] = fmt.Sprint(x)
		default:
			b, _ := json.Marshal(x)
			parts[i] = string(b)
		}
	}
	return "(" + strings.Join(parts, ", ") + ")"
}

// evalDomain evaluates the Polish-notation domain from terms[*pos:] (implicit AND).
func evalDomain(d *db, m *modelDef, r record, terms []any, pos *int) bool {
	res := true
	for *pos < len(terms) {
		if !evalTerm(d, m, r, terms, pos) {
			res = false
		}
	}
	return res
}

func evalTerm(d *db, m *modelDef, r record, terms []any, pos *int) bool {
	t := terms[*pos]
	*pos++
	switch op := t.(type) {
	case string:
		switch op {
		case "&":
			a := evalTerm(d, m, r, terms, pos)
			b := evalTerm(d, m, r, terms, pos)
			return a && b
		case "|":
			a := evalTerm(d, m, r, terms, pos)
			b := evalTerm(d, m, r, terms, pos)
			return a || b
		case "!":
			return !evalTerm(d, m, r, terms, pos)
		}
		return true
	case []any:
		return evalLeaf(d, m, r, op)
	case bool:
		return op
	}
	return true
}

func evalLeaf(d *db, m *modelDef, r record, leaf []any) bool {
	fname, _ := leaf[0].(string)
	op, _ := leaf[1].(string)
	want := leaf[2]
	got := d.raw(m, r, fname)
	if fname == "display_name" {
		got = d.displayName(m.name, r["id"].(int64))
	}
	switch op {
	case "=", "==":
		return eq(got, want)
	case "!=", "<>":
		return !eq(got, want)
	case "in":
		l, _ := want.([]any)
		for _, w := range l {
			if eq(got, w) {
				return true
			}
		}
		return false
	case "not in":
		l, _ := want.([]any)
		for _, w := range l {
			if eq(got, w) {
				return false
			}
		}
		return true
	case "ilike", "like", "=ilike", "=like":
		gs, _ := got.(string)
		ws, _ := want.(string)
		if strings.HasPrefix(op, "=") {
			return strings.EqualFold(gs, strings.Trim(ws, "%"))
		}
		if op == "ilike" {
			return strings.Contains(strings.ToLower(gs), strings.ToLower(ws))
		}
		return strings.Contains(gs, ws)
	case ">", ">=", "<", "<=":
		a, b := toFloat(got), toFloat(want)
		switch op {
		case ">":
			return a > b
		case ">=":
			return a >= b
		case "<":
			return a < b
		default:
			return a <= b
		}
	}
	return false
}

func toFloat(v any) float64 {
	switch x := v.(type) {
	case float64:
		return x
	case int64:
		return float64(x)
	case int:
		return float64(x)
	}
	return 0
}

func eq(got, want any) bool {
	if want == false {
		return got == nil || got == false || got == "" || toInt(got) == 0 && isNumeric(got)
	}
	switch w := want.(type) {
	case float64:
		return isNumeric(got) && toFloat(got) == w
	case string:
		g, ok := got.(string)
		return ok && g == w
	case bool:
		g, ok := got.(bool)
		return ok && g == w
	}
	return false
}

func isNumeric(v any) bool {
	switch v.(type) {
	case int64, int, float64:
		return true
	}
	return false
}

// --- access ---

func (d *db) hasGroup(uid int64, group string) bool {
	if uid == 1 || group == "" {
		return true
	}
	u := d.get("res.users", uid)
	if u == nil {
		return false
	}
	gs, _ := u["_groups"].([]string)
	for _, g := range gs {
		if g == group || g == "base.group_system" && group != "" {
			return true
		}
	}
	return false
}

func (d *db) checkAccess(e *env, m *modelDef, write bool) *oerr {
	g := m.readGroup
	verb := "access"
	if write {
		g = m.writeGroup
		verb = "modify"
	}
	if d.hasGroup(e.uid, g) {
		return nil
	}
	return accessError("You are not allowed to %s '%s' (%s) records.\n\nThis operation is allowed for the following groups:\n\t- %s\n\nContact your administrator to request access if necessary.", verb, m.desc, m.name, g)
}

// --- generic ORM methods ---

func (d *db) existing(m *modelDef, ids []int64) []int64 {
	var out []int64
	for _, id := range ids {
		if d.get(m.name, id) != nil {
			out = append(out, id)
		}
	}
	return out
}

func (d *db) readRecords(e *env, m *modelDef, ids []int64, fields any) ([]map[string]any, *oerr) {
	names, err := d.fieldList(m, fields)
	if err != nil {
		return nil, err
	}
	out := []map[string]any{}
	for _, id := range ids {
		r := d.get(m.name, id)
		if r == nil {
			continue
		}
		row := map[string]any{"id": id}
		for _, n := range names {
			row[n] = d.value(m, r, n)
		}
		out = append(out, row)
	}
	return out, nil
}

func (d *db) fieldList(m *modelDef, fields any) ([]string, *oerr) {
	var names []string
	if l, ok := fields.([]any); ok && len(l) > 0 {
		for _, f := range l {
			s, _ := f.(string)
			if s == "id" {
				continue
			}
			if s != "display_name" && m.fields[s] == nil {
				return nil, valueError("Invalid field '%s' on model '%s'", s, m.name)
			}
			names = append(names, s)
		}
		return names, nil
	}
	for n := range m.fields {
		if !strings.HasPrefix(n, "_") && n != "password" {
			names = append(names, n)
		}
	}
	sort.Strings(names)
	return names, nil
}

func (d *db) validateVals(m *modelDef, vals record) *oerr {
	for k := range vals {
		if m.fields[k] == nil || strings.HasPrefix(k, "_") {
			return valueError("Invalid field '%s' in '%s'", k, m.name)
		}
	}
	return nil
}

// normalizeVals converts JSON numbers of relational fields and x2many commands.
func normalizeVals(m *modelDef, vals map[string]any) record {
	r := record{}
	for k, v := range vals {
		f := m.fields[k]
		if f == nil {
			r[k] = v
			continue
		}
		switch f.typ {
		case tM2O:
			if id := toInt(v); id != 0 {
				r[k] = id
			} else {
				r[k] = nil
			}
		case tInt:
			r[k] = toInt(v)
		case tM2M, tO2M:
			var ids []int64
			if l, ok := v.([]any); ok {
				for _, c := range l {
					cmd, ok := c.([]any)
					if !ok {
						if f, ok := c.(float64); ok {
							ids = append(ids, int64(f))
						}
						continue
					}
					if len(cmd) == 3 && toInt(cmd[0]) == 6 {
						ids, _ = toIDs(cmd[2])
					} else if len(cmd) >= 2 && toInt(cmd[0]) == 4 {
						ids = append(ids, toInt(cmd[1]))
					}
				}
			}
			r[k] = ids
		default:
			r[k] = v
		}
	}
	return r
}

func (d *db) create(e *env, m *modelDef, valsList []map[string]any) ([]int64, *oerr) {
	if err := d.checkAccess(e, m, true); err != nil {
		return nil, err
	}
	var ids []int64
	for _, raw := range valsList {
		vals := normalizeVals(m, raw)
		if err := d.validateVals(m, vals); err != nil {
			return nil, err
		}
		if m.checkCreate != nil {
			if err := m.checkCreate(d, e, vals); err != nil {
				return nil, err
			}
		}
		for n, f := range m.fields {
			if f.required && (vals[n] == nil || vals[n] == false || vals[n] == "") {
				return nil, validationError("The operation cannot be completed: Missing required value for the field '%s' (%s).\nModel: '%s' (%s)", n, n, m.desc, m.name)
			}
		}
		if m.fields["active"] != nil {
			if _, ok := vals["active"]; !ok {
				vals["active"] = true
			}
		}
		id := d.insert(m.name, 0, vals)
		if m.afterCreate != nil {
			m.afterCreate(d, e, id)
		}
		ids = append(ids, id)
	}
	return ids, nil
}

func (d *db) write(e *env, m *modelDef, ids []int64, raw map[string]any) *oerr {
	if err := d.checkAccess(e, m, true); err != nil {
		return err
	}
	if ex := d.existing(m, ids); len(ex) != len(ids) {
		var missing []int64
		for _, id := range ids {
			if d.get(m.name, id) == nil {
				missing = append(missing, id)
			}
		}
		return missingError(m.name, missing, e.uid)
	}
	vals := normalizeVals(m, raw)
	if err := d.validateVals(m, vals); err != nil {
		return err
	}
	if m.checkWrite != nil {
		if err := m.checkWrite(d, e, ids, vals); err != nil {
			return err
		}
	}
	for _, id := range ids {
		r := d.get(m.name, id)
		for k, v := range vals {
			r[k] = v
		}
	}
	if m.name == "res.partner" {
		d.partnerGen++
	}
	return nil
}

func (d *db) unlink(e *env, m *modelDef, ids []int64) *oerr {
	if err := d.checkAccess(e, m, true); err != nil {
		return err
	}
	if m.checkUnlink != nil {
		if err := m.checkUnlink(d, e, ids); err != nil {
			return err
		}
	}
	for _, id := range ids {
		delete(d.table(m.name).recs, id)
	}
	if m.name == "res.partner" {
		d.partnerGen++
	}
	return nil
}

// normalizeEmail is Odoo's email_normalize: the lower-cased addr-spec.
func normalizeEmail(s string) string {
	s = strings.TrimSpace(s)
	if s == "" {
		return ""
	}
	if a, err := mail.ParseAddress(s); err == nil {
		return strings.ToLower(a.Address)
	}
	if i := strings.LastIndex(s, "<"); i >= 0 {
		if j := strings.Index(s[i:], ">"); j > 0 {
			return strings.ToLower(strings.TrimSpace(s[i+1 : i+j]))
		}
	}
	if strings.Contains(s, "@") {
		return strings.ToLower(s)
	}
	return ""
}

// plaintextToHTML mirrors Odoo's handling of a plain-string message_post body.
func plaintextToHTML(s string) string {
	return "<p>" + strings.ReplaceAll(html.EscapeString(s), "\n", "<br>") + "</p>"
}
