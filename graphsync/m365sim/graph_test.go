package m365sim

import (
	"bytes"
	"encoding/base64"
	"fmt"
	"net/url"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/jhillyerd/enmime"
	"github.com/rs/zerolog"
)

func deliver(t *testing.T, s *Sim, upn, folder, subject string) string {
	t.Helper()
	raw := fmt.Sprintf("From: Zoë Müller <zoe@example.de>\r\nTo: %s\r\nSubject: %s\r\nMessage-ID: <%s@example.de>\r\nDate: Mon, 02 Jan 2006 15:04:05 +0000\r\n\r\nbody\r\n", upn, subject, strings.ReplaceAll(subject, " ", "."))
	id, err := s.DeliverMIME(upn, folder, []byte(raw))
	if err != nil {
		t.Fatal(err)
	}
	return id
}

// round pages a delta round to its end and returns the items and the deltaLink.
func round(t *testing.T, s *Sim, tok, first string, hdr ...string) ([]map[string]any, string, int) {
	t.Helper()
	var items []map[string]any
	link := first
	pages := 0
	for {
		pages++
		r := call(t, s, tok, "GET", link, nil, hdr...)
		if r.status != 200 {
			t.Fatalf("delta page %d: %d %s", pages, r.status, r.body)
		}
		body := r.json(t)
		for _, v := range body["value"].([]any) {
			items = append(items, v.(map[string]any))
		}
		if dl, ok := body["@odata.deltaLink"].(string); ok {
			return items, dl, pages
		}
		link = body["@odata.nextLink"].(string)
	}
}

func TestDeltaStaleLinkGives410(t *testing.T) {
	s := newSim(t, Options{})
	tok, _ := token(t, s, testUser, allScopes)
	for i := 0; i < 15; i++ {
		deliver(t, s, testUser, "inbox", fmt.Sprintf("m%d", i))
	}
	_, dl, _ := round(t, s, tok, "/me/mailFolders/inbox/messages/delta")
	first := call(t, s, tok, "GET", "/me/mailFolders/inbox/messages/delta()", nil).json(t)
	next := first["@odata.nextLink"].(string)
	s.ExpireDeltaState(testUser, "inbox")
	for _, link := range []string{dl, next} {
		r := call(t, s, tok, "GET", link, nil)
		if r.status != 410 || r.errCode(t) != "SyncStateNotFound" {
			t.Fatalf("stale link: %d %s", r.status, r.body)
		}
		inner := r.json(t)["error"].(map[string]any)["innerError"].(map[string]any)
		if inner["request-id"] == "" || inner["date"] == "" {
			t.Fatalf("innerError: %v", inner)
		}
	}
	// A fresh round works again.
	items, _, _ := round(t, s, tok, "/me/mailFolders/inbox/messages/delta")
	if len(items) != 15 {
		t.Fatalf("resync saw %d", len(items))
	}
}

func TestDeltaNextRoundChanges(t *testing.T) {
	s := newSim(t, Options{})
	tok, _ := token(t, s, testUser, allScopes)
	ids := make([]string, 5)
	for i := range ids {
		ids[i] = deliver(t, s, testUser, "inbox", fmt.Sprintf("m%d", i))
	}
	sel := "/me/mailFolders/inbox/messages/delta?" + url.Values{"$select": {"subject,body,internetMessageHeaders,isRead"}}.Encode()
	items, dl, _ := round(t, s, tok, sel, "Prefer", immutable)
	if len(items) != 5 {
		t.Fatalf("initial: %d", len(items))
	}
	if items[0]["body"] == nil || items[0]["internetMessageHeaders"] == nil || items[0]["@odata.type"] != "#microsoft.graph.message" {
		t.Fatalf("initial item: %v", items[0])
	}
	s.MarkRead(testUser, ids[0], true)
	s.Move(testUser, ids[1], "archive")
	s.Delete(testUser, ids[2])
	newID := deliver(t, s, testUser, "inbox", "fresh")
	items, dl2, _ := round(t, s, tok, dl, "Prefer", immutable)
	got := map[string]map[string]any{}
	for _, it := range items {
		got[it["id"].(string)] = it
	}
	if len(got) != 4 {
		t.Fatalf("next round: %v", items)
	}
	if u := got[ids[0]]; u["isRead"] != true || u["subject"] != nil || u["parentFolderId"] == nil {
		t.Fatalf("updated item: %v", u)
	}
	for _, id := range ids[1:3] {
		if rm, _ := got[id]["@removed"].(map[string]any); rm["reason"] != "deleted" {
			t.Fatalf("removed item %s: %v", id, got[id])
		}
	}
	if n := got[newID]; n["subject"] != "fresh" {
		t.Fatalf("new item: %v", n)
	}
	// Replaying a deltaLink gives the same round again.
	again, _, _ := round(t, s, tok, dl, "Prefer", immutable)
	if len(again) != 4 {
		t.Fatalf("replay: %d", len(again))
	}
	// Nothing changed since dl2: empty round.
	if empty, _, _ := round(t, s, tok, dl2, "Prefer", immutable); len(empty) != 0 {
		t.Fatalf("quiet round: %v", empty)
	}
	// The moved message shows up in the archive's round with the same immutable id.
	arch, _, _ := round(t, s, tok, "/me/mailFolders/archive/messages/delta", "Prefer", immutable)
	if len(arch) != 1 || arch[0]["id"] != ids[1] {
		t.Fatalf("archive: %v", arch)
	}
}

func TestDeltaPageSizes(t *testing.T) {
	s := newSim(t, Options{})
	tok, _ := token(t, s, testUser, allScopes)
	s.GenerateMailbox(testUser, 300, GenOptions{NoSamples: true, SentRate: -1, AttachmentRate: -1})
	n := len(s.Messages(testUser, "inbox"))
	first := call(t, s, tok, "GET", "/me/mailFolders/inbox/messages/delta", nil).json(t)
	if got := len(first["value"].([]any)); got != deltaDefaultPage {
		t.Fatalf("default page %d", got)
	}
	items, _, pages := round(t, s, tok, "/me/mailFolders/inbox/messages/delta", "Prefer", "odata.maxpagesize=500")
	if len(items) != n || pages != (n+deltaMaxPage-1)/deltaMaxPage {
		t.Fatalf("maxpagesize 500: %d items in %d pages (folder has %d)", len(items), pages, n)
	}
	// Filter: only received at or after the cut.
	cut := s.Messages(testUser, "inbox")[9].ReceivedAt.UTC().Format(time.RFC3339)
	f := "/me/mailFolders/inbox/messages/delta?" + url.Values{"$filter": {"receivedDateTime ge " + cut}}.Encode()
	items, _, _ = round(t, s, tok, f, "Prefer", "odata.maxpagesize=200")
	if len(items) != 10 {
		t.Fatalf("filtered round: %d", len(items))
	}
	bad := "/me/mailFolders/inbox/messages/delta?" + url.Values{"$filter": {"subject eq 'x'"}}.Encode()
	if r := call(t, s, tok, "GET", bad, nil); r.status != 400 {
		t.Fatalf("bad filter: %d", r.status)
	}
}

func TestImmutableIDsAcrossMoves(t *testing.T) {
	s := newSim(t, Options{})
	tok, _ := token(t, s, testUser, allScopes)
	deliver(t, s, testUser, "inbox", "mv")
	list := call(t, s, tok, "GET", "/me/mailFolders/inbox/messages", nil).json(t)["value"].([]any)
	rest := list[0].(map[string]any)["id"].(string)
	imm := call(t, s, tok, "GET", "/me/messages/"+rest, nil, "Prefer", immutable).json(t)["id"].(string)
	if imm == rest || !strings.HasPrefix(imm, "AAkALg") {
		t.Fatalf("ids %s %s", rest, imm)
	}
	arch := call(t, s, tok, "GET", "/me/mailFolders/archive", nil).json(t)["id"].(string)
	mv := call(t, s, tok, "POST", "/me/messages/"+rest+"/move", map[string]string{"destinationId": arch})
	if mv.status != 201 || mv.json(t)["id"] == rest {
		t.Fatalf("move: %d %s", mv.status, mv.body)
	}
	if r := call(t, s, tok, "GET", "/me/messages/"+rest, nil); r.status != 404 || r.errCode(t) != "ErrorItemNotFound" {
		t.Fatalf("old REST id after move: %d", r.status)
	}
	r := call(t, s, tok, "GET", "/me/messages/"+imm, nil, "Prefer", immutable)
	if r.status != 200 || r.json(t)["parentFolderId"] != arch || r.json(t)["id"] != imm {
		t.Fatalf("immutable id after move: %d %s", r.status, r.body)
	}
	// Read flag PATCH.
	p := call(t, s, tok, "PATCH", "/me/messages/"+imm, map[string]bool{"isRead": true}, "Prefer", immutable)
	if p.status != 200 || p.json(t)["isRead"] != true {
		t.Fatalf("patch: %d %s", p.status, p.body)
	}
}

func TestFifthConcurrentRequestThrottled(t *testing.T) {
	s := newSim(t, Options{Throttle: true})
	s.AddUser("bob@contoso.com", "Bob")
	tok, _ := token(t, s, testUser, allScopes)
	bobTok, _ := token(t, s, "bob@contoso.com", allScopes)
	release := s.holdRequests()
	var wg sync.WaitGroup
	codes := make([]int, 4)
	for i := 0; i < 4; i++ {
		wg.Add(1)
		go func(i int) {
			defer wg.Done()
			codes[i] = call(t, s, tok, "GET", "/me/mailFolders/inbox", nil).status
		}(i)
	}
	waitFor(t, "4 requests in flight", func() bool { return s.InFlight(defaultClientID, testUser) == 4 })
	r := call(t, s, tok, "GET", "/me/mailFolders/inbox", nil)
	if r.status != 429 || r.errCode(t) != "ApplicationThrottled" || r.header.Get("Retry-After") == "" {
		t.Fatalf("fifth request: %d %s", r.status, r.body)
	}
	if !strings.Contains(string(r.body), "MailboxConcurrency") {
		t.Fatalf("body: %s", r.body)
	}
	// Another mailbox is not affected.
	wg.Add(1)
	var bobCode int
	go func() { defer wg.Done(); bobCode = call(t, s, bobTok, "GET", "/me", nil).status }()
	waitFor(t, "bob in flight", func() bool { return s.InFlight(defaultClientID, "bob@contoso.com") == 1 })
	release()
	wg.Wait()
	for i, c := range codes {
		if c != 200 {
			t.Fatalf("held request %d: %d", i, c)
		}
	}
	if bobCode != 200 {
		t.Fatalf("bob: %d", bobCode)
	}
	if st := s.Stats(testUser); st.Throttled != 1 || st.Requests != 5 || st.MaxInFlight != 4 {
		t.Fatalf("stats: %+v", st)
	}
}

func TestRequestWindowThrottled(t *testing.T) {
	s := newSim(t, Options{Throttle: true})
	s.thr.limit = 5
	tok, _ := token(t, s, testUser, allScopes)
	for i := 0; i < 5; i++ {
		if r := call(t, s, tok, "GET", "/me", nil); r.status != 200 {
			t.Fatalf("request %d: %d", i, r.status)
		}
	}
	r := call(t, s, tok, "GET", "/me", nil)
	if r.status != 429 || r.errCode(t) != "TooManyRequests" || r.header.Get("Retry-After") == "" {
		t.Fatalf("over the window: %d %s %v", r.status, r.body, r.header)
	}
	// Batch inner requests count and are throttled one by one; the envelope stays 200.
	b := call(t, s, tok, "POST", "/$batch", map[string]any{"requests": []any{
		map[string]any{"id": "1", "method": "GET", "url": "/me"},
	}})
	if b.status != 200 {
		t.Fatalf("batch: %d", b.status)
	}
	item := b.json(t)["responses"].([]any)[0].(map[string]any)
	if item["status"].(float64) != 429 || item["headers"].(map[string]any)["Retry-After"] == nil {
		t.Fatalf("inner: %v", item)
	}
}

func TestBatchRules(t *testing.T) {
	s := newSim(t, Options{})
	tok, _ := token(t, s, testUser, allScopes)
	var reqs []any
	for i := 0; i < 21; i++ {
		reqs = append(reqs, map[string]any{"id": fmt.Sprint(i), "method": "GET", "url": "/me"})
	}
	if r := call(t, s, tok, "POST", "/$batch", map[string]any{"requests": reqs}); r.status != 400 {
		t.Fatalf("21 requests: %d", r.status)
	}
	r := call(t, s, tok, "POST", "/$batch", map[string]any{"requests": []any{
		map[string]any{"id": "1", "method": "GET", "url": "/me/messages/nope"},
		map[string]any{"id": "2", "method": "GET", "url": "/me", "dependsOn": []string{"1"}},
		map[string]any{"id": "3", "method": "GET", "url": "/me/mailFolders/inbox"},
		map[string]any{"id": "4", "method": "PATCH", "url": "/me/mailFolders/inbox", "body": map[string]any{}, "headers": map[string]string{"Content-Type": "application/json"}},
	}})
	st := map[string]float64{}
	for _, it := range r.json(t)["responses"].([]any) {
		m := it.(map[string]any)
		st[m["id"].(string)] = m["status"].(float64)
	}
	if st["1"] != 404 || st["2"] != 424 || st["3"] != 200 {
		t.Fatalf("statuses %v", st)
	}
}

func TestGraphAuthErrors(t *testing.T) {
	s := newSim(t, Options{})
	s.AddSharedMailbox("support@contoso.com", "Support", Grant{User: testUser, FullAccess: true, SendAs: true})
	s.AddUser("bob@contoso.com", "Bob")
	tok, _ := token(t, s, testUser, allScopes)
	bob, _ := token(t, s, "bob@contoso.com", allScopes)
	narrow, _ := token(t, s, testUser, "https://graph.microsoft.com/Mail.Read offline_access")

	if r := call(t, s, "", "GET", "/me", nil); r.status != 401 || r.errCode(t) != "InvalidAuthenticationToken" {
		t.Fatalf("no token: %d", r.status)
	}
	if r := call(t, s, tok, "GET", "/users/support%40contoso.com/mailFolders/inbox/messages", nil); r.status != 200 {
		t.Fatalf("granted shared: %d %s", r.status, r.body)
	}
	if r := call(t, s, bob, "GET", "/users/support@contoso.com/mailFolders/inbox/messages", nil); r.status != 403 || r.errCode(t) != "ErrorAccessDenied" {
		t.Fatalf("shared without rights: %d %s", r.status, r.body)
	}
	if r := call(t, s, bob, "GET", "/users/"+testUser+"/messages", nil); r.status != 403 {
		t.Fatalf("other user's mailbox: %d", r.status)
	}
	if r := call(t, s, narrow, "GET", "/users/support@contoso.com/messages", nil); r.status != 403 {
		t.Fatalf("no .Shared scope: %d", r.status)
	}
	if r := call(t, s, narrow, "POST", "/me/sendMail", base64.StdEncoding.EncodeToString([]byte("To: x@example.com\r\n\r\nx"))); r.status != 403 {
		t.Fatalf("send without Mail.Send: %d", r.status)
	}
	if r := call(t, s, tok, "GET", "/users/nobody@contoso.com", nil); r.status != 404 {
		t.Fatalf("unknown user: %d", r.status)
	}
	s.ExpireAccessTokens()
	r := call(t, s, tok, "GET", "/me", nil)
	if r.status != 401 || !strings.Contains(string(r.body), "expired") || r.header.Get("WWW-Authenticate") == "" {
		t.Fatalf("expired: %d %s", r.status, r.body)
	}
}

func TestSendMailMIMEAndErrors(t *testing.T) {
	s := newSim(t, Options{})
	s.AddUser("bob@contoso.com", "Bob")
	tok, _ := token(t, s, testUser, allScopes)
	r := call(t, s, tok, "POST", "/me/sendMail", "%%% not base64 %%%")
	if r.status != 400 || r.errCode(t) != "ErrorMimeContentInvalidBase64String" {
		t.Fatalf("bad base64: %d %s", r.status, r.body)
	}
	if r := call(t, s, tok, "POST", "/me/sendMail", map[string]any{"message": map[string]any{"subject": "x"}}); r.status != 400 {
		t.Fatalf("no recipients: %d", r.status)
	}
	raw := "From: Anna <anna@contoso.com>\r\nTo: Bob <bob@contoso.com>\r\nSubject: =?utf-8?q?Gr=C3=BC=C3=9Fe?=\r\nMessage-ID: <keep.me@odoo.example>\r\nIn-Reply-To: <prev@example.de>\r\nReferences: <root@example.de> <prev@example.de>\r\n\r\nHallo\r\n"
	enc := base64.StdEncoding.EncodeToString([]byte(raw))
	var wrapped strings.Builder
	for len(enc) > 76 {
		wrapped.WriteString(enc[:76] + "\n")
		enc = enc[76:]
	}
	wrapped.WriteString(enc)
	if r := call(t, s, tok, "POST", "/me/sendMail", wrapped.String()); r.status != 202 {
		t.Fatalf("MIME send: %d %s", r.status, r.body)
	}
	sent := s.Sent(testUser)
	if len(sent) != 1 || sent[0].InternetMessageID != "<keep.me@odoo.example>" || sent[0].Header.Get("In-Reply-To") != "<prev@example.de>" {
		t.Fatalf("sent: %+v", sent)
	}
	si := s.Messages(testUser, "sentitems")
	if len(si) != 1 || si[0].InternetMessageID != "<keep.me@odoo.example>" || si[0].ID != sent[0].SavedID {
		t.Fatalf("sent items: %+v", si)
	}
	// Local delivery to Bob.
	if in := s.Messages("bob@contoso.com", "inbox"); len(in) != 1 || in[0].Subject != "Grüße" {
		t.Fatalf("bob inbox: %+v", in)
	}
	// saveToSentItems false.
	if r := call(t, s, tok, "POST", "/me/sendMail", map[string]any{"message": map[string]any{"subject": "nosave",
		"toRecipients": []any{map[string]any{"emailAddress": map[string]any{"address": "x@example.com"}}}}, "saveToSentItems": "false"}); r.status != 202 {
		t.Fatalf("nosave: %d", r.status)
	}
	if si := s.Messages(testUser, "sentitems"); len(si) != 1 {
		t.Fatalf("saveToSentItems=false saved: %d", len(si))
	}
}

func TestDraftUploadSessionAndSend(t *testing.T) {
	s := newSim(t, Options{})
	tok, _ := token(t, s, testUser, allScopes)
	d := call(t, s, tok, "POST", "/me/messages", map[string]any{"subject": "Big file", "body": map[string]any{"contentType": "HTML", "content": "see <b>attached</b>"},
		"toRecipients": []any{map[string]any{"emailAddress": map[string]any{"address": "cust@example.com"}}}}, "Prefer", immutable)
	if d.status != 201 || d.json(t)["isDraft"] != true {
		t.Fatalf("draft: %d %s", d.status, d.body)
	}
	draftID := d.json(t)["id"].(string)
	msgID := d.json(t)["internetMessageId"].(string)
	size := 5*1024*1024 + 123
	data := genBytes(7, size, "application/pdf")
	us := call(t, s, tok, "POST", "/me/messages/"+draftID+"/attachments/createUploadSession",
		map[string]any{"AttachmentItem": map[string]any{"attachmentType": "file", "name": "big.pdf", "size": size}})
	if us.status != 201 {
		t.Fatalf("session: %d %s", us.status, us.body)
	}
	up := us.json(t)["uploadUrl"].(string)
	put := func(start, end int) resp {
		return callRaw(t, s, "PUT", up, data[start:end+1], "Content-Range", fmt.Sprintf("bytes %d-%d/%d", start, end, size))
	}
	chunk := 4 * 1024 * 1024
	if r := put(0, chunk); r.status != 413 {
		t.Fatalf("oversized chunk: %d", r.status)
	}
	r := put(0, chunk-1)
	if r.status != 200 || r.json(t)["nextExpectedRanges"].([]any)[0] != fmt.Sprint(chunk) {
		t.Fatalf("chunk 1: %d %s", r.status, r.body)
	}
	if r := put(10, chunk+5); r.status != 416 || r.errCode(t) != "invalidRange" {
		t.Fatalf("overlap: %d %s", r.status, r.body)
	}
	r = put(chunk, size-1)
	if r.status != 201 || !strings.Contains(r.header.Get("Location"), "/attachments('") {
		t.Fatalf("final: %d %v", r.status, r.header)
	}
	if s := call(t, s, tok, "POST", "/me/messages/"+draftID+"/send", nil); s.status != 202 {
		t.Fatalf("send: %d %s", s.status, s.body)
	}
	sent := s.Sent(testUser)
	if len(sent) != 1 || sent[0].SavedID != draftID || sent[0].InternetMessageID != msgID {
		t.Fatalf("sent: %+v", sent)
	}
	env, err := enmime.ReadEnvelope(bytes.NewReader(sent[0].MIME))
	if err != nil || len(env.Attachments) != 1 || !bytes.Equal(env.Attachments[0].Content, data) {
		t.Fatalf("sent MIME attachment: %v", err)
	}
	got := call(t, s, tok, "GET", "/me/messages/"+draftID+"?$select=isDraft,parentFolderId", nil, "Prefer", immutable).json(t)
	sentItems := call(t, s, tok, "GET", "/me/mailFolders/sentitems", nil).json(t)["id"]
	if got["isDraft"] != false || got["parentFolderId"] != sentItems {
		t.Fatalf("sent copy: %v", got)
	}
}

func TestFaultInjection(t *testing.T) {
	logs, _ := newPipe()
	lg := zerolog.New(logs).Level(zerolog.DebugLevel)
	s := newSim(t, Options{Logger: &lg}) // debug log on: the reset fault must hijack through the log wrapper
	tok, _ := token(t, s, testUser, allScopes)
	s.InjectFaults(FaultOptions{Rate: 1, Kinds: []FaultKind{Fault5xx}})
	if r := call(t, s, tok, "GET", "/me", nil); r.status != 503 || r.header.Get("Retry-After") == "" {
		t.Fatalf("5xx: %d", r.status)
	}
	s.InjectFaults(FaultOptions{Rate: 1, Kinds: []FaultKind{FaultExpiredDelta}})
	if r := call(t, s, tok, "GET", "/me/mailFolders/inbox/messages/delta", nil); r.status != 410 {
		t.Fatalf("delta fault: %d", r.status)
	}
	if r := call(t, s, tok, "GET", "/me", nil); r.status != 200 {
		t.Fatalf("delta fault hit a non-delta request: %d", r.status)
	}
	s.InjectFaults(FaultOptions{Rate: 1, Kinds: []FaultKind{Fault429Burst}, BurstLen: 3})
	s.InjectFaults(FaultOptions{}) // arm one burst then stop injecting
	s.InjectFaults(FaultOptions{Rate: 1, Kinds: []FaultKind{Fault429Burst}, BurstLen: 2})
	if r := call(t, s, tok, "GET", "/me", nil); r.status != 429 {
		t.Fatalf("burst: %d", r.status)
	}
	s.InjectFaults(FaultOptions{})
	if r := call(t, s, tok, "GET", "/me", nil); r.status != 429 {
		t.Fatalf("burst continues: %d", r.status)
	}
	if r := call(t, s, tok, "GET", "/me", nil); r.status != 200 {
		t.Fatalf("after burst: %d", r.status)
	}
	s.InjectFaults(FaultOptions{Rate: 1, Kinds: []FaultKind{FaultReset}})
	req, _ := newReq("GET", s.GraphBaseURL()+"/me", tok)
	if _, err := s.Client().Do(req); err == nil {
		t.Fatal("reset: request succeeded")
	}
	if !strings.Contains(logs.String(), `"status":503`) || strings.Contains(logs.String(), tok) {
		t.Fatalf("debug log: %s", logs.String())
	}
	if st := s.Stats(""); st.Faults < 5 {
		t.Fatalf("faults counted %d", st.Faults)
	}
}

func TestListMessagesQuery(t *testing.T) {
	s := newSim(t, Options{})
	tok, _ := token(t, s, testUser, allScopes)
	s.GenerateMailbox(testUser, 40, GenOptions{NoSamples: true, SentRate: -1})
	all := s.Messages(testUser, "inbox")
	q := url.Values{"$top": {"7"}, "$select": {"subject,receivedDateTime"}, "$orderby": {"receivedDateTime desc"}}
	body := call(t, s, tok, "GET", "/me/mailFolders/inbox/messages?"+q.Encode(), nil).json(t)
	vals := body["value"].([]any)
	if len(vals) != 7 || body["@odata.nextLink"] == nil {
		t.Fatalf("page: %d", len(vals))
	}
	if first := vals[0].(map[string]any); first["subject"] != all[0].Subject || first["body"] != nil {
		t.Fatalf("first: %v", first)
	}
	cut := all[4].ReceivedAt.UTC().Format(time.RFC3339)
	q = url.Values{"$filter": {"receivedDateTime gt " + cut}, "$top": {"100"}}
	if n := len(call(t, s, tok, "GET", "/me/mailFolders/inbox/messages?"+q.Encode(), nil).json(t)["value"].([]any)); n != 4 {
		t.Fatalf("filter gt: %d", n)
	}
	// Attachments: list and $value agree with contentBytes.
	for _, mi := range all {
		if !mi.HasAttachments {
			continue
		}
		atts := call(t, s, tok, "GET", "/me/messages/"+mi.ID+"/attachments", nil).json(t)["value"].([]any)
		a := atts[len(atts)-1].(map[string]any)
		raw := callRaw(t, s, "GET", s.GraphBaseURL()+"/me/messages/"+mi.ID+"/attachments/"+a["id"].(string)+"/$value", nil, "Authorization", "Bearer "+tok)
		cb, _ := base64.StdEncoding.DecodeString(a["contentBytes"].(string))
		if raw.status != 200 || !bytes.Equal(raw.body, cb) || int(a["size"].(float64)) != len(cb) {
			t.Fatalf("attachment $value differs (%d)", raw.status)
		}
		break
	}
}

func TestAppWideRateLimit(t *testing.T) {
	s := newSim(t, Options{Throttle: true, TimeScale: 0.001}) // a "second" lasts 1000 s: no rollover during the test
	tok, _ := token(t, s, testUser, allScopes)
	var last resp
	for i := 0; i <= limitAppPerSec; i++ {
		last = call(t, s, tok, "GET", "/me", nil)
		if last.status != 200 {
			break
		}
	}
	if last.status != 429 || last.errCode(t) != "TooManyRequests" {
		t.Fatalf("request %d over the app limit: %d", limitAppPerSec+1, last.status)
	}
}

func TestShortPagesStillCompleteTheRound(t *testing.T) {
	s := newSim(t, Options{Seed: 3})
	tok, _ := token(t, s, testUser, allScopes)
	for i := 0; i < 30; i++ {
		deliver(t, s, testUser, "inbox", fmt.Sprintf("m%d", i))
	}
	s.InjectFaults(FaultOptions{Rate: 1, Kinds: []FaultKind{FaultShortPage}})
	items, _, pages := round(t, s, tok, "/me/mailFolders/inbox/messages/delta", "Prefer", "odata.maxpagesize=9")
	if len(items) != 30 || pages != 10 {
		t.Fatalf("short pages: %d items in %d pages", len(items), pages)
	}
}

func TestMIMEDraftKeepsHeadersThroughSend(t *testing.T) {
	s := newSim(t, Options{})
	tok, _ := token(t, s, testUser, allScopes)
	raw := "From: Anna <anna@contoso.com>\r\nTo: cust@example.com\r\nSubject: Re: Angebot\r\nMessage-ID: <draft.1@odoo.example>\r\nIn-Reply-To: <q.1@example.com>\r\nReferences: <q.0@example.com>\r\n <q.1@example.com>\r\nX-Odoo-Objects: crm.lead-7\r\nAuto-Submitted: auto-generated\r\nMIME-Version: 1.0\r\nContent-Type: text/plain; charset=utf-8\r\n\r\nHallo\r\n"
	d := call(t, s, tok, "POST", "/me/messages", base64.StdEncoding.EncodeToString([]byte(raw)), "Prefer", immutable)
	if d.status != 201 {
		t.Fatalf("MIME draft: %d %s", d.status, d.body)
	}
	id := d.json(t)["id"].(string)
	if r := call(t, s, tok, "POST", "/me/messages/"+id+"/send", nil); r.status != 202 {
		t.Fatalf("send: %d %s", r.status, r.body)
	}
	sent := s.Sent(testUser)[0]
	h := sent.Header
	if sent.InternetMessageID != "<draft.1@odoo.example>" || h.Get("X-Odoo-Objects") != "crm.lead-7" || h.Get("Auto-Submitted") != "auto-generated" ||
		h.Get("In-Reply-To") != "<q.1@example.com>" || h.Get("References") != "<q.0@example.com> <q.1@example.com>" {
		t.Fatalf("sent headers: %v", h)
	}
}
