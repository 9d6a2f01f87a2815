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
	fmt.Fprintln(tw, "MAILBOX\tKIND\tMODE\tSTATE\tLAST SYNC\tPROGRESS\tQUEUED\tDELIVERED\tERROR")
	for _, m := range mbs {
		last := "never"
		if m.LastSyncAt != nil {
			last = m.LastSyncAt.Local().Format("2006-01-02 15:04")
		}
		progress := "-"
		if m.Progress.Total > 0 || m.Progress.Done > 0 {
			progress = fmt.Sprintf("%d/%d", m.Progress.Done, m.Progress.Total)
			if m.Progress.Total > 0 {
				progress += fmt.Sprintf(" (%d%%)", m.Progress.Done*100/m.Progress.Total)
			}
		}
		errText := m.Error
		if len(errText) > 60 {
			errText = errText[:57] + "..."
		}
		fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\t%s\t%d\t%d\t%s\n", m.Email, m.Kind, m.Mode, m.State, last, progress,
			m.Counts.Queued, m.Counts.Delivered, errText)
	}
	tw.Flush()
}

// rpcClient is a minimal JSON-RPC client for the CLI.
type rpcClient struct {
	url, secret string
	http        *http.Client
	id          int
}

func (c *rpcClient) call(ctx context.Context, method string, out any) error {
	c.id++
	body, _ := json.Marshal(map[string]any{"jsonrpc": "2.0", "id": c.id, "method": method,
		"params": map[string]any{"context": map[string]any{"uid": 0, "maildesk_admin": true}}})
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
	if len(ans.Result) == 0 {
		return errors.New(method + ": empty answer")
	}
	return json.Unmarshal(ans.Result, out)
}
