package main

import (
	"bufio"
	"errors"
	"flag"
	"fmt"
	"io"
	"net"
	"net/url"
	"os"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
	"time"

	"github.com/rs/zerolog"
)

// Config is the sidecar's start-up configuration. Each field is settable by
// a flag (--name), an environment variable (MAILDESK_NAME) and a line of the
// optional config file (name = value); flags beat the environment, which
// beats the file, which beats the defaults. See the README's table.
type Config struct {
	// Listen is the HTTP address (host:port). Default 127.0.0.1:8765: only
	// local processes (Odoo on the same host) reach it.
	Listen string
	// DataDir holds the database, and by default the key file and the shared
	// secret. Created 0700 when missing.
	DataDir string
	// SharedSecretFile holds the bearer secret Odoo sends. Default
	// <data-dir>/shared-secret; created (0600, random) when missing.
	SharedSecretFile string
	// KeyFile holds the AES-256 key that seals secrets in the database.
	// Default <data-dir>/maildesk.key; created when missing AND no database
	// exists yet.
	KeyFile string
	// LogLevel is trace, debug, info, warn or error.
	LogLevel string
	// LogFormat is json or console; "" picks console when stderr is a
	// terminal, json otherwise.
	LogFormat string
	// MaxBodyBytes limits JSON-RPC request bodies (HTTP 413 above).
	MaxBodyBytes int64
	// PublicURL is where Microsoft and browsers reach this sidecar (OAuth
	// callback, Graph webhooks); optional, https in production.
	PublicURL string
	// ShutdownGrace is how long in-flight requests and jobs get to finish on
	// SIGINT/SIGTERM before they are cancelled.
	ShutdownGrace time.Duration
	// Debug puts error causes into JSON-RPC error.data.debug.
	Debug bool
	// Simulate runs the Microsoft 365 simulator in-process and points the
	// sidecar at it instead of Microsoft (try the real addon without a tenant).
	Simulate bool
	// SimListen is the simulator's address under --simulate.
	SimListen string
	// Net is TLS on the listener and the client allow-list (netsec.go).
	Net NetConfig
	// Store is where the data lives: "" or "bbolt" for the file
	// <data-dir>/maildesk.db (the default), or a postgres:// URL.
	Store string
	// Lease is this node's name and lease TTL when several sidecars share
	// one PostgreSQL (lease.go).
	Lease LeaseConfig
}

// Postgres reports whether the data lives in PostgreSQL (--store postgres://…).
func (c *Config) Postgres() bool {
	return strings.HasPrefix(c.Store, "postgres://") || strings.HasPrefix(c.Store, "postgresql://")
}

// DBPath is the database file.
func (c *Config) DBPath() string { return filepath.Join(c.DataDir, "maildesk.db") }

// option is one configuration setting: its names and how to set it.
type option struct {
	name   string // flag and config-file key
	usage  string
	def    string
	set    func(c *Config, v string) error
	isBool bool
}

// options lists every setting. Add new settings here (one entry each).
func options() []option {
	return append([]option{
		{name: "listen", def: "127.0.0.1:8765", usage: "HTTP listen address host:port",
			set: func(c *Config, v string) error { c.Listen = v; return nil }},
		{name: "store", usage: "where the data lives: bbolt (the file <data-dir>/maildesk.db, default) or a postgres://user@host/db URL",
			set: func(c *Config, v string) error { c.Store = v; return nil }},
		{name: "data-dir", def: "./maildesk-data", usage: "directory of the database (and, by default, key file and shared secret)",
			set: func(c *Config, v string) error { c.DataDir = v; return nil }},
		{name: "shared-secret-file", usage: "file holding the bearer secret Odoo sends (default <data-dir>/shared-secret)",
			set: func(c *Config, v string) error { c.SharedSecretFile = v; return nil }},
		{name: "key-file", usage: "file holding the 32-byte encryption key (default <data-dir>/maildesk.key)",
			set: func(c *Config, v string) error { c.KeyFile = v; return nil }},
		{name: "log-level", def: "info", usage: "trace, debug, info, warn or error",
			set: func(c *Config, v string) error { c.LogLevel = v; return nil }},
		{name: "log-format", usage: "json or console (default: console on a terminal, json otherwise)",
			set: func(c *Config, v string) error { c.LogFormat = v; return nil }},
		{name: "max-body-bytes", def: "52428800", usage: "largest JSON-RPC request body in bytes (HTTP 413 above)",
			set: func(c *Config, v string) error {
				n, err := strconv.ParseInt(v, 10, 64)
				if err != nil {
					return fmt.Errorf("%q is not a whole number of bytes", v)
				}
				c.MaxBodyBytes = n
				return nil
			}},
		{name: "public-url", usage: "URL where Microsoft and browsers reach this sidecar (OAuth callback, webhooks); optional",
			set: func(c *Config, v string) error { c.PublicURL = v; return nil }},
		{name: "shutdown-grace", def: "15s", usage: "time in-flight work gets to finish on SIGINT/SIGTERM",
			set: func(c *Config, v string) error {
				d, err := time.ParseDuration(v)
				if err != nil {
					return fmt.Errorf("%q is not a duration such as 15s", v)
				}
				c.ShutdownGrace = d
				return nil
			}},
		{name: "simulate", def: "false", isBool: true, usage: "run the Microsoft 365 simulator in-process and use it instead of Microsoft",
			set: func(c *Config, v string) error {
				b, err := strconv.ParseBool(v)
				if err != nil {
					return fmt.Errorf("%q is not true or false", v)
				}
				c.Simulate = b
				return nil
			}},
		{name: "sim-listen", def: "127.0.0.1:8766", usage: "the simulator's address under --simulate (TLS)",
			set: func(c *Config, v string) error { c.SimListen = v; return nil }},
		{name: "debug", def: "false", isBool: true, usage: "put error causes into JSON-RPC error.data.debug (never secrets)",
			set: func(c *Config, v string) error {
				b, err := strconv.ParseBool(v)
				if err != nil {
					return fmt.Errorf("%q is not true or false", v)
				}
				c.Debug = b
				return nil
			}},
	}, append(netOptions(), leaseOptions()...)...)
}

func envName(opt string) string {
	return "MAILDESK_" + strings.ToUpper(strings.ReplaceAll(opt, "-", "_"))
}

// loadConfig reads defaults, the config file (--config or MAILDESK_CONFIG),
// the environment and the flags in args, and validates the result. It
// returns every problem at once. fs gets the flags registered (so a
// subcommand can add its own before calling); rest are the positional args.
func loadConfig(fs *flag.FlagSet, args []string, getenv func(string) string) (cfg Config, rest []string, err error) {
	opts := options()
	flagVals := map[string]string{}
	var order []string
	for _, o := range opts {
		o := o
		setter := func(v string) error {
			if _, seen := flagVals[o.name]; !seen {
				order = append(order, o.name)
			}
			flagVals[o.name] = v
			return nil
		}
		usage := o.usage + " (env " + envName(o.name) + ")"
		if o.def != "" && !o.isBool {
			usage += " (default " + o.def + ")"
		}
		if o.isBool {
			fs.BoolFunc(o.name, usage, setter)
		} else {
			fs.Func(o.name, usage, setter)
		}
	}
	configFile := fs.String("config", "", "optional config file: lines of name = value, # comments (env MAILDESK_CONFIG)")
	// Positional args may come before or after flags (maildesk backup FILE --data-dir d).
	remaining := args
	for {
		if err := fs.Parse(remaining); err != nil {
			return Config{}, nil, usageError{err}
		}
		remaining = fs.Args()
		if len(remaining) == 0 {
			break
		}
		rest = append(rest, remaining[0])
		remaining = remaining[1:]
	}

	var errs []error
	for _, o := range opts {
		if o.def != "" {
			if err := o.set(&cfg, o.def); err != nil {
				errs = append(errs, fmt.Errorf("default %s: %w", o.name, err))
			}
		}
	}
	byName := map[string]option{}
	for _, o := range opts {
		byName[o.name] = o
	}
	path := *configFile
	if path == "" {
		path = getenv("MAILDESK_CONFIG")
	}
	if path != "" {
		fileVals, ferrs := readConfigFile(path, byName)
		errs = append(errs, ferrs...)
		keys := make([]string, 0, len(fileVals))
		for k := range fileVals {
			keys = append(keys, k)
		}
		sort.Strings(keys)
		for _, k := range keys {
			if err := byName[k].set(&cfg, fileVals[k].value); err != nil {
				errs = append(errs, fmt.Errorf("%s line %d: %s: %w", path, fileVals[k].line, k, err))
			}
		}
	}
	for _, o := range opts {
		if v := getenv(envName(o.name)); v != "" {
			if err := o.set(&cfg, v); err != nil {
				errs = append(errs, fmt.Errorf("%s: %w", envName(o.name), err))
			}
		}
	}
	for _, name := range order {
		if err := byName[name].set(&cfg, flagVals[name]); err != nil {
			errs = append(errs, fmt.Errorf("--%s: %w", name, err))
		}
	}
	if cfg.DataDir != "" {
		if cfg.KeyFile == "" {
			cfg.KeyFile = filepath.Join(cfg.DataDir, "maildesk.key")
		}
		if cfg.SharedSecretFile == "" {
			cfg.SharedSecretFile = filepath.Join(cfg.DataDir, "shared-secret")
		}
	}
	errs = append(errs, cfg.validate()...)
	if len(errs) > 0 {
		return Config{}, rest, &configError{errs}
	}
	return cfg, rest, nil
}

// configError lists every configuration problem, one a line.
type configError struct{ errs []error }

func (e *configError) Error() string {
	var b strings.Builder
	fmt.Fprintf(&b, "configuration has %d problem(s):", len(e.errs))
	for _, err := range e.errs {
		b.WriteString("\n  - ")
		b.WriteString(err.Error())
	}
	return b.String()
}

type fileValue struct {
	value string
	line  int
}

func readConfigFile(path string, known map[string]option) (map[string]fileValue, []error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, []error{fmt.Errorf("config file: %w", err)}
	}
	defer f.Close()
	return parseConfig(f, path, known)
}

// parseConfig reads "name = value" lines; # starts a comment line; values
// may be quoted with double quotes.
func parseConfig(r io.Reader, path string, known map[string]option) (map[string]fileValue, []error) {
	out := map[string]fileValue{}
	var errs []error
	sc := bufio.NewScanner(r)
	n := 0
	for sc.Scan() {
		n++
		line := strings.TrimSpace(sc.Text())
		if line == "" || strings.HasPrefix(line, "#") {
			continue
		}
		k, v, ok := strings.Cut(line, "=")
		if !ok {
			errs = append(errs, fmt.Errorf("%s line %d: want name = value, got %q", path, n, line))
			continue
		}
		k = strings.TrimSpace(k)
		v = strings.TrimSpace(v)
		if len(v) >= 2 && v[0] == '"' && v[len(v)-1] == '"' {
			if uq, err := strconv.Unquote(v); err == nil {
				v = uq
			}
		}
		if _, ok := known[k]; !ok {
			errs = append(errs, fmt.Errorf("%s line %d: unknown setting %q", path, n, k))
			continue
		}
		out[k] = fileValue{v, n}
	}
	if err := sc.Err(); err != nil {
		errs = append(errs, fmt.Errorf("%s: %w", path, err))
	}
	return out, errs
}

func (c *Config) validate() []error {
	var errs []error
	bad := func(format string, args ...any) { errs = append(errs, fmt.Errorf(format, args...)) }
	if host, port, err := net.SplitHostPort(c.Listen); err != nil {
		bad("listen %q must be host:port such as 127.0.0.1:8765", c.Listen)
	} else {
		if p, err := strconv.Atoi(port); err != nil || p < 0 || p > 65535 {
			bad("listen %q: port must be 0..65535", c.Listen)
		}
		if host != "" && host != "localhost" && net.ParseIP(host) == nil {
			bad("listen %q: host must be an IP address or localhost", c.Listen)
		}
	}
	if c.DataDir == "" {
		bad("data-dir must not be empty")
	}
	if c.Store != "" && c.Store != "bbolt" && !c.Postgres() {
		bad("store %q must be bbolt or a postgres:// URL", c.Store)
	}
	if _, err := zerolog.ParseLevel(c.LogLevel); err != nil || c.LogLevel == "" {
		bad("log-level %q must be trace, debug, info, warn or error", c.LogLevel)
	}
	if c.LogFormat != "" && c.LogFormat != "json" && c.LogFormat != "console" {
		bad("log-format %q must be json or console", c.LogFormat)
	}
	if c.MaxBodyBytes < 1<<10 || c.MaxBodyBytes > 1<<30 {
		bad("max-body-bytes %d must be between 1024 and 1073741824", c.MaxBodyBytes)
	}
	if c.PublicURL != "" {
		u, err := url.Parse(c.PublicURL)
		if err != nil || (u.Scheme != "https" && u.Scheme != "http") || u.Host == "" {
			bad("public-url %q must be an absolute http(s) URL such as https://maildesk.example.com", c.PublicURL)
		}
	}
	if c.ShutdownGrace < 0 || c.ShutdownGrace > 10*time.Minute {
		bad("shutdown-grace %s must be between 0s and 10m", c.ShutdownGrace)
	}
	errs = append(errs, c.Net.validate()...)
	return errs
}

// usageError is a flag parse error; the flag package has printed it with
// the usage already.
type usageError struct{ err error }

func (e usageError) Error() string { return e.err.Error() }
func (e usageError) Unwrap() error { return e.err }

func isUsage(err error) bool {
	var u usageError
	return errors.As(err, &u)
}
