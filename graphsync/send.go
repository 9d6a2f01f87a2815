package graphsync

import (
	"bytes"
	"context"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"mime"
	"mime/multipart"
	"mime/quotedprintable"
	"net/http"
	"net/url"
	"sort"
	"strconv"
	"strings"
	"sync"
	"time"

	abs "github.com/microsoft/kiota-abstractions-go"
)

// Sending limits (FACTS.md "Attachments", "Send"; Graph docs
// outlook-large-attachments.md).
const (
	// MaxRequestBody is Graph's limit on one request body. A base64 MIME
	// sendMail (or MIME draft) must fit in it.
	MaxRequestBody = 4_000_000
	// LargeAttachment: an attachment of this size or more always goes
	// through an upload session.
	LargeAttachment = 3_000_000
	// UploadChunk is the size of one upload-session PUT: 12 × 320 KiB,
	// under 4 MB however "4 MB" is read.
	UploadChunk = 12 * 320 * 1024
	// MaxUploadAttachment is the largest attachment an upload session takes.
	MaxUploadAttachment = 150 << 20
	// UploadLimit per UploadWindow is Graph's upload budget per app and
	// mailbox (150 MB per 5 minutes).
	UploadLimit  = 150 << 20
	UploadWindow = 5 * time.Minute
)

// OutAttachment is an attachment sent through an upload session.
type OutAttachment struct {
	Name        string
	ContentType string
	ContentID   string
	Inline      bool
	Data        []byte
}

// Outgoing is a message ready for Graph: MIME goes in one request (sendMail,
// or a MIME draft when Large is not empty); Large attachments follow the
// draft through upload sessions.
type Outgoing struct {
	MIME  []byte
	Large []OutAttachment
	// Draft sends through a draft even when nothing is large (the sent
	// draft's id then finds its Sent Items copy).
	Draft bool
}

// Split prepares raw MIME for Graph. A message whose base64 form fits in one
// request and that has no attachment of LargeAttachment or more is sent as
// it is. Otherwise top-level attachments of a multipart/mixed message are
// taken out (every large one, then the biggest first until the rest fits)
// to go through upload sessions; the top-level header block (Message-Id,
// In-Reply-To, References, ...) and the parts that stay are kept byte for
// byte.
func Split(raw []byte) (Outgoing, error) {
	hdrEnd, bodyStart := headerEnd(raw)
	if hdrEnd < 0 {
		return Outgoing{}, errors.New("graphsync: MIME has no header/body separator")
	}
	ct := headerValue(raw[:hdrEnd], "Content-Type")
	mt, params, _ := mime.ParseMediaType(ct)
	fits := base64.StdEncoding.EncodedLen(len(raw)) <= MaxRequestBody
	if !strings.EqualFold(mt, "multipart/mixed") || params["boundary"] == "" {
		if fits {
			return Outgoing{MIME: raw}, nil
		}
		return Outgoing{}, fmt.Errorf("graphsync: message of %d bytes has no separate attachments to upload (it is %s, not multipart/mixed)", len(raw), orText(mt, "text/plain"))
	}
	parts, err := rawParts(raw[bodyStart:], params["boundary"])
	if err != nil {
		return Outgoing{}, err
	}
	anyLarge := false
	for _, p := range parts {
		if p.attachment && p.size >= LargeAttachment {
			anyLarge = true
		}
	}
	if fits && !anyLarge {
		return Outgoing{MIME: raw}, nil
	}
	// Take out every large attachment, then the biggest until it fits.
	order := make([]int, 0, len(parts))
	for i, p := range parts {
		if p.attachment {
			order = append(order, i)
		}
	}
	sort.SliceStable(order, func(a, b int) bool { return parts[order[a]].size > parts[order[b]].size })
	drop := map[int]bool{}
	build := func() []byte {
		var buf bytes.Buffer
		buf.Grow(len(raw) / 2)
		buf.Write(raw[:bodyStart])
		for i, p := range parts {
			if drop[i] {
				continue
			}
			buf.WriteString("--" + params["boundary"] + "\r\n")
			buf.Write(p.header)
			buf.WriteString("\r\n")
			buf.Write(p.body)
			buf.WriteString("\r\n")
		}
		buf.WriteString("--" + params["boundary"] + "--\r\n")
		return buf.Bytes()
	}
	for _, i := range order {
		if parts[i].size >= LargeAttachment {
			drop[i] = true
		}
	}
	out := build()
	for _, i := range order {
		if base64.StdEncoding.EncodedLen(len(out)) <= MaxRequestBody {
			break
		}
		if !drop[i] {
			drop[i] = true
			out = build()
		}
	}
	if base64.StdEncoding.EncodedLen(len(out)) > MaxRequestBody {
		return Outgoing{}, fmt.Errorf("graphsync: the message without its attachments is still %d bytes, over Graph's %d-byte request limit", len(out), MaxRequestBody)
	}
	res := Outgoing{MIME: out}
	for _, i := range order {
		if !drop[i] {
			continue
		}
		p := parts[i]
		if p.size > MaxUploadAttachment {
			return Outgoing{}, fmt.Errorf("graphsync: attachment %q is %d bytes, over Graph's 150 MB per attachment", p.name, p.size)
		}
		res.Large = append(res.Large, OutAttachment{Name: p.name, ContentType: p.contentType, ContentID: p.contentID, Inline: p.inline, Data: p.data})
	}
	return res, nil
}

func orText(s, d string) string {
	if s == "" {
		return d
	}
	return s
}

// headerEnd finds the blank line after the header block: it returns where
// the header block ends (before the blank line) and where the body starts.
func headerEnd(raw []byte) (int, int) {
	crlf := bytes.Index(raw, []byte("\r\n\r\n"))
	lf := bytes.Index(raw, []byte("\n\n"))
	switch {
	case crlf >= 0 && (lf < 0 || crlf < lf):
		return crlf, crlf + 4
	case lf >= 0:
		return lf, lf + 2
	}
	return -1, -1
}

// headerValue returns the unfolded value of the first header called name.
func headerValue(block []byte, name string) string {
	lines := strings.Split(strings.ReplaceAll(string(block), "\r\n", "\n"), "\n")
	for i := 0; i < len(lines); i++ {
		k, v, ok := strings.Cut(lines[i], ":")
		if !ok || !strings.EqualFold(strings.TrimSpace(k), name) {
			continue
		}
		for i+1 < len(lines) && len(lines[i+1]) > 0 && (lines[i+1][0] == ' ' || lines[i+1][0] == '\t') {
			i++
			v += " " + strings.TrimSpace(lines[i])
		}
		return strings.TrimSpace(v)
	}
	return ""
}

type rawPart struct {
	header      []byte // re-serialised part header, CRLF lines
	body        []byte // as transferred (still encoded)
	attachment  bool
	inline      bool
	name        string
	contentType string
	contentID   string
	size        int // decoded size, for attachments
	data        []byte
}

var wordDecoder = &mime.WordDecoder{}

func rawParts(body []byte, boundary string) ([]rawPart, error) {
	mr := multipart.NewReader(bytes.NewReader(body), boundary)
	var out []rawPart
	for {
		p, err := mr.NextRawPart()
		if err == io.EOF {
			break
		}
		if err != nil {
			return nil, fmt.Errorf("graphsync: read MIME part %d: %w", len(out)+1, err)
		}
		b, err := io.ReadAll(p)
		if err != nil {
			return nil, fmt.Errorf("graphsync: read MIME part %d: %w", len(out)+1, err)
		}
		rp := rawPart{body: b}
		keys := make([]string, 0, len(p.Header))
		for k := range p.Header {
			keys = append(keys, k)
		}
		sort.Strings(keys)
		var hb bytes.Buffer
		for _, k := range keys {
			for _, v := range p.Header[k] {
				hb.WriteString(k + ": " + v + "\r\n")
			}
		}
		rp.header = hb.Bytes()
		ctype, cparams, _ := mime.ParseMediaType(p.Header.Get("Content-Type"))
		disp, dparams, _ := mime.ParseMediaType(p.Header.Get("Content-Disposition"))
		name := dparams["filename"]
		if name == "" {
			name = cparams["name"]
		}
		if dec, err := wordDecoder.DecodeHeader(name); err == nil {
			name = dec
		}
		isMultipart := strings.HasPrefix(strings.ToLower(ctype), "multipart/")
		rp.attachment = !isMultipart && (strings.EqualFold(disp, "attachment") || (name != "" && !strings.HasPrefix(strings.ToLower(ctype), "text/")) || strings.EqualFold(disp, "inline") && name != "")
		if rp.attachment {
			data, err := decodeTransfer(b, p.Header.Get("Content-Transfer-Encoding"))
			if err != nil {
				return nil, fmt.Errorf("graphsync: attachment %q: %w", name, err)
			}
			rp.data = data
			rp.size = len(data)
			rp.name = orText(name, "attachment")
			rp.contentType = orText(ctype, "application/octet-stream")
			rp.contentID = strings.Trim(p.Header.Get("Content-Id"), "<> ")
			rp.inline = strings.EqualFold(disp, "inline")
		}
		out = append(out, rp)
	}
	return out, nil
}

func decodeTransfer(b []byte, cte string) ([]byte, error) {
	switch strings.ToLower(strings.TrimSpace(cte)) {
	case "base64":
		clean := bytes.Map(func(r rune) rune {
			if r == '\r' || r == '\n' || r == ' ' || r == '\t' {
				return -1
			}
			return r
		}, b)
		out := make([]byte, base64.StdEncoding.DecodedLen(len(clean)))
		n, err := base64.StdEncoding.Decode(out, clean)
		if err != nil {
			return nil, fmt.Errorf("bad base64: %w", err)
		}
		return out[:n], nil
	case "quoted-printable":
		return io.ReadAll(quotedprintable.NewReader(bytes.NewReader(b)))
	}
	return b, nil
}

// SendStats says how a message went out.
type SendStats struct {
	Path    string // "sendMail" or "draft"
	DraftID string // immutable id of the draft (the Sent Items copy keeps it)
	// DraftInternetID is the internetMessageId Graph gave the draft ("" when
	// it did not say); a MIME draft should keep the message's own.
	DraftInternetID string
	Requests        int   // Graph requests made (upload PUTs included)
	Chunks          int   // upload-session PUTs
	MaxChunk        int   // largest PUT body
	Uploaded        int64 // attachment bytes uploaded
}

// Send sends out: one MIME sendMail when nothing is large, otherwise a MIME
// draft, upload sessions for the large attachments (chunks of at most
// UploadChunk, within up's budget), then send. A draft left by a failure is
// deleted. up may be nil (no upload budget kept).
func (m *Mailbox) Send(ctx context.Context, out Outgoing, up *UploadBudget) (SendStats, error) {
	if len(out.Large) == 0 && !out.Draft {
		st := SendStats{Path: "sendMail", Requests: 1}
		if err := m.postMIME(ctx, m.url("sendMail", nil), out.MIME, nil); err != nil {
			return st, fmt.Errorf("graphsync: sendMail for %s: %w", m.id, err)
		}
		return st, nil
	}
	st := SendStats{Path: "draft"}
	draft, err := m.createDraft(ctx, out, up, &st)
	st.DraftID, st.DraftInternetID = draft.ID, draft.InternetMessageID
	if err != nil {
		return st, err
	}
	st.Requests++
	if err := m.SendDraft(ctx, draft.ID); err != nil {
		st.Requests++
		m.dropDraft(ctx, draft.ID)
		return st, err
	}
	return st, nil
}

// postMIME POSTs base64 MIME (Content-Type: text/plain) and decodes a JSON
// answer into out (nil: ignore the answer).
func (m *Mailbox) postMIME(ctx context.Context, rawURL string, raw []byte, out any) error {
	enc := make([]byte, base64.StdEncoding.EncodedLen(len(raw)))
	base64.StdEncoding.Encode(enc, raw)
	return m.post(ctx, rawURL, enc, "text/plain", out)
}

func (m *Mailbox) postJSON(ctx context.Context, rawURL string, body, out any) error {
	var b []byte
	if body != nil {
		var err error
		if b, err = json.Marshal(body); err != nil {
			return fmt.Errorf("encode request: %w", err)
		}
	}
	return m.post(ctx, rawURL, b, "application/json", out)
}

func (m *Mailbox) post(ctx context.Context, rawURL string, body []byte, ctype string, out any) error {
	ri := abs.NewRequestInformation()
	ri.Method = abs.POST
	u, err := url.Parse(rawURL)
	if err != nil {
		return err
	}
	ri.SetUri(*u)
	ri.Headers.TryAdd("Accept", "application/json")
	if body == nil {
		body = []byte{}
	}
	ri.SetStreamContentAndContentType(body, ctype)
	res, err := m.send(ctx, ri)
	if err != nil {
		return err
	}
	if out != nil && len(res) > 0 {
		if err := json.Unmarshal(res, out); err != nil {
			return fmt.Errorf("decode answer: %w", err)
		}
	}
	return nil
}

func (m *Mailbox) deleteMessage(ctx context.Context, id string) error {
	ri := abs.NewRequestInformation()
	ri.Method = abs.DELETE
	u, _ := url.Parse(m.url("messages/"+url.PathEscape(id), nil))
	ri.SetUri(*u)
	_, err := m.send(ctx, ri)
	return err
}

// upload adds one attachment to a draft through an upload session. The
// chunk PUTs go to the pre-authenticated uploadUrl without Authorization
// (Graph docs: a token there may give 401), through the mailbox's budget.
func (m *Mailbox) upload(ctx context.Context, draftID string, a OutAttachment, up *UploadBudget, st *SendStats) error {
	item := map[string]any{"attachmentType": "file", "name": a.Name, "size": len(a.Data), "contentType": a.ContentType}
	if a.Inline {
		item["isInline"] = true
	}
	if a.ContentID != "" {
		item["contentId"] = a.ContentID
	}
	var sess struct {
		UploadURL string `json:"uploadUrl"`
	}
	st.Requests++
	if err := m.postJSON(ctx, m.url("messages/"+url.PathEscape(draftID)+"/attachments/createUploadSession", nil),
		map[string]any{"AttachmentItem": item}, &sess); err != nil {
		return fmt.Errorf("create upload session: %w", err)
	}
	if sess.UploadURL == "" {
		return errors.New("create upload session: no uploadUrl in the answer")
	}
	hc := &http.Client{Transport: m.rt}
	total := len(a.Data)
	for start := 0; start < total; start += UploadChunk {
		end := min(start+UploadChunk, total)
		if up != nil {
			if err := up.Acquire(ctx, int64(end-start)); err != nil {
				return err
			}
		}
		req, err := http.NewRequestWithContext(ctx, http.MethodPut, sess.UploadURL, bytes.NewReader(a.Data[start:end]))
		if err != nil {
			return fmt.Errorf("upload chunk: %w", err)
		}
		req.ContentLength = int64(end - start)
		req.Header.Set("Content-Type", "application/octet-stream")
		req.Header.Set("Content-Range", "bytes "+strconv.Itoa(start)+"-"+strconv.Itoa(end-1)+"/"+strconv.Itoa(total))
		st.Requests++
		st.Chunks++
		st.MaxChunk = max(st.MaxChunk, end-start)
		resp, err := hc.Do(req)
		if err != nil {
			return fmt.Errorf("upload bytes %d-%d: %w", start, end-1, err)
		}
		body, _ := io.ReadAll(io.LimitReader(resp.Body, 64<<10))
		resp.Body.Close()
		if resp.StatusCode != http.StatusOK && resp.StatusCode != http.StatusCreated && resp.StatusCode != http.StatusAccepted {
			return uploadError(resp.StatusCode, body)
		}
		st.Uploaded += int64(end - start)
	}
	return nil
}

func uploadError(status int, body []byte) error {
	var e struct {
		Error struct {
			Code    string `json:"code"`
			Message string `json:"message"`
		} `json:"error"`
	}
	_ = json.Unmarshal(body, &e)
	return &GraphError{Status: status, Code: e.Error.Code, Msg: e.Error.Message}
}

// SentCopy is what Graph says about a sent message's copy.
type SentCopy struct {
	ID     string
	From   string
	Sender string
}

// OnBehalf reports whether the copy shows a delegate sending on behalf of
// the From address (Graph docs outlook-send-mail-from-other-user.md: with
// Send As, sender and from are the same; with Send on Behalf they differ).
func (c SentCopy) OnBehalf() bool {
	return c.Sender != "" && !strings.EqualFold(c.Sender, c.From)
}

// GetSentCopy reads from and sender of a message by id (with immutable ids
// a sent draft's id finds its Sent Items copy).
func (m *Mailbox) GetSentCopy(ctx context.Context, id string) (SentCopy, error) {
	q := url.Values{"$select": {"id,from,sender"}}
	body, err := m.getRaw(ctx, m.url("messages/"+url.PathEscape(id), q), nil)
	if err != nil {
		return SentCopy{}, fmt.Errorf("graphsync: sent copy %s: %w", id, err)
	}
	var w struct {
		ID     string    `json:"id"`
		From   *wireAddr `json:"from"`
		Sender *wireAddr `json:"sender"`
	}
	if err := json.Unmarshal(body, &w); err != nil {
		return SentCopy{}, fmt.Errorf("graphsync: decode sent copy %s: %w", id, err)
	}
	c := SentCopy{ID: w.ID}
	if w.From != nil {
		c.From = w.From.EmailAddress.Address
	}
	if w.Sender != nil {
		c.Sender = w.Sender.EmailAddress.Address
	}
	return c, nil
}

// IsSendAsDenied reports Graph's 403 ErrorSendAsDenied: the signed-in user
// has neither Send As nor Send on Behalf on the From address.
func IsSendAsDenied(err error) bool {
	ge, ok := asGraphError(err)
	return ok && ge.Status == http.StatusForbidden && strings.EqualFold(ge.Code, "ErrorSendAsDenied")
}

// CodeOf returns Graph's error code and message in err ("" when none).
func CodeOf(err error) (code, msg string) {
	if ge, ok := asGraphError(err); ok {
		return ge.Code, ge.Msg
	}
	return "", ""
}

// UploadBudget keeps one mailbox's uploads within Graph's 150 MB per 5
// minutes. Safe for concurrent use.
type UploadBudget struct {
	limit  int64
	window time.Duration
	now    func() time.Time

	mu   sync.Mutex
	used []uploadMark
}

type uploadMark struct {
	at time.Time
	n  int64
}

// NewUploadBudget returns a budget of limit bytes per window (zero values:
// Graph's 150 MB per 5 minutes); now may be nil.
func NewUploadBudget(limit int64, window time.Duration, now func() time.Time) *UploadBudget {
	if limit <= 0 {
		limit = UploadLimit
	}
	if window <= 0 {
		window = UploadWindow
	}
	if now == nil {
		now = time.Now
	}
	return &UploadBudget{limit: limit, window: window, now: now}
}

// Acquire waits until n more bytes fit in the window, then counts them.
func (b *UploadBudget) Acquire(ctx context.Context, n int64) error {
	if n > b.limit {
		return fmt.Errorf("graphsync: an upload of %d bytes exceeds the budget of %d", n, b.limit)
	}
	for {
		b.mu.Lock()
		now := b.now()
		cut := 0
		for cut < len(b.used) && now.Sub(b.used[cut].at) >= b.window {
			cut++
		}
		b.used = b.used[cut:]
		var sum int64
		for _, u := range b.used {
			sum += u.n
		}
		if sum+n <= b.limit {
			b.used = append(b.used, uploadMark{at: now, n: n})
			b.mu.Unlock()
			return nil
		}
		// Wait until enough of the oldest uploads leave the window.
		free, wait := sum+n-b.limit, time.Duration(0)
		for _, u := range b.used {
			free -= u.n
			if free <= 0 {
				wait = b.window - now.Sub(u.at)
				break
			}
		}
		b.mu.Unlock()
		if err := sleepCtx(ctx, max(wait, time.Millisecond)); err != nil {
			return err
		}
	}
}

// UploadBudgets hands out one UploadBudget per mailbox.
type UploadBudgets struct {
	limit  int64
	window time.Duration
	now    func() time.Time
	mu     sync.Mutex
	m      map[string]*UploadBudget
}

// NewUploadBudgets returns per-mailbox upload budgets (zero values: Graph's).
func NewUploadBudgets(limit int64, window time.Duration, now func() time.Time) *UploadBudgets {
	return &UploadBudgets{limit: limit, window: window, now: now, m: map[string]*UploadBudget{}}
}

// For returns the mailbox's budget.
func (u *UploadBudgets) For(mailboxID string) *UploadBudget {
	u.mu.Lock()
	defer u.mu.Unlock()
	b := u.m[mailboxID]
	if b == nil {
		b = NewUploadBudget(u.limit, u.window, u.now)
		u.m[mailboxID] = b
	}
	return b
}
