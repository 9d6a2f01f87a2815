package main

import (
	"crypto/tls"
	"fmt"
	"io"
	"os"
	"path/filepath"

	"github.com/maildesk/maildesk/bridge"
	"github.com/maildesk/maildesk/graphsync/m365sim"
)

// simTLS trusts the simulator's CA (and only it) for identity and Graph.
func simTLS(sim *m365sim.Sim) *tls.Config {
	return &tls.Config{RootCAs: sim.CertPool(), MinVersion: tls.VersionTLS12}
}

// startSimulator runs the Microsoft 365 simulator for `serve --simulate`:
// three seeded users and a shared mailbox, Graph's real limits, and the CA
// written next to the database so a browser or curl can trust it.
func startSimulator(cfg Config, stdout io.Writer) (*m365sim.Sim, error) {
	sim, err := m365sim.New(m365sim.Options{Listen: cfg.SimListen, Seed: 1, Throttle: true, TimeScale: 1})
	if err != nil {
		return nil, err
	}
	users := m365sim.Seed(sim, 3, 200)
	if err := sim.Start(); err != nil {
		return nil, fmt.Errorf("start the Microsoft 365 simulator on %s: %w", cfg.SimListen, err)
	}
	caFile := filepath.Join(cfg.DataDir, "simulator-ca.pem")
	if err := os.WriteFile(caFile, sim.CAPEM(), 0o644); err != nil {
		sim.Close()
		return nil, fmt.Errorf("write the simulator's CA to %s: %w", caFile, err)
	}
	fmt.Fprintf(stdout, "maildesk: --simulate: Microsoft 365 is the simulator at %s (CA %s; a browser will warn about its certificate)\n", sim.URL(), caFile)
	fmt.Fprintf(stdout, "maildesk: simulated mailboxes (sign in as any of them on the simulator's consent page):\n")
	for _, u := range users {
		kind := "personal"
		if u.Shared {
			kind = "shared"
		}
		fmt.Fprintf(stdout, "  %-28s %-8s %d messages\n", u.UPN, kind, u.MessageCount())
	}
	app := m365sim.DefaultApp()
	fmt.Fprintf(stdout, "maildesk: Azure app for Odoo's Settings → MailDesk: tenant %s, client id %s, client secret %s\n", sim.Tenant(), app.ClientID, app.ClientSecret)
	fmt.Fprintf(stdout, "maildesk: the simulator keeps its mail and sign-ins in memory: after a restart, connect mailboxes again\n")
	return sim, nil
}

// pointSettingsAtSimulator stores the simulator as the Azure app: its
// authority, tenant and always-registered app. An admin's redirect URI is
// kept (the simulator's app accepts any loopback URL).
func pointSettingsAtSimulator(sim *m365sim.Sim) func(a *App) error {
	return func(a *App) error {
		app := m365sim.DefaultApp()
		authority, tenant, empty := sim.URL(), sim.Tenant(), ""
		// Through the settings' own door: validated and audited (as the
		// sidecar), like a change made from Odoo.
		_, err := a.Settings.Set(bridge.Actor{Admin: true}, bridge.SettingsParams{Azure: &bridge.AzureParams{
			Authority: &authority, Tenant: &tenant, ClientID: &app.ClientID, ClientSecret: &app.ClientSecret, CertificatePEM: &empty,
		}})
		if err != nil {
			return fmt.Errorf("point the settings at the simulator: %w", err)
		}
		return nil
	}
}
