package m365sim

import (
	"encoding/base64"
	"net/url"
	"sort"
	"strconv"
	"strings"
	"unicode"
)

// $search on messages (Graph docs concepts/search-query-parameter.md and
// api/user-list-messages.md; graph-samples 93-95):
//   - the value is a double-quoted KQL string; a bare word looks in from,
//     subject and body, "prop:value" in one property (from, to, cc, bcc,
//     participants, recipients, subject, body, attachment); words are ANDed,
//     OR between words gives alternatives;
//   - results are sorted by sent date, newest first, and stop at 1,000;
//   - $filter, $orderby and $skip are refused with $search (400); pages
//     continue through @odata.nextLink with a $skiptoken.
// Text matches word prefixes case-insensitively, as Outlook's search does
// ("invo" finds "Invoice"); a quoted phrase must appear as is.

const maxSearchResults = 1000

type kqlTerm struct {
	prop  string // "" = from, subject and body
	value string // lower case
}

// parseKQL splits a $search value into alternatives of ANDed terms.
func parseKQL(q string) [][]kqlTerm {
	var alts [][]kqlTerm
	var cur []kqlTerm
	rs := []rune(q)
	for i := 0; i < len(rs); {
		for i < len(rs) && unicode.IsSpace(rs[i]) {
			i++
		}
		if i >= len(rs) {
			break
		}
		start := i
		prop := ""
		for i < len(rs) && !unicode.IsSpace(rs[i]) && rs[i] != ':' && rs[i] != '\'' {
			i++
		}
		if i < len(rs) && rs[i] == ':' {
			prop = strings.ToLower(string(rs[start:i]))
			i++
		} else {
			i = start
		}
		var val string
		if i < len(rs) && rs[i] == '\'' {
			end := i + 1
			for end < len(rs) && rs[end] != '\'' {
				end++
			}
			val = string(rs[i+1 : min(end, len(rs))])
			i = min(end+1, len(rs))
		} else {
			vs := i
			for i < len(rs) && !unicode.IsSpace(rs[i]) {
				i++
			}
			val = string(rs[vs:i])
		}
		if prop == "" && (val == "OR" || val == "AND") {
			if val == "OR" && len(cur) > 0 {
				alts = append(alts, cur)
				cur = nil
			}
			continue
		}
		if val = strings.ToLower(strings.TrimSpace(val)); val != "" {
			cur = append(cur, kqlTerm{prop: prop, value: val})
		}
	}
	if len(cur) > 0 {
		alts = append(alts, cur)
	}
	return alts
}

func textHas(text, v string) bool {
	text = strings.ToLower(text)
	if strings.ContainsFunc(v, unicode.IsSpace) {
		return strings.Contains(text, v)
	}
	for _, w := range strings.FieldsFunc(text, func(r rune) bool { return !unicode.IsLetter(r) && !unicode.IsDigit(r) }) {
		if strings.HasPrefix(w, v) {
			return true
		}
	}
	return strings.Contains(text, v) && strings.ContainsAny(v, "@.-_")
}

func addrHas(as []addr, v string) bool {
	for _, a := range as {
		if strings.Contains(strings.ToLower(a.Address), v) || textHas(a.Name, v) {
			return true
		}
	}
	return false
}

func (t kqlTerm) match(m *message) bool {
	body := func() string { return m.bodyText + " " + stripTags(m.bodyHTML) }
	switch t.prop {
	case "":
		return addrHas([]addr{m.from}, t.value) || textHas(m.subject, t.value) || textHas(body(), t.value)
	case "from":
		return addrHas([]addr{m.from}, t.value)
	case "to":
		return addrHas(m.to, t.value)
	case "cc":
		return addrHas(m.cc, t.value)
	case "bcc":
		return addrHas(m.bcc, t.value)
	case "recipients":
		return addrHas(m.to, t.value) || addrHas(m.cc, t.value) || addrHas(m.bcc, t.value)
	case "participants":
		return addrHas([]addr{m.from}, t.value) || addrHas(m.to, t.value) || addrHas(m.cc, t.value) || addrHas(m.bcc, t.value)
	case "subject":
		return textHas(m.subject, t.value)
	case "body":
		return textHas(body(), t.value)
	case "attachment":
		for _, a := range m.atts {
			if textHas(a.name, t.value) {
				return true
			}
		}
		return false
	}
	// An unknown property: Exchange searches the words as text.
	return textHas(m.subject, t.prop+":"+t.value)
}

func kqlMatch(alts [][]kqlTerm, m *message) bool {
	for _, terms := range alts {
		ok := true
		for _, t := range terms {
			if !t.match(m) {
				ok = false
				break
			}
		}
		if ok {
			return true
		}
	}
	return false
}

// searchMessages serves GET .../messages?$search="..." (f nil: the whole
// mailbox).
func (s *Sim) searchMessages(g *greq, f *folder) {
	q := g.r.URL.Query()
	raw := q.Get("$search")
	for _, p := range []string{"$filter", "$orderby", "$skip"} {
		if q.Get(p) != "" {
			g.error(400, "ErrorInvalidUrlQuery", "The query parameter '"+p+"' is not supported with '$search'.")
			return
		}
	}
	if len(raw) < 2 || raw[0] != '"' || raw[len(raw)-1] != '"' {
		g.error(400, "BadRequest", "Syntax error: the $search value must be a double-quoted string, like $search=\"pizza\".")
		return
	}
	alts := parseKQL(raw[1 : len(raw)-1])
	top := 10
	if n, err := strconv.Atoi(q.Get("$top")); err == nil && n > 0 {
		top = min(n, 1000)
	}
	offset := 0
	if tok := q.Get("$skiptoken"); tok != "" {
		b, err := base64.RawURLEncoding.DecodeString(tok)
		n, err2 := strconv.Atoi(strings.TrimPrefix(string(b), "search:"))
		if err != nil || err2 != nil || n < 0 {
			g.error(400, "ErrorInvalidUrlQuery", "The $skiptoken is not valid.")
			return
		}
		offset = n
	}
	sel := selectSet(q)
	mb := g.target.mb
	mb.mu.Lock()
	var hits []*message
	for _, fo := range mb.folders {
		if f != nil && fo != f {
			continue
		}
		for _, m := range fo.msgs {
			if len(alts) > 0 && kqlMatch(alts, m) {
				hits = append(hits, m)
			}
		}
	}
	sort.SliceStable(hits, func(i, j int) bool { return hits[i].sent.After(hits[j].sent) })
	if len(hits) > maxSearchResults {
		hits = hits[:maxSearchResults]
	}
	vals := []any{}
	for i := offset; i < len(hits) && i < offset+top; i++ {
		vals = append(vals, s.renderMessage(mb, hits[i], sel, g, false, false))
	}
	mb.mu.Unlock()
	body := map[string]any{"@odata.context": s.GraphBaseURL() + "/$metadata#users('" + g.target.ID + "')/messages", "value": vals}
	if offset+top < len(hits) {
		nq := url.Values{}
		for k, v := range q {
			nq[k] = v
		}
		nq.Set("$skiptoken", base64.RawURLEncoding.EncodeToString([]byte("search:"+strconv.Itoa(offset+top))))
		u := *g.r.URL
		u.RawQuery = nq.Encode()
		body["@odata.nextLink"] = s.url + u.RequestURI()
	}
	writeJSON(g.w, 200, body)
}
