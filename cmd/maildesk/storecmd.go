package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"path/filepath"
	"strings"
	"time"

	"github.com/maildesk/maildesk/store"
	"github.com/maildesk/maildesk/store/pgstore"
	"github.com/maildesk/maildesk/store/storecopy"
)

// cmdStore runs the store's maintenance commands:
//
//	maildesk store copy --from DATA_DIR --to postgres://… [--key-file FILE] [--force]
//
// copies a bbolt data directory into PostgreSQL (store/storecopy).
func cmdStore(ctx context.Context, args []string, stdout, stderr io.Writer, getenv func(string) string) error {
	const use = "usage: maildesk store copy --from DATA_DIR --to postgres://… [--key-file FILE] [--force]"
	if len(args) == 0 || args[0] != "copy" {
		fmt.Fprintln(stderr, use)
		return usageError{errors.New(use)}
	}
	fs := flag.NewFlagSet("store copy", flag.ContinueOnError)
	fs.SetOutput(stderr)
	from := fs.String("from", getenv("MAILDESK_DATA_DIR"), "the bbolt data directory to copy (holds maildesk.db; the sidecar using it must be stopped)")
	to := fs.String("to", "", "the PostgreSQL database to copy into (postgres://user:password@host:5432/maildesk)")
	keyFile := fs.String("key-file", "", "the key file the data directory was sealed with (default DATA_DIR/maildesk.key); PostgreSQL gets the data sealed with the same key")
	force := fs.Bool("force", false, "copy also into a database that holds MailDesk data already (records with the same ids are overwritten)")
	if err := fs.Parse(args[1:]); err != nil {
		return usageError{err}
	}
	if *from == "" || !strings.HasPrefix(*to, "postgres://") && !strings.HasPrefix(*to, "postgresql://") {
		fmt.Fprintln(stderr, "maildesk store copy needs --from DATA_DIR and --to postgres://…\n"+use)
		return usageError{errors.New(use)}
	}
	if *keyFile == "" {
		*keyFile = filepath.Join(*from, "maildesk.key")
	}
	key, err := readKeyFile(*keyFile)
	if err != nil {
		return err
	}
	path := filepath.Join(*from, "maildesk.db")
	src, err := store.Open(path, key, store.Options{Timeout: 2 * time.Second})
	if err != nil {
		return fmt.Errorf("open %s (stop the sidecar using it first): %w", path, err)
	}
	defer src.Close()
	dst, err := pgstore.Open(*to, key, pgstore.Options{})
	if err != nil {
		return err
	}
	defer dst.Close()
	fmt.Fprintf(stdout, "maildesk: copying %s into %s\n", path, pgstore.Redact(*to))
	if _, err := storecopy.Copy(src, dst, storecopy.Options{Force: *force, Progress: stdout}); err != nil {
		return err
	}
	fmt.Fprintf(stdout, "maildesk: copy complete. Start the sidecar with --store %s and the same key file (%s); keep %s as it is until the new sidecar runs well\n",
		pgstore.Redact(*to), *keyFile, path)
	return nil
}
