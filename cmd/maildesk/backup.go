package main

import (
	"context"
	"encoding/base64"
	"errors"
	"flag"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"time"

	"github.com/maildesk/maildesk/store"
	"github.com/maildesk/maildesk/store/pgstore"
)

// cmdBackup writes a consistent copy of the database to FILE. While serve
// runs it holds bbolt's file lock, so the copy is streamed from it over the
// authenticated GET /admin/backup; when no sidecar answers, the file is
// opened directly. The copy is verified by opening it with the key file.
func cmdBackup(ctx context.Context, args []string, stdout, stderr io.Writer, getenv func(string) string) error {
	fs := flag.NewFlagSet("backup", flag.ContinueOnError)
	fs.SetOutput(stderr)
	cfg, rest, err := loadConfig(fs, args, getenv)
	if err != nil {
		return err
	}
	if cfg.Postgres() {
		return fmt.Errorf("the data is in PostgreSQL (--store): back it up with pg_dump --format=custom --file=maildesk.dump '%s' (secrets stay sealed; keep the key file apart); maildesk backup handles the bbolt file only", pgstore.Redact(cfg.Store))
	}
	if len(rest) != 1 {
		return errors.New("usage: maildesk backup [flags] FILE")
	}
	dst, err := filepath.Abs(rest[0])
	if err != nil {
		return err
	}
	key, err := readKeyFile(cfg.KeyFile)
	if err != nil {
		return err
	}
	tmp, err := os.CreateTemp(filepath.Dir(dst), ".maildesk-backup-*")
	if err != nil {
		return fmt.Errorf("create backup file: %w", err)
	}
	defer os.Remove(tmp.Name())
	if err := tmp.Chmod(0o600); err != nil {
		tmp.Close()
		return err
	}
	how, n, err := backupInto(ctx, cfg, tmp)
	if err == nil {
		err = tmp.Sync()
	}
	if cerr := tmp.Close(); err == nil {
		err = cerr
	}
	if err != nil {
		return err
	}
	// Verify: the copy must open with the key (this also proves it is whole).
	st, err := store.Open(tmp.Name(), key, store.Options{Timeout: time.Second})
	if err != nil {
		return fmt.Errorf("the backup does not open, it was not kept: %w", err)
	}
	if err := st.Ping(); err != nil {
		st.Close()
		return fmt.Errorf("the backup does not open, it was not kept: %w", err)
	}
	st.Close()
	if err := os.Rename(tmp.Name(), dst); err != nil {
		return fmt.Errorf("move backup into place: %w", err)
	}
	fmt.Fprintf(stdout, "maildesk: backup of %d bytes written to %s (%s); it opens only with the key file %s\n", n, dst, how, cfg.KeyFile)
	return nil
}

// backupInto streams from the running sidecar or, when none runs, copies the
// file itself.
func backupInto(ctx context.Context, cfg Config, w io.Writer) (string, int64, error) {
	secret, err := os.ReadFile(cfg.SharedSecretFile)
	if err == nil {
		n, err := backupFromSidecar(ctx, cfg, string(trimSpace(secret)), w)
		if err == nil {
			return "streamed from the running sidecar", n, nil
		}
		if !errors.Is(err, errNoSidecar) {
			return "", 0, err
		}
	}
	key, err := readKeyFile(cfg.KeyFile)
	if err != nil {
		return "", 0, err
	}
	st, err := store.Open(cfg.DBPath(), key, store.Options{Timeout: 2 * time.Second})
	if err != nil {
		return "", 0, err
	}
	defer st.Close()
	n, err := st.Backup(w)
	return "read from " + cfg.DBPath(), n, err
}

// readKeyFile reads an existing key file; unlike store.LoadOrCreateKey it
// never creates one (a backup must not invent a key).
func readKeyFile(path string) ([]byte, error) {
	b, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("read key file (--key-file): %w", err)
	}
	key, err := base64.StdEncoding.DecodeString(strings.TrimSpace(string(b)))
	if err != nil || len(key) != store.KeySize {
		return nil, fmt.Errorf("key file %s does not hold a base64 %d-byte key", path, store.KeySize)
	}
	return key, nil
}

var errNoSidecar = errors.New("no sidecar is running")

func backupFromSidecar(ctx context.Context, cfg Config, secret string, w io.Writer) (int64, error) {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, sidecarURL(cfg)+"/admin/backup", nil)
	if err != nil {
		return 0, err
	}
	req.Header.Set("Authorization", "Bearer "+secret)
	client, err := localHTTPClient(cfg, 30*time.Minute)
	if err != nil {
		return 0, err
	}
	resp, err := client.Do(req)
	if err != nil {
		var op *net.OpError
		if errors.Is(err, syscall.ECONNREFUSED) || (errors.As(err, &op) && op.Op == "dial") {
			return 0, errNoSidecar
		}
		return 0, fmt.Errorf("ask the sidecar at %s for a backup: %w", sidecarURL(cfg), err)
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		b, _ := io.ReadAll(io.LimitReader(resp.Body, 4096))
		return 0, fmt.Errorf("the sidecar at %s refused the backup: HTTP %d: %s", sidecarURL(cfg), resp.StatusCode, trimSpace(b))
	}
	n, err := io.Copy(w, resp.Body)
	if err != nil {
		return n, fmt.Errorf("backup stream broke after %d bytes: %w", n, err)
	}
	return n, nil
}

// sidecarURL is the base URL of the sidecar this config runs.
func sidecarURL(cfg Config) string {
	host, port, err := net.SplitHostPort(cfg.Listen)
	if err != nil {
		return cfg.scheme() + "://" + cfg.Listen
	}
	if host == "" || host == "0.0.0.0" || host == "::" {
		host = "127.0.0.1"
	}
	return cfg.scheme() + "://" + net.JoinHostPort(host, port)
}

func trimSpace(b []byte) []byte {
	for len(b) > 0 && (b[len(b)-1] == '\n' || b[len(b)-1] == '\r' || b[len(b)-1] == ' ') {
		b = b[:len(b)-1]
	}
	return b
}
