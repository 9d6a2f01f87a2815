package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"syscall"
	"time"

	"github.com/maildesk/maildesk/store"
)

// cmdRestore puts a backup (from `maildesk backup`) in place of the
// database. The sidecar must be stopped: the database file's lock tells. The
// backup is checked with the key file before anything is touched, and the
// database it replaces is kept beside it as maildesk.db.before-restore-<time>.
func cmdRestore(ctx context.Context, args []string, stdout, stderr io.Writer, getenv func(string) string) error {
	fs := flag.NewFlagSet("restore", flag.ContinueOnError)
	fs.SetOutput(stderr)
	cfg, rest, err := loadConfig(fs, args, getenv)
	if err != nil {
		return err
	}
	if cfg.Postgres() {
		return errors.New("the data is in PostgreSQL (--store): restore it with pg_restore or psql (secrets stay sealed; keep the key file apart); maildesk restore handles the bbolt file only")
	}
	if len(rest) != 1 {
		return errors.New("usage: maildesk restore [flags] FILE")
	}
	src := rest[0]
	key, err := readKeyFile(cfg.KeyFile)
	if err != nil {
		return err
	}
	// 1. The backup must open with this key (right key, whole file).
	if err := checkDatabase(src, key); err != nil {
		return fmt.Errorf("the backup %s cannot be restored: %w", src, err)
	}
	if err := os.MkdirAll(cfg.DataDir, 0o700); err != nil {
		return fmt.Errorf("create data directory %s: %w", cfg.DataDir, err)
	}
	dst := cfg.DBPath()
	// 2. No sidecar may hold the current database.
	if _, err := os.Stat(dst); err == nil {
		st, err := store.Open(dst, key, store.Options{Timeout: time.Second})
		if err != nil {
			return fmt.Errorf("stop the sidecar before restoring (systemctl stop maildesk / docker compose stop maildesk): %w", err)
		}
		st.Close()
	}
	// 3. Copy next to the target, fsync, then swap in with renames.
	tmp, err := os.CreateTemp(cfg.DataDir, ".maildesk-restore-*")
	if err != nil {
		return fmt.Errorf("restore: %w", err)
	}
	defer os.Remove(tmp.Name())
	in, err := os.Open(src)
	if err != nil {
		tmp.Close()
		return fmt.Errorf("restore: %w", err)
	}
	n, err := io.Copy(tmp, in)
	in.Close()
	if err == nil {
		err = tmp.Chmod(0o600)
	}
	if err == nil {
		err = tmp.Sync()
	}
	if cerr := tmp.Close(); err == nil {
		err = cerr
	}
	if err != nil {
		return fmt.Errorf("restore: copy %s: %w", src, err)
	}
	kept := ""
	if fi, err := os.Stat(dst); err == nil {
		// Run as root, keep the database owned by the sidecar's user.
		if sys, ok := fi.Sys().(*syscall.Stat_t); ok {
			_ = os.Lchown(tmp.Name(), int(sys.Uid), int(sys.Gid))
		}
		kept = dst + ".before-restore-" + time.Now().UTC().Format("20060102T150405Z")
		if err := os.Rename(dst, kept); err != nil {
			return fmt.Errorf("restore: move the current database aside: %w", err)
		}
	}
	if err := os.Rename(tmp.Name(), dst); err != nil {
		return fmt.Errorf("restore: put the backup in place: %w", err)
	}
	if d, err := os.Open(filepath.Dir(dst)); err == nil {
		_ = d.Sync()
		d.Close()
	}
	fmt.Fprintf(stdout, "maildesk: restored %d bytes from %s into %s\n", n, src, dst)
	if kept != "" {
		fmt.Fprintf(stdout, "maildesk: the database it replaced is kept as %s (delete it once the sidecar runs well)\n", kept)
	}
	fmt.Fprintln(stdout, "maildesk: start the sidecar; it carries on from the backup's sync positions and re-sends to Odoo what was not acknowledged then (Odoo drops duplicates).")
	return nil
}

// checkDatabase opens a database file read-write with key and pings it.
func checkDatabase(path string, key []byte) error {
	if _, err := os.Stat(path); err != nil {
		return err
	}
	st, err := store.Open(path, key, store.Options{Timeout: time.Second})
	if err != nil {
		return err
	}
	defer st.Close()
	return st.Ping()
}
