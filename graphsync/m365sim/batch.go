package m365sim

import (
	"bytes"
	"encoding/base64"
	"encoding/json"
	"io"
	"net/http"
	"strconv"
	"strings"
	"sync"
)

const maxBatch = 20

type batchItem struct {
	ID        string            `json:"id"`
	Method    string            `json:"method"`
	URL       string            `json:"url"`
	Headers   map[string]string `json:"headers"`
	Body      json.RawMessage   `json:"body"`
	DependsOn []string          `json:"dependsOn"`
}

// recorder captures an inner response.
type recorder struct {
	h      http.Header
	status int
	buf    bytes.Buffer
}

func (r *recorder) Header() http.Header { return r.h }
func (r *recorder) Write(b []byte) (int, error) {
	if r.status == 0 {
		r.status = 200
	}
	return r.buf.Write(b)
}
func (r *recorder) WriteHeader(s int) {
	if r.status == 0 {
		r.status = s
	}
}

// serveBatch runs a JSON batch (samples 50-52): at most 20 requests, each
// authenticated, counted and throttled on its own; the envelope is 200.
// Up to batchParallel requests run at once, as Outlook runs them;
// dependsOn orders them (a failed prerequisite gives 424).
func (s *Sim) serveBatch(w http.ResponseWriter, r *http.Request) {
	g := &greq{sim: s, w: w, r: r, reqID: newRequestID()}
	if r.Method != http.MethodPost {
		g.error(405, "BadRequest", "Method not allowed.")
		return
	}
	at, why := s.authenticate(r)
	if at == nil {
		s.countAnon()
		g.error(401, "InvalidAuthenticationToken", why)
		return
	}
	var body struct {
		Requests []batchItem `json:"requests"`
	}
	if err := json.NewDecoder(io.LimitReader(r.Body, 4*maxRequestBody)).Decode(&body); err != nil {
		g.error(400, "BadRequest", "Invalid batch payload format.")
		return
	}
	if len(body.Requests) == 0 {
		g.error(400, "BadRequest", "Invalid batch payload format: no requests.")
		return
	}
	if len(body.Requests) > maxBatch {
		g.error(400, "BadRequest", "The number of batch requests exceeds the maximum ("+strconv.Itoa(maxBatch)+").")
		return
	}
	ids := map[string]bool{}
	for _, it := range body.Requests {
		if it.ID == "" || ids[it.ID] || it.Method == "" || it.URL == "" {
			g.error(400, "BadRequest", "Invalid batch payload format: each request needs a unique id, a method and a url.")
			return
		}
		ids[it.ID] = true
	}
	s.mu.Lock()
	s.total.Batches++
	if st := s.stats[strings.ToLower(at.user.UPN)]; st != nil {
		st.Batches++
	}
	s.mu.Unlock()
	// Like Outlook, run up to batchParallel inner requests at once; a
	// request with dependsOn starts when its prerequisites finished.
	var (
		mu     sync.Mutex
		status = map[string]int{}
		done   = map[string]chan struct{}{}
		out    = make([]any, len(body.Requests))
		sem    = make(chan struct{}, batchParallel)
		wg     sync.WaitGroup
	)
	for _, it := range body.Requests {
		done[it.ID] = make(chan struct{})
	}
	for i, it := range body.Requests {
		wg.Add(1)
		go func() {
			defer wg.Done()
			defer close(done[it.ID])
			failed := false
			for _, d := range it.DependsOn {
				if ch, ok := done[d]; ok {
					<-ch
				}
				mu.Lock()
				st, ok := status[d]
				mu.Unlock()
				if !ok || st < 200 || st > 299 {
					failed = true
				}
			}
			if failed {
				mu.Lock()
				status[it.ID] = 424
				mu.Unlock()
				out[i] = map[string]any{"id": it.ID, "status": 424, "headers": map[string]string{"Content-Type": "application/json"},
					"body": map[string]any{"error": map[string]any{"code": "FailedDependency", "message": "The request could not be run because a request it depends on failed."}}}
				return
			}
			sem <- struct{}{}
			rec := s.runInner(r, it)
			<-sem
			mu.Lock()
			status[it.ID] = rec.status
			mu.Unlock()
			item := map[string]any{"id": it.ID, "status": rec.status}
			hdrs := map[string]string{}
			for k := range rec.h {
				switch k {
				case "Content-Length", "Request-Id", "Client-Request-Id":
					continue
				}
				hdrs[k] = rec.h.Get(k)
			}
			item["headers"] = hdrs
			if rec.buf.Len() > 0 {
				if strings.HasPrefix(rec.h.Get("Content-Type"), "application/json") {
					item["body"] = json.RawMessage(rec.buf.Bytes())
				} else {
					item["body"] = base64.StdEncoding.EncodeToString(rec.buf.Bytes())
				}
			}
			out[i] = item
		}()
	}
	wg.Wait()
	writeJSON(w, 200, map[string]any{"responses": out})
}

// batchParallel is how many inner requests of a $batch Outlook runs at once
// (FACTS.md, Graph docs concepts/json-batching.md).
const batchParallel = 4

func (s *Sim) runInner(outer *http.Request, it batchItem) *recorder {
	rec := &recorder{h: http.Header{}}
	u := it.URL
	if strings.HasPrefix(u, "http") {
		rec.status = 400
		rec.h.Set("Content-Type", "application/json")
		_ = json.NewEncoder(&rec.buf).Encode(map[string]any{"error": map[string]any{"code": "BadRequest", "message": "A batch request url must be relative."}})
		return rec
	}
	var body io.Reader = http.NoBody
	ct := ""
	for k, v := range it.Headers {
		if strings.EqualFold(k, "Content-Type") {
			ct = v
		}
	}
	if len(it.Body) > 0 && string(it.Body) != "null" {
		if strings.HasPrefix(strings.ToLower(ct), "application/json") || ct == "" {
			body = bytes.NewReader(it.Body)
		} else {
			var str string
			if json.Unmarshal(it.Body, &str) == nil {
				body = strings.NewReader(str)
			} else {
				body = bytes.NewReader(it.Body)
			}
		}
	}
	req, err := http.NewRequestWithContext(outer.Context(), strings.ToUpper(it.Method), "/v1.0/"+strings.TrimPrefix(u, "/"), body)
	if err != nil {
		rec.status = 400
		rec.h.Set("Content-Type", "application/json")
		_ = json.NewEncoder(&rec.buf).Encode(map[string]any{"error": map[string]any{"code": "BadRequest", "message": "Invalid request url."}})
		return rec
	}
	req.Header.Set("Authorization", outer.Header.Get("Authorization"))
	for k, v := range it.Headers {
		req.Header.Set(k, v)
	}
	if ct == "" && len(it.Body) > 0 {
		req.Header.Set("Content-Type", "application/json")
	}
	s.serveGraph(rec, req, true)
	if rec.status == 0 {
		rec.status = 200
	}
	return rec
}
