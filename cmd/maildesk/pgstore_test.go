package main

import (
	"context"
	"io"
	"os"
	"strings"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/maildesk/maildesk/store/pgstore/pgtest"
)

func TestMain(m *testing.M) {
	if code, ok := runTestNode(); ok { // a sidecar node of scaleout_test.go
		os.Exit(code)
	}
	code := m.Run()
	pgtest.Stop()
	os.Exit(code)
}

// The whole flow on PostgreSQL (--store postgres://…): a mailbox created,
// connected through the real OAuth flow, backfilled, every message
// delivered to the Odoo stand-in exactly once; system.health's store is ok.
func TestEndToEndOnPostgres(t *testing.T) {
	t.Parallel()
	url, _ := pgtest.FreshSchema(t)
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancel()
	d, err := startDemo(ctx, demoOptions{Messages: 60, Seed: 5, DataDir: t.TempDir(), MaxAttachment: 8 << 10, Store: url})
	if err != nil {
		t.Fatal(err)
	}
	defer d.Close()
	if err := d.createAndConnect(ctx); err != nil {
		t.Fatal(err)
	}
	view, err := d.waitDelivered(ctx, false)
	if err != nil {
		// Where it stood, from the database.
		if conn, cerr := pgx.Connect(context.Background(), url); cerr == nil {
			if rows, qerr := conn.Query(context.Background(), "SELECT folder, data::text FROM cursors"); qerr == nil {
				for rows.Next() {
					var f, c string
					_ = rows.Scan(&f, &c)
					t.Logf("cursor %s: %s", f, c)
				}
				rows.Close()
			}
			conn.Close(context.Background())
		}
		t.Fatal(err)
	}
	inbox, sent := d.sim.Messages(d.owner, "inbox"), d.sim.Messages(d.owner, "sentitems")
	if view.Counts.Queued != int64(len(inbox)+len(sent)) {
		t.Fatalf("queued %d, the mailbox holds %d", view.Counts.Queued, len(inbox)+len(sent))
	}
	seen := map[string]bool{}
	for _, m := range d.od.Messages() {
		if m.GraphID == "" {
			continue
		}
		if seen[m.GraphID] {
			t.Fatalf("graph message %s is in Odoo twice", m.GraphID)
		}
		seen[m.GraphID] = true
	}
	if view.Counts.Delivered+view.Counts.Unrouted != view.Counts.Queued {
		t.Fatalf("counts after delivery: %+v", view.Counts)
	}
	var h struct {
		Status     string `json:"status"`
		Components map[string]struct {
			Status string `json:"status"`
		} `json:"components"`
	}
	if err := d.rc.call(ctx, "system.health", &h); err != nil {
		t.Fatal(err)
	}
	if h.Components["store"].Status != "ok" || h.Components["scheduler"].Status != "ok" || h.Components["pusher"].Status != "ok" {
		t.Fatalf("system.health on PostgreSQL: %+v", h)
	}
}

// maildesk backup and restore refuse PostgreSQL (pg_dump is the tool)
// instead of creating a bbolt file in the data directory.
func TestBackupRestoreRefusePostgres(t *testing.T) {
	dir := t.TempDir()
	env := map[string]string{"MAILDESK_DATA_DIR": dir, "MAILDESK_STORE": "postgres://nobody@127.0.0.1:1/none"}
	getenv := func(k string) string { return env[k] }
	for _, cmd := range []func(context.Context, []string, io.Writer, io.Writer, func(string) string) error{cmdBackup, cmdRestore} {
		err := cmd(context.Background(), []string{dir + "/x.db"}, io.Discard, io.Discard, getenv)
		if err == nil || !strings.Contains(err.Error(), "PostgreSQL") {
			t.Fatalf("backup/restore with --store postgres: %v", err)
		}
	}
	if _, err := os.Stat(dir + "/maildesk.db"); !os.IsNotExist(err) {
		t.Fatalf("a bbolt file was created: %v", err)
	}
}
