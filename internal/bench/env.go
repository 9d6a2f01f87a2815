package bench

import (
	"context"
	"crypto/tls"
	"fmt"
	"os"
	"path/filepath"
	"sync"
	"time"

	"github.com/rs/zerolog"

	"github.com/maildesk/maildesk/bridge"
	"github.com/maildesk/maildesk/bridge/odoo"
	"github.com/maildesk/maildesk/bridge/odoosim"
	"github.com/maildesk/maildesk/graphsync"
	"github.com/maildesk/maildesk/graphsync/m365sim"
	"github.com/maildesk/maildesk/store"
)

// env is one scenario's world: the simulator at Graph's pace and limits,
// a store in a temporary directory, and (when asked) the Odoo stand-in.
type env struct {
	o    Options
	sim  *m365sim.Sim
	od   *odoosim.Server
	dir  string
	db   string
	st   *store.Store
	toks *simTokens
}

func newEnv(o Options, latency time.Duration) (*env, error) {
	sim, err := m365sim.New(m365sim.Options{Seed: o.Seed, TimeScale: 1, Throttle: true, Latency: latency})
	if err != nil {
		return nil, err
	}
	if err := sim.Start(); err != nil {
		return nil, err
	}
	dir, err := os.MkdirTemp("", "maildesk-bench-")
	if err != nil {
		sim.Close()
		return nil, err
	}
	e := &env{o: o, sim: sim, dir: dir, db: filepath.Join(dir, "maildesk.db"), toks: &simTokens{sim: sim, users: map[string]string{}, toks: map[string]simTok{}}}
	if err := e.open(); err != nil {
		e.close()
		return nil, err
	}
	return e, nil
}

func (e *env) open() (err error) {
	e.st, err = store.Open(e.db, benchKey(), store.Options{NoSync: true})
	return err
}

// closeStore hands the database to a child process (one opener at a time).
func (e *env) closeStore() {
	if e.st != nil {
		_ = e.st.Close()
		e.st = nil
	}
}

func (e *env) close() {
	e.closeStore()
	if e.od != nil {
		e.od.Close()
	}
	_ = e.sim.Close()
	_ = os.RemoveAll(e.dir)
}

// withOdoo starts the Odoo stand-in and points the store's settings at it.
func (e *env) withOdoo(latency time.Duration) error {
	e.od = odoosim.New(odoosim.Options{Version: 18, Latency: latency})
	if err := e.od.Start(); err != nil {
		return err
	}
	set := store.DefaultSettings()
	set.Odoo = store.OdooSettings{URL: e.od.URL(), DB: e.od.DB(), Login: e.od.TechLogin(), APIKey: e.od.APIKey(), Protocol: "jsonrpc"}
	return e.st.SaveSettings(set)
}

// mailbox creates a connected mailbox for upn (with its Odoo record when
// the stand-in runs; contacts are created for unknown correspondents, so
// every message has a place in Odoo).
func (e *env) mailbox(upn string) (store.Mailbox, error) {
	m, err := e.st.CreateMailbox(store.Mailbox{MailboxConfig: store.MailboxConfig{Email: upn, Kind: "personal", Mode: odoo.ModeLog, BackfillDays: 3650, Folders: []string{"inbox", "sentitems"}, OwnerUID: 2, MainUserID: 2, CreateContacts: true}, MailboxStatus: store.MailboxStatus{State: bridge.StateConnected}})
	if err != nil {
		return m, err
	}
	if e.od != nil {
		oid := e.od.CreateMailbox(m.ID, m.Email)
		if m, err = e.st.UpdateMailboxConfig(m.ID, func(c *store.MailboxConfig, _ store.MailboxStatus) (*store.AuditEntry, error) {
			c.OdooID = oid
			return nil, nil
		}); err != nil {
			return m, err
		}
	}
	e.toks.add(m.ID, upn)
	return m, nil
}

// graph is a Graph client as cmd/maildesk builds it, in this process.
func (e *env) graph() (*graphsync.Client, error) {
	return graphsync.New(graphsync.Config{BaseURL: e.sim.GraphBaseURL(), Tokens: e.toks, Log: zerolog.Nop(),
		Transport: graphsync.NewTransport(&tls.Config{RootCAs: e.sim.CertPool(), MinVersion: tls.VersionTLS12})})
}

// synced generates n messages (attachments up to maxAtt bytes) for upn, makes
// it a connected mailbox and backfills it in this process: the index and the
// outbox hold every message. It returns the mailbox, its Syncer and the Graph
// client.
func (e *env) synced(ctx context.Context, upn string, n, maxAtt int) (store.Mailbox, *bridge.Syncer, *graphsync.Client, error) {
	e.sim.GenerateMailbox(upn, n, m365sim.GenOptions{NoSamples: true, MaxAttachment: maxAtt})
	m, err := e.mailbox(upn)
	if err != nil {
		return m, nil, nil, err
	}
	g, err := e.graph()
	if err != nil {
		return m, nil, nil, err
	}
	sy, err := bridge.NewSyncer(bridge.SyncConfig{Store: e.st, Graph: g, Log: zerolog.Nop(), BackfillSlice: time.Hour})
	if err != nil {
		return m, nil, nil, err
	}
	for {
		res, err := sy.SyncMailbox(ctx, m.ID)
		if err != nil {
			return m, nil, nil, err
		}
		if !res.More {
			return m, sy, g, nil
		}
	}
}

// childConfig hands the child the database, the simulator and a token for
// every mailbox (an access token lives an hour).
func (e *env) childConfig(mode string) (childConfig, error) {
	mbs, err := e.st.Mailboxes()
	if err != nil {
		return childConfig{}, err
	}
	toks := map[string]string{}
	for _, m := range mbs {
		t, err := e.toks.Token(context.Background(), m.ID)
		if err != nil {
			return childConfig{}, err
		}
		toks[m.ID] = t
	}
	return childConfig{Mode: mode, DB: e.db, Graph: e.sim.GraphBaseURL(), CA: string(e.sim.CAPEM()), Tokens: toks}, nil
}

// simTokens issues simulator access tokens per mailbox, renewed after 30 min.
type simTokens struct {
	sim   *m365sim.Sim
	mu    sync.Mutex
	users map[string]string
	toks  map[string]simTok
}

type simTok struct {
	tok string
	at  time.Time
}

func (t *simTokens) add(id, upn string) {
	t.mu.Lock()
	t.users[id] = upn
	t.mu.Unlock()
}

func (t *simTokens) Token(_ context.Context, id string) (string, error) {
	t.mu.Lock()
	defer t.mu.Unlock()
	if k, ok := t.toks[id]; ok && time.Since(k.at) < 30*time.Minute {
		return k.tok, nil
	}
	upn, ok := t.users[id]
	if !ok {
		return "", fmt.Errorf("bench: no user for mailbox %s", id)
	}
	tok, err := t.sim.IssueToken(upn, m365sim.DefaultApp().ClientID)
	if err != nil {
		return "", err
	}
	t.toks[id] = simTok{tok, time.Now()}
	return tok, nil
}

// outboxOnce reads a mailbox's outbox and says how many of the simulator's
// messages are missing and how many are there twice.
func (e *env) outboxOnce(id, upn string) (n, lost, dup int, err error) {
	items, err := e.st.DueOutbox(time.Now().Add(24*time.Hour), 1<<30, 0, nil)
	if err != nil {
		return 0, 0, 0, err
	}
	seen := map[string]int{}
	for _, it := range items {
		if it.MailboxID == id {
			seen[it.GraphID]++
		}
	}
	for _, c := range seen {
		if c > 1 {
			dup += c - 1
		}
	}
	for _, f := range []string{"inbox", "sentitems"} {
		for _, m := range e.sim.Messages(upn, f) {
			if seen[m.ID] == 0 {
				lost++
			}
		}
	}
	return len(items), lost, dup, nil
}
