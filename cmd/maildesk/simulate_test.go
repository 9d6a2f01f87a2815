package main

import (
	"context"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/rs/zerolog"

	"github.com/maildesk/maildesk/bridge"
	"github.com/maildesk/maildesk/graphsync/m365sim"
)

// simFingerprint lists every mailbox of the simulator as `serve --simulate`
// seeds it: users, folders, ids, Message-Ids and subjects.
func simFingerprint(t *testing.T, dir string) []string {
	t.Helper()
	t.Chdir(dir)
	sim, err := startSimulator(Config{SimListen: "127.0.0.1:0", DataDir: t.TempDir()}, io.Discard)
	if err != nil {
		t.Fatal(err)
	}
	defer sim.Close()
	var out []string
	for _, u := range sim.Users() {
		for _, f := range []string{"inbox", "sentitems"} {
			for _, m := range sim.Messages(u.UPN, f) {
				out = append(out, u.UPN+"|"+f+"|"+m.ID+"|"+m.InternetMessageID+"|"+m.Subject)
			}
		}
	}
	return out
}

// The same seed gives the same mailboxes wherever the binary runs: inside
// the Go module (where `go list` finds enmime's sample mails) and in a
// directory outside any module.
func TestSimulateSameMailboxesInAnyDirectory(t *testing.T) {
	wd, err := os.Getwd()
	if err != nil {
		t.Fatal(err)
	}
	inModule := simFingerprint(t, wd)
	outside := simFingerprint(t, t.TempDir())
	if len(inModule) == 0 || len(inModule) != len(outside) {
		t.Fatalf("%d messages in the module directory, %d outside", len(inModule), len(outside))
	}
	for i := range inModule {
		if inModule[i] != outside[i] {
			t.Fatalf("message %d differs:\n  in module: %s\n  outside:   %s", i, inModule[i], outside[i])
		}
	}
}

// A restarted simulator (same seed, same address, its state rebuilt):
// the mailbox needs its owner to sign in again (Odoo gets the notice),
// then the delta links of the earlier run are refused with 410, the
// folders are resynced, the mail added after the restart reaches Odoo and
// nothing reaches Odoo twice.
func TestSimulatorRestartReauthThenResyncThroughOdoo(t *testing.T) {
	t.Parallel()
	ctx, cancel := context.WithTimeout(context.Background(), 4*time.Minute)
	defer cancel()
	const seed, n = 9, 40
	d, err := startDemo(ctx, demoOptions{Messages: n, Seed: seed, DataDir: t.TempDir(), MaxAttachment: 8 << 10})
	if err != nil {
		t.Fatal(err)
	}
	defer d.Close()
	if err := d.createAndConnect(ctx); err != nil {
		t.Fatal(err)
	}
	if _, err := d.waitDelivered(ctx, false); err != nil {
		t.Fatal(err)
	}
	// Mail arrives before the restart too: the first run's sync state moves
	// past anything the restarted one will have for a while.
	d.od.AddPartner("Restart Tester", "restart.tester@example.org")
	deliver := func(sim *m365sim.Sim, subject string) string {
		msgID := fmt.Sprintf("<%d.%s@example.org>", time.Now().UnixNano(), strings.ReplaceAll(subject, " ", "-"))
		raw := "From: Restart Tester <restart.tester@example.org>\r\nTo: " + d.owner + "\r\nSubject: " + subject + "\r\nMessage-ID: " + msgID +
			"\r\nDate: " + time.Now().Format(time.RFC1123Z) + "\r\nContent-Type: text/plain; charset=utf-8\r\n\r\nHello\r\n"
		if _, err := sim.DeliverMIME(d.owner, "inbox", []byte(raw)); err != nil {
			t.Fatal(err)
		}
		return msgID
	}
	inOdoo := func(msgID string) func() bool {
		return func() bool {
			for _, m := range d.od.Messages() {
				if m.MessageID == msgID {
					return true
				}
			}
			return false
		}
	}
	var last string
	for i := 0; i < 3; i++ {
		last = deliver(d.sim, fmt.Sprintf("before the restart %d", i))
	}
	if err := d.rc.callWith(ctx, "mailbox.sync_now", map[string]any{"mailbox_id": d.mailbox}, nil); err != nil {
		t.Fatal(err)
	}
	waitFor(t, ctx, "the mail written before the restart in Odoo", inOdoo(last))
	if _, err := d.waitDelivered(ctx, false); err != nil {
		t.Fatal(err)
	}
	before := len(d.od.Messages())

	// Restart the simulator: a new instance with the same seed and mail.
	addr := strings.TrimPrefix(d.sim.URL(), "https://")
	if err := d.sim.Close(); err != nil {
		t.Fatal(err)
	}
	sim2, err := m365sim.New(m365sim.Options{Seed: seed, Throttle: true, TimeScale: 1, Listen: addr})
	if err != nil {
		t.Fatal(err)
	}
	sim2.AddUser(d.owner, "Anna Schmidt")
	sim2.GenerateMailbox(d.owner, n, m365sim.GenOptions{Start: time.Now().Add(-28 * 24 * time.Hour), End: time.Now().Add(-time.Minute), MaxAttachment: 8 << 10})
	d.sim.CertPool().AppendCertsFromPEM(sim2.CAPEM()) // the sidecar trusts the new CA
	if err := sim2.Start(); err != nil {
		t.Fatal(err)
	}
	defer sim2.Close()
	d.sim = sim2

	// The next round finds the sign-in gone: reauth_required, and Odoo
	// gets the "Sign in again" notice.
	if err := d.rc.callWith(ctx, "mailbox.sync_now", map[string]any{"mailbox_id": d.mailbox}, nil); err != nil {
		t.Fatal(err)
	}
	var view demoMailbox
	waitFor(t, ctx, "reauth_required", func() bool {
		view, err = d.get(ctx)
		return err == nil && (view.State == bridge.StateReauthRequired || view.State == bridge.StateError)
	})
	if view.State != bridge.StateReauthRequired {
		t.Fatalf("after the restart the mailbox is %s: %s", view.State, view.Error)
	}
	waitFor(t, ctx, "the sign-in-again notice in Odoo", func() bool {
		for _, nt := range d.od.Notices() {
			if strings.Contains(fmt.Sprint(nt), "reauth_required") {
				return true
			}
		}
		return false
	})

	// Sign in again; a customer writes meanwhile.
	var conn struct {
		AuthURL string `json:"auth_url"`
	}
	if err := d.rc.callWith(ctx, "mailbox.connect", map[string]any{"mailbox_id": d.mailbox}, &conn); err != nil {
		t.Fatal(err)
	}
	redirect, err := sim2.SignIn(ctx, conn.AuthURL, d.owner)
	if err != nil {
		t.Fatal(err)
	}
	if err := d.rc.callWith(ctx, "oauth.complete", map[string]any{"code": redirect.Query().Get("code"), "state": redirect.Query().Get("state")}, nil); err != nil {
		t.Fatal(err)
	}
	msgID := deliver(sim2, "written after the restart")
	if err := d.rc.callWith(ctx, "mailbox.sync_now", map[string]any{"mailbox_id": d.mailbox}, nil); err != nil {
		t.Fatal(err)
	}
	waitFor(t, ctx, "the message written after the restart in Odoo", inOdoo(msgID))
	if _, err := d.waitDelivered(ctx, false); err != nil {
		t.Fatal(err)
	}
	msgs := d.od.Messages()
	if len(msgs) != before+1 {
		t.Fatalf("Odoo holds %d messages, before the restart %d: want exactly one more", len(msgs), before)
	}
	seen := map[string]bool{}
	for _, m := range msgs {
		if seen[m.MessageID] {
			t.Fatalf("Message-Id %s is in Odoo twice", m.MessageID)
		}
		seen[m.MessageID] = true
	}
}

// `serve --simulate` points the Azure settings at the simulator through the
// settings' own door (bridge.Settings.Set): validated, audited as the
// sidecar, and seen by the settings' change listeners.
func TestSimulatorSettingsGoThroughBridge(t *testing.T) {
	dir := t.TempDir()
	cfg := Config{Listen: "127.0.0.1:0", DataDir: dir, LogLevel: "warn", LogFormat: "json", MaxBodyBytes: 1 << 20,
		ShutdownGrace: time.Second, SimListen: "127.0.0.1:0",
		KeyFile: filepath.Join(dir, "maildesk.key"), SharedSecretFile: filepath.Join(dir, "shared-secret")}
	key, secret, err := prepareDataDir(cfg, io.Discard)
	if err != nil {
		t.Fatal(err)
	}
	sim, err := startSimulator(cfg, io.Discard)
	if err != nil {
		t.Fatal(err)
	}
	defer sim.Close()
	a, err := buildApp(cfg, zerolog.Nop(), key, secret, useSimulator(sim), pointSettingsAtSimulator(sim))
	if err != nil {
		t.Fatal(err)
	}
	defer a.close()
	got, err := a.Settings.Get(bridge.Actor{Admin: true})
	if err != nil {
		t.Fatal(err)
	}
	if got.Azure.Authority != sim.URL() || got.Azure.Tenant != sim.Tenant() || !got.Azure.ClientSecret.Set {
		t.Fatalf("settings not pointed at the simulator: %+v", got.Azure)
	}
	entries, err := a.Audit.List(bridge.Actor{Admin: true}, bridge.AuditParams{Limit: 50})
	if err != nil {
		t.Fatal(err)
	}
	for _, e := range entries.Entries {
		if e.Action == "settings.set" && e.Actor == "sidecar" {
			return
		}
	}
	t.Fatalf("no settings.set audit entry by the sidecar: %+v", entries.Entries)
}
