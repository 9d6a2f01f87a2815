package main

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"flag"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"strings"
	"sync"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
	"github.com/rs/zerolog"

	"github.com/maildesk/maildesk/bridge"
	"github.com/maildesk/maildesk/internal/recovery"
	"github.com/maildesk/maildesk/rpc"
	"github.com/maildesk/maildesk/store"
	"github.com/maildesk/maildesk/store/pgstore"
)

// App is the running sidecar's components, built in order by buildApp.
// Features add themselves with a wire function (see buildApp) that reads
// what they need from here and adds RPC services (RPC.Register), routes
// (RPC.Handle) and background loops (AddWorker).
type App struct {
	Cfg      Config
	Log      zerolog.Logger
	Store    bridge.Store
	Registry *prometheus.Registry
	Group    *recovery.Group // counts panics of background goroutines

	System    *bridge.System
	Mailboxes *bridge.Mailboxes
	Settings  *bridge.Settings
	Audit     *bridge.AuditLog
	RPC       *rpc.Server

	// Simulate is true under `serve --simulate` (set by that feature).
	Simulate bool
	// Pusher drains the outbox into Odoo (wirePusher).
	Pusher *bridge.Pusher
	// Scheduler decides when each mailbox syncs (wireScheduler).
	Scheduler *bridge.Scheduler
	// Work is the store the syncer, scheduler and pusher write through,
	// and Owner says which mailboxes they work: Store and every mailbox on
	// bbolt; on PostgreSQL the store fenced by this node's leases, and
	// the leases (Leases, lease.go).
	Work   bridge.Store
	Owner  bridge.Owner
	Leases *pgstore.Leases
	// Microsoft is where identity and Graph are (the simulator under
	// --simulate); use its HTTPClient/Transport in wire functions.
	Microsoft *Microsoft
	// Connector runs mailbox sign-ins and is the sync engine's TokenSource
	// (set by wireConnect, which runs first).
	Connector *bridge.Connector

	workers []worker
	closers []func() error

	// superviseOpts, when set, shapes the workers' restarts (tests).
	superviseOpts func(name string) recovery.SuperviseOptions

	net *netSecurity   // TLS and allow-list on the listener (netsec.go)
	sd  *systemdNotify // READY/WATCHDOG/STOPPING to systemd (systemd.go)
}

type worker struct {
	name string
	run  func(ctx context.Context)
	sup  *recovery.Supervisor
}

// AddWorker adds a background loop started after the listener is up. run
// must return when ctx is cancelled (phase two of shutdown). It runs
// supervised: a panic is logged and counted, and the loop is started again
// after a backoff (maildesk_component_restarts_total). The supervisor it
// returns says whether the loop is up (workerHealth).
func (a *App) AddWorker(name string, run func(ctx context.Context)) *recovery.Supervisor {
	var opts recovery.SuperviseOptions
	if a.superviseOpts != nil {
		opts = a.superviseOpts(name)
	}
	sup := a.Group.Supervisor(name, opts)
	a.workers = append(a.workers, worker{name, run, sup})
	return sup
}

// workerHealth is a supervised loop's health: down while it waits to be
// restarted after a panic or once it stopped, ok while it runs (naming its
// restarts, if any).
func workerHealth(sup *recovery.Supervisor) bridge.ComponentStatus {
	st := sup.Status()
	switch st.State {
	case recovery.StateRunning:
		if st.Restarts > 0 {
			return bridge.ComponentStatus{Status: bridge.StatusOK, Detail: fmt.Sprintf("restarted %d times after panics; last at %s: %s",
				st.Restarts, st.PanicAt.UTC().Format(time.RFC3339), st.LastPanic)}
		}
		return bridge.ComponentStatus{Status: bridge.StatusOK}
	case recovery.StateRestarting:
		return bridge.ComponentStatus{Status: bridge.StatusDown, Detail: fmt.Sprintf("panicked (%s); restart %d at %s",
			st.LastPanic, st.Restarts, st.NextStart.UTC().Format(time.RFC3339))}
	case recovery.StateStopped:
		return bridge.ComponentStatus{Status: bridge.StatusDown, Detail: "stopped"}
	default:
		return bridge.ComponentStatus{Status: bridge.StatusUnknown, Detail: "not started yet"}
	}
}

// AddCloser adds a function run at the very end of shutdown, after every
// worker stopped and before the store closes (in reverse order of adding).
func (a *App) AddCloser(fn func() error) { a.closers = append(a.closers, fn) }

// wiring lists the features' wire functions, run in order after the core is
// built. Each lives in its own file (cmd/maildesk/<feature>.go) and gets the
// App. Add yours here — one line each.
func wiring() []func(a *App) error {
	return []func(a *App) error{
		wireConnect,   // bridge/connect.go: mailbox.connect, oauth.complete, /oauth/callback
		wireScheduler, // bridge/scheduler.go: sync_now, backfill, folder/message reads, /graph/notify;
		//                also sending (message.send/mark_read/move/log_to_record, cmd/maildesk/send.go), which shares its Graph client
		wirePusher,    // bridge/pusher.go: outbox → Odoo
		wireLeases,    // store/pgstore/lease.go: several sidecars on one PostgreSQL (cmd/maildesk/lease.go)
		wireRetention, // bridge/retention.go: prunes the audit log and the message index
	}
}

// newLogger builds the zerolog logger. Console format when asked, or when
// stderr is a terminal and no format was given.
func newLogger(cfg Config, stderr io.Writer) zerolog.Logger {
	lvl, err := zerolog.ParseLevel(cfg.LogLevel)
	if err != nil {
		lvl = zerolog.InfoLevel
	}
	format := cfg.LogFormat
	if format == "" {
		format = "json"
		if f, ok := stderr.(*os.File); ok {
			if fi, err := f.Stat(); err == nil && fi.Mode()&os.ModeCharDevice != 0 {
				format = "console"
			}
		}
	}
	var w io.Writer = stderr
	if format == "console" {
		w = zerolog.ConsoleWriter{Out: stderr, TimeFormat: time.RFC3339}
	}
	return zerolog.New(w).Level(lvl).With().Timestamp().Str("service", "maildesk").Logger()
}

// prepareDataDir creates the data directory, the key file and the shared
// secret when missing and reports what it created on stdout. A missing key
// file next to an existing database is an error: a new key could never open it.
func prepareDataDir(cfg Config, stdout io.Writer) (key []byte, secret string, err error) {
	if err := os.MkdirAll(cfg.DataDir, 0o700); err != nil {
		return nil, "", fmt.Errorf("create data directory %s: %w", cfg.DataDir, err)
	}
	if _, err := os.Stat(cfg.KeyFile); errors.Is(err, os.ErrNotExist) {
		if _, err := os.Stat(cfg.DBPath()); err == nil {
			return nil, "", fmt.Errorf("the key file %s is missing but the database %s exists: start with the key file it was created with (--key-file); a new key could not read it, so nothing was created", cfg.KeyFile, cfg.DBPath())
		}
	}
	key, created, err := store.LoadOrCreateKey(cfg.KeyFile)
	if err != nil {
		return nil, "", err
	}
	if created {
		fmt.Fprintf(stdout, "maildesk: created the encryption key %s (0600). Back it up: without it the database cannot be read.\n", cfg.KeyFile)
	}
	secret, created, err = loadOrCreateSecret(cfg.SharedSecretFile)
	if err != nil {
		return nil, "", err
	}
	if created {
		fmt.Fprintf(stdout, "maildesk: created the shared secret %s (0600). Odoo's MailDesk settings need it:\n  cat %s\n", cfg.SharedSecretFile, cfg.SharedSecretFile)
	}
	return key, secret, nil
}

// loadOrCreateSecret reads the shared secret, or creates a random one.
func loadOrCreateSecret(path string) (string, bool, error) {
	b, err := os.ReadFile(path)
	if err == nil {
		s := strings.TrimSpace(string(b))
		if len(s) < 16 {
			return "", false, fmt.Errorf("shared secret file %s holds fewer than 16 characters; put a long random secret in it (or delete it to have one made)", path)
		}
		return s, false, nil
	}
	if !errors.Is(err, os.ErrNotExist) {
		return "", false, fmt.Errorf("read shared secret file: %w", err)
	}
	raw := make([]byte, 32)
	if _, err := rand.Read(raw); err != nil {
		return "", false, fmt.Errorf("make shared secret: %w", err)
	}
	s := hex.EncodeToString(raw)
	if err := store.WriteSecretFile(path, []byte(s+"\n")); err != nil {
		return "", false, err
	}
	return s, true, nil
}

// openStore opens the bbolt file in the data directory, or PostgreSQL
// under --store postgres://….
func openStore(cfg Config, key []byte) (bridge.Store, error) {
	if cfg.Postgres() {
		return pgstore.Open(cfg.Store, key, pgstore.Options{})
	}
	return store.Open(cfg.DBPath(), key, store.Options{})
}

var _ bridge.Store = (*pgstore.Store)(nil)

// buildApp opens the store and builds every component, core first, then the
// features' wire functions.
// opts run after the core is built and before the features' wire functions
// (demo and --simulate point App.Microsoft at the simulator there).
func buildApp(cfg Config, log zerolog.Logger, key []byte, secret string, opts ...func(a *App) error) (*App, error) {
	st, err := openStore(cfg, key)
	if err != nil {
		return nil, err
	}
	reg := prometheus.NewRegistry()
	reg.MustRegister(collectors.NewGoCollector(), collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}))
	a := &App{Cfg: cfg, Log: log, Store: st, Registry: reg, Group: recovery.New(log, reg), Microsoft: defaultMicrosoft()}
	if err := a.useLeases(); err != nil {
		st.Close()
		return nil, err
	}
	a.System = bridge.NewSystem(st, bridge.BuildInfo{Version: version, Commit: buildCommit(), GraphBase: "https://graph.microsoft.com/v1.0"})
	a.Mailboxes = bridge.NewMailboxes(st, log)
	a.Settings = bridge.NewSettings(st, log)
	a.Audit = bridge.NewAuditLog(st, a.Mailboxes)
	a.RPC, err = rpc.New(rpc.Config{SharedSecret: secret, MaxBodyBytes: cfg.MaxBodyBytes, Debug: cfg.Debug}, rpc.Deps{
		Log: log, Registry: reg, System: a.System, Mailboxes: a.Mailboxes, Settings: a.Settings, Audit: a.Audit,
	})
	if err != nil {
		st.Close()
		return nil, err
	}
	for _, wire := range append(opts, wiring()...) {
		if err := wire(a); err != nil {
			a.close()
			return nil, err
		}
	}
	return a, nil
}

func (a *App) close() {
	for i := len(a.closers) - 1; i >= 0; i-- {
		if err := a.closers[i](); err != nil {
			a.Log.Error().Err(err).Msg("shutdown: closer failed")
		}
	}
	if err := a.Store.Close(); err != nil {
		a.Log.Error().Err(err).Msg("shutdown: close store")
	}
}

func cmdServe(ctx context.Context, args []string, stdout, stderr io.Writer, getenv func(string) string) error {
	fs := flag.NewFlagSet("serve", flag.ContinueOnError)
	fs.SetOutput(stderr)
	cfg, rest, err := loadConfig(fs, args, getenv)
	if err != nil {
		return err
	}
	if len(rest) > 0 {
		return fmt.Errorf("unexpected argument %q (flags start with --)", rest[0])
	}
	log := newLogger(cfg, stderr)
	key, secret, err := prepareDataDir(cfg, stdout)
	if err != nil {
		return err
	}
	var opts []func(*App) error
	if cfg.Simulate {
		sim, err := startSimulator(cfg, stdout)
		if err != nil {
			return err
		}
		defer sim.Close()
		opts = append(opts, useSimulator(sim), pointSettingsAtSimulator(sim))
	}
	a, err := buildApp(cfg, log, key, secret, opts...)
	if err != nil {
		return err
	}
	if a.net, err = newNetSecurity(cfg.Net, log, a.Registry); err != nil {
		a.close()
		return err
	}
	a.sd = newSystemdNotify(getenv, log)
	return a.serve(ctx, stdout)
}

// serve listens, runs the workers and shuts down in two phases when ctx ends:
// first stop accepting and drain in-flight requests (up to the grace
// period), then cancel the workers and wait for them, then close the store.
func (a *App) serve(ctx context.Context, stdout io.Writer) error {
	ln, err := net.Listen("tcp", a.Cfg.Listen)
	if err != nil {
		a.close()
		return fmt.Errorf("listen on %s: %w", a.Cfg.Listen, err)
	}
	return a.serveOn(ctx, ln, stdout)
}

// serveOn is serve on a listener the caller opened (the demo listens first
// to learn its port).
func (a *App) serveOn(ctx context.Context, ln net.Listener, stdout io.Writer) error {
	ln = a.net.listener(ln)
	srv := &http.Server{
		Handler:           a.net.handler(a.RPC.Handler()),
		ReadHeaderTimeout: 10 * time.Second,
		ReadTimeout:       2 * time.Minute,
		WriteTimeout:      10 * time.Minute, // backups of big databases stream for a while
		IdleTimeout:       2 * time.Minute,
		MaxHeaderBytes:    64 << 10,
	}
	workCtx, cancelWork := context.WithCancel(context.Background())
	defer cancelWork()
	var wg sync.WaitGroup
	for _, w := range a.workers {
		w := w
		wg.Add(1)
		a.Group.Go(w.name, func() {
			defer wg.Done()
			w.sup.Run(workCtx, w.run)
		})
	}
	serveErr := make(chan error, 1)
	a.Group.Go("http", func() { serveErr <- srv.Serve(ln) })
	addr := ln.Addr().String()
	a.Log.Info().Str("listen", addr).Str("data_dir", a.Cfg.DataDir).Str("version", version).Msg("maildesk is serving")
	fmt.Fprintf(stdout, "maildesk: serving JSON-RPC on %s://%s/jsonrpc (shared secret in %s)\n", a.Cfg.scheme(), addr, a.Cfg.SharedSecretFile)
	a.sd.ready("serving JSON-RPC on " + a.Cfg.scheme() + "://" + addr)
	a.Group.Go("systemd-watchdog", func() { a.sd.watchdog(workCtx, func() error { return a.System.Ping(workCtx) }) })

	var runErr error
	select {
	case <-ctx.Done():
		a.Log.Info().Msg("shutdown: stop accepting, draining in-flight requests")
	case err := <-serveErr:
		runErr = fmt.Errorf("http server: %w", err)
	}
	a.sd.stopping()
	// Phase one: no new connections; in-flight requests get the grace period.
	graceCtx, cancelGrace := context.WithTimeout(context.Background(), a.Cfg.ShutdownGrace)
	defer cancelGrace()
	if err := srv.Shutdown(graceCtx); err != nil {
		a.Log.Warn().Err(err).Msg("shutdown: requests still running after the grace period were cut")
		_ = srv.Close()
	}
	// Phase two: cancel background work and wait for it (bounded).
	cancelWork()
	done := make(chan struct{})
	go func() { wg.Wait(); close(done) }()
	select {
	case <-done:
	case <-time.After(a.Cfg.ShutdownGrace + time.Second):
		a.Log.Error().Msg("shutdown: background workers did not stop in time; closing anyway")
	}
	a.close()
	a.Log.Info().Msg("maildesk stopped")
	return runErr
}
