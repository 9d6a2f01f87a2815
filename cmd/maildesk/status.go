package main

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"net/http"
	"os"
	"sort"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/maildesk/maildesk/bridge"
)

// cmdStatus asks a running sidecar for system.health and mailbox.list (as a
// MailDesk administrator) and prints them as a table.
func cmdStatus(ctx context.Context, args []string, stdout, stderr io.Writer, getenv func(string) string) error {
	fs := flag.NewFlagSet("status", flag.ContinueOnError)
	fs.SetOutput(stderr)
	asJSON := fs.Bool("json", false, "print the raw answers as JSON")
	cfg, rest, err := loadConfig(fs, args, getenv)
	if err != nil {
		return err
	}
	if len(rest) > 0 {
		return fmt.Errorf("unexpected argument %q", rest[0])
	}
	raw, err := os.ReadFile(cfg.SharedSecretFile)
	if err != nil {
		return fmt.Errorf("read the shared secret (--shared-secret-file): %w", err)
	}
	hc, err := localHTTPClient(cfg, 10*time.Second)
	if err != nil {
		return err
	}
	c := &rpcClient{url: sidecarURL(cfg), secret: string(trimSpace(raw)), http: hc}
	var health bridge.Health
	if err := c.call(ctx, "system.health", &health); err != nil {
		return err
	}
	var mbs []bridge.MailboxView
	if err := c.call(ctx, "mailbox.list", &mbs); err != nil {
		return err
	}
	if *asJSON {
		enc := json.NewEncoder(stdout)
		enc.SetIndent("", "  ")
		return enc.Encode(map[string]any{"health": health, "mailboxes": mbs})
	}
	printStatus(stdout, c.url, health, mbs)
	return nil
}

func printStatus(w io.Writer, url string, h bridge.Health, mbs []bridge.MailboxView) {
	fmt.Fprintf(w, "MailDesk at %s: %s\n\n", url, strings.ToUpper(h.Status))
	tw := tabwriter.NewWriter(w, 0, 4, 2, ' ', 0)
	fmt.Fprintln(tw, "COMPONENT\tSTATUS\tDETAIL")
	names := make([]string, 0, len(h.Components))
	for n := range h.Components {
		names = append(names, n)
	}
	sort.Strings(names)
	for _, n := range names {
		fmt.Fprintf(tw, "%s\t%s\t%s\n", n, h.Components[n].Status, h.Components[n].Detail)
	}
	tw.Flush()
	fmt.Fprintln(w)
	if len(mbs) == 0 {
		fmt.Fprintln(w, "No mailboxes yet.")
		return
	}
	tw = tabwriter.NewWriter(w, 0, 4, 2, ' ', 0)
	fmt.Fprintln(tw, "MAILBOX\tKIND\tMODE\tSTATE\tLAST SYNC\tBACKFILL\tQUEUED\tDELIVERED\tDELIVERY\tERROR")
	for _, m := range mbs {
		last := "never"
		if m.LastSyncAt != nil {
			last = m.LastSyncAt.Local().Format("2006-01-02 15:04")
		}
		fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\t%s\t%d\t%d\t%s\t%s\n", m.Email, m.Kind, m.Mode, m.State, last, progressBar(m.Progress),
			m.Counts.Queued, m.Counts.Delivered, deliveryText(m.Delivery), clip(m.Error, 60))
	}
	tw.Flush()
}

const barWidth = 10

// progressBar renders a backfill's progress as "[####------] 40/100 40%";
// "done" once finished, "-" when no backfill has counted anything.
func progressBar(p bridge.ProgressView) string {
	switch {
	case p.Total <= 0 && p.Done <= 0:
		if p.Finished {
			return "done"
		}
		return "-"
	case p.Total <= 0:
		return fmt.Sprintf("[%s] %d/?", strings.Repeat("?", barWidth), p.Done)
	}
	done := p.Done
	if done > p.Total {
		done = p.Total
	}
	if done < 0 {
		done = 0
	}
	filled := int(done * barWidth / p.Total)
	s := fmt.Sprintf("[%s%s] %d/%d %d%%", strings.Repeat("#", filled), strings.Repeat("-", barWidth-filled),
		p.Done, p.Total, done*100/p.Total)
	if p.Finished {
		s += " done"
	}
	return s
}

// deliveryText says whether delivery to Odoo is on time or delayed and why.
func deliveryText(d bridge.DeliveryView) string {
	if !d.Delayed {
		return "ok"
	}
	s := "DELAYED"
	if d.Since != nil {
		s += " since " + d.Since.Local().Format("15:04")
	}
	if r := d.Reason; r != "" {
		s += ": " + clip(r, 60)
	}
	return s
}

// clip shortens s to n runes, ending in "...", and keeps it on one line.
func clip(s string, n int) string {
	s = strings.Join(strings.Fields(s), " ")
	r := []rune(s)
	if len(r) <= n {
		return s
	}
	return string(r[:n-3]) + "..."
}

// rpcClient is a minimal JSON-RPC client for the CLI and the demo, acting
// as a MailDesk administrator (context.maildesk_admin) with uid.
type rpcClient struct {
	url, secret string
	http        *http.Client
	uid         int64
	id          int
}

// call calls a method without params.
func (c *rpcClient) call(ctx context.Context, method string, out any) error {
	return c.callWith(ctx, method, nil, out)
}

// callWith calls a method with named params; out may be nil.
func (c *rpcClient) callWith(ctx context.Context, method string, params map[string]any, out any) error {
	c.id++
	p := map[string]any{}
	for k, v := range params {
		p[k] = v
	}
	p["context"] = map[string]any{"uid": c.uid, "maildesk_admin": true}
	body, _ := json.Marshal(map[string]any{"jsonrpc": "2.0", "id": c.id, "method": method, "params": p})
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, c.url+"/jsonrpc", bytes.NewReader(body))
	if err != nil {
		return err
	}
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("Authorization", "Bearer "+c.secret)
	resp, err := c.http.Do(req)
	if err != nil {
		return fmt.Errorf("no sidecar answers at %s (is `maildesk serve` running with the same --listen?): %w", c.url, err)
	}
	defer resp.Body.Close()
	raw, err := io.ReadAll(io.LimitReader(resp.Body, 64<<20))
	if err != nil {
		return fmt.Errorf("%s: read answer: %w", method, err)
	}
	var ans struct {
		Result json.RawMessage `json:"result"`
		Error  *struct {
			Data struct {
				Name    string `json:"name"`
				Message string `json:"message"`
			} `json:"data"`
		} `json:"error"`
	}
	if err := json.Unmarshal(raw, &ans); err != nil {
		return fmt.Errorf("%s: HTTP %d, answer is not JSON-RPC", method, resp.StatusCode)
	}
	if ans.Error != nil {
		return fmt.Errorf("%s: %s: %s", method, ans.Error.Data.Name, ans.Error.Data.Message)
	}
	if out == nil {
		return nil
	}
	if len(ans.Result) == 0 {
		return errors.New(method + ": empty answer")
	}
	return json.Unmarshal(ans.Result, out)
}
