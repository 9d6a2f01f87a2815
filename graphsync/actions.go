package graphsync

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"net/url"
	"strconv"
	"time"
)

// actionReq is one inner request of a $batch that carries a JSON body.
type actionReq struct {
	ID      string            `json:"id"`
	Method  string            `json:"method"`
	URL     string            `json:"url"`
	Headers map[string]string `json:"headers,omitempty"`
	Body    any               `json:"body,omitempty"`
}

// SetRead sets isRead on messages, 20 PATCHes per $batch. It returns the
// error of each message that failed (nil map: all done); err is a failure
// of the whole call.
func (m *Mailbox) SetRead(ctx context.Context, ids []string, read bool) (map[string]error, error) {
	return m.actionBatch(ctx, ids, func(id string) actionReq {
		return actionReq{Method: http.MethodPatch, URL: m.rel("messages/" + url.PathEscape(id)), Body: map[string]any{"isRead": read}}
	}, nil)
}

// SetFlag flags messages for follow-up or clears the flag (followupFlag
// flagStatus "flagged" / "notFlagged"), 20 PATCHes per $batch; the answer
// is SetRead's.
func (m *Mailbox) SetFlag(ctx context.Context, ids []string, flagged bool) (map[string]error, error) {
	status := "notFlagged"
	if flagged {
		status = "flagged"
	}
	return m.actionBatch(ctx, ids, func(id string) actionReq {
		return actionReq{Method: http.MethodPatch, URL: m.rel("messages/" + url.PathEscape(id)), Body: map[string]any{"flag": map[string]any{"flagStatus": status}}}
	}, nil)
}

// MoveMessages moves messages to a folder (well-known name or folder id),
// 20 POST /move per $batch. With immutable ids a message keeps its id; moved
// maps each moved id to the id Graph answered.
func (m *Mailbox) MoveMessages(ctx context.Context, ids []string, destination string) (moved map[string]string, failed map[string]error, err error) {
	moved = map[string]string{}
	failed, err = m.actionBatch(ctx, ids, func(id string) actionReq {
		return actionReq{Method: http.MethodPost, URL: m.rel("messages/" + url.PathEscape(id) + "/move"), Body: map[string]any{"destinationId": destination}}
	}, func(id string, r batchResp) {
		var out struct {
			ID string `json:"id"`
		}
		_ = json.Unmarshal(r.Body, &out)
		if out.ID == "" {
			out.ID = id
		}
		moved[id] = out.ID
	})
	return moved, failed, err
}

// actionBatch runs one request per id in $batch envelopes of at most
// MaxBatch. Inner 429s and 5xx are retried (a Retry-After pauses the
// mailbox) up to the retry limit; ok is called for each 2xx answer.
func (m *Mailbox) actionBatch(ctx context.Context, ids []string, build func(id string) actionReq, ok func(id string, r batchResp)) (map[string]error, error) {
	var failed map[string]error
	pending := append([]string(nil), ids...)
	ro := m.c.cfg.Retry
	for attempt := 1; len(pending) > 0; attempt++ {
		var retry []string
		for start := 0; start < len(pending); start += MaxBatch {
			chunk := pending[start:min(start+MaxBatch, len(pending))]
			reqs := make([]actionReq, len(chunk))
			for k, id := range chunk {
				r := build(id)
				r.ID = strconv.Itoa(k)
				r.Headers = map[string]string{"Prefer": `IdType="ImmutableId"`, "Content-Type": "application/json"}
				reqs[k] = r
			}
			resps, err := m.sendActionBatch(ctx, reqs)
			if err != nil {
				return nil, err
			}
			got := map[int]bool{}
			var pause time.Duration
			for _, r := range resps {
				k, err := strconv.Atoi(r.ID)
				if err != nil || k < 0 || k >= len(chunk) {
					continue
				}
				got[k] = true
				id := chunk[k]
				switch {
				case r.Status >= 200 && r.Status < 300:
					if ok != nil {
						ok(id, r)
					}
					delete(failed, id)
				case (r.Status == http.StatusTooManyRequests || r.Status >= 500) && attempt < ro.MaxAttempts:
					if r.Status == http.StatusTooManyRequests {
						m.c.metrics.throttled.WithLabelValues(m.id).Inc()
					}
					retry = append(retry, id)
					h := http.Header{}
					for hk, hv := range r.Headers {
						h.Set(hk, hv)
					}
					if d, ok := retryAfter(h, ro.MaxPause); ok && d > pause {
						pause = d
					}
				default:
					if failed == nil {
						failed = map[string]error{}
					}
					failed[id] = innerError(r)
				}
			}
			for k, id := range chunk {
				if got[k] {
					continue
				}
				if attempt < ro.MaxAttempts {
					retry = append(retry, id)
					continue
				}
				if failed == nil {
					failed = map[string]error{}
				}
				failed[id] = fmt.Errorf("graphsync: no answer for %s in the $batch", id)
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
	return failed, nil
}

func (m *Mailbox) sendActionBatch(ctx context.Context, reqs []actionReq) ([]batchResp, error) {
	var env struct {
		Responses []batchResp `json:"responses"`
	}
	if err := m.postJSON(withCost(ctx, len(reqs), m.batchSlots(len(reqs))), m.c.cfg.BaseURL+"/$batch",
		map[string]any{"requests": reqs}, &env); err != nil {
		return nil, fmt.Errorf("graphsync: $batch of %d for %s: %w", len(reqs), m.id, err)
	}
	return env.Responses, nil
}
