// Package bench is MailDesk's performance scoreboard (`maildesk bench`): it
// runs the real sync engine, scheduler, pusher and JSON-RPC server against
// the Microsoft 365 simulator (Graph's limits on, latency settable) and the
// Odoo stand-in, and reports one row per scenario as a table and as one
// JSON line each.
//
// Scenarios whose CPU and memory matter (backfill, fleet, chaos) run the
// sidecar's components in a child process (the same binary, see Child), so
// the simulator's own work is not counted; the others run in-process.
package bench

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"os"
	"os/exec"
	"sort"
	"strings"
	"text/tabwriter"
	"time"
)

// Scenarios in the order they run.
var Scenarios = []string{"backfill", "fleet", "latency", "push", "rpc", "chaos", "binary"}

// Options size the scenarios. Zero values take the defaults, chosen so all
// scenarios finish in about 5 minutes on 2 cores.
type Options struct {
	Scenarios   []string      // default: all
	Messages    int           // backfill: messages in the mailbox (default 2,000)
	Latency     time.Duration // Graph latency per request (default 150 ms)
	Mailboxes   int           // fleet: idle mailboxes (default 1,000)
	Poll        time.Duration // fleet: poll interval (default 60 s)
	Duration    time.Duration // fleet: measured window (default 60 s); rpc: load time (default Duration/6)
	Samples     int           // latency: new mails measured per mode (default 8)
	LatencyPoll time.Duration // latency: the poll interval of that mailbox (default 5 s)
	OdooLatency time.Duration // push: Odoo stand-in latency per call (default 50 ms)
	Items       int           // push: outbox items (default 2,000)
	Clients     int           // rpc: concurrent clients (default 16)
	Kills       int           // chaos: SIGKILLs of the sidecar (default 5)
	Seed        int64         // simulator seed (default 1)
	// Postgres is the database scaleout runs its nodes on (a schema of its
	// own is created and dropped); scaleout is not among the default
	// scenarios.
	Postgres string

	// Self starts this binary as a child (Child runs in it): cmd/maildesk
	// passes its own executable with "bench"; tests their test binary.
	Self func(env []string) *exec.Cmd
	// Log receives progress lines (default: discarded).
	Log io.Writer
}

func (o *Options) defaults() {
	if len(o.Scenarios) == 0 {
		o.Scenarios = Scenarios
	}
	def := func(v *int, d int) {
		if *v <= 0 {
			*v = d
		}
	}
	defD := func(v *time.Duration, d time.Duration) {
		if *v <= 0 {
			*v = d
		}
	}
	def(&o.Messages, 2000)
	def(&o.Mailboxes, 1000)
	def(&o.Samples, 8)
	def(&o.Items, 2000)
	def(&o.Clients, 16)
	def(&o.Kills, 5)
	defD(&o.Latency, 150*time.Millisecond)
	defD(&o.Poll, 60*time.Second)
	defD(&o.Duration, 60*time.Second)
	defD(&o.LatencyPoll, 5*time.Second)
	defD(&o.OdooLatency, 50*time.Millisecond)
	if o.Seed == 0 {
		o.Seed = 1
	}
	if o.Log == nil {
		o.Log = io.Discard
	}
}

// Metric is one figure of a scenario.
type Metric struct {
	Name  string
	Value float64
}

// Result is one scenario's figures, in the order they print.
type Result struct {
	Scenario string
	Metrics  []Metric
	Note     string // the size it ran at, for the table
}

func (r *Result) add(name string, v float64) { r.Metrics = append(r.Metrics, Metric{name, v}) }

// Get returns a metric by name (ok false when absent).
func (r Result) Get(name string) (float64, bool) {
	for _, m := range r.Metrics {
		if m.Name == name {
			return m.Value, true
		}
	}
	return 0, false
}

// MarshalJSON writes {"scenario":..., "note":..., metrics in order}.
func (r Result) MarshalJSON() ([]byte, error) {
	var b strings.Builder
	s, _ := json.Marshal(r.Scenario)
	n, _ := json.Marshal(r.Note)
	fmt.Fprintf(&b, `{"scenario":%s,"size":%s`, s, n)
	for _, m := range r.Metrics {
		k, _ := json.Marshal(m.Name)
		v, _ := json.Marshal(round(m.Value))
		fmt.Fprintf(&b, ",%s:%s", k, v)
	}
	b.WriteString("}")
	return []byte(b.String()), nil
}

func round(v float64) float64 {
	switch {
	case v == 0:
		return 0
	case v >= 100 || v <= -100:
		return float64(int64(v*10+0.5)) / 10
	default:
		return float64(int64(v*1000+0.5)) / 1000
	}
}

// Run runs the chosen scenarios in order, writing each result's JSON line
// to out as soon as it is known and the table at the end.
func Run(ctx context.Context, o Options, out io.Writer) ([]Result, error) {
	o.defaults()
	var res []Result
	for _, name := range o.Scenarios {
		f := scenarioFuncs[name]
		if f == nil {
			return res, fmt.Errorf("unknown scenario %q (have %s)", name, strings.Join(Scenarios, ", "))
		}
		fmt.Fprintf(o.Log, "bench: %s …\n", name)
		start := time.Now()
		r, err := f(ctx, o)
		if err != nil {
			return res, fmt.Errorf("%s: %w", name, err)
		}
		r.Scenario = name
		r.add("wall_s", time.Since(start).Seconds())
		res = append(res, r)
		line, _ := json.Marshal(r)
		fmt.Fprintf(out, "%s\n", line)
	}
	WriteTable(out, res)
	return res, nil
}

var scenarioFuncs = map[string]func(context.Context, Options) (Result, error){
	"backfill": runBackfill,
	"fleet":    runFleet,
	"latency":  runLatency,
	"push":     runPush,
	"rpc":      runRPC,
	"chaos":    runChaos,
	"binary":   runBinary,
	"scaleout": runScaleOut, // opt-in (--scenario scaleout --postgres …): not in Scenarios
}

// WriteTable prints one row per scenario: its size and its figures.
func WriteTable(w io.Writer, res []Result) {
	tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', 0)
	fmt.Fprintln(tw, "scenario\tsize\tfigures")
	for _, r := range res {
		var fs []string
		for _, m := range r.Metrics {
			fs = append(fs, fmt.Sprintf("%s=%v", m.Name, round(m.Value)))
		}
		fmt.Fprintf(tw, "%s\t%s\t%s\n", r.Scenario, r.Note, strings.Join(fs, " "))
	}
	tw.Flush()
}

// percentiles returns p50, p95, p99 of ds in milliseconds.
func percentiles(ds []time.Duration) (p50, p95, p99 float64) {
	if len(ds) == 0 {
		return 0, 0, 0
	}
	s := append([]time.Duration(nil), ds...)
	sort.Slice(s, func(i, j int) bool { return s[i] < s[j] })
	at := func(p float64) float64 {
		i := int(float64(len(s))*p+0.999999) - 1
		i = max(0, min(i, len(s)-1))
		return float64(s[i]) / float64(time.Millisecond)
	}
	return at(0.50), at(0.95), at(0.99)
}

// selfCmd starts the child with env, failing clearly when Self is unset.
func (o Options) selfCmd(env []string) (*exec.Cmd, error) {
	if o.Self == nil {
		return nil, fmt.Errorf("bench: Options.Self is needed to start the sidecar child process")
	}
	c := o.Self(env)
	c.Env = append(append(os.Environ(), env...), c.Env...)
	return c, nil
}
