package main

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
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
	messages := fs.Int("messages", 400, "messages in the seeded mailbox")
	seed := fs.Int64("seed", 1, "seed of the generated mailbox")
	dataDir := fs.String("data-dir", "", "keep the sidecar's data here (default: a temporary directory, removed at the end)")
	logLevel := fs.String("log-level", "warn", "sidecar log level")
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
	p := func(format string, a ...any) { fmt.Fprintf(stdout, format, a...) }

	// Microsoft 365, at Graph's real pace and limits.
	sim, err := m365sim.New(m365sim.Options{Seed: *seed, Throttle: true, TimeScale: 1, AutoApprove: false})
	if err != nil {
		return err
	}
	owner := "anna@" + sim.Domain()
	sim.AddUser(owner, "Anna Schmidt")
	sim.GenerateMailbox(owner, *messages, m365sim.GenOptions{Start: time.Now().Add(-28 * 24 * time.Hour), End: time.Now().Add(-time.Minute), MaxAttachment: 512 << 10})
	if err := sim.Start(); err != nil {
		return err
	}
	defer sim.Close()
	inbox, sent := sim.Messages(owner, "inbox"), sim.Messages(owner, "sentitems")
	p("Microsoft 365 simulator  %s  mailbox %s: %d in Inbox, %d in Sent Items\n", sim.URL(), owner, len(inbox), len(sent))

	// Odoo: contacts for most correspondents, so some mail stays unrouted.
	od := odoosim.New(odoosim.Options{Version: 18})
	if err := od.Start(); err != nil {
		return err
	}
	defer od.Close()
	mainUID := od.AddUser("Anna Schmidt", owner, owner)
	known := seedPartners(od, append(inbox, sent...), owner)
	p("Odoo stand-in            %s  database %q, %d contacts, main user uid %d\n", od.URL(), od.DB(), known, mainUID)

	// The sidecar, with its own data directory.
	dir := *dataDir
	if dir == "" {
		dir, err = os.MkdirTemp("", "maildesk-demo-")
		if err != nil {
			return err
		}
		defer os.RemoveAll(dir)
	}
	cfg := Config{Listen: "127.0.0.1:0", DataDir: dir, LogLevel: *logLevel, LogFormat: "console", MaxBodyBytes: 64 << 20, ShutdownGrace: 5 * time.Second}
	cfg.KeyFile = dir + "/maildesk.key"
	cfg.SharedSecretFile = dir + "/shared-secret"
	key, secret, err := prepareDataDir(cfg, io.Discard)
	if err != nil {
		return err
	}
	ln, err := net.Listen("tcp", cfg.Listen)
	if err != nil {
		return err
	}
	base := "http://" + ln.Addr().String()
	a, err := buildApp(cfg, newLogger(cfg, stderr), key, secret, useSimulator(sim))
	if err != nil {
		ln.Close()
		return err
	}
	srvCtx, stopSrv := context.WithCancel(context.Background())
	srvDone := make(chan error, 1)
	go func() { srvDone <- a.serveOn(srvCtx, ln, io.Discard) }()
	defer func() { stopSrv(); <-srvDone }()
	rc := &demoRPC{base: base, secret: secret, hc: &http.Client{Timeout: 60 * time.Second}}
	p("MailDesk sidecar         %s/jsonrpc\n\n", base)

	// What Odoo's "Pair with Odoo" and the Azure app settings send.
	app := m365sim.DefaultApp()
	if err := rc.call(ctx, "settings.set", map[string]any{
		"azure": map[string]any{"tenant": sim.Tenant(), "client_id": app.ClientID, "client_secret": app.ClientSecret,
			"redirect_uri": base + "/oauth/callback", "authority": sim.URL()},
		"odoo": map[string]any{"url": od.URL(), "db": od.DB(), "login": od.TechLogin(), "api_key": od.APIKey(), "protocol": "jsonrpc"},
	}, nil); err != nil {
		return fmt.Errorf("settings.set: %w", err)
	}
	var mb struct {
		ID    string `json:"id"`
		State string `json:"state"`
	}
	if err := rc.call(ctx, "mailbox.create", map[string]any{
		"email": owner, "kind": "personal", "owner_uid": mainUID, "user_ids": []int64{mainUID}, "main_user_id": mainUID,
		"mode": "log", "backfill_days": 30, "log_sent_as_activity": true,
	}, &mb); err != nil {
		return fmt.Errorf("mailbox.create: %w", err)
	}
	odooID := od.CreateMailbox(mb.ID, owner)
	if err := rc.call(ctx, "mailbox.update", map[string]any{"mailbox_id": mb.ID, "odoo_id": odooID}, nil); err != nil {
		return fmt.Errorf("mailbox.update: %w", err)
	}
	p("1. mailbox.create        %s (%s)\n", mb.ID, owner)

	var conn struct {
		AuthURL string `json:"auth_url"`
	}
	if err := rc.call(ctx, "mailbox.connect", map[string]any{"mailbox_id": mb.ID}, &conn); err != nil {
		return fmt.Errorf("mailbox.connect: %w", err)
	}
	p("2. mailbox.connect       sign-in URL %s…\n", trim(conn.AuthURL, 70))
	redirect, err := sim.SignIn(ctx, conn.AuthURL, owner)
	if err != nil {
		return fmt.Errorf("sign in at the simulator: %w", err)
	}
	q := redirect.Query()
	if err := rc.call(ctx, "oauth.complete", map[string]any{"code": q.Get("code"), "state": q.Get("state")}, &mb); err != nil {
		return fmt.Errorf("oauth.complete: %w", err)
	}
	p("3. %s signed in on the simulator's consent page; oauth.complete → %s\n", owner, mb.State)
	if err := rc.call(ctx, "mailbox.sync_now", map[string]any{"mailbox_id": mb.ID}, nil); err != nil {
		return fmt.Errorf("mailbox.sync_now: %w", err)
	}

	// Backfill with a progress bar until every queued item reached Odoo.
	p("4. backfill (Graph's real limits: 4 in flight, 10,000 requests per 10 min)\n")
	syncStart := time.Now()
	var view demoMailbox
	tty := isTerminal(stdout)
	last, lastAt := "", time.Time{}
	for {
		if err := rc.call(ctx, "mailbox.get", map[string]any{"mailbox_id": mb.ID}, &view); err != nil {
			return fmt.Errorf("mailbox.get: %w", err)
		}
		// On a terminal the bar redraws in place; in a log, a line when it
		// changed and at most every two seconds.
		if line := view.bar(time.Since(syncStart)); tty {
			fmt.Fprintf(stdout, "\r   %s", line)
		} else if view.progressKey() != last && time.Since(lastAt) >= 2*time.Second {
			fmt.Fprintf(stdout, "   %s\n", line)
			last, lastAt = view.progressKey(), time.Now()
		}
		if view.Progress.Finished && view.Counts.Queued > 0 && view.Counts.Delivered+view.Counts.Unrouted >= view.Counts.Queued {
			break
		}
		if view.State == store.StateReauthRequired || view.State == store.StateError && view.Failures > 3 {
			fmt.Fprintln(stdout)
			return fmt.Errorf("mailbox is %s: %s", view.State, view.Error)
		}
		select {
		case <-ctx.Done():
			fmt.Fprintln(stdout)
			return fmt.Errorf("demo did not finish in time (%v): %w", *timeout, ctx.Err())
		case <-time.After(250 * time.Millisecond):
		}
	}
	took := time.Since(syncStart)
	if tty {
		fmt.Fprintln(stdout)
	} else {
		fmt.Fprintf(stdout, "   %s\n", view.bar(took))
	}

	// Sync again from scratch: nothing may reach Odoo twice.
	before := view.Counts.Queued
	if err := rc.call(ctx, "mailbox.backfill", map[string]any{"mailbox_id": mb.ID, "since": time.Now().Add(-30 * 24 * time.Hour).UTC().Format(time.RFC3339)}, nil); err != nil {
		return fmt.Errorf("mailbox.backfill: %w", err)
	}
	for {
		if err := rc.call(ctx, "mailbox.get", map[string]any{"mailbox_id": mb.ID}, &view); err != nil {
			return err
		}
		if view.Progress.Finished && !view.Syncing() {
			break
		}
		select {
		case <-ctx.Done():
			return fmt.Errorf("second sync did not finish: %w", ctx.Err())
		case <-time.After(250 * time.Millisecond):
		}
	}
	printSummary(stdout, od, sim, owner, view, before, took, time.Since(start))
	return nil
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
		addrs := append([]string{m.From}, m.To...)
		for _, raw := range addrs {
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

func (m demoMailbox) Syncing() bool { return m.State == store.StateSyncing }

func (m demoMailbox) progressKey() string {
	return fmt.Sprint(m.Progress.Done, m.Progress.Total, m.Counts.Delivered, m.Counts.Unrouted)
}

func isTerminal(w io.Writer) bool {
	f, ok := w.(*os.File)
	if !ok {
		return false
	}
	fi, err := f.Stat()
	return err == nil && fi.Mode()&os.ModeCharDevice != 0
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

func printSummary(w io.Writer, od *odoosim.Server, sim *m365sim.Sim, owner string, view demoMailbox, queuedFirst int64, syncTook, total time.Duration) {
	p := func(format string, a ...any) { fmt.Fprintf(w, format, a...) }
	onRecords := map[string]map[int64]int{}
	synced := 0
	for _, m := range od.Messages() {
		if m.GraphID == "" {
			continue
		}
		synced++
		if onRecords[m.Model] == nil {
			onRecords[m.Model] = map[int64]int{}
		}
		onRecords[m.Model][m.ResID]++
	}
	outboxActs := 0
	for _, a := range od.Activities() {
		if a.Done && strings.Contains(a.TypeName, "Outbox") {
			outboxActs++
		}
	}
	st := sim.Stats(owner)
	p("\nWhat landed where\n")
	models := make([]string, 0, len(onRecords))
	for m := range onRecords {
		models = append(models, m)
	}
	sort.Strings(models)
	for _, m := range models {
		p("  %-28s %d messages on %d records\n", m, sumCounts(onRecords[m]), len(onRecords[m]))
	}
	p("  %-28s %d (sent from Outlook, booked for the main user)\n", "done \"Email – Outbox\"", outboxActs)
	p("  %-28s %d (unknown senders: kept in the MailDesk inbox)\n", "unrouted", view.Counts.Unrouted)
	p("  %-28s %d messages queued once; a second sync from scratch queued %d more\n", "exactly once", queuedFirst, view.Counts.Queued-queuedFirst)
	p("\nFigures\n")
	msgs := max(queuedFirst, 1)
	p("  Graph requests              %d (%.2f per message), %d answered 429\n", st.Requests, float64(st.Requests)/float64(msgs), st.Throttled)
	p("  backfill to Odoo            %d messages in %.1fs (%.0f msg/s)\n", queuedFirst, syncTook.Seconds(), float64(queuedFirst)/syncTook.Seconds())
	p("  Odoo ingest calls           %d\n", od.IngestCalls().Calls)
	p("  whole demo                  %.1fs\n", total.Seconds())
	_ = synced
}

func sumCounts(m map[int64]int) int {
	n := 0
	for _, v := range m {
		n += v
	}
	return n
}

func trim(s string, n int) string {
	if len(s) <= n {
		return s
	}
	return s[:n]
}

// demoRPC calls the sidecar's JSON-RPC as the addon does.
type demoRPC struct {
	base, secret string
	hc           *http.Client
	id           int
}

func (c *demoRPC) call(ctx context.Context, method string, params map[string]any, out any) error {
	c.id++
	params["context"] = map[string]any{"uid": 2, "maildesk_admin": true}
	body, _ := json.Marshal(map[string]any{"jsonrpc": "2.0", "id": c.id, "method": method, "params": params})
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, c.base+"/jsonrpc", bytes.NewReader(body))
	if err != nil {
		return err
	}
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("Authorization", "Bearer "+c.secret)
	resp, err := c.hc.Do(req)
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	var env struct {
		Result json.RawMessage `json:"result"`
		Error  *struct {
			Data struct {
				Name    string `json:"name"`
				Message string `json:"message"`
				Code    string `json:"code"`
			} `json:"data"`
		} `json:"error"`
	}
	if err := json.NewDecoder(resp.Body).Decode(&env); err != nil {
		return fmt.Errorf("%s: HTTP %d: %w", method, resp.StatusCode, err)
	}
	if env.Error != nil {
		return errors.New(env.Error.Data.Name + ": " + env.Error.Data.Message)
	}
	if out != nil {
		return json.Unmarshal(env.Result, out)
	}
	return nil
}
