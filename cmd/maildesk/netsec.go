package main

import (
	"bytes"
	"crypto/tls"
	"crypto/x509"
	"encoding/pem"
	"errors"
	"fmt"
	"net"
	"net/http"
	"net/netip"
	"os"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/rs/zerolog"

	"github.com/maildesk/maildesk/rpc/guard"
)

// NetConfig is who may reach the listener and how: TLS on the listener and
// the client allow-list. Part of Config (field Net).
type NetConfig struct {
	// TLSCert and TLSKey are PEM files; both set = the listener speaks HTTPS
	// (TLS 1.2+), and renewed files are picked up within a minute.
	TLSCert string
	TLSKey  string
	// AllowFrom lists client addresses and CIDR networks that may call
	// /jsonrpc, /metrics and /admin; empty allows all. Loopback is always
	// allowed; the Graph webhook and the health probes are open to all.
	AllowFrom string
}

// netOptions are NetConfig's settings, added to options().
func netOptions() []option {
	return []option{
		{name: "tls-cert", usage: "PEM certificate chain: serve HTTPS on --listen (with --tls-key)",
			set: func(c *Config, v string) error { c.Net.TLSCert = v; return nil }},
		{name: "tls-key", usage: "PEM private key of --tls-cert",
			set: func(c *Config, v string) error { c.Net.TLSKey = v; return nil }},
		{name: "allow-from", usage: "client IP addresses or CIDR networks allowed to call /jsonrpc, /metrics, /admin (comma-separated; loopback always allowed; empty = all)",
			set: func(c *Config, v string) error { c.Net.AllowFrom = v; return nil }},
	}
}

// validate reports every NetConfig problem it can see without reading the
// key (the CLI validates config too and need not read the private key);
// serve loads the pair before it listens and stops on a bad one.
func (n *NetConfig) validate() []error {
	var errs []error
	if _, err := guard.ParseAllowList(n.AllowFrom); err != nil {
		errs = append(errs, err)
	}
	if err := guard.ValidateTLSFiles(n.TLSCert, n.TLSKey); err != nil {
		errs = append(errs, err)
	}
	return errs
}

// TLS reports whether the listener speaks HTTPS.
func (n *NetConfig) TLS() bool { return n.TLSCert != "" }

// scheme is "https" with TLS on the listener, else "http".
func (c Config) scheme() string {
	if c.Net.TLS() {
		return "https"
	}
	return "http"
}

// publicRoutes are open to every address whatever --allow-from says; they
// authenticate by their own means. Microsoft calls the Graph webhook from its
// own addresses (each notification carries the subscription's clientState);
// browsers come back to /oauth/callback from anywhere (single-use state);
// probes answer load balancers and container engines and tell nothing.
var publicRoutes = []string{"/graph/notify", "/graph/lifecycle", "/oauth/callback", "/healthz", "/readyz"}

// netSecurity applies NetConfig to the running server.
type netSecurity struct {
	log    zerolog.Logger
	allow  *guard.AllowList
	certs  *guard.CertLoader
	denied prometheus.Counter
}

func newNetSecurity(cfg NetConfig, log zerolog.Logger, reg prometheus.Registerer) (*netSecurity, error) {
	allow, err := guard.ParseAllowList(cfg.AllowFrom)
	if err != nil {
		return nil, err
	}
	n := &netSecurity{log: log, allow: allow, denied: prometheus.NewCounter(prometheus.CounterOpts{
		Name: "maildesk_http_denied_total",
		Help: "HTTP requests refused because the client address is not in --allow-from.",
	})}
	if err := reg.Register(n.denied); err != nil {
		return nil, fmt.Errorf("register allow-list metric: %w", err)
	}
	if cfg.TLS() {
		n.certs, err = guard.NewCertLoader(cfg.TLSCert, cfg.TLSKey, guard.CertOptions{
			OnError: func(err error) { log.Error().Err(err).Msg("tls: renewed certificate not loaded") },
		})
		if err != nil {
			return nil, err
		}
		expiry := prometheus.NewGaugeFunc(prometheus.GaugeOpts{
			Name: "maildesk_tls_cert_expiry_timestamp_seconds",
			Help: "When the listener's TLS certificate expires (Unix time).",
		}, func() float64 { return float64(n.certs.NotAfter().Unix()) })
		if err := reg.Register(expiry); err != nil {
			return nil, fmt.Errorf("register TLS metric: %w", err)
		}
	}
	return n, nil
}

// handler puts the allow-list in front of h.
func (n *netSecurity) handler(h http.Handler) http.Handler {
	if n == nil {
		return h
	}
	// A scan from a refused network must not flood the log.
	sampled := n.log.Sample(&zerolog.BurstSampler{Burst: 20, Period: time.Minute})
	return guard.Middleware(guard.Options{
		Allow:          n.allow,
		AllowLoopback:  true,
		ExemptPrefixes: publicRoutes,
		OnDeny: func(r *http.Request, peer netip.Addr) {
			n.denied.Inc()
			sampled.Warn().Str("remote_addr", r.RemoteAddr).Str("path", r.URL.Path).Msg("http: client address not in --allow-from; refused")
		},
	}, h)
}

// listener wraps ln in TLS when configured.
func (n *netSecurity) listener(ln net.Listener) net.Listener {
	if n == nil || n.certs == nil {
		return ln
	}
	return tls.NewListener(ln, n.certs.TLSConfig())
}

// localHTTPClient is the client the CLI (status, backup, healthcheck) uses
// to reach the sidecar on this host. With TLS it trusts exactly the
// certificate(s) in --tls-cert, whatever names they carry: the CLI talks to
// 127.0.0.1, which a public certificate never names.
func localHTTPClient(cfg Config, timeout time.Duration) (*http.Client, error) {
	if !cfg.Net.TLS() {
		return &http.Client{Timeout: timeout}, nil
	}
	pemBytes, err := os.ReadFile(cfg.Net.TLSCert)
	if err != nil {
		return nil, fmt.Errorf("read --tls-cert to trust the local sidecar: %w", err)
	}
	var pinned [][]byte
	for rest := pemBytes; ; {
		var b *pem.Block
		b, rest = pem.Decode(rest)
		if b == nil {
			break
		}
		if b.Type == "CERTIFICATE" {
			pinned = append(pinned, b.Bytes)
		}
	}
	if len(pinned) == 0 {
		return nil, fmt.Errorf("--tls-cert %s holds no PEM certificate", cfg.Net.TLSCert)
	}
	tr := http.DefaultTransport.(*http.Transport).Clone()
	tr.Proxy = nil // the local sidecar is never behind the environment's proxy
	tr.TLSClientConfig = &tls.Config{
		MinVersion: tls.VersionTLS12,
		// Names are not checked (127.0.0.1 is in no public certificate);
		// instead the leaf must be byte-for-byte one in --tls-cert.
		InsecureSkipVerify: true,
		VerifyPeerCertificate: func(raw [][]byte, _ [][]*x509.Certificate) error {
			if len(raw) == 0 {
				return errors.New("the sidecar sent no certificate")
			}
			for _, p := range pinned {
				if bytes.Equal(raw[0], p) {
					return nil
				}
			}
			return fmt.Errorf("the sidecar's certificate is not the one in %s (renewed a moment ago? try again in a minute)", cfg.Net.TLSCert)
		},
	}
	return &http.Client{Timeout: timeout, Transport: tr}, nil
}
