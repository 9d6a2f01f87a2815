package m365sim

import (
	"bufio"
	"bytes"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"io"
	"mime"
	"mime/multipart"
	"mime/quotedprintable"
	"net/http"
	"net/mail"
	"net/textproto"
	"regexp"
	"strconv"
	"strings"
	"time"
)

// maxRequestBody is Graph's 4 MB limit on a request body (bigger
// attachments go through upload sessions).
const maxRequestBody = 4 * 1024 * 1024

// maxUploadChunk is the largest PUT an upload session takes.
const maxUploadChunk = 4 * 1024 * 1024

// maxUploadSize is the largest attachment an upload session takes.
const maxUploadSize = 150 * 1024 * 1024

type jsonRecipient struct {
	EmailAddress struct {
		Name    string `json:"name"`
		Address string `json:"address"`
	} `json:"emailAddress"`
}

type jsonAttachment struct {
	ODataType    string `json:"@odata.type"`
	Name         string `json:"name"`
	ContentType  string `json:"contentType"`
	ContentBytes string `json:"contentBytes"`
	IsInline     bool   `json:"isInline"`
	ContentID    string `json:"contentId"`
}

type jsonMessage struct {
	Subject string `json:"subject"`
	Body    struct {
		ContentType string `json:"contentType"`
		Content     string `json:"content"`
	} `json:"body"`
	Importance             string           `json:"importance"`
	From                   *jsonRecipient   `json:"from"`
	ToRecipients           []jsonRecipient  `json:"toRecipients"`
	CcRecipients           []jsonRecipient  `json:"ccRecipients"`
	BccRecipients          []jsonRecipient  `json:"bccRecipients"`
	ReplyTo                []jsonRecipient  `json:"replyTo"`
	InternetMessageHeaders []hdr            `json:"internetMessageHeaders"`
	Attachments            []jsonAttachment `json:"attachments"`
}

func (h *hdr) UnmarshalJSON(b []byte) error {
	var v struct{ Name, Value string }
	if err := json.Unmarshal(b, &v); err != nil {
		return err
	}
	h.Name, h.Value = v.Name, v.Value
	return nil
}

func addrs(rs []jsonRecipient) []addr {
	out := make([]addr, 0, len(rs))
	for _, r := range rs {
		out = append(out, addr{r.EmailAddress.Name, r.EmailAddress.Address})
	}
	return out
}

func (s *Sim) newMessageID() string {
	return "<" + strings.ToUpper(randToken("", 12)) + "@" + strings.ToUpper(s.tenant[:min(8, len(s.tenant))]) + ".sim.prod.outlook.com>"
}

// messageFromJSON builds a message from Graph's JSON message shape.
func (s *Sim) messageFromJSON(jm jsonMessage, sender *User, now time.Time) (*message, error) {
	m := &message{subject: jm.Subject, importance: strings.ToLower(orDefault(jm.Importance, "normal")),
		from: addr{sender.DisplayName, sender.UPN}, to: addrs(jm.ToRecipients), cc: addrs(jm.CcRecipients),
		bcc: addrs(jm.BccRecipients), replyTo: addrs(jm.ReplyTo), created: now, received: now, sent: now, isRead: true,
		msgID: s.newMessageID()}
	if jm.From != nil && jm.From.EmailAddress.Address != "" {
		m.from = addr{jm.From.EmailAddress.Name, jm.From.EmailAddress.Address}
	}
	if strings.EqualFold(jm.Body.ContentType, "html") {
		m.bodyHTML = "<html><head>\r\n<meta http-equiv=\"Content-Type\" content=\"text/html; charset=utf-8\"></head><body>" + jm.Body.Content + "</body></html>"
	} else {
		m.bodyText = jm.Body.Content
	}
	for _, h := range jm.InternetMessageHeaders {
		if !strings.HasPrefix(strings.ToLower(h.Name), "x-") {
			return nil, fmt.Errorf("only custom x- headers may be set, not %q", h.Name)
		}
		m.extraHeaders = append(m.extraHeaders, h)
	}
	for _, a := range jm.Attachments {
		data, err := base64.StdEncoding.DecodeString(a.ContentBytes)
		if err != nil {
			return nil, fmt.Errorf("attachment %q: invalid base64 contentBytes", a.Name)
		}
		m.atts = append(m.atts, &attachment{name: a.Name, contentType: orDefault(a.ContentType, "application/octet-stream"),
			size: len(data), data: data, inline: a.IsInline, contentID: a.ContentID, modified: now})
	}
	m.convID = convID(m.msgID)
	return m, nil
}

func convID(root string) string {
	h := uint64(14695981039346656037)
	for i := 0; i < len(root); i++ {
		h ^= uint64(root[i])
		h *= 1099511628211
	}
	return outlookID("AAQkAD", h)
}

var b64Clean = regexp.MustCompile(`[\r\n\t ]`)

// decodeMIMEBody reads a base64 MIME request body (Content-Type text/plain).
func decodeMIMEBody(r io.Reader) ([]byte, bool, bool) {
	raw, err := io.ReadAll(io.LimitReader(r, maxRequestBody+1))
	if err != nil {
		return nil, false, false
	}
	if len(raw) > maxRequestBody {
		return nil, false, true
	}
	out, err := base64.StdEncoding.DecodeString(b64Clean.ReplaceAllString(string(raw), ""))
	if err != nil || len(out) == 0 {
		return nil, false, false
	}
	return out, true, false
}

func (g *greq) mimeBase64Error() {
	writeJSONCT(g.w, 400, "application/json", map[string]any{"error": map[string]any{
		"code": "ErrorMimeContentInvalidBase64String", "message": "Invalid base64 string for MIME content."}})
}

func (g *greq) tooLarge() {
	g.error(413, "RequestEntityTooLarge", "The request body is larger than 4 MB: add big attachments with an upload session.")
}

func isMIMERequest(r *http.Request) bool {
	ct, _, _ := mime.ParseMediaType(r.Header.Get("Content-Type"))
	return ct == "text/plain"
}

// ensureMessageID adds a Message-ID header when the MIME has none, as
// Exchange does; an existing one is kept byte for byte.
func (s *Sim) ensureMessageID(raw []byte) []byte {
	tp := textproto.NewReader(bufio.NewReader(bytes.NewReader(raw)))
	h, _ := tp.ReadMIMEHeader()
	if h.Get("Message-Id") != "" {
		return raw
	}
	return append([]byte("Message-ID: "+s.newMessageID()+"\r\n"), raw...)
}

// customHeaders keeps the headers of a MIME draft that buildMIME does not
// write itself (X-*, Auto-Submitted, List-*, ...), in order, values as sent.
func customHeaders(raw []byte) []hdr {
	own := map[string]bool{"From": true, "To": true, "Cc": true, "Bcc": true, "Reply-To": true, "Subject": true, "Date": true,
		"Message-Id": true, "In-Reply-To": true, "References": true, "Mime-Version": true, "Importance": true}
	end := bytes.Index(raw, []byte("\r\n\r\n"))
	if end < 0 {
		end = bytes.Index(raw, []byte("\n\n"))
	}
	if end < 0 {
		return nil
	}
	var out []hdr
	for _, line := range strings.Split(strings.ReplaceAll(string(raw[:end]), "\r\n", "\n"), "\n") {
		if line == "" {
			continue
		}
		if (line[0] == ' ' || line[0] == '\t') && len(out) > 0 {
			out[len(out)-1].Value += " " + strings.TrimSpace(line)
			continue
		}
		k, v, ok := strings.Cut(line, ":")
		if !ok {
			continue
		}
		ck := textproto.CanonicalMIMEHeaderKey(strings.TrimSpace(k))
		if own[ck] || strings.HasPrefix(ck, "Content-") {
			out = append(out, hdr{}) // placeholder keeps continuation lines attached to the right header
			continue
		}
		out = append(out, hdr{Name: strings.TrimSpace(k), Value: strings.TrimSpace(v)})
	}
	kept := out[:0]
	for _, h := range out {
		if h.Name != "" {
			kept = append(kept, h)
		}
	}
	return kept
}

func headerOf(raw []byte) textproto.MIMEHeader {
	tp := textproto.NewReader(bufio.NewReader(bytes.NewReader(raw)))
	h, _ := tp.ReadMIMEHeader()
	return h
}

func (s *Sim) serveSendMail(g *greq) {
	if !g.allowed(accSend) {
		return
	}
	now := time.Now()
	var m *message
	via := "sendMail/json"
	save := true
	if isMIMERequest(g.r) {
		raw, ok, big := decodeMIMEBody(g.r.Body)
		if big {
			g.tooLarge()
			return
		}
		if !ok {
			g.mimeBase64Error()
			return
		}
		raw = s.ensureMessageID(raw)
		pm, err := parseMIME(raw, now)
		if err != nil {
			g.error(400, "ErrorMimeContentInvalid", "The MIME content is invalid: "+err.Error())
			return
		}
		if len(pm.to)+len(pm.cc)+len(pm.bcc) == 0 {
			g.error(400, "ErrorInvalidRecipients", "At least one recipient isn't valid., A message can't be sent because it contains no recipients.")
			return
		}
		m = pm
		via = "sendMail/mime"
	} else {
		var body struct {
			Message         jsonMessage     `json:"message"`
			SaveToSentItems json.RawMessage `json:"saveToSentItems"`
		}
		dec := json.NewDecoder(io.LimitReader(g.r.Body, maxRequestBody+1))
		if err := dec.Decode(&body); err != nil {
			g.error(400, "ErrorInvalidRequest", "Cannot read the request body: "+err.Error())
			return
		}
		if v := strings.Trim(string(body.SaveToSentItems), `" `); strings.EqualFold(v, "false") {
			save = false
		}
		if len(body.Message.ToRecipients)+len(body.Message.CcRecipients)+len(body.Message.BccRecipients) == 0 {
			g.error(400, "ErrorInvalidRecipients", "At least one recipient isn't valid., A message can't be sent because it contains no recipients.")
			return
		}
		jm, err := s.messageFromJSON(body.Message, g.target, now)
		if err != nil {
			g.error(400, "ErrorInvalidRequest", err.Error())
			return
		}
		m = jm
	}
	if !strings.EqualFold(m.from.Address, g.target.UPN) && !s.mayRepresent(g, m.from.Address) {
		g.error(403, "ErrorSendAsDenied", "The user account which was used to submit this request does not have the right to send mail on behalf of the specified sending account., Cannot submit message.")
		return
	}
	s.completeSend(g.target, m, via, save, now)
	g.w.WriteHeader(http.StatusAccepted)
}

// mayRepresent: the From of a message sent through mailbox g.target
// must be that mailbox.
func (s *Sim) mayRepresent(g *greq, from string) bool {
	return strings.EqualFold(from, g.target.UPN)
}

// completeSend records a sent message, saves the Sent Items copy and
// delivers it to local recipients.
func (s *Sim) completeSend(u *User, m *message, via string, save bool, now time.Time) {
	mb := u.mb
	mb.mu.Lock()
	if m.folder != nil && !m.isRead {
		m.folder.unread--
	}
	m.isRead, m.isDraft, m.sent, m.received = true, false, now.Truncate(time.Second), now.Truncate(time.Second)
	if m.convID == "" {
		m.convID = convID(threadRoot(m))
	}
	raw := s.mimeOf(mb, m)
	if m.raw == nil {
		m.raw = raw // freeze what was sent
	}
	sm := SentMessage{From: u.UPN, Via: via, InternetMessageID: m.msgID, Subject: m.subject, Header: headerOf(raw), MIME: raw, SentAt: now}
	for _, a := range m.to {
		sm.To = append(sm.To, a.Address)
	}
	for _, a := range m.cc {
		sm.Cc = append(sm.Cc, a.Address)
	}
	for _, a := range m.bcc {
		sm.Bcc = append(sm.Bcc, a.Address)
	}
	sentF := mb.folder("sentitems")
	if save {
		if m.folder == nil {
			mb.add(sentF, m)
			assignAttIDs(mb, m)
		} else {
			mb.move(m, sentF, now)
		}
		sm.SavedID = m.imm
	} else if m.folder != nil {
		mb.hardDelete(m)
	}
	mb.sent = append(mb.sent, sm)
	mb.mu.Unlock()
	s.mu.Lock()
	s.statsFor(u).Sent++
	s.total.Sent++
	s.mu.Unlock()
	if save {
		s.notifyChange(u, sentF, m, "created")
	}
	// Local delivery: recipients who have a mailbox here get a copy.
	seen := map[string]bool{strings.ToLower(u.UPN): true}
	for _, list := range [][]string{sm.To, sm.Cc, sm.Bcc} {
		for _, a := range list {
			k := strings.ToLower(a)
			if seen[k] {
				continue
			}
			seen[k] = true
			if rcpt := s.user(k); rcpt != nil {
				_, _ = s.DeliverMIME(rcpt.UPN, "inbox", raw)
			}
		}
	}
}

func (s *Sim) createDraft(g *greq, f *folder) {
	if !g.allowed(accWrite) {
		return
	}
	now := time.Now()
	var m *message
	if isMIMERequest(g.r) {
		raw, ok, big := decodeMIMEBody(g.r.Body)
		if big {
			g.tooLarge()
			return
		}
		if !ok {
			g.mimeBase64Error()
			return
		}
		raw = s.ensureMessageID(raw)
		pm, err := parseMIME(raw, now)
		if err != nil {
			g.error(400, "ErrorMimeContentInvalid", "The MIME content is invalid: "+err.Error())
			return
		}
		pm.extraHeaders = customHeaders(raw)
		pm.raw = nil // a draft is rebuilt from its fields when sent (attachments may be added)
		pm.created, pm.received = now, now
		if pm.msgID == "" {
			pm.msgID = s.newMessageID()
		}
		m = pm
	} else {
		var jm jsonMessage
		if err := json.NewDecoder(io.LimitReader(g.r.Body, maxRequestBody+1)).Decode(&jm); err != nil {
			g.error(400, "ErrorInvalidRequest", "Cannot read the request body: "+err.Error())
			return
		}
		var err error
		m, err = s.messageFromJSON(jm, g.target, now)
		if err != nil {
			g.error(400, "ErrorInvalidRequest", err.Error())
			return
		}
	}
	m.isDraft, m.isRead = true, true
	if m.convID == "" {
		m.convID = convID(threadRoot(m))
	}
	mb := g.target.mb
	mb.mu.Lock()
	if f == nil {
		f = mb.folder("drafts")
	}
	mb.add(f, m)
	assignAttIDs(mb, m)
	out := s.renderMessage(mb, m, nil, g, false, false)
	mb.mu.Unlock()
	out["@odata.context"] = s.GraphBaseURL() + "/$metadata#users('" + g.target.ID + "')/messages/$entity"
	writeJSON(g.w, 201, out)
}

func (s *Sim) sendDraft(g *greq, m *message) {
	if !g.allowed(accSend) {
		return
	}
	mb := g.target.mb
	mb.mu.Lock()
	draft := m.isDraft
	mb.mu.Unlock()
	if !draft {
		g.error(400, "ErrorInvalidOperation", "Only draft messages can be sent.")
		return
	}
	if len(m.to)+len(m.cc)+len(m.bcc) == 0 {
		g.error(400, "ErrorInvalidRecipients", "At least one recipient isn't valid., A message can't be sent because it contains no recipients.")
		return
	}
	s.completeSend(g.target, m, "draft/send", true, time.Now())
	g.w.WriteHeader(http.StatusAccepted)
}

// mimeOf returns the MIME of m; caller holds mb.mu.
func (s *Sim) mimeOf(mb *mailbox, m *message) []byte {
	if m.raw != nil {
		return m.raw
	}
	return buildMIME(m)
}

func encAddrs(as []addr) string {
	parts := make([]string, 0, len(as))
	for _, a := range as {
		parts = append(parts, (&mail.Address{Name: a.Name, Address: a.Address}).String())
	}
	return strings.Join(parts, ", ")
}

// buildMIME renders a message as RFC 5322 MIME: mixed(related(alternative(
// text, html[, calendar]), inline images), attachments).
func buildMIME(m *message) []byte {
	var buf bytes.Buffer
	buf.Grow(4096)
	w := func(k, v string) {
		if v != "" {
			buf.WriteString(k + ": " + v + "\r\n")
		}
	}
	w("From", encAddrs([]addr{m.from}))
	w("To", encAddrs(m.to))
	w("Cc", encAddrs(m.cc))
	if len(m.replyTo) > 0 {
		w("Reply-To", encAddrs(m.replyTo))
	}
	w("Subject", mime.QEncoding.Encode("utf-8", m.subject))
	w("Date", m.sent.Format(time.RFC1123Z))
	w("Message-ID", m.msgID)
	w("In-Reply-To", m.inReplyTo)
	w("References", m.references)
	if m.importance == "high" {
		w("Importance", "high")
	}
	w("Sensitivity", sensitivityHeaders[m.sensitivity])
	for _, h := range m.extraHeaders {
		w(h.Name, mime.QEncoding.Encode("utf-8", h.Value))
	}
	w("MIME-Version", "1.0")
	b := func(kind string) string { return fmt.Sprintf("_%03d_SIM%016X_%s_", len(kind), m.num, kind) }

	var inl, att []*attachment
	for _, a := range m.atts {
		if a.inline {
			inl = append(inl, a)
		} else {
			att = append(att, a)
		}
	}
	writeAlt := func(mw *multipart.Writer) {
		text := m.bodyText
		if text == "" && m.bodyHTML != "" {
			text = stripTags(m.bodyHTML)
		}
		pw, _ := mw.CreatePart(textproto.MIMEHeader{"Content-Type": {"text/plain; charset=\"utf-8\""}, "Content-Transfer-Encoding": {"quoted-printable"}})
		qw := quotedprintable.NewWriter(pw)
		_, _ = qw.Write([]byte(text))
		_ = qw.Close()
		if m.bodyHTML != "" {
			pw, _ = mw.CreatePart(textproto.MIMEHeader{"Content-Type": {"text/html; charset=\"utf-8\""}, "Content-Transfer-Encoding": {"quoted-printable"}})
			qw = quotedprintable.NewWriter(pw)
			_, _ = qw.Write([]byte(m.bodyHTML))
			_ = qw.Close()
		}
		if m.calendar != "" {
			pw, _ = mw.CreatePart(textproto.MIMEHeader{"Content-Type": {"text/calendar; charset=\"utf-8\"; method=REQUEST"}, "Content-Transfer-Encoding": {"base64"}})
			writeB64(pw, []byte(m.calendar))
		}
	}
	writeAtt := func(mw *multipart.Writer, a *attachment) {
		h := textproto.MIMEHeader{}
		h.Set("Content-Type", mime.FormatMediaType(a.contentType, map[string]string{"name": a.name}))
		disp := "attachment"
		if a.inline {
			disp = "inline"
		}
		h.Set("Content-Disposition", mime.FormatMediaType(disp, map[string]string{"filename": a.name, "size": strconv.Itoa(a.size)}))
		if a.contentID != "" {
			h.Set("Content-ID", "<"+a.contentID+">")
		}
		h.Set("Content-Transfer-Encoding", "base64")
		pw, _ := mw.CreatePart(h)
		writeB64(pw, a.bytes())
	}
	writeBody := func(parent *multipart.Writer) {
		// the body part: alternative, or related(alternative, inlines)
		if len(inl) == 0 {
			bnd := b("alt")
			pw, _ := parent.CreatePart(textproto.MIMEHeader{"Content-Type": {"multipart/alternative; boundary=\"" + bnd + "\""}})
			aw := multipart.NewWriter(pw)
			_ = aw.SetBoundary(bnd)
			writeAlt(aw)
			_ = aw.Close()
			return
		}
		rb := b("rel")
		pw, _ := parent.CreatePart(textproto.MIMEHeader{"Content-Type": {"multipart/related; type=\"multipart/alternative\"; boundary=\"" + rb + "\""}})
		rw := multipart.NewWriter(pw)
		_ = rw.SetBoundary(rb)
		bnd := b("alt")
		apw, _ := rw.CreatePart(textproto.MIMEHeader{"Content-Type": {"multipart/alternative; boundary=\"" + bnd + "\""}})
		aw := multipart.NewWriter(apw)
		_ = aw.SetBoundary(bnd)
		writeAlt(aw)
		_ = aw.Close()
		for _, a := range inl {
			writeAtt(rw, a)
		}
		_ = rw.Close()
	}
	top := b("mix")
	kind := "multipart/mixed"
	if len(att) == 0 {
		if len(inl) == 0 {
			kind, top = "multipart/alternative", b("alt")
		} else {
			kind, top = "multipart/related", b("rel")
		}
	}
	w("Content-Type", kind+"; boundary=\""+top+"\"")
	buf.WriteString("\r\n")
	mw := multipart.NewWriter(&buf)
	_ = mw.SetBoundary(top)
	switch kind {
	case "multipart/alternative":
		writeAlt(mw)
	case "multipart/related":
		bnd := b("alt")
		apw, _ := mw.CreatePart(textproto.MIMEHeader{"Content-Type": {"multipart/alternative; boundary=\"" + bnd + "\""}})
		aw := multipart.NewWriter(apw)
		_ = aw.SetBoundary(bnd)
		writeAlt(aw)
		_ = aw.Close()
		for _, a := range inl {
			writeAtt(mw, a)
		}
	default:
		writeBody(mw)
		for _, a := range att {
			writeAtt(mw, a)
		}
	}
	_ = mw.Close()
	return buf.Bytes()
}

func writeB64(w io.Writer, data []byte) {
	const line = 76
	enc := make([]byte, base64.StdEncoding.EncodedLen(len(data)))
	base64.StdEncoding.Encode(enc, data)
	out := make([]byte, 0, len(enc)+len(enc)/line*2+2)
	for len(enc) > line {
		out = append(out, enc[:line]...)
		out = append(out, '\r', '\n')
		enc = enc[line:]
	}
	out = append(out, enc...)
	out = append(out, '\r', '\n')
	_, _ = w.Write(out)
}

// headersJSON lists the message's Internet headers ({name,value}) as
// they are in its MIME (encoded words kept).
func headersJSON(m *message) []any {
	var h []byte
	if m.raw != nil {
		h = m.raw
	} else {
		// headers only: cheap, no attachment bytes
		cp := *m
		cp.atts = nil
		h = buildMIME(&cp)
	}
	end := bytes.Index(h, []byte("\r\n\r\n"))
	if end < 0 {
		end = bytes.Index(h, []byte("\n\n"))
	}
	if end >= 0 {
		h = h[:end]
	}
	var out []any
	for _, line := range strings.Split(strings.ReplaceAll(string(h), "\r\n", "\n"), "\n") {
		if line == "" {
			continue
		}
		if (line[0] == ' ' || line[0] == '\t') && len(out) > 0 {
			last := out[len(out)-1].(map[string]any)
			last["value"] = last["value"].(string) + " " + strings.TrimSpace(line)
			continue
		}
		k, v, ok := strings.Cut(line, ":")
		if !ok {
			continue
		}
		if strings.EqualFold(k, "Content-Type") && m.raw == nil {
			continue
		}
		out = append(out, map[string]any{"name": k, "value": strings.TrimSpace(v)})
	}
	return nonNil(out)
}

// DeliverMIME stores a message in a folder of upn's mailbox as if it just
// arrived, and notifies subscriptions. It returns the immutable id.
func (s *Sim) DeliverMIME(upn, folderName string, raw []byte) (string, error) {
	return s.DeliverMIMEAt(upn, folderName, raw, time.Now())
}

// DeliverMIMEAt is DeliverMIME for mail that arrived at a given time (old
// mail, outside a mailbox's synced window).
func (s *Sim) DeliverMIMEAt(upn, folderName string, raw []byte, at time.Time) (string, error) {
	return s.deliverMIME(upn, folderName, raw, at, false)
}

// deliverMIME delivers raw; seeded mail (Seed's) gets ids that depend on
// the seed only, like generated mail, so every run of the same seed lists
// the same mailboxes.
func (s *Sim) deliverMIME(upn, folderName string, raw []byte, at time.Time, seeded bool) (string, error) {
	u := s.user(upn)
	if u == nil {
		return "", fmt.Errorf("m365sim: deliver: unknown user %s", upn)
	}
	now := at
	raw = s.ensureMessageID(raw)
	m, err := parseMIME(raw, now)
	if err != nil {
		return "", fmt.Errorf("m365sim: deliver to %s: %w", upn, err)
	}
	m.received, m.created = now, now
	m.convID = convID(threadRoot(m))
	mb := u.mb
	mb.mu.Lock()
	f := mb.folder(folderName)
	if f == nil {
		mb.mu.Unlock()
		return "", fmt.Errorf("m365sim: deliver to %s: unknown folder %s", upn, folderName)
	}
	if f.wellKnown == "sentitems" || f.wellKnown == "drafts" {
		m.isRead = true
	}
	mb.seeding = seeded
	mb.add(f, m)
	mb.seeding = false
	assignAttIDs(mb, m)
	id := m.imm
	mb.mu.Unlock()
	s.notifyChange(u, f, m, "created")
	return id, nil
}

// Messages lists a folder's messages, newest first.
func (s *Sim) Messages(upn, folderName string) []MessageInfo {
	u := s.user(upn)
	if u == nil {
		return nil
	}
	mb := u.mb
	mb.mu.Lock()
	defer mb.mu.Unlock()
	f := mb.folder(folderName)
	if f == nil {
		return nil
	}
	out := make([]MessageInfo, 0, len(f.msgs))
	for i := len(f.msgs) - 1; i >= 0; i-- {
		out = append(out, info(f.msgs[i]))
	}
	return out
}

// MIME returns the raw MIME of a message by immutable or REST id.
func (s *Sim) MIME(upn, id string) ([]byte, bool) {
	u := s.user(upn)
	if u == nil {
		return nil, false
	}
	mb := u.mb
	mb.mu.Lock()
	defer mb.mu.Unlock()
	m := mb.message(id)
	if m == nil {
		return nil, false
	}
	return s.mimeOf(mb, m), true
}

// Sent lists what the user sent, oldest first.
func (s *Sim) Sent(upn string) []SentMessage {
	u := s.user(upn)
	if u == nil {
		return nil
	}
	u.mb.mu.Lock()
	defer u.mb.mu.Unlock()
	return append([]SentMessage(nil), u.mb.sent...)
}

// MarkRead sets the read flag like a user in Outlook would.
func (s *Sim) MarkRead(upn, id string, read bool) bool {
	u := s.user(upn)
	if u == nil {
		return false
	}
	mb := u.mb
	mb.mu.Lock()
	m := mb.message(id)
	if m == nil {
		mb.mu.Unlock()
		return false
	}
	mb.setRead(m, read, time.Now())
	f := m.folder
	mb.mu.Unlock()
	s.notifyChange(u, f, m, "updated")
	return true
}

// Move moves a message to a folder (id or well-known name) like a user in
// Outlook would; the immutable id stays, the REST id changes.
func (s *Sim) Move(upn, id, folderName string) bool {
	u := s.user(upn)
	if u == nil {
		return false
	}
	mb := u.mb
	mb.mu.Lock()
	m, dst := mb.message(id), mb.folder(folderName)
	if m == nil || dst == nil {
		mb.mu.Unlock()
		return false
	}
	src := m.folder
	mb.move(m, dst, time.Now())
	mb.mu.Unlock()
	s.notifyChange(u, src, m, "deleted")
	s.notifyChange(u, dst, m, "created")
	return true
}

// Delete removes a message for good (as emptying Deleted Items does).
func (s *Sim) Delete(upn, id string) bool {
	u := s.user(upn)
	if u == nil {
		return false
	}
	mb := u.mb
	mb.mu.Lock()
	m := mb.message(id)
	if m == nil {
		mb.mu.Unlock()
		return false
	}
	f := m.folder
	mb.hardDelete(m)
	mb.mu.Unlock()
	s.notifyChange(u, f, m, "deleted")
	return true
}
