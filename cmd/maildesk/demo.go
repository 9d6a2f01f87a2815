package main

import (
	"context"
	"flag"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/mail"
	"os"
	"sort"
	"strings"
	"time"

	"github.com/maildesk/maildesk/bridge"
	"github.com/maildesk/maildesk/bridge/odoosim"
	"github.com/maildesk/maildesk/graphsync/m365sim"
	"github.com/maildesk/maildesk/store"
)

// cmdDemo runs the whole flow in one process: the Microsoft 365 simulator
// with a seeded mailbox, the sidecar, and the Odoo stand-in. It drives the
// sidecar over JSON-RPC exactly as the addon does — create the mailbox,
// connect it through the real OAuth flow (MSAL against the simulator's
// sign-in page), backfill it — and prints what landed where.
func cmdDemo(ctx context.Context, args []string, stdout, stderr io.Writer, getenv func(string) string) error {
	fs := flag.NewFlagSet("demo", flag.ContinueOnError)
	fs.SetOutput(stderr)
	var o demoOptions
	fs.IntVar(&o.Messages, "messages", 400, "messages in the seeded mailbox")
	fs.Int64Var(&o.Seed, "seed", 1, "seed of the generated mailbox")
	fs.StringVar(&o.DataDir, "data-dir", "", "keep the sidecar's data here (default: a temporary directory, removed at the end)")
	fs.StringVar(&o.LogLevel, "log-level", "warn", "sidecar log level")
	timeout := fs.Duration("timeout", 5*time.Minute, "give up after this long")
	if err := fs.Parse(args); err != nil {
		return usageError{err}
	}
	if fs.NArg() > 0 {
		return usageError{fmt.Errorf("unexpected argument %q", fs.Arg(0))}
	}
	ctx, cancel := context.WithTimeout(ctx, *timeout)
	defer cancel()
	start := time.Now()
	o.Out, o.Log = stdout, stderr
	d, err := startDemo(ctx, o)
	if err != nil {
		return err
	}
	defer d.Close()
	p := d.printf
	if err := d.createAndConnect(ctx); err != nil {
		return err
	}
	p("4. backfill (Graph's real limits: 4 in flight, 10,000 requests per 10 min)\n")
	syncStart := time.Now()
	view, err := d.waitDelivered(ctx, true)
	if err != nil {
		return err
	}
	took := time.Since(syncStart)
	// Sync again from scratch: nothing may reach Odoo twice.
	before := view.Counts.Queued
	if view, err = d.resync(ctx); err != nil {
		return err
	}
	d.printSummary(view, before, took, time.Since(start))
	return nil
}

type demoOptions struct {
	Messages int
	Seed     int64
	DataDir  string
	LogLevel string
	Out, Log io.Writer
	// MaxAttachment bounds generated attachments (default 512 KiB).
	MaxAttachment int
	// AttachmentRate is the share of messages with attachments (default 0.3).
	AttachmentRate float64
	// Store is --store: "" for bbolt in DataDir, or a postgres:// URL.
	Store string
}

// demo is one running demo: the simulator, the Odoo stand-in and the
// sidecar, and the mailbox it drives.
type demo struct {
	o       demoOptions
	sim     *m365sim.Sim
	od      *odoosim.Server
	app     *App
	rc      *rpcClient
	base    string
	owner   string
	mainUID int64
	mailbox string
	odooID  int64
	closers []func()
}

func (d *demo) printf(format string, a ...any) { fmt.Fprintf(d.o.Out, format, a...) }

// Close stops everything in reverse order.
func (d *demo) Close() {
	for i := len(d.closers) - 1; i >= 0; i-- {
		d.closers[i]()
	}
}

// startDemo starts the simulator with a seeded mailbox, the Odoo stand-in
// with contacts for most correspondents, and the sidecar, and pairs them
// (settings.set, as Odoo's Settings → MailDesk does).
func startDemo(ctx context.Context, o demoOptions) (d *demo, err error) {
	if o.MaxAttachment == 0 {
		o.MaxAttachment = 512 << 10
	}
	if o.LogLevel == "" {
		o.LogLevel = "warn"
	}
	if o.Out == nil {
		o.Out = io.Discard
	}
	if o.Log == nil {
		o.Log = io.Discard
	}
	d = &demo{o: o}
	defer func() {
		if err != nil {
			d.Close()
		}
	}()
	// Microsoft 365, at Graph's real pace and limits.
	d.sim, err = m365sim.New(m365sim.Options{Seed: o.Seed, Throttle: true, TimeScale: 1})
	if err != nil {
		return nil, err
	}
	d.owner = "anna@" + d.sim.Domain()
	d.sim.AddUser(d.owner, "Anna Schmidt")
	d.sim.GenerateMailbox(d.owner, o.Messages, m365sim.GenOptions{Start: time.Now().Add(-28 * 24 * time.Hour), End: time.Now().Add(-time.Minute),
		MaxAttachment: o.MaxAttachment, AttachmentRate: o.AttachmentRate})
	if err := d.sim.Start(); err != nil {
		return nil, err
	}
	d.closers = append(d.closers, func() { d.sim.Close() })
	inbox, sent := d.sim.Messages(d.owner, "inbox"), d.sim.Messages(d.owner, "sentitems")
	d.printf("Microsoft 365 simulator  %s  mailbox %s: %d in Inbox, %d in Sent Items\n", d.sim.URL(), d.owner, len(inbox), len(sent))

	// Odoo: contacts for most correspondents, so some mail stays unrouted.
	d.od = odoosim.New(odoosim.Options{Version: 18})
	if err := d.od.Start(); err != nil {
		return nil, err
	}
	d.closers = append(d.closers, d.od.Close)
	d.mainUID = d.od.AddUser("Anna Schmidt", d.owner, d.owner)
	known := seedPartners(d.od, append(inbox, sent...), d.owner)
	d.printf("Odoo stand-in            %s  database %q, %d contacts, main user uid %d\n", d.od.URL(), d.od.DB(), known, d.mainUID)

	// The sidecar, with its own data directory.
	dir := o.DataDir
	if dir == "" {
		dir, err = os.MkdirTemp("", "maildesk-demo-")
		if err != nil {
			return nil, err
		}
		d.closers = append(d.closers, func() { os.RemoveAll(dir) })
	}
	cfg := Config{Listen: "127.0.0.1:0", DataDir: dir, LogLevel: o.LogLevel, LogFormat: "console", MaxBodyBytes: 64 << 20, ShutdownGrace: 5 * time.Second,
		KeyFile: dir + "/maildesk.key", SharedSecretFile: dir + "/shared-secret", Store: o.Store}
	key, secret, err := prepareDataDir(cfg, io.Discard)
	if err != nil {
		return nil, err
	}
	ln, err := net.Listen("tcp", cfg.Listen)
	if err != nil {
		return nil, err
	}
	d.base = "http://" + ln.Addr().String()
	d.app, err = buildApp(cfg, newLogger(cfg, o.Log), key, secret, useSimulator(d.sim))
	if err != nil {
		ln.Close()
		return nil, err
	}
	srvCtx, stopSrv := context.WithCancel(context.Background())
	srvDone := make(chan error, 1)
	go func() { srvDone <- d.app.serveOn(srvCtx, ln, io.Discard) }()
	d.closers = append(d.closers, func() { stopSrv(); <-srvDone })
	d.rc = &rpcClient{url: d.base, secret: secret, http: &http.Client{Timeout: 60 * time.Second}, uid: 2}
	d.printf("MailDesk sidecar         %s/jsonrpc\n\n", d.base)

	// What Odoo's Settings → MailDesk sends: the Azure app and the pairing.
	app := m365sim.DefaultApp()
	if err := d.rc.callWith(ctx, "settings.set", map[string]any{
		"azure": map[string]any{"tenant": d.sim.Tenant(), "client_id": app.ClientID, "client_secret": app.ClientSecret,
			"redirect_uri": d.base + "/oauth/callback", "authority": d.sim.URL()},
		"odoo": map[string]any{"url": d.od.URL(), "db": d.od.DB(), "login": d.od.TechLogin(), "api_key": d.od.APIKey(), "protocol": "jsonrpc"},
	}, nil); err != nil {
		return nil, fmt.Errorf("settings.set: %w", err)
	}
	return d, nil
}

// createAndConnect creates the mailbox (and its Odoo record) and connects it
// through the real OAuth flow: the sign-in URL, the owner's sign-in on the
// simulator's consent page, oauth.complete.
func (d *demo) createAndConnect(ctx context.Context) error {
	var mb struct {
		ID    string `json:"id"`
		State string `json:"state"`
	}
	if err := d.rc.callWith(ctx, "mailbox.create", map[string]any{
		"email": d.owner, "kind": "personal", "owner_uid": d.mainUID, "user_ids": []int64{d.mainUID}, "main_user_id": d.mainUID,
		"mode": "log", "backfill_days": 30, "log_sent_as_activity": true,
	}, &mb); err != nil {
		return fmt.Errorf("mailbox.create: %w", err)
	}
	d.mailbox = mb.ID
	if d.odooID == 0 {
		d.odooID = d.od.CreateMailbox(mb.ID, d.owner)
	}
	if err := d.rc.callWith(ctx, "mailbox.update", map[string]any{"mailbox_id": mb.ID, "odoo_id": d.odooID}, nil); err != nil {
		return fmt.Errorf("mailbox.update: %w", err)
	}
	d.printf("1. mailbox.create        %s (%s)\n", mb.ID, d.owner)
	var conn struct {
		AuthURL string `json:"auth_url"`
	}
	if err := d.rc.callWith(ctx, "mailbox.connect", map[string]any{"mailbox_id": mb.ID}, &conn); err != nil {
		return fmt.Errorf("mailbox.connect: %w", err)
	}
	d.printf("2. mailbox.connect       sign-in URL %s…\n", trim(conn.AuthURL, 70))
	redirect, err := d.sim.SignIn(ctx, conn.AuthURL, d.owner)
	if err != nil {
		return fmt.Errorf("sign in at the simulator: %w", err)
	}
	q := redirect.Query()
	if err := d.rc.callWith(ctx, "oauth.complete", map[string]any{"code": q.Get("code"), "state": q.Get("state")}, &mb); err != nil {
		return fmt.Errorf("oauth.complete: %w", err)
	}
	d.printf("3. %s signed in on the simulator's consent page; oauth.complete → %s (its first sync starts at once)\n", d.owner, mb.State)
	return nil
}

// get reads the mailbox as the addon does.
func (d *demo) get(ctx context.Context) (demoMailbox, error) {
	var view demoMailbox
	err := d.rc.callWith(ctx, "mailbox.get", map[string]any{"mailbox_id": d.mailbox}, &view)
	return view, err
}

// waitDelivered waits until the backfill finished and every queued item
// reached Odoo (posted, duplicate or unrouted), drawing a progress bar.
func (d *demo) waitDelivered(ctx context.Context, bar bool) (demoMailbox, error) {
	start := time.Now()
	tty := isTerminal(d.o.Out)
	last, lastAt := "", time.Time{}
	for {
		view, err := d.get(ctx)
		if err != nil {
			return view, fmt.Errorf("mailbox.get: %w", err)
		}
		// On a terminal the bar redraws in place; in a log, a line when it
		// changed and at most every two seconds.
		if line := view.bar(time.Since(start)); bar && tty {
			fmt.Fprintf(d.o.Out, "\r   %s", line)
		} else if bar && view.progressKey() != last && time.Since(lastAt) >= 2*time.Second {
			fmt.Fprintf(d.o.Out, "   %s\n", line)
			last, lastAt = view.progressKey(), time.Now()
		}
		if view.done() {
			if bar {
				if tty {
					fmt.Fprintln(d.o.Out)
				} else {
					fmt.Fprintf(d.o.Out, "   %s\n", view.bar(time.Since(start)))
				}
			}
			return view, nil
		}
		if view.State == bridge.StateReauthRequired || view.State == bridge.StateError && view.Failures > 3 {
			return view, fmt.Errorf("mailbox is %s: %s", view.State, view.Error)
		}
		select {
		case <-ctx.Done():
			// Say where it stood, so a stall can be told from slowness.
			return view, fmt.Errorf("the backfill did not finish in time (state %s, error %q, progress %d/%d finished=%v, counts %+v, delivery %+v): %w",
				view.State, view.Error, view.Progress.Done, view.Progress.Total, view.Progress.Finished, view.Counts, view.Delivery, ctx.Err())
		case <-time.After(100 * time.Millisecond):
		}
	}
}

// resync walks the whole window again (mailbox.backfill) and waits for it.
func (d *demo) resync(ctx context.Context) (demoMailbox, error) {
	if err := d.rc.callWith(ctx, "mailbox.backfill", map[string]any{"mailbox_id": d.mailbox, "since": time.Now().Add(-30 * 24 * time.Hour).UTC().Format(time.RFC3339)}, nil); err != nil {
		return demoMailbox{}, fmt.Errorf("mailbox.backfill: %w", err)
	}
	return d.waitDelivered(ctx, false)
}

// useSimulator points the sidecar's Microsoft side at an in-process simulator.
func useSimulator(sim *m365sim.Sim) func(a *App) error {
	return func(a *App) error {
		a.Simulate = true
		a.Microsoft = &Microsoft{GraphBaseURL: sim.GraphBaseURL(), TLS: simTLS(sim), Sim: sim}
		a.System.SetMode(true, sim.GraphBaseURL())
		return nil
	}
}

// seedPartners creates Odoo contacts for two of every three correspondents.
func seedPartners(od *odoosim.Server, msgs []m365sim.MessageInfo, owner string) int {
	seen := map[string]string{}
	for _, m := range msgs {
		for _, raw := range append([]string{m.From}, m.To...) {
			a, err := mail.ParseAddress(raw)
			if err != nil {
				a = &mail.Address{Address: raw}
			}
			e := strings.ToLower(a.Address)
			if e == "" || e == strings.ToLower(owner) {
				continue
			}
			if _, ok := seen[e]; !ok {
				seen[e] = a.Name
			}
		}
	}
	emails := make([]string, 0, len(seen))
	for e := range seen {
		emails = append(emails, e)
	}
	sort.Strings(emails)
	n := 0
	for i, e := range emails {
		if i%3 == 2 {
			continue
		}
		name := seen[e]
		if name == "" {
			name = e
		}
		od.AddPartner(name, e)
		n++
	}
	return n
}

type demoMailbox struct {
	State    string         `json:"state"`
	Error    string         `json:"error"`
	Failures int            `json:"failures"`
	Progress store.Progress `json:"progress"`
	Counts   store.Counts   `json:"counts"`
	Delivery store.Delivery `json:"delivery"`
}

// done: the backfill finished and Odoo answered for everything queued.
func (m demoMailbox) done() bool {
	return m.Progress.Finished && m.State != bridge.StateSyncing && m.Counts.Delivered+m.Counts.Unrouted >= m.Counts.Queued
}

func (m demoMailbox) progressKey() string {
	return fmt.Sprint(m.Progress.Done, m.Progress.Total, m.Counts.Delivered, m.Counts.Unrouted)
}

func (m demoMailbox) bar(el time.Duration) string {
	const width = 30
	done, total := m.Progress.Done, m.Progress.Total
	frac := 0.0
	if total > 0 {
		frac = min(1, float64(done)/float64(total))
	}
	fill := int(frac * width)
	rate := 0.0
	if el > 0 {
		rate = float64(done) / el.Seconds()
	}
	return fmt.Sprintf("▕%s%s▏ %d/%d messages  %.0f msg/s  eta %ds  │ in Odoo %d, unrouted %d   ",
		strings.Repeat("█", fill), strings.Repeat("░", width-fill), done, total, rate, m.Progress.ETASecs,
		m.Counts.Delivered, m.Counts.Unrouted)
}

func isTerminal(w io.Writer) bool {
	f, ok := w.(*os.File)
	if !ok {
		return false
	}
	fi, err := f.Stat()
	return err == nil && fi.Mode()&os.ModeCharDevice != 0
}

func (d *demo) printSummary(view demoMailbox, queuedFirst int64, syncTook, total time.Duration) {
	p := d.printf
	onRecords := map[string]map[int64]int{}
	for _, m := range d.od.Messages() {
		if m.GraphID == "" {
			continue
		}
		if onRecords[m.Model] == nil {
			onRecords[m.Model] = map[int64]int{}
		}
		onRecords[m.Model][m.ResID]++
	}
	outboxActs := 0
	for _, a := range d.od.Activities() {
		if a.Done && strings.Contains(a.TypeName, "Outbox") {
			outboxActs++
		}
	}
	st := d.sim.Stats(d.owner)
	p("\nWhat landed where\n")
	models := make([]string, 0, len(onRecords))
	for m := range onRecords {
		models = append(models, m)
	}
	sort.Strings(models)
	for _, m := range models {
		n := 0
		for _, v := range onRecords[m] {
			n += v
		}
		p("  %-28s %d messages on %d records\n", m, n, len(onRecords[m]))
	}
	p("  %-28s %d (sent from Outlook, booked for the main user)\n", "done \"Email – Outbox\"", outboxActs)
	p("  %-28s %d (unknown senders: kept in the MailDesk inbox)\n", "unrouted", view.Counts.Unrouted)
	p("  %-28s %d messages queued once; a second sync from scratch queued %d more\n", "exactly once", queuedFirst, view.Counts.Queued-queuedFirst)
	p("\nFigures\n")
	msgs := max(queuedFirst, 1)
	p("  Graph requests              %d (%.2f per message), %d answered 429\n", st.Requests, float64(st.Requests)/float64(msgs), st.Throttled)
	p("  backfill to Odoo            %d messages in %.1fs (%.0f msg/s)\n", queuedFirst, syncTook.Seconds(), float64(queuedFirst)/syncTook.Seconds())
	p("  Odoo ingest calls           %d\n", d.od.IngestCalls().Calls)
	p("  whole demo                  %.1fs\n", total.Seconds())
}

func trim(s string, n int) string {
	if len(s) <= n {
		return s
	}
	return s[:n]
}
