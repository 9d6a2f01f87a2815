package sdnotify

import (
	"context"
	"errors"
	"fmt"
	"net"
	"os"
	"path/filepath"
	"sync/atomic"
	"testing"
	"time"
)

// listen opens a fake systemd notify socket at addr.
func listen(t *testing.T, addr string) *net.UnixConn {
	t.Helper()
	c, err := net.ListenUnixgram("unixgram", &net.UnixAddr{Name: addr, Net: "unixgram"})
	if err != nil {
		t.Fatalf("listen %s: %v", addr, err)
	}
	t.Cleanup(func() { c.Close() })
	return c
}

// recv reads one datagram, failing the test after a deadline.
func recv(t *testing.T, c *net.UnixConn) string {
	t.Helper()
	buf := make([]byte, 4096)
	_ = c.SetReadDeadline(time.Now().Add(time.Minute))
	n, err := c.Read(buf)
	if err != nil {
		t.Fatalf("read notify socket: %v", err)
	}
	return string(buf[:n])
}

func env(m map[string]string) func(string) string {
	return func(k string) string { return m[k] }
}

func TestDisabledIsNoop(t *testing.T) {
	n := New(env(nil))
	if n.Enabled() {
		t.Fatal("enabled without NOTIFY_SOCKET")
	}
	for _, f := range []func() error{n.Ready, n.Stopping, n.Ping} {
		if err := f(); err != nil {
			t.Fatalf("disabled notifier returned %v", err)
		}
	}
	var nilN *Notifier
	if nilN.Enabled() || nilN.Notify(Ready) != nil {
		t.Fatal("nil notifier must be a disabled no-op")
	}
	// RunWatchdog on a disabled notifier returns at once.
	n.RunWatchdog(context.Background(), time.Millisecond, func() error { return nil }, nil)
}

func TestSendsToPathSocket(t *testing.T) {
	path := filepath.Join(t.TempDir(), "notify.sock")
	l := listen(t, path)
	n := New(env(map[string]string{"NOTIFY_SOCKET": path}))
	if !n.Enabled() || n.Socket() != path {
		t.Fatalf("notifier not enabled for %s", path)
	}
	steps := []struct {
		send func() error
		want string
	}{
		{n.Ready, "READY=1"},
		{n.Ping, "WATCHDOG=1"},
		{func() error { return n.Status("syncing 3 mailboxes\nsecond line") }, "STATUS=syncing 3 mailboxes second line"},
		{n.Stopping, "STOPPING=1"},
	}
	for _, s := range steps {
		if err := s.send(); err != nil {
			t.Fatalf("send %s: %v", s.want, err)
		}
		if got := recv(t, l); got != s.want {
			t.Fatalf("socket got %q, want %q", got, s.want)
		}
	}
}

func TestSendsToAbstractSocket(t *testing.T) {
	name := fmt.Sprintf("@maildesk-sdnotify-test-%d-%d", os.Getpid(), time.Now().UnixNano())
	l := listen(t, name)
	n := New(env(map[string]string{"NOTIFY_SOCKET": name}))
	if err := n.Ready(); err != nil {
		t.Fatal(err)
	}
	if got := recv(t, l); got != Ready {
		t.Fatalf("got %q", got)
	}
}

func TestNotifyErrors(t *testing.T) {
	for _, sock := range []string{
		"relative/path.sock",
		"vsock:2:1234",
		filepath.Join(t.TempDir(), "nobody-listens.sock"),
	} {
		n := New(env(map[string]string{"NOTIFY_SOCKET": sock}))
		if err := n.Ready(); err == nil {
			t.Errorf("NOTIFY_SOCKET=%q: want an error, got nil", sock)
		}
	}
}

func TestWatchdogInterval(t *testing.T) {
	const pid = 4242
	cases := []struct {
		name    string
		env     map[string]string
		want    time.Duration
		wantOff bool
		wantErr bool
	}{
		{name: "unset", env: nil, wantOff: true},
		{name: "zero", env: map[string]string{"WATCHDOG_USEC": "0"}, wantOff: true},
		{name: "plain", env: map[string]string{"WATCHDOG_USEC": "30000000"}, want: 30 * time.Second},
		{name: "our pid", env: map[string]string{"WATCHDOG_USEC": "500000", "WATCHDOG_PID": "4242"}, want: 500 * time.Millisecond},
		{name: "other pid", env: map[string]string{"WATCHDOG_USEC": "500000", "WATCHDOG_PID": "1"}, wantOff: true},
		{name: "bad usec", env: map[string]string{"WATCHDOG_USEC": "30s"}, wantErr: true},
		{name: "negative", env: map[string]string{"WATCHDOG_USEC": "-5"}, wantErr: true},
		{name: "bad pid", env: map[string]string{"WATCHDOG_USEC": "5", "WATCHDOG_PID": "x"}, wantErr: true},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			got, err := WatchdogInterval(env(c.env), pid)
			switch {
			case c.wantOff:
				if !errors.Is(err, ErrWatchdogOff) {
					t.Fatalf("want ErrWatchdogOff, got %v, %v", got, err)
				}
			case c.wantErr:
				if err == nil || errors.Is(err, ErrWatchdogOff) {
					t.Fatalf("want a parse error, got %v, %v", got, err)
				}
			default:
				if err != nil || got != c.want {
					t.Fatalf("got %v, %v; want %v", got, err, c.want)
				}
			}
		})
	}
}

// The watchdog pings only while the health check passes: with the first
// three checks failing, the first WATCHDOG=1 arrives after the fourth check.
func TestRunWatchdogPingsOnlyWhenHealthy(t *testing.T) {
	path := filepath.Join(t.TempDir(), "notify.sock")
	l := listen(t, path)
	n := New(env(map[string]string{"NOTIFY_SOCKET": path}))

	var checks, fails atomic.Int64
	healthy := func() error {
		if checks.Add(1) <= 3 {
			return errors.New("store: ping: boom")
		}
		return nil
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() {
		defer close(done)
		n.RunWatchdog(ctx, time.Millisecond, healthy, func(error) { fails.Add(1) })
	}()
	if got := recv(t, l); got != Watchdog {
		t.Fatalf("got %q", got)
	}
	if c := checks.Load(); c < 4 {
		t.Fatalf("a ping arrived after only %d checks, 3 of which failed", c)
	}
	if f := fails.Load(); f != 3 {
		t.Fatalf("onFail called %d times, want 3", f)
	}
	cancel()
	select {
	case <-done:
	case <-time.After(time.Minute):
		t.Fatal("RunWatchdog did not stop on ctx cancel")
	}
}
