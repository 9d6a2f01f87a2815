// Command seedinbox adds a large synthetic mailbox to a stopped sidecar's
// bbolt data directory (inboxgen.Seed), for measuring the inbox in a real
// Odoo (odoo-addon/e2e/bench_inbox.py). Not part of the maildesk binary:
//
//	go run ./internal/inboxgen/seedinbox --data-dir DIR --email anna@contoso.com --messages 50000
package main

import (
	"flag"
	"fmt"
	"os"
	"path/filepath"
	"time"

	"github.com/maildesk/maildesk/internal/inboxgen"
	"github.com/maildesk/maildesk/store"
)

func main() {
	dir := flag.String("data-dir", "", "the sidecar's data directory (maildesk.db, maildesk.key); the sidecar must be stopped")
	email := flag.String("email", "", "address of the mailbox to fill (created by Odoo already)")
	n := flag.Int("messages", 50000, "messages to index")
	flag.Parse()
	if err := run(*dir, *email, *n); err != nil {
		fmt.Fprintln(os.Stderr, "seedinbox:", err)
		os.Exit(1)
	}
}

func run(dir, email string, n int) error {
	if dir == "" || email == "" {
		return fmt.Errorf("--data-dir and --email are required")
	}
	key, _, err := store.LoadOrCreateKey(filepath.Join(dir, "maildesk.key"))
	if err != nil {
		return err
	}
	st, err := store.Open(filepath.Join(dir, "maildesk.db"), key, store.Options{})
	if err != nil {
		return err
	}
	defer st.Close()
	boxes, err := st.Mailboxes()
	if err != nil {
		return err
	}
	for _, m := range boxes {
		if m.Email == email {
			t0 := time.Now()
			// Older than the mail the simulator holds (dated around now).
			if err := inboxgen.Seed(st, m.ID, email, n, time.Now().Add(-24*time.Hour)); err != nil {
				return err
			}
			fmt.Printf("seedinbox: %d messages indexed in %s (%s) in %.1f s\n", n, email, m.ID, time.Since(t0).Seconds())
			return nil
		}
	}
	return fmt.Errorf("no mailbox %s in %s", email, dir)
}
