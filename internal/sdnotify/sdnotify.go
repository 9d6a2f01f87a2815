// Package sdnotify owns MailDesk's side of systemd's service notification
// protocol (sd_notify(3)): READY=1 once the sidecar serves, WATCHDOG=1 while
// its store answers, STOPPING=1 when it shuts down.
//
// The protocol is one datagram per message over the unix socket named by
// $NOTIFY_SOCKET (a path, or "@name" for an abstract socket), so no library is
// needed: the whole client is a Dial and a Write. When $NOTIFY_SOCKET is unset
// (not started by systemd with Type=notify, or in a container) every method is
// a no-op, so callers never branch on it.
package sdnotify

import (
	"context"
	"errors"
	"fmt"
	"net"
	"os"
	"strconv"
	"strings"
	"time"
)

// Messages systemd understands (sd_notify(3)).
const (
	Ready    = "READY=1"
	Stopping = "STOPPING=1"
	Watchdog = "WATCHDOG=1"
)

// writeTimeout bounds one notification: systemd reads its socket promptly;
// a wedged peer must not wedge the sidecar.
const writeTimeout = 2 * time.Second

// Notifier sends notifications to one socket. The zero value and a Notifier
// built without $NOTIFY_SOCKET do nothing. Safe for concurrent use.
type Notifier struct {
	socket string
}

// New returns a Notifier for the socket named by getenv("NOTIFY_SOCKET").
// getenv is os.Getenv in production; tests pass their own.
func New(getenv func(string) string) *Notifier {
	return &Notifier{socket: getenv("NOTIFY_SOCKET")}
}

// FromEnv is New(os.Getenv).
func FromEnv() *Notifier { return New(os.Getenv) }

// Enabled reports whether a notify socket is configured.
func (n *Notifier) Enabled() bool { return n != nil && n.socket != "" }

// Socket is the socket address in use ("" when disabled).
func (n *Notifier) Socket() string {
	if n == nil {
		return ""
	}
	return n.socket
}

// Notify sends state (one or more "KEY=VALUE" lines) as one datagram. It
// returns nil without sending when no socket is configured.
func (n *Notifier) Notify(state string) error {
	if !n.Enabled() {
		return nil
	}
	if strings.HasPrefix(n.socket, "vsock:") {
		return fmt.Errorf("sdnotify: NOTIFY_SOCKET %q: vsock sockets are not supported", n.socket)
	}
	if !strings.HasPrefix(n.socket, "/") && !strings.HasPrefix(n.socket, "@") {
		return fmt.Errorf("sdnotify: NOTIFY_SOCKET %q is neither an absolute path nor an abstract socket", n.socket)
	}
	// Go maps a leading '@' to Linux's abstract namespace itself.
	addr := &net.UnixAddr{Name: n.socket, Net: "unixgram"}
	conn, err := net.DialUnix("unixgram", nil, addr)
	if err != nil {
		return fmt.Errorf("sdnotify: dial %s: %w", n.socket, err)
	}
	defer conn.Close()
	_ = conn.SetWriteDeadline(time.Now().Add(writeTimeout))
	if _, err := conn.Write([]byte(state)); err != nil {
		return fmt.Errorf("sdnotify: send %q to %s: %w", firstLine(state), n.socket, err)
	}
	return nil
}

// Ready tells systemd start-up is complete (Type=notify units leave
// "activating" only on this).
func (n *Notifier) Ready() error { return n.Notify(Ready) }

// Stopping tells systemd the service is shutting down.
func (n *Notifier) Stopping() error { return n.Notify(Stopping) }

// Ping sends one watchdog keep-alive.
func (n *Notifier) Ping() error { return n.Notify(Watchdog) }

// Status sets the free-form status line `systemctl status` shows.
func (n *Notifier) Status(text string) error {
	return n.Notify("STATUS=" + strings.ReplaceAll(text, "\n", " "))
}

func firstLine(s string) string {
	if i := strings.IndexByte(s, '\n'); i >= 0 {
		return s[:i]
	}
	return s
}

// ErrWatchdogOff is returned by WatchdogInterval when the service manager
// asked for no watchdog.
var ErrWatchdogOff = errors.New("sdnotify: watchdog not enabled")

// WatchdogInterval reads WATCHDOG_USEC (and WATCHDOG_PID, when set it must
// be this process) and returns the timeout systemd enforces. Callers ping at
// half of it, as sd_watchdog_enabled(3) recommends. It returns ErrWatchdogOff
// when the variables ask for no watchdog, and another error when they are
// malformed.
func WatchdogInterval(getenv func(string) string, pid int) (time.Duration, error) {
	usec := getenv("WATCHDOG_USEC")
	if usec == "" {
		return 0, ErrWatchdogOff
	}
	if p := getenv("WATCHDOG_PID"); p != "" {
		want, err := strconv.Atoi(p)
		if err != nil {
			return 0, fmt.Errorf("sdnotify: WATCHDOG_PID %q is not a number", p)
		}
		if want != pid {
			return 0, ErrWatchdogOff // meant for another process (a parent or child)
		}
	}
	v, err := strconv.ParseUint(usec, 10, 63)
	if err != nil {
		return 0, fmt.Errorf("sdnotify: WATCHDOG_USEC %q is not a number of microseconds", usec)
	}
	if v == 0 {
		return 0, ErrWatchdogOff
	}
	return time.Duration(v) * time.Microsecond, nil
}

// RunWatchdog sends WATCHDOG=1 every interval for as long as healthy returns
// nil, until ctx ends. When healthy fails it skips the ping (so systemd,
// after WatchdogSec, kills and restarts a sidecar whose store no longer
// answers) and calls onFail, which may be nil, with the error. Pass half the
// WatchdogInterval. A ping is sent at once, so a short timeout cannot expire
// before the first tick.
func (n *Notifier) RunWatchdog(ctx context.Context, interval time.Duration, healthy func() error, onFail func(error)) {
	if !n.Enabled() || interval <= 0 {
		return
	}
	beat := func() {
		if err := healthy(); err != nil {
			if onFail != nil {
				onFail(err)
			}
			return
		}
		if err := n.Ping(); err != nil && onFail != nil {
			onFail(err)
		}
	}
	beat()
	t := time.NewTicker(interval)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
			beat()
		}
	}
}
