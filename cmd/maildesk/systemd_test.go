package main

import (
	"context"
	"errors"
	"net"
	"path/filepath"
	"strconv"
	"sync/atomic"
	"testing"
	"time"

	"github.com/rs/zerolog"
)

func TestSystemdNotify(t *testing.T) {
	path := filepath.Join(t.TempDir(), "n.sock")
	l, err := net.ListenUnixgram("unixgram", &net.UnixAddr{Name: path, Net: "unixgram"})
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	read := func() string {
		t.Helper()
		buf := make([]byte, 1024)
		_ = l.SetReadDeadline(time.Now().Add(time.Minute))
		n, err := l.Read(buf)
		if err != nil {
			t.Fatalf("notify socket: %v", err)
		}
		return string(buf[:n])
	}
	env := map[string]string{"NOTIFY_SOCKET": path, "WATCHDOG_USEC": "4000"}
	s := newSystemdNotify(func(k string) string { return env[k] }, zerolog.Nop())
	if s.interval != 2*time.Millisecond {
		t.Fatalf("watchdog interval %v, want half of WATCHDOG_USEC (2ms)", s.interval)
	}
	s.ready("serving JSON-RPC on http://127.0.0.1:1")
	if got := read(); got != "READY=1\nSTATUS=serving JSON-RPC on http://127.0.0.1:1" {
		t.Fatalf("ready sent %q", got)
	}
	// The store fails twice: the first keep-alive follows the third check.
	var checks atomic.Int64
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() {
		defer close(done)
		s.watchdog(ctx, func() error {
			if checks.Add(1) <= 2 {
				return errors.New("store: meta bucket missing")
			}
			return nil
		})
	}()
	if got := read(); got != "WATCHDOG=1" {
		t.Fatalf("watchdog sent %q", got)
	}
	if c := checks.Load(); c < 3 {
		t.Fatalf("keep-alive sent after %d checks, two of which failed", c)
	}
	cancel()
	<-done
	s.stopping()
	for {
		if got := read(); got == "STOPPING=1" {
			break
		} else if got != "WATCHDOG=1" {
			t.Fatalf("unexpected %q", got)
		}
	}

	// WATCHDOG_PID naming another process: no watchdog at all.
	env["WATCHDOG_PID"] = strconv.Itoa(1)
	if s := newSystemdNotify(func(k string) string { return env[k] }, zerolog.Nop()); s.interval != 0 {
		t.Fatalf("watchdog for another pid: interval %v", s.interval)
	}
	// No NOTIFY_SOCKET: everything is a no-op, and nil is safe too.
	quiet := newSystemdNotify(func(string) string { return "" }, zerolog.Nop())
	quiet.ready("x")
	quiet.stopping()
	quiet.watchdog(context.Background(), func() error { return nil })
	var none *systemdNotify
	none.ready("x")
	none.stopping()
	none.watchdog(context.Background(), func() error { return nil })
}
