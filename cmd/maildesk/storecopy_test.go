package main

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/maildesk/maildesk/store/pgstore/pgtest"
)

// maildesk store copy moves a sidecar from bbolt to PostgreSQL: a mailbox
// synced for real (OAuth, backfill, delivery to the Odoo stand-in) on
// bbolt is copied with its tokens, cursors, index and audit; the sidecar
// started on PostgreSQL with the same key file goes on where it stopped —
// it syncs new mail with the copied tokens and cursors, and delivers every
// message exactly once: nothing is delivered again, nothing is lost.
func TestStoreCopyBboltToPostgresThenServe(t *testing.T) {
	t.Parallel()
	url, _ := pgtest.FreshSchema(t)
	ctx, cancel := context.WithTimeout(context.Background(), 4*time.Minute)
	defer cancel()
	dir := t.TempDir()
	d, err := startDemo(ctx, demoOptions{Messages: 40, Seed: 7, DataDir: dir, MaxAttachment: 8 << 10})
	if err != nil {
		t.Fatal(err)
	}
	defer d.Close()
	if err := d.createAndConnect(ctx); err != nil {
		t.Fatal(err)
	}
	before, err := d.waitDelivered(ctx, false)
	if err != nil {
		t.Fatal(err)
	}
	delivered := len(d.od.Messages())
	// Stop the bbolt sidecar (the simulator and Odoo stay).
	d.closers[len(d.closers)-1]()
	d.closers = d.closers[:len(d.closers)-1]

	// A second copy into the same database is refused.
	var out, errb bytes.Buffer
	env := func(string) string { return "" }
	if code := run(ctx, []string{"store", "copy", "--from", dir, "--to", url}, &out, &errb, env); code != 0 {
		t.Fatalf("store copy: exit %d\n%s\n%s", code, out.String(), errb.String())
	}
	t.Logf("store copy:\n%s", out.String())
	for _, want := range []string{"copied ", "mailboxes source 1 target 1 ok", "messages source 40 target 40 ok", "maildesk: copy complete"} {
		if !strings.Contains(strings.Join(strings.Fields(out.String()), " "), strings.Join(strings.Fields(want), " ")) {
			t.Fatalf("store copy output lacks %q:\n%s", want, out.String())
		}
	}
	if strings.Contains(out.String(), "MISSING") {
		t.Fatalf("verification failed:\n%s", out.String())
	}
	out.Reset()
	if code := run(ctx, []string{"store", "copy", "--from", dir, "--to", url}, &out, &errb, env); code != 1 || !strings.Contains(errb.String(), "already holds MailDesk data") {
		t.Fatalf("second copy into a non-empty database: exit %d\n%s", code, errb.String())
	}

	// The sidecar on PostgreSQL, same data directory for its key and secret.
	sc := startInProcessOn(t, dir, url, d.sim)
	secret := sc.secret
	d.rc = &rpcClient{url: sc.base, secret: secret, http: &http.Client{Timeout: 60 * time.Second}, uid: 2}

	// GET /admin/backup on PostgreSQL says what to run instead.
	req, _ := http.NewRequestWithContext(ctx, http.MethodGet, d.rc.url+"/admin/backup", nil)
	req.Header.Set("Authorization", "Bearer "+secret)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	body, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if resp.StatusCode != http.StatusNotImplemented || !strings.Contains(string(body), "pg_dump --format=custom --file=maildesk.dump 'postgres://") ||
		!strings.Contains(string(body), "pg_restore --no-owner --dbname=") {
		t.Fatalf("/admin/backup on PostgreSQL: %d %s", resp.StatusCode, body)
	}
	after, err := d.get(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if after.State != before.State || after.Counts != before.Counts || after.Progress.Done != before.Progress.Done {
		t.Fatalf("mailbox after the copy %+v, before %+v", after, before)
	}
	// New mail reaches Odoo through the copied tokens and cursors.
	for i := 0; i < 3; i++ {
		d.od.AddPartner(fmt.Sprintf("Customer %d", i), fmt.Sprintf("customer%d@example.com", i))
		raw := fmt.Sprintf("From: Customer <customer%d@example.com>\r\nTo: %s\r\nSubject: after the move %d\r\nMessage-ID: <moved-%d@example.com>\r\nDate: %s\r\n\r\nhello\r\n",
			i, d.owner, i, i, time.Now().UTC().Format(time.RFC1123Z))
		if _, err := d.sim.DeliverMIME(d.owner, "inbox", []byte(raw)); err != nil {
			t.Fatal(err)
		}
	}
	if err := d.rc.callWith(ctx, "mailbox.sync_now", map[string]any{"mailbox_id": d.mailbox}, nil); err != nil {
		t.Fatal(err)
	}
	for {
		v, err := d.get(ctx)
		if err != nil {
			t.Fatal(err)
		}
		if v.Counts.Queued == before.Counts.Queued+3 && v.Counts.Delivered == before.Counts.Delivered+3 && v.Counts.Unrouted == before.Counts.Unrouted {
			break
		}
		select {
		case <-ctx.Done():
			t.Fatalf("new mail after the move not delivered: %+v (before %+v)", v.Counts, before.Counts)
		case <-time.After(100 * time.Millisecond):
		}
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
	if got := len(d.od.Messages()); got != delivered+3 || len(seen) != got {
		t.Fatalf("Odoo holds %d messages (%d distinct), want the %d from before the move and the 3 new", got, len(seen), delivered)
	}
}
