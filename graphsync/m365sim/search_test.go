package m365sim

import (
	"fmt"
	"net/url"
	"testing"
	"time"
)

// $search on messages follows Graph's rules (search.go): quoted KQL,
// sorted by sent date, no $filter/$orderby/$skip with it, paged by
// nextLink, and permanentDelete purges a message.
func TestSearchMessages(t *testing.T) {
	s := newSim(t, Options{})
	tok, _ := token(t, s, testUser, allScopes)
	mail := func(from, to, subject, body string, sent time.Time) string {
		raw := fmt.Sprintf("From: %s\r\nTo: %s\r\nSubject: %s\r\nDate: %s\r\nContent-Type: text/plain\r\n\r\n%s\r\n",
			from, to, subject, sent.Format(time.RFC1123Z), body)
		id, err := s.DeliverMIMEAt(testUser, "inbox", []byte(raw), sent)
		if err != nil {
			t.Fatal(err)
		}
		return id
	}
	now := time.Now()
	old := mail("Carl Customer <carl@customer.example>", testUser, "Invoice 2019", "the yearly invoice", now.AddDate(-3, 0, 0))
	mid := mail("Dora <dora@partner.example>", "carl@customer.example", "Lunch", "about the invoice from carl", now.AddDate(-1, 0, 0))
	recent := mail("Carl Customer <carl@customer.example>", testUser, "Hello", "nothing here", now)
	search := func(q string, extra ...string) resp {
		v := url.Values{"$search": {q}, "$select": {"id,subject"}}
		for i := 0; i+1 < len(extra); i += 2 {
			v.Set(extra[i], extra[i+1])
		}
		return call(t, s, tok, "GET", "/users/"+testUser+"/messages?"+v.Encode(), nil, "Prefer", `IdType="ImmutableId"`)
	}
	ids := func(r resp) []string {
		var out []string
		for _, v := range r.json(t)["value"].([]any) {
			out = append(out, v.(map[string]any)["id"].(string))
		}
		return out
	}
	for _, c := range []struct {
		q    string
		want []string
	}{
		{`"invoice"`, []string{mid, old}},      // from, subject and body; newest sent first
		{`"invo"`, []string{mid, old}},         // word prefixes
		{`"from:carl"`, []string{recent, old}}, // sender
		{`"to:carl@customer.example"`, []string{mid}},
		{`"participants:dora"`, []string{mid}},
		{`"subject:invoice"`, []string{old}},
		{`"body:yearly"`, []string{old}},
		{`"from:carl invoice"`, []string{old}}, // words are ANDed
		{`"subject:hello OR subject:lunch"`, []string{recent, mid}},
		{`"nomatchanywhere"`, nil},
	} {
		r := search(c.q)
		if r.status != 200 {
			t.Fatalf("%s: %d %s", c.q, r.status, r.body)
		}
		if got := ids(r); fmt.Sprint(got) != fmt.Sprint(c.want) {
			t.Errorf("%s: got %v, want %v", c.q, got, c.want)
		}
	}
	for _, bad := range [][]string{{"$filter", "isRead eq false"}, {"$orderby", "receivedDateTime desc"}, {"$skip", "1"}} {
		if r := search(`"invoice"`, bad...); r.status != 400 || r.errCode(t) != "ErrorInvalidUrlQuery" {
			t.Errorf("$search with %s: %d %s", bad[0], r.status, r.body)
		}
	}
	if r := search(`invoice`); r.status != 400 {
		t.Errorf("unquoted $search: %d", r.status)
	}
	// Pages through nextLink.
	r := search(`"invoice"`, "$top", "1")
	next, _ := r.json(t)["@odata.nextLink"].(string)
	if got := ids(r); len(got) != 1 || got[0] != mid || next == "" {
		t.Fatalf("page 1: %v next %q", got, next)
	}
	r2 := call(t, s, tok, "GET", next, nil, "Prefer", `IdType="ImmutableId"`)
	if got := ids(r2); len(got) != 1 || got[0] != old || r2.json(t)["@odata.nextLink"] != nil {
		t.Fatalf("page 2: %v %s", got, r2.body)
	}
	// permanentDelete: gone, not in Deleted Items.
	if r := call(t, s, tok, "POST", "/users/"+testUser+"/messages/"+old+"/permanentDelete", nil, "Prefer", `IdType="ImmutableId"`); r.status != 204 {
		t.Fatalf("permanentDelete: %d %s", r.status, r.body)
	}
	if got := ids(search(`"invoice"`)); len(got) != 1 || len(s.Messages(testUser, "deleteditems")) != 0 {
		t.Fatalf("after permanentDelete: %v, deleted items %d", got, len(s.Messages(testUser, "deleteditems")))
	}
}
