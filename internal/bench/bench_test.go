package bench

import (
	"bytes"
	"context"
	"encoding/json"
	"os"
	"os/exec"
	"strings"
	"testing"
	"time"

	"github.com/maildesk/maildesk/store/pgstore/pgtest"
)

// TestMain makes the test binary a bench child when the parent asks.
func TestMain(m *testing.M) {
	if IsChild() {
		os.Exit(Child(context.Background(), os.Stdout))
	}
	code := m.Run()
	pgtest.Stop() // the scaleout test's private PostgreSQL, if it started one
	os.Exit(code)
}

func self(env []string) *exec.Cmd { return exec.Command(os.Args[0], "-test.run=^$") }

// tiny sizes every scenario so the whole scoreboard runs in seconds.
func tiny() Options {
	return Options{Messages: 60, Latency: 5 * time.Millisecond, Mailboxes: 5, Poll: time.Second, Duration: 2 * time.Second,
		Samples: 2, LatencyPoll: 300 * time.Millisecond, OdooLatency: time.Millisecond, Items: 40, Clients: 2, Kills: 2, Self: self}
}

// TestScoreboardShape runs each scenario at a tiny size and checks what it
// prints: one JSON line per scenario with its figures, then the table;
// the backfill and the chaos run lose and duplicate nothing.
func TestScoreboardShape(t *testing.T) {
	t.Parallel()
	if testing.Short() {
		t.Skip("starts child processes and simulators")
	}
	want := map[string][]string{
		"backfill": {"messages", "msg_per_s", "req_per_msg", "budget_share", "throttled_429", "cpu_s_per_1k", "rss_mb", "lost", "dup"},
		"fleet":    {"mailboxes", "cpu_pct", "rss_mb", "rounds_per_s", "req_per_mailbox_h", "failed_rounds"},
		"latency":  {"poll_p50_ms", "poll_p95_ms", "poll_p99_ms", "notify_p50_ms", "notify_p95_ms", "notify_p99_ms"},
		"push":     {"items", "items_per_s", "calls", "items_per_call"},
		"rpc":      {"calls_per_s", "list_p50_ms", "list_p99_ms", "get_p50_ms", "get_p99_ms"},
		"chaos":    {"messages", "kills", "graph_faults", "lost", "dup"},
		"binary":   {"size_mb", "stripped"},
	}
	var out bytes.Buffer
	res, err := Run(context.Background(), tiny(), &out)
	if err != nil {
		t.Fatalf("%v\n%s", err, out.String())
	}
	t.Logf("\n%s", out.String())
	lines := strings.Split(strings.TrimSpace(out.String()), "\n")
	if len(res) != len(Scenarios) || len(lines) < len(Scenarios)+1 {
		t.Fatalf("%d results, %d lines", len(res), len(lines))
	}
	for i, name := range Scenarios {
		var obj map[string]any
		if err := json.Unmarshal([]byte(lines[i]), &obj); err != nil {
			t.Fatalf("line %d is not JSON: %q", i, lines[i])
		}
		if obj["scenario"] != name {
			t.Errorf("line %d: scenario %v, want %s", i, obj["scenario"], name)
		}
		for _, k := range append(want[name], "wall_s") {
			if _, ok := obj[k].(float64); !ok {
				t.Errorf("%s: no number %q in %s", name, k, lines[i])
			}
		}
		if !strings.Contains(out.String(), "\n"+name+" ") {
			t.Errorf("the table has no row for %s", name)
		}
	}
	if !strings.HasPrefix(lines[len(Scenarios)], "scenario") {
		t.Errorf("no table header after the JSON lines: %q", lines[len(Scenarios)])
	}
	for _, r := range res {
		for _, k := range []string{"lost", "dup"} {
			if v, ok := r.Get(k); ok && v != 0 {
				t.Errorf("%s: %s = %v", r.Scenario, k, v)
			}
		}
		if v, ok := r.Get("messages"); ok && v == 0 {
			t.Errorf("%s moved no message", r.Scenario)
		}
	}
	if v, _ := res[0].Get("messages"); v != 60 {
		t.Errorf("backfill queued %v messages, want 60", v)
	}
}
