// Command maildesk is the MailDesk sidecar: it connects Microsoft 365
// mailboxes to Odoo. This package owns flags and configuration, wiring, the
// subcommands and signal handling; the logic lives in rpc, bridge, graphsync
// and store.
//
//	maildesk [serve] [flags]     run the sidecar (default)
//	maildesk version             print the version
//	maildesk backup FILE         consistent copy of the database, also while serve runs
//	maildesk status              ask a running sidecar for health and mailboxes
//	maildesk store copy          copy a bbolt data directory into PostgreSQL
//	maildesk sim [flags]         run the Microsoft 365 simulator
//	maildesk demo [flags]        simulator + sidecar + Odoo stand-in: the whole flow in one process
//	maildesk bench [flags]       the performance scoreboard (package bench)
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"os/signal"
	"runtime/debug"
	"syscall"

	"go.opentelemetry.io/otel"
	"go.opentelemetry.io/otel/trace/noop"
)

// Set at build time: -ldflags "-X main.version=v1.2.3 -X main.commit=abc".
var (
	version = "dev"
	commit  = ""
)

func main() {
	// MailDesk exports no traces. The Graph SDK's middlewares ask
	// OpenTelemetry's global provider for a tracer on every request; the
	// default provider answers under a lock with a map lookup each time
	// (4 % of an idle fleet's CPU); the no-op provider does not.
	otel.SetTracerProvider(noop.NewTracerProvider())
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	code := run(ctx, os.Args[1:], os.Stdout, os.Stderr, os.Getenv)
	stop()
	os.Exit(code)
}

// run executes one subcommand and returns the exit code. ctx is cancelled on
// SIGINT/SIGTERM.
func run(ctx context.Context, args []string, stdout, stderr io.Writer, getenv func(string) string) int {
	cmd := "serve"
	if len(args) > 0 && len(args[0]) > 0 && args[0][0] != '-' {
		cmd, args = args[0], args[1:]
	}
	var err error
	switch cmd {
	case "serve":
		err = cmdServe(ctx, args, stdout, stderr, getenv)
	case "version":
		fmt.Fprintf(stdout, "maildesk %s (commit %s, %s)\n", version, buildCommit(), goVersion())
	case "backup":
		err = cmdBackup(ctx, args, stdout, stderr, getenv)
	case "status":
		err = cmdStatus(ctx, args, stdout, stderr, getenv)
	case "restore":
		err = cmdRestore(ctx, args, stdout, stderr, getenv)
	case "store":
		err = cmdStore(ctx, args, stdout, stderr, getenv)
	case "healthcheck":
		err = cmdHealthcheck(ctx, args, stdout, stderr, getenv)
	case "sim":
		err = cmdSim(ctx, args, stdout, stderr)
	case "demo":
		err = cmdDemo(ctx, args, stdout, stderr, getenv)
	case "bench":
		err = cmdBench(ctx, args, stdout, stderr)
	case "help", "-h", "--help":
		usage(stdout)
	default:
		fmt.Fprintf(stderr, "maildesk: unknown command %q\n\n", cmd)
		usage(stderr)
		return 2
	}
	switch {
	case err == nil:
		return 0
	case isUsage(err):
		if errors.Is(err, flag.ErrHelp) {
			return 0
		}
		return 2
	default:
		fmt.Fprintf(stderr, "maildesk %s: %v\n", cmd, err)
		return 1
	}
}

func usage(w io.Writer) {
	fmt.Fprint(w, `MailDesk — Microsoft 365 mailboxes in Odoo.

usage:
  maildesk [serve] [flags]   run the sidecar (default command)
  maildesk version           print the version
  maildesk backup FILE       write a consistent copy of the database to FILE
                             (streams it from the running sidecar, or reads the file when none runs)
  maildesk restore FILE      put a backup in place of the database (sidecar stopped)
  maildesk store copy --from DATA_DIR --to postgres://…
                             copy a bbolt data directory into PostgreSQL (sidecar stopped)
  maildesk status            show a running sidecar's health and mailboxes
  maildesk healthcheck       exit 0 when the local sidecar's /healthz answers 200
  maildesk sim [flags]       run the Microsoft 365 simulator
  maildesk demo [flags]      the whole flow in one process: simulator, sidecar, Odoo stand-in
  maildesk bench [flags]     the performance scoreboard against the simulator (docs/performance.md)

Run "maildesk serve -h" for the flags; every flag also reads MAILDESK_<NAME> and
the --config file. See README.md.
`)
}

func buildCommit() string {
	if commit != "" {
		return commit
	}
	if bi, ok := debug.ReadBuildInfo(); ok {
		for _, s := range bi.Settings {
			if s.Key == "vcs.revision" && len(s.Value) >= 12 {
				return s.Value[:12]
			}
		}
	}
	return "unknown"
}

func goVersion() string {
	if bi, ok := debug.ReadBuildInfo(); ok {
		return bi.GoVersion
	}
	return "go"
}
