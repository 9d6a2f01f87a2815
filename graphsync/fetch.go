package graphsync

import (
	"context"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"net/http"
	"net/url"
	"regexp"
	"strconv"
	"strings"
	"sync"
	"time"

	abs "github.com/microsoft/kiota-abstractions-go"
)

// MaxBatch is Graph's limit of requests in one $batch.
const MaxBatch = 20

type wireAttachment struct {
	Type         string  `json:"@odata.type"`
	ID           string  `json:"id"`
	Name         string  `json:"name"`
	ContentType  string  `json:"contentType"`
	Size         int64   `json:"size"`
	IsInline     bool    `json:"isInline"`
	ContentID    *string `json:"contentId"`
	ContentBytes string  `json:"contentBytes"`
}

func (w wireAttachment) attachment() Attachment {
	a := Attachment{ID: w.ID, Name: w.Name, ContentType: w.ContentType, Size: w.Size, IsInline: w.IsInline, Kind: "file"}
	if w.ContentID != nil {
		a.ContentID = strings.Trim(*w.ContentID, "<>")
	}
	// The docs show the type with and without the leading '#' (graph-samples 36).
	switch strings.TrimPrefix(strings.ToLower(w.Type), "#") {
	case "microsoft.graph.itemattachment":
		a.Kind = "item"
	case "microsoft.graph.referenceattachment":
		a.Kind = "reference"
	}
	if w.ContentBytes != "" {
		if b, err := base64.StdEncoding.DecodeString(w.ContentBytes); err == nil {
			a.Data = b
		}
	}
	return a
}

// batchReq is one inner request of a $batch.
type batchReq struct {
	ID      string            `json:"id"`
	Method  string            `json:"method"`
	URL     string            `json:"url"`
	Headers map[string]string `json:"headers,omitempty"`
}

type batchResp struct {
	ID      string            `json:"id"`
	Status  int               `json:"status"`
	Headers map[string]string `json:"headers"`
	Body    json.RawMessage   `json:"body"`
}

// batchSlots is how many concurrency slots a $batch of n takes
// (Config.BatchSlots, at most n): the budget then never lets Graph see more
// than 4 requests of the mailbox at once.
func (m *Mailbox) batchSlots(n int) int { return min(n, m.c.cfg.BatchSlots) }

// batch sends inner GET requests (paths relative to the version root) in
// $batch envelopes of at most MaxBatch and returns each answer by index.
// Inner 429s and 5xx are retried (a 429's Retry-After pauses the mailbox),
// up to the retry limit; what still fails is returned as its response.
func (m *Mailbox) batch(ctx context.Context, paths []string) ([]batchResp, error) {
	out := make([]batchResp, len(paths))
	pending := make([]int, len(paths))
	for i := range pending {
		pending[i] = i
	}
	ro := m.c.cfg.Retry
	for attempt := 1; len(pending) > 0; attempt++ {
		var retry []int
		for start := 0; start < len(pending); start += MaxBatch {
			chunk := pending[start:min(start+MaxBatch, len(pending))]
			reqs := make([]batchReq, len(chunk))
			for k, i := range chunk {
				reqs[k] = batchReq{ID: strconv.Itoa(i), Method: http.MethodGet, URL: paths[i],
					Headers: map[string]string{"Prefer": `IdType="ImmutableId"`}}
			}
			resps, err := m.sendBatch(ctx, reqs)
			if err != nil {
				return nil, err
			}
			got := map[int]bool{}
			var pause time.Duration
			for _, r := range resps {
				i, err := strconv.Atoi(r.ID)
				if err != nil || i < 0 || i >= len(paths) {
					continue
				}
				got[i] = true
				out[i] = r
				if r.Status == http.StatusTooManyRequests {
					m.c.metrics.throttled.WithLabelValues(m.id).Inc()
				}
				if (r.Status == http.StatusTooManyRequests || r.Status >= 500) && attempt < ro.MaxAttempts {
					retry = append(retry, i)
					h := http.Header{}
					for k, v := range r.Headers {
						h.Set(k, v)
					}
					if d, ok := retryAfter(h, ro.MaxPause); ok && d > pause {
						pause = d
					}
				}
			}
			for _, i := range chunk {
				if !got[i] && attempt < ro.MaxAttempts {
					retry = append(retry, i)
				}
			}
			if pause > 0 {
				m.budget.Pause(time.Now().Add(pause))
			}
		}
		if len(retry) > 0 {
			m.c.metrics.retries.WithLabelValues(m.id).Add(float64(len(retry)))
			if m.budget.PausedUntil().Before(time.Now()) {
				if err := sleepCtx(ctx, backoff(ro, attempt)); err != nil {
					return nil, err
				}
			}
		}
		pending = retry
	}
	return out, nil
}

func (m *Mailbox) sendBatch(ctx context.Context, reqs []batchReq) ([]batchResp, error) {
	body, err := json.Marshal(map[string]any{"requests": reqs})
	if err != nil {
		return nil, fmt.Errorf("graphsync: encode batch: %w", err)
	}
	ri := abs.NewRequestInformation()
	ri.Method = abs.POST
	u, _ := url.Parse(m.c.cfg.BaseURL + "/$batch")
	ri.SetUri(*u)
	ri.Headers.TryAdd("Accept", "application/json")
	ri.SetStreamContentAndContentType(body, "application/json")
	raw, err := m.send(withCost(ctx, len(reqs), m.batchSlots(len(reqs))), ri)
	if err != nil {
		return nil, fmt.Errorf("graphsync: $batch of %d for %s: %w", len(reqs), m.id, err)
	}
	var env struct {
		Responses []batchResp `json:"responses"`
	}
	if err := json.Unmarshal(raw, &env); err != nil {
		return nil, fmt.Errorf("graphsync: decode $batch answer: %w", err)
	}
	return env.Responses, nil
}

func (m *Mailbox) rel(p string) string {
	return "/users/" + url.PathEscape(m.user) + "/" + p
}

func innerError(r batchResp) error {
	var e struct {
		Error struct {
			Code    string `json:"code"`
			Message string `json:"message"`
		} `json:"error"`
	}
	_ = json.Unmarshal(r.Body, &e)
	return &GraphError{Status: r.Status, Code: e.Error.Code, Msg: e.Error.Message}
}

// FetchAttachments fills Attachments (with bytes) of every message that
// NeedsAttachments, 20 messages per $batch, up to parallel batches at once.
// A message deleted meanwhile (404) keeps no attachments.
func (m *Mailbox) FetchAttachments(ctx context.Context, msgs []*Message, parallel int) error {
	var need, items []*Message
	for _, msg := range msgs {
		switch {
		case msg.NeedsAttachments() && msg.Attachments == nil:
			need = append(need, msg)
		case hasBareItem(msg):
			items = append(items, msg) // expanded in the page; attached e-mails still need their MIME
		}
	}
	if err := m.forChunks(ctx, len(items), parallel, func(ctx context.Context, lo, hi int) error {
		return m.fetchItemAttachments(ctx, items[lo:hi])
	}); err != nil {
		return err
	}
	return m.forChunks(ctx, len(need), parallel, func(ctx context.Context, lo, hi int) error {
		paths := make([]string, 0, hi-lo)
		for _, msg := range need[lo:hi] {
			paths = append(paths, m.rel("messages/"+url.PathEscape(msg.ID)+"/attachments"))
		}
		resps, err := m.batch(ctx, paths)
		if err != nil {
			return err
		}
		for k, r := range resps {
			msg := need[lo+k]
			switch {
			case r.Status == http.StatusOK:
				var page struct {
					Value []wireAttachment `json:"value"`
				}
				if err := json.Unmarshal(r.Body, &page); err != nil {
					return fmt.Errorf("graphsync: decode attachments of %s: %w", msg.ID, err)
				}
				msg.Attachments = make([]Attachment, 0, len(page.Value))
				for _, a := range page.Value {
					msg.Attachments = append(msg.Attachments, a.attachment())
				}
			case r.Status == http.StatusNotFound:
				msg.Attachments = []Attachment{}
			default:
				return fmt.Errorf("graphsync: attachments of %s: %w", msg.ID, innerError(r))
			}
		}
		return m.fetchItemAttachments(ctx, need[lo:hi])
	})
}

func hasBareItem(msg *Message) bool {
	for _, a := range msg.Attachments {
		if a.Kind == "item" && a.Data == nil {
			return true
		}
	}
	return false
}

// fetchItemAttachments gives the item attachments (forwarded e-mails
// attached to a message) of msgs their MIME, as .eml files:
// GET /messages/{id}/attachments/{aid}/$value returns the attached item's
// MIME (graph-samples 33), 20 per $batch. An item Graph cannot render (gone
// meanwhile, or refused with a 4xx) keeps no bytes and is left out.
func (m *Mailbox) fetchItemAttachments(ctx context.Context, msgs []*Message) error {
	type ref struct{ msg, att int }
	var refs []ref
	var paths []string
	for i, msg := range msgs {
		for j, a := range msg.Attachments {
			if a.Kind == "item" && a.Data == nil {
				refs = append(refs, ref{i, j})
				paths = append(paths, m.rel("messages/"+url.PathEscape(msg.ID)+"/attachments/"+url.PathEscape(a.ID)+"/$value"))
			}
		}
	}
	if len(paths) == 0 {
		return nil
	}
	resps, err := m.batch(ctx, paths)
	if err != nil {
		return err
	}
	for k, r := range resps {
		msg := msgs[refs[k].msg]
		a := &msg.Attachments[refs[k].att]
		switch {
		case r.Status == http.StatusOK:
			a.setItemMIME(decodeInnerBody(r.Body))
		case r.Status >= 400 && r.Status < 500 && r.Status != http.StatusTooManyRequests:
			// Left out: not renderable as MIME, or deleted meanwhile.
		default:
			return fmt.Errorf("graphsync: attached item %s of %s: %w", a.ID, msg.ID, innerError(r))
		}
	}
	return nil
}

// setItemMIME makes an item attachment an attached e-mail: message/rfc822
// bytes named "<subject>.eml" (Graph names an item attachment after the
// attached item's subject).
func (a *Attachment) setItemMIME(mime []byte) {
	a.Data = mime
	a.Size = int64(len(mime))
	a.ContentType = "message/rfc822"
	a.Name = EMLName(a.Name)
	a.IsInline = false
	a.ContentID = ""
}

var emlUnsafe = regexp.MustCompile(`[\x00-\x1f\x7f/\\:*?"<>|]+`)

// EMLName is the file name of an attached e-mail: its subject (characters
// that file systems refuse replaced, at most 120 characters) plus ".eml".
func EMLName(subject string) string {
	name := strings.Join(strings.Fields(emlUnsafe.ReplaceAllString(subject, " ")), " ")
	name = strings.Trim(name, " .")
	if r := []rune(name); len(r) > 120 {
		name = strings.TrimRight(string(r[:120]), " .")
	}
	if strings.HasSuffix(strings.ToLower(name), ".eml") {
		return name
	}
	if name == "" {
		name = "Forwarded message"
	}
	return name + ".eml"
}

// FetchMIME fills MIME for every full message (gateway mode), 20 $value
// downloads per $batch (inner bodies come base64-encoded).
func (m *Mailbox) FetchMIME(ctx context.Context, msgs []*Message, parallel int) error {
	var need []*Message
	for _, msg := range msgs {
		if msg.Full && msg.MIME == nil {
			need = append(need, msg)
		}
	}
	return m.forChunks(ctx, len(need), parallel, func(ctx context.Context, lo, hi int) error {
		paths := make([]string, 0, hi-lo)
		for _, msg := range need[lo:hi] {
			paths = append(paths, m.rel("messages/"+url.PathEscape(msg.ID)+"/$value"))
		}
		resps, err := m.batch(ctx, paths)
		if err != nil {
			return err
		}
		for k, r := range resps {
			msg := need[lo+k]
			switch r.Status {
			case http.StatusOK:
				msg.MIME = decodeInnerBody(r.Body)
			case http.StatusNotFound:
				msg.MIME = []byte{}
			default:
				return fmt.Errorf("graphsync: MIME of %s: %w", msg.ID, innerError(r))
			}
		}
		return nil
	})
}

// decodeInnerBody turns a non-JSON inner body (a base64 JSON string) into bytes.
func decodeInnerBody(raw json.RawMessage) []byte {
	var s string
	if err := json.Unmarshal(raw, &s); err != nil {
		return append([]byte(nil), raw...)
	}
	if b, err := base64.StdEncoding.DecodeString(s); err == nil {
		return b
	}
	return []byte(s)
}

// forChunks runs fn over [0,n) in chunks of MaxBatch, parallel at once.
func (m *Mailbox) forChunks(ctx context.Context, n, parallel int, fn func(ctx context.Context, lo, hi int) error) error {
	if n == 0 {
		return nil
	}
	if parallel < 1 {
		parallel = 1
	}
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	sem := make(chan struct{}, parallel)
	var wg sync.WaitGroup
	var once sync.Once
	var first error
	for lo := 0; lo < n; lo += MaxBatch {
		hi := min(lo+MaxBatch, n)
		select {
		case sem <- struct{}{}:
		case <-ctx.Done():
		}
		if ctx.Err() != nil {
			break
		}
		wg.Add(1)
		go func() {
			defer wg.Done()
			defer func() { <-sem }()
			defer func() {
				if r := recover(); r != nil {
					once.Do(func() { first = fmt.Errorf("graphsync: panic in batch fetch: %v", r); cancel() })
				}
			}()
			if err := fn(ctx, lo, hi); err != nil {
				once.Do(func() { first = err; cancel() })
			}
		}()
	}
	wg.Wait()
	if first != nil {
		return first
	}
	return ctx.Err()
}

// GetMIME downloads one message's raw MIME.
func (m *Mailbox) GetMIME(ctx context.Context, id string) ([]byte, error) {
	ri := abs.NewRequestInformation()
	ri.Method = abs.GET
	u, _ := url.Parse(m.url("messages/"+url.PathEscape(id)+"/$value", nil))
	ri.SetUri(*u)
	b, err := m.send(ctx, ri)
	if err != nil {
		return nil, fmt.Errorf("graphsync: MIME of %s: %w", id, err)
	}
	return b, nil
}

// ListAttachments lists a message's attachments; withData includes bytes.
func (m *Mailbox) ListAttachments(ctx context.Context, id string, withData bool) ([]Attachment, error) {
	q := url.Values{}
	if !withData {
		q.Set("$select", "id,name,contentType,size,isInline,contentId")
	}
	body, err := m.getRaw(ctx, m.url("messages/"+url.PathEscape(id)+"/attachments", q), nil)
	if err != nil {
		return nil, fmt.Errorf("graphsync: attachments of %s: %w", id, err)
	}
	var page struct {
		Value []wireAttachment `json:"value"`
	}
	if err := json.Unmarshal(body, &page); err != nil {
		return nil, fmt.Errorf("graphsync: decode attachments of %s: %w", id, err)
	}
	out := make([]Attachment, 0, len(page.Value))
	for _, a := range page.Value {
		out = append(out, a.attachment())
	}
	return out, nil
}

// GetAttachment downloads one attachment with its bytes.
func (m *Mailbox) GetAttachment(ctx context.Context, msgID, attID string) (Attachment, error) {
	body, err := m.getRaw(ctx, m.url("messages/"+url.PathEscape(msgID)+"/attachments/"+url.PathEscape(attID), nil), nil)
	if err != nil {
		return Attachment{}, fmt.Errorf("graphsync: attachment %s of %s: %w", attID, msgID, err)
	}
	var w wireAttachment
	if err := json.Unmarshal(body, &w); err != nil {
		return Attachment{}, fmt.Errorf("graphsync: decode attachment %s: %w", attID, err)
	}
	a := w.attachment()
	if a.Kind == "item" {
		raw, err := m.getRaw(ctx, m.url("messages/"+url.PathEscape(msgID)+"/attachments/"+url.PathEscape(attID)+"/$value", nil), nil)
		if err != nil {
			return Attachment{}, fmt.Errorf("graphsync: attached item %s of %s: %w", attID, msgID, err)
		}
		a.setItemMIME(raw)
	}
	return a, nil
}

// batchSlots is the default slot count of a $batch of n (4 at most), for
// callers without a Mailbox at hand.
func batchSlots(n int) int { return min(n, 4) }
