package main

import (
	"context"
	"flag"
	"fmt"
	"io"
	"os"
	"os/exec"
	"strings"

	"github.com/maildesk/maildesk/internal/bench"
)

// cmdBench runs the performance scoreboard (package bench). It wires flags
// to bench.Options and starts itself again as the sidecar child process of
// the backfill, fleet and chaos scenarios.
func cmdBench(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	if bench.IsChild() {
		if code := bench.Child(ctx, stdout); code != 0 {
			return fmt.Errorf("bench child failed (exit %d)", code)
		}
		return nil
	}
	fs := flag.NewFlagSet("bench", flag.ContinueOnError)
	fs.SetOutput(stderr)
	var o bench.Options
	scen := fs.String("scenario", strings.Join(bench.Scenarios, ","), "scenarios to run, comma-separated: "+strings.Join(bench.Scenarios, ", ")+
		"; also scaleout (the fleet on 1, 2 and 3 nodes sharing one PostgreSQL; needs --postgres)")
	fs.StringVar(&o.Postgres, "postgres", "", "scaleout: postgres://user@host:port/db where the nodes run (a schema is created and dropped)")
	fs.IntVar(&o.Messages, "messages", 2000, "backfill: messages in the mailbox (rpc uses them too; chaos a quarter, at most 500)")
	fs.DurationVar(&o.Latency, "latency", 0, "Graph latency per request (default 150ms)")
	fs.IntVar(&o.Mailboxes, "mailboxes", 1000, "fleet: idle mailboxes")
	fs.DurationVar(&o.Poll, "poll", 0, "fleet: poll interval (default 60s)")
	fs.DurationVar(&o.Duration, "duration", 0, "fleet: measured window (default 60s); rpc loads for a sixth of it")
	fs.IntVar(&o.Samples, "samples", 0, "latency: new mails measured per mode (default 8)")
	fs.DurationVar(&o.LatencyPoll, "latency-poll", 0, "latency: poll interval of the polled mailbox (default 5s)")
	fs.DurationVar(&o.OdooLatency, "odoo-latency", 0, "push: Odoo stand-in latency per call (default 50ms)")
	fs.IntVar(&o.Items, "items", 0, "push: outbox items (default 2000)")
	fs.IntVar(&o.Clients, "clients", 0, "rpc: concurrent clients (default 16)")
	fs.IntVar(&o.Kills, "kills", 0, "chaos: SIGKILLs of the sidecar (default 5)")
	fs.Int64Var(&o.Seed, "seed", 1, "simulator seed")
	verbose := fs.Bool("v", false, "progress on stderr")
	if err := fs.Parse(args); err != nil {
		return usageError{err}
	}
	if fs.NArg() > 0 {
		return usageError{fmt.Errorf("unexpected argument %q", fs.Arg(0))}
	}
	o.Scenarios = strings.Split(*scen, ",")
	if *verbose {
		o.Log = stderr
	}
	exe, err := os.Executable()
	if err != nil {
		return err
	}
	o.Self = func([]string) *exec.Cmd { return exec.Command(exe, "bench") }
	_, err = bench.Run(ctx, o, stdout)
	return err
}
