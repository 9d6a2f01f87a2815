package main

import (
	"context"
	"encoding/json"
	"io"
	"net"
	"net/http"
	"path/filepath"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus/testutil"
	"github.com/rs/zerolog"

	"github.com/maildesk/maildesk/bridge"
	"github.com/maildesk/maildesk/internal/recovery"
)

// A background loop that panics is restarted with backoff and counted;
// while it waits to restart, system.health and /readyz say it is down; the
// real scheduler and pusher report their own state instead of a constant.
func TestPanickingWorkerRestartsAndHealthSaysDown(t *testing.T) {
	dir := t.TempDir()
	cfg := Config{Listen: "127.0.0.1:0", DataDir: dir, LogLevel: "warn", LogFormat: "json", MaxBodyBytes: 1 << 20,
		ShutdownGrace: time.Second, KeyFile: filepath.Join(dir, "maildesk.key"), SharedSecretFile: filepath.Join(dir, "shared-secret")}
	key, secret, err := prepareDataDir(cfg, io.Discard)
	if err != nil {
		t.Fatal(err)
	}
	a, err := buildApp(cfg, zerolog.Nop(), key, secret)
	if err != nil {
		t.Fatal(err)
	}
	a.superviseOpts = func(name string) recovery.SuperviseOptions {
		if name == "stuck" {
			return recovery.SuperviseOptions{BackoffBase: time.Hour, BackoffMax: time.Hour}
		}
		return recovery.SuperviseOptions{BackoffBase: time.Millisecond, BackoffMax: 2 * time.Millisecond}
	}
	var runs atomic.Int32
	flaky := a.AddWorker("flaky", func(ctx context.Context) {
		if runs.Add(1) <= 2 {
			panic("flaky loop failed")
		}
		<-ctx.Done()
	})
	stuck := a.AddWorker("stuck", func(ctx context.Context) { panic("stuck loop failed") })
	a.System.AddComponent("flaky", func(context.Context) bridge.ComponentStatus { return workerHealth(flaky) })
	a.System.AddComponent("stuck", func(context.Context) bridge.ComponentStatus { return workerHealth(stuck) })

	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	a.net, _ = newNetSecurity(NetConfig{}, zerolog.Nop(), a.Registry)
	a.sd = newSystemdNotify(func(string) string { return "" }, zerolog.Nop())
	ctx, cancel := context.WithCancel(context.Background())
	served := make(chan error, 1)
	go func() { served <- a.serveOn(ctx, ln, io.Discard) }()
	defer func() {
		cancel()
		<-served
	}()
	base := "http://" + ln.Addr().String()

	deadline := time.Now().Add(2 * time.Minute) // ends a stuck test only
	for flaky.Status().State != recovery.StateRunning || flaky.Restarts() != 2 || stuck.Status().State != recovery.StateRestarting {
		if time.Now().After(deadline) {
			t.Fatalf("flaky %+v, stuck %+v", flaky.Status(), stuck.Status())
		}
		time.Sleep(time.Millisecond)
	}
	if n := testutil.ToFloat64(a.Group.RestartsOf("flaky")); n != 2 {
		t.Fatalf("maildesk_component_restarts_total{component=flaky} = %v, want 2", n)
	}

	// system.health
	body := `{"jsonrpc":"2.0","id":1,"method":"system.health","params":{}}`
	req, _ := http.NewRequest("POST", base+"/jsonrpc", strings.NewReader(body))
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("Authorization", "Bearer "+secret)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	var h struct {
		Result bridge.Health `json:"result"`
	}
	err = json.NewDecoder(resp.Body).Decode(&h)
	resp.Body.Close()
	if err != nil {
		t.Fatal(err)
	}
	if h.Result.Status != bridge.StatusDown || h.Result.Components["stuck"].Status != bridge.StatusDown ||
		!strings.Contains(h.Result.Components["stuck"].Detail, "stuck loop failed") {
		t.Fatalf("system.health with a component waiting to restart: %+v", h.Result)
	}
	if c := h.Result.Components["flaky"]; c.Status != bridge.StatusOK || !strings.Contains(c.Detail, "restarted 2 times") {
		t.Fatalf("restarted component: %+v", c)
	}
	for _, name := range []string{"scheduler", "pusher"} {
		if c := h.Result.Components[name]; c.Status != bridge.StatusOK {
			t.Fatalf("%s: %+v", name, c)
		}
	}

	// /readyz names the component that is down.
	resp, err = http.Get(base + "/readyz")
	if err != nil {
		t.Fatal(err)
	}
	var ready struct {
		Status     string            `json:"status"`
		Components map[string]string `json:"components"`
	}
	_ = json.NewDecoder(resp.Body).Decode(&ready)
	resp.Body.Close()
	if resp.StatusCode != http.StatusServiceUnavailable || !strings.HasPrefix(ready.Components["stuck"], "down") || ready.Components["store"] != "ok" {
		t.Fatalf("/readyz %d %+v", resp.StatusCode, ready)
	}
	if _, listed := ready.Components["flaky"]; listed {
		t.Fatalf("/readyz lists a running component as failing: %+v", ready)
	}
}

// The scheduler counts as down when its loop made no pass for a while,
// although it did not panic.
func TestSchedulerHealthStuckLoop(t *testing.T) {
	g := recovery.New(zerolog.Nop(), nil)
	sup := g.Supervisor("scheduler", recovery.SuperviseOptions{})
	ctx, cancel := context.WithCancel(context.Background())
	started := make(chan struct{})
	done := make(chan struct{})
	go func() { defer close(done); sup.Run(ctx, func(ctx context.Context) { close(started); <-ctx.Done() }) }()
	<-started
	now := time.Now()
	if cs := schedulerHealth(sup, now.Add(-time.Second), now); cs.Status != bridge.StatusOK {
		t.Fatalf("fresh loop: %+v", cs)
	}
	if cs := schedulerHealth(sup, now.Add(-5*time.Minute), now); cs.Status != bridge.StatusDown || !strings.Contains(cs.Detail, "no pass for 5m0s") {
		t.Fatalf("stuck loop: %+v", cs)
	}
	cancel()
	<-done
	if cs := schedulerHealth(sup, now, now); cs.Status != bridge.StatusDown {
		t.Fatalf("stopped loop: %+v", cs)
	}
}
