package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"net/http"
	"time"
)

// cmdHealthcheck probes the local sidecar's /healthz and fails unless it
// answers 200: the container image's HEALTHCHECK (distroless has no curl).
// It reads the same configuration as serve (MAILDESK_LISTEN, TLS files), so
// it needs no arguments.
func cmdHealthcheck(ctx context.Context, args []string, stdout, stderr io.Writer, getenv func(string) string) error {
	fs := flag.NewFlagSet("healthcheck", flag.ContinueOnError)
	fs.SetOutput(stderr)
	timeout := fs.Duration("timeout", 5*time.Second, "give up after this long")
	quiet := fs.Bool("quiet", false, "print nothing when healthy")
	cfg, rest, err := loadConfig(fs, args, getenv)
	if err != nil {
		return err
	}
	if len(rest) > 0 {
		return fmt.Errorf("unexpected argument %q", rest[0])
	}
	client, err := localHTTPClient(cfg, *timeout)
	if err != nil {
		return err
	}
	url := sidecarURL(cfg) + "/healthz"
	ctx, cancel := context.WithTimeout(ctx, *timeout)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, url, nil)
	if err != nil {
		return err
	}
	resp, err := client.Do(req)
	if err != nil {
		return fmt.Errorf("%s: %w", url, err)
	}
	defer resp.Body.Close()
	body, _ := io.ReadAll(io.LimitReader(resp.Body, 4096))
	if resp.StatusCode != http.StatusOK {
		return errors.New(url + ": HTTP " + resp.Status + ": " + string(trimSpace(body)))
	}
	if !*quiet {
		fmt.Fprintf(stdout, "maildesk: healthy (%s)\n", url)
	}
	return nil
}
