package main

import (
	"context"
	"errors"
	"os"
	"time"

	"github.com/rs/zerolog"

	"github.com/maildesk/maildesk/internal/sdnotify"
)

// systemdNotify is the sidecar's side of a Type=notify unit
// (deploy/systemd/maildesk.service): READY=1 once the store is open and the
// listener is up, WATCHDOG=1 every WatchdogSec/2 while the store answers,
// STOPPING=1 when shutdown starts. Without $NOTIFY_SOCKET (not under
// systemd, or in a container) it does nothing.
type systemdNotify struct {
	n        *sdnotify.Notifier
	log      zerolog.Logger
	interval time.Duration // 0: no watchdog
}

func newSystemdNotify(getenv func(string) string, log zerolog.Logger) *systemdNotify {
	s := &systemdNotify{n: sdnotify.New(getenv), log: log}
	if !s.n.Enabled() {
		return s
	}
	d, err := sdnotify.WatchdogInterval(getenv, os.Getpid())
	switch {
	case err == nil:
		s.interval = d / 2
	case !errors.Is(err, sdnotify.ErrWatchdogOff):
		log.Warn().Err(err).Msg("systemd: watchdog settings unreadable; not sending keep-alives")
	}
	log.Debug().Str("socket", s.n.Socket()).Dur("watchdog_interval", s.interval).Msg("systemd: notify socket found")
	return s
}

// ready tells systemd the sidecar serves.
func (s *systemdNotify) ready(status string) {
	if s == nil {
		return
	}
	if err := s.n.Notify(sdnotify.Ready + "\nSTATUS=" + status); err != nil {
		s.log.Error().Err(err).Msg("systemd: READY=1 not sent")
	}
}

// stopping tells systemd shutdown has begun.
func (s *systemdNotify) stopping() {
	if s == nil {
		return
	}
	if err := s.n.Stopping(); err != nil {
		s.log.Warn().Err(err).Msg("systemd: STOPPING=1 not sent")
	}
}

// watchdog pings until ctx ends, skipping pings while healthy fails, so
// systemd restarts a sidecar whose store no longer answers.
func (s *systemdNotify) watchdog(ctx context.Context, healthy func() error) {
	if s == nil || s.interval <= 0 {
		return
	}
	sampled := s.log.Sample(&zerolog.BurstSampler{Burst: 3, Period: time.Minute})
	s.n.RunWatchdog(ctx, s.interval, healthy, func(err error) {
		sampled.Error().Err(err).Msg("systemd: watchdog keep-alive withheld (store check failed)")
	})
}
