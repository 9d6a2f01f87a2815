package rpc

import (
	"bytes"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"sort"
	"sync"
	"testing"
	"time"
)

const benchClients = 32

// benchSetup starts a real HTTP server on 127.0.0.1 over a store of n
// mailboxes and returns a keep-alive client, the URL and the mailbox ids.
func benchSetup(b *testing.B, n int) (*http.Client, string, []string) {
	b.Helper()
	e := newEnv(b, Config{})
	client := &http.Client{
		Timeout: 10 * time.Second,
		Transport: &http.Transport{
			MaxIdleConns:        benchClients * 2,
			MaxIdleConnsPerHost: benchClients * 2,
			IdleConnTimeout:     time.Minute,
		},
	}
	b.Cleanup(client.CloseIdleConnections)
	ids := make([]string, 0, n)
	for i := 0; i < n; i++ {
		body := fmt.Sprintf(`{"jsonrpc":"2.0","id":%d,"method":"mailbox.create","params":{"context":{"uid":2},"email":"box%d@example.com","kind":"shared","user_ids":[2,%d]}}`, i, i, 3+i%7)
		out, err := benchPost(client, e.http.URL+"/jsonrpc", []byte(body))
		if err != nil {
			b.Fatal(err)
		}
		var r struct {
			Result struct {
				ID string `json:"id"`
			} `json:"result"`
		}
		if err := json.Unmarshal(out, &r); err != nil || r.Result.ID == "" {
			b.Fatalf("create mailbox %d: %v: %s", i, err, out)
		}
		ids = append(ids, r.Result.ID)
	}
	return client, e.http.URL + "/jsonrpc", ids
}

func benchPost(c *http.Client, url string, body []byte) ([]byte, error) {
	req, err := http.NewRequest(http.MethodPost, url, bytes.NewReader(body))
	if err != nil {
		return nil, err
	}
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("Authorization", "Bearer "+testSecret)
	resp, err := c.Do(req)
	if err != nil {
		return nil, err
	}
	defer resp.Body.Close()
	out, err := io.ReadAll(resp.Body)
	if err != nil {
		return nil, err
	}
	if resp.StatusCode != http.StatusOK || !bytes.Contains(out, []byte(`"result"`)) {
		return nil, fmt.Errorf("HTTP %d: %s", resp.StatusCode, out)
	}
	return out, nil
}

func getBody(i int, id string) []byte {
	return []byte(fmt.Sprintf(`{"jsonrpc":"2.0","id":%d,"method":"mailbox.get","params":{"context":{"uid":2},"mailbox_id":%q}}`, i, id))
}

func percentile(sorted []time.Duration, p float64) float64 {
	if len(sorted) == 0 {
		return 0
	}
	i := int(float64(len(sorted)-1) * p)
	return float64(sorted[i]) / float64(time.Millisecond)
}

// BenchmarkMailboxGet measures mailbox.get over HTTP: 32 clients as fast as
// they go (p50, p99, requests/s), and a paced 500 requests/s (p99; the goal
// is p99 ≤ 5 ms on 2 cores).
func BenchmarkMailboxGet(b *testing.B) {
	b.Run("clients=32", func(b *testing.B) {
		client, url, ids := benchSetup(b, 500)
		lat := make([]time.Duration, b.N)
		var (
			wg       sync.WaitGroup
			errOnce  sync.Once
			firstErr error
		)
		next := make(chan int, benchClients)
		b.ResetTimer()
		start := time.Now()
		for w := 0; w < benchClients; w++ {
			wg.Add(1)
			go func() {
				defer wg.Done()
				for i := range next {
					t0 := time.Now()
					if _, err := benchPost(client, url, getBody(i, ids[i%len(ids)])); err != nil {
						errOnce.Do(func() { firstErr = err })
					}
					lat[i] = time.Since(t0)
				}
			}()
		}
		for i := 0; i < b.N; i++ {
			next <- i
		}
		close(next)
		wg.Wait()
		elapsed := time.Since(start)
		b.StopTimer()
		if firstErr != nil {
			b.Fatal(firstErr)
		}
		sort.Slice(lat, func(i, j int) bool { return lat[i] < lat[j] })
		b.ReportMetric(percentile(lat, 0.50), "p50-ms")
		b.ReportMetric(percentile(lat, 0.99), "p99-ms")
		b.ReportMetric(float64(b.N)/elapsed.Seconds(), "req/s")
	})

	b.Run("paced=500rps", func(b *testing.B) {
		const rate = 500
		client, url, ids := benchSetup(b, 500)
		lat := make([]time.Duration, b.N)
		var (
			wg       sync.WaitGroup
			errOnce  sync.Once
			firstErr error
		)
		type job struct {
			i   int
			due time.Time
		}
		next := make(chan job, b.N)
		for w := 0; w < benchClients; w++ {
			wg.Add(1)
			go func() {
				defer wg.Done()
				for j := range next {
					if _, err := benchPost(client, url, getBody(j.i, ids[j.i%len(ids)])); err != nil {
						errOnce.Do(func() { firstErr = err })
					}
					// Latency from when the request was due, so a server
					// that falls behind the pace shows it.
					lat[j.i] = time.Since(j.due)
				}
			}()
		}
		b.ResetTimer()
		start := time.Now()
		interval := time.Second / rate
		for i := 0; i < b.N; i++ {
			due := start.Add(time.Duration(i) * interval)
			if d := time.Until(due); d > 0 {
				time.Sleep(d) // pacing the load generator, not waiting on a result
			}
			next <- job{i: i, due: due}
		}
		close(next)
		wg.Wait()
		elapsed := time.Since(start)
		b.StopTimer()
		if firstErr != nil {
			b.Fatal(firstErr)
		}
		sort.Slice(lat, func(i, j int) bool { return lat[i] < lat[j] })
		b.ReportMetric(percentile(lat, 0.50), "p50-ms")
		b.ReportMetric(percentile(lat, 0.99), "p99-ms")
		b.ReportMetric(float64(b.N)/elapsed.Seconds(), "req/s")
	})
}
