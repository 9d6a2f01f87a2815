package rpc

import (
	"context"
	"crypto/sha256"
	"crypto/subtle"
	"errors"
	"fmt"
	"io"
	"mime"
	"net/http"
	"reflect"
	"runtime/debug"
	"sort"
	"strconv"
	"strings"
	"time"
	"unicode"

	gorpc "github.com/gorilla/rpc/v2"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/promhttp"
	"github.com/rs/zerolog"

	"github.com/maildesk/maildesk/bridge"
)

// DefaultMaxBodyBytes is the /jsonrpc body limit when Config leaves it 0.
// message.send carries whole MIME messages base64-encoded (Exchange's default
// limit is 35 MB, base64 adds a third).
const DefaultMaxBodyBytes = 50 << 20

// Config tunes the server.
type Config struct {
	// SharedSecret is the bearer secret every authenticated call must send.
	// Empty refuses every authenticated call (never "no auth").
	SharedSecret string
	// MaxBodyBytes limits /jsonrpc bodies (HTTP 413 above). 0 = DefaultMaxBodyBytes.
	MaxBodyBytes int64
	// Debug puts error causes into error.data.debug. Causes never hold
	// secrets (errors are written so), but keep it off in production.
	Debug bool
}

// Deps are the components the built-in services use. Other engineers'
// services keep their dependencies in their own service values (see doc.go),
// so this struct only grows for things the core needs.
type Deps struct {
	Log       zerolog.Logger
	Registry  *prometheus.Registry // served on /metrics; nil = a fresh registry
	System    *bridge.System
	Mailboxes *bridge.Mailboxes
	Settings  *bridge.Settings
	Audit     *bridge.AuditLog
}

// Server is the sidecar's HTTP server: routes, auth, JSON-RPC dispatch.
type Server struct {
	cfg     Config
	log     zerolog.Logger
	deps    Deps
	mux     *http.ServeMux
	rpc     *gorpc.Server
	reg     *prometheus.Registry
	secret  [32]byte          // sha256 of the shared secret, for constant-time compare
	methods map[string]string // public name → gorilla "service.Method"
	nsvc    int
	checks  []check
	// downCheck lists bridge.System's components; one that is down (the
	// scheduler or pusher stopped or restarting) fails /readyz.
	downCheck func(ctx context.Context) map[string]bridge.ComponentStatus

	requests *prometheus.CounterVec
	duration *prometheus.HistogramVec
}

type check struct {
	name string
	fn   func(ctx context.Context) error
}

// New builds the server with the built-in services (system, settings,
// mailbox, audit) and routes registered.
func New(cfg Config, deps Deps) (*Server, error) {
	if cfg.MaxBodyBytes <= 0 {
		cfg.MaxBodyBytes = DefaultMaxBodyBytes
	}
	reg := deps.Registry
	if reg == nil {
		reg = prometheus.NewRegistry()
	}
	s := &Server{
		cfg:     cfg,
		log:     deps.Log,
		deps:    deps,
		mux:     http.NewServeMux(),
		rpc:     gorpc.NewServer(),
		reg:     reg,
		secret:  sha256.Sum256([]byte(cfg.SharedSecret)),
		methods: map[string]string{},
		requests: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "maildesk_rpc_requests_total",
			Help: "JSON-RPC requests by method and outcome (ok or the error code).",
		}, []string{"method", "outcome"}),
		duration: prometheus.NewHistogramVec(prometheus.HistogramOpts{
			Name:    "maildesk_rpc_duration_seconds",
			Help:    "JSON-RPC request duration by method.",
			Buckets: []float64{.0005, .001, .0025, .005, .01, .025, .05, .1, .25, .5, 1, 2.5, 5, 10},
		}, []string{"method"}),
	}
	for _, c := range []prometheus.Collector{s.requests, s.duration} {
		if err := reg.Register(c); err != nil {
			return nil, fmt.Errorf("rpc: register metrics: %w", err)
		}
	}
	s.rpc.RegisterCodec(codec{s}, "application/json")

	if deps.System != nil {
		if err := s.Register("system", &SystemService{System: deps.System}); err != nil {
			return nil, err
		}
	}
	if deps.Settings != nil {
		if err := s.Register("settings", &SettingsService{Settings: deps.Settings}); err != nil {
			return nil, err
		}
	}
	if deps.Mailboxes != nil {
		if err := s.Register("mailbox", &MailboxService{Mailboxes: deps.Mailboxes}); err != nil {
			return nil, err
		}
		if err := s.Register("mailbox", &DeliveryService{Mailboxes: deps.Mailboxes}); err != nil {
			return nil, err
		}
	}
	if deps.Audit != nil {
		if err := s.Register("audit", &AuditService{Audit: deps.Audit}); err != nil {
			return nil, err
		}
	}
	if deps.System != nil {
		s.AddCheck("store", deps.System.Ping)
		s.downCheck = deps.System.Components
	}

	s.mux.Handle("/jsonrpc", http.HandlerFunc(s.serveRPC))
	s.mux.Handle("/jsonrpc/{method}", http.HandlerFunc(s.serveRPC))
	s.mux.HandleFunc("GET /healthz", s.serveHealthz)
	s.mux.HandleFunc("GET /readyz", s.serveReadyz)
	s.mux.Handle("GET /metrics", promhttp.HandlerFor(reg, promhttp.HandlerOpts{Registry: reg}))
	if deps.System != nil {
		s.HandleAuth("GET /admin/backup", http.HandlerFunc(s.serveBackup))
	}
	return s, nil
}

// Register adds the exported methods of svc (gorilla's shape, see doc.go)
// under namespace: method Foo becomes namespace.foo. A public name that is
// already registered is an error. Call before serving.
func (s *Server) Register(namespace string, svc any) error {
	if namespace == "" || strings.ContainsAny(namespace, ". ") {
		return fmt.Errorf("rpc: bad namespace %q", namespace)
	}
	s.nsvc++
	internal := namespace + "_" + strconv.Itoa(s.nsvc)
	if err := s.rpc.RegisterService(svc, internal); err != nil {
		return fmt.Errorf("rpc: register %s: %w", namespace, err)
	}
	t := reflect.TypeOf(svc)
	added := map[string]string{}
	for i := 0; i < t.NumMethod(); i++ {
		m := t.Method(i)
		if !s.rpc.HasMethod(internal + "." + m.Name) {
			continue
		}
		public := namespace + "." + snake(m.Name)
		if prev, ok := s.methods[public]; ok {
			return fmt.Errorf("rpc: method %s registered twice (%s and %T.%s)", public, prev, svc, m.Name)
		}
		added[public] = internal + "." + m.Name
	}
	for k, v := range added {
		s.methods[k] = v
	}
	return nil
}

// Methods lists the public method names, sorted.
func (s *Server) Methods() []string {
	out := make([]string, 0, len(s.methods))
	for k := range s.methods {
		out = append(out, k)
	}
	sort.Strings(out)
	return out
}

// Handle adds a public route (no bearer auth), e.g. the OAuth callback or
// the Graph webhook. pattern is an http.ServeMux pattern.
func (s *Server) Handle(pattern string, h http.Handler) { s.mux.Handle(pattern, h) }

// HandleAuth adds a route that requires the bearer secret.
func (s *Server) HandleAuth(pattern string, h http.Handler) {
	s.mux.Handle(pattern, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if !s.authorized(r) {
			writeUnauthorized(w)
			return
		}
		h.ServeHTTP(w, r)
	}))
}

// AddCheck adds a readiness check shown on /readyz. fn must return quickly.
func (s *Server) AddCheck(name string, fn func(ctx context.Context) error) {
	s.checks = append(s.checks, check{name, fn})
}

// Handler is the root handler to serve.
func (s *Server) Handler() http.Handler { return s.mux }

// ServeHTTP serves the routes.
func (s *Server) ServeHTTP(w http.ResponseWriter, r *http.Request) { s.mux.ServeHTTP(w, r) }

func (s *Server) authorized(r *http.Request) bool {
	if s.cfg.SharedSecret == "" {
		return false
	}
	h := r.Header.Get("Authorization")
	const prefix = "bearer "
	if len(h) < len(prefix) || !strings.EqualFold(h[:len(prefix)], prefix) {
		return false
	}
	// Hashing first makes the comparison constant-time in the length too.
	got := sha256.Sum256([]byte(strings.TrimSpace(h[len(prefix):])))
	return subtle.ConstantTimeCompare(got[:], s.secret[:]) == 1
}

// acceptedTypes are the request Content-Types taken as JSON.
var acceptedTypes = map[string]bool{
	"":                        true,
	"application/json":        true,
	"application/json-rpc":    true,
	"application/jsonrequest": true,
}

func (s *Server) serveRPC(w http.ResponseWriter, r *http.Request) {
	start := time.Now()
	if !s.authorized(r) {
		s.requests.WithLabelValues("unknown", "unauthenticated").Inc()
		writeUnauthorized(w)
		return
	}
	if r.Method != http.MethodPost {
		w.Header().Set("Allow", "POST")
		writeTransportError(w, http.StatusMethodNotAllowed, http.StatusMethodNotAllowed, "Method Not Allowed", NameMethodNotAllowed,
			"JSON-RPC needs POST, not "+r.Method, "method_not_allowed")
		return
	}
	ct := r.Header.Get("Content-Type")
	mt, _, err := mime.ParseMediaType(ct)
	if ct != "" && err != nil || !acceptedTypes[strings.ToLower(mt)] {
		writeTransportError(w, http.StatusUnsupportedMediaType, http.StatusUnsupportedMediaType, "Unsupported Media Type", NameUnsupportedMedia,
			"Send JSON-RPC with Content-Type: application/json, not "+ct, "unsupported_media_type")
		return
	}
	if r.ContentLength > s.cfg.MaxBodyBytes {
		s.writeTooLarge(w)
		return
	}
	body, err := io.ReadAll(http.MaxBytesReader(w, r.Body, s.cfg.MaxBodyBytes))
	if err != nil {
		var mbe *http.MaxBytesError
		if errors.As(err, &mbe) {
			s.writeTooLarge(w)
			return
		}
		writeTransportError(w, http.StatusBadRequest, codeParseError, "Parse error", NameBadRequest, "The request body could not be read", "parse_error")
		return
	}
	c, rerr := parseCall(body, r.PathValue("method"))
	if rerr != nil {
		s.requests.WithLabelValues("unknown", rerr.obj.Data.Code).Inc()
		writeJSON(w, rerr.status, &Response{ID: rerr.id, Error: rerr.obj})
		return
	}
	r2 := r.WithContext(withCall(r.Context(), c))
	r2.Header = r.Header.Clone()
	r2.Header.Set("Content-Type", "application/json")
	s.dispatch(w, r2, c)

	label := c.method
	if _, ok := s.methods[label]; !ok {
		label = "unknown"
	}
	outcome := "ok"
	if c.errObj != nil {
		outcome = c.errObj.Data.Code
	}
	d := time.Since(start)
	s.requests.WithLabelValues(label, outcome).Inc()
	s.duration.WithLabelValues(label).Observe(d.Seconds())
	ev := s.log.Debug()
	if c.errObj != nil {
		ev = s.log.Info().Str("error_code", c.errObj.Data.Code)
	}
	ev.Str("method", label).Int64("uid", c.actor.UID).Dur("took", d).Msg("rpc call")
}

// dispatch runs gorilla; a panicking method answers an internal error
// instead of a dropped connection (the panic is logged with its stack).
func (s *Server) dispatch(w http.ResponseWriter, r *http.Request, c *call) {
	tw := &trackingWriter{ResponseWriter: w}
	defer func() {
		if p := recover(); p != nil {
			if p == http.ErrAbortHandler {
				panic(p)
			}
			s.log.Error().Str("method", c.method).Interface("panic", p).Bytes("stack", debug.Stack()).Msg("rpc: method panicked")
			c.errObj = odooError(bridge.Internal(fmt.Errorf("panic: %v", p)), false)
			if !tw.wrote {
				writeJSON(w, http.StatusOK, &Response{ID: c.id, Error: c.errObj})
			}
		}
	}()
	s.rpc.ServeHTTP(tw, r)
}

type trackingWriter struct {
	http.ResponseWriter
	wrote bool
}

func (t *trackingWriter) WriteHeader(code int) { t.wrote = true; t.ResponseWriter.WriteHeader(code) }
func (t *trackingWriter) Write(b []byte) (int, error) {
	t.wrote = true
	return t.ResponseWriter.Write(b)
}

func (s *Server) writeTooLarge(w http.ResponseWriter) {
	s.requests.WithLabelValues("unknown", "too_large").Inc()
	writeTransportError(w, http.StatusRequestEntityTooLarge, http.StatusRequestEntityTooLarge, "Request Entity Too Large", NameTooLarge,
		fmt.Sprintf("The request body is larger than the sidecar's limit of %d bytes (--max-body-bytes)", s.cfg.MaxBodyBytes), "too_large")
}

// snake turns a Go method name into the public snake_case name:
// SyncNow → sync_now, AdminURL → admin_url, LogToRecord → log_to_record.
func snake(name string) string {
	rs := []rune(name)
	var b strings.Builder
	for i, r := range rs {
		if unicode.IsUpper(r) {
			if i > 0 {
				prevLower := unicode.IsLower(rs[i-1]) || unicode.IsDigit(rs[i-1])
				nextLower := i+1 < len(rs) && unicode.IsLower(rs[i+1])
				if prevLower || (unicode.IsUpper(rs[i-1]) && nextLower) {
					b.WriteByte('_')
				}
			}
			b.WriteRune(unicode.ToLower(r))
			continue
		}
		b.WriteRune(r)
	}
	return b.String()
}
