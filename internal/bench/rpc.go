package bench

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"math/rand"
	"net/http"
	"net/http/httptest"
	"sync"
	"time"

	"github.com/rs/zerolog"

	"github.com/maildesk/maildesk/bridge"
	"github.com/maildesk/maildesk/rpc"
)

// runRPC backfills a mailbox of o.Messages/4, then puts o.Clients concurrent JSON-RPC
// clients on message.list (a page of 50, at a random offset through the
// cursor) and message.get (a random message; its content comes from Graph
// at o.Latency the first time, then from the cache) for o.Duration/6.
func runRPC(ctx context.Context, o Options) (Result, error) {
	load := max(o.Duration/6, time.Second)
	n := max(o.Messages/4, 20)
	r := Result{Note: fmt.Sprintf("%d clients, %v, %d msgs", o.Clients, load, n)}
	e, err := newEnv(o, o.Latency)
	if err != nil {
		return r, err
	}
	defer e.close()
	upn := "rpc@" + e.sim.Domain()
	m, sy, g, err := e.synced(ctx, upn, n, 64<<10)
	if err != nil {
		return r, err
	}
	// The server as cmd/maildesk builds it (serve.go, sync.go).
	const secret = "bench-secret"
	boxes := bridge.NewMailboxes(e.st, zerolog.Nop())
	srv, err := rpc.New(rpc.Config{SharedSecret: secret}, rpc.Deps{Log: zerolog.Nop(), Mailboxes: boxes,
		System: bridge.NewSystem(e.st, bridge.BuildInfo{}), Settings: bridge.NewSettings(e.st, zerolog.Nop()), Audit: bridge.NewAuditLog(e.st, boxes)})
	if err != nil {
		return r, err
	}
	sched, err := bridge.NewScheduler(bridge.SchedulerConfig{Store: e.st, Sync: sy.SyncMailbox})
	if err != nil {
		return r, err
	}
	if err := rpc.RegisterSync(srv, bridge.NewSyncControl(e.st, boxes, sched), bridge.NewMessages(e.st, boxes, g, 64<<20)); err != nil {
		return r, err
	}
	hs := httptest.NewServer(srv.Handler())
	defer hs.Close()
	client := &http.Client{Timeout: time.Minute, Transport: &http.Transport{MaxIdleConnsPerHost: o.Clients * 2}}
	defer client.CloseIdleConnections()
	call := func(method string, params map[string]any, out any) error {
		params["context"] = map[string]any{"uid": 2}
		body, _ := json.Marshal(map[string]any{"jsonrpc": "2.0", "id": 1, "method": method, "params": params})
		req, _ := http.NewRequestWithContext(ctx, http.MethodPost, hs.URL+"/jsonrpc", bytes.NewReader(body))
		req.Header.Set("Content-Type", "application/json")
		req.Header.Set("Authorization", "Bearer "+secret)
		resp, err := client.Do(req)
		if err != nil {
			return err
		}
		defer resp.Body.Close()
		raw, _ := io.ReadAll(resp.Body)
		var env struct {
			Result json.RawMessage `json:"result"`
			Error  json.RawMessage `json:"error"`
		}
		if err := json.Unmarshal(raw, &env); err != nil || env.Result == nil {
			return fmt.Errorf("%s: HTTP %d: %.300s", method, resp.StatusCode, raw)
		}
		if out != nil {
			return json.Unmarshal(env.Result, out)
		}
		return nil
	}
	// Every message id and a cursor every 50 messages, read once.
	var ids, cursors []string
	cursors = append(cursors, "")
	for cur := ""; ; {
		var page bridge.MessageListResult
		if err := call("message.list", map[string]any{"mailbox_id": m.ID, "limit": 50, "cursor": cur}, &page); err != nil {
			return r, err
		}
		for _, s := range page.Messages {
			ids = append(ids, s.ID)
		}
		if page.NextCursor == "" {
			break
		}
		cur = page.NextCursor
		cursors = append(cursors, cur)
	}
	if len(ids) == 0 {
		return r, fmt.Errorf("message.list listed nothing")
	}
	var (
		mu        sync.Mutex
		list, get []time.Duration
		firstErr  error
		wg        sync.WaitGroup
	)
	deadline := time.Now().Add(load)
	for c := 0; c < o.Clients; c++ {
		wg.Add(1)
		go func(c int) {
			defer wg.Done()
			rnd := rand.New(rand.NewSource(int64(c)))
			for i := 0; time.Now().Before(deadline); i++ {
				t0 := time.Now()
				var err error
				if i%2 == 0 {
					err = call("message.list", map[string]any{"mailbox_id": m.ID, "limit": 50, "cursor": cursors[rnd.Intn(len(cursors))]}, nil)
				} else {
					err = call("message.get", map[string]any{"mailbox_id": m.ID, "message_id": ids[rnd.Intn(len(ids))]}, nil)
				}
				d := time.Since(t0)
				mu.Lock()
				if err != nil && firstErr == nil {
					firstErr = err
				}
				if i%2 == 0 {
					list = append(list, d)
				} else {
					get = append(get, d)
				}
				mu.Unlock()
				if err != nil {
					return
				}
			}
		}(c)
	}
	wg.Wait()
	if firstErr != nil {
		return r, firstErr
	}
	lp50, _, lp99 := percentiles(list)
	gp50, _, gp99 := percentiles(get)
	r.add("calls_per_s", float64(len(list)+len(get))/load.Seconds())
	r.add("list_p50_ms", lp50)
	r.add("list_p99_ms", lp99)
	r.add("get_p50_ms", gp50)
	r.add("get_p99_ms", gp99)
	return r, nil
}
