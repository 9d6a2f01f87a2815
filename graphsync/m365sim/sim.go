package m365sim

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"math/rand"
	"net"
	"net/http"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/rs/zerolog"
)

// Options configure a simulator. The zero value is usable.
type Options struct {
	// Tenant is the tenant id used in the authority path and the tid claim.
	// Default: a GUID derived from Seed.
	Tenant string
	// Domain is the mail domain of seeded users ("contoso.com" by default).
	Domain string
	// Seed makes ids, generated mail and fault injection deterministic.
	Seed int64
	// TimeScale > 1 shortens every limit and delay together: token lifetimes,
	// the throttling window, Retry-After values, latency. Default 1 (Graph's pace).
	TimeScale float64
	// Latency is added to every Graph request (divided by TimeScale).
	Latency time.Duration
	// Throttle turns on Graph's per app+mailbox limits (10,000 requests per
	// 10 minutes, 4 concurrent).
	Throttle bool
	// Listen is the TCP address; default 127.0.0.1:0.
	Listen string
	// Logger receives request logs (never tokens or secrets). Optional.
	Logger *zerolog.Logger
	// NotificationClient posts subscription validations and notifications.
	// Default: a client that accepts any certificate (receivers on loopback
	// usually have self-signed certificates) with a 10 s timeout.
	NotificationClient *http.Client
	// AutoApprove makes /authorize redirect at once with a code when
	// login_hint names a known user whose consent exists (demo convenience).
	AutoApprove bool
	// SamplesDir, when set, is a directory of real-world MIME samples
	// (*.raw, e.g. enmime's testdata/mail) that GenerateMailbox mixes in.
	// Default: none, so a seed gives the same mailboxes wherever the
	// process runs (the shipped binary never sets it; tests may).
	SamplesDir string
}

// Sim is a running (or ready to run) Microsoft 365 simulator.
type Sim struct {
	opts   Options
	log    zerolog.Logger
	scale  float64
	tenant string
	domain string

	ca      *x509.Certificate
	caPEM   []byte
	pool    *x509.CertPool
	tlsCert tls.Certificate
	client  *http.Client
	notify  *http.Client

	ln     net.Listener
	srv    *http.Server
	url    string
	closed atomic.Bool
	bg     sync.WaitGroup
	panics atomic.Int64

	mu       sync.Mutex // guards everything below except per-mailbox state
	apps     map[string]*App
	users    map[string]*User // by lower upn
	usersID  map[string]*User // by oid
	userList []*User
	codes    map[string]*authCode
	txns     map[string]*authTxn
	access   map[string]*accessToken
	refresh  map[string]*refreshToken
	subs     map[string]*subscription
	uploads  map[string]*uploadSession
	consent  map[string]map[string]bool // clientID -> user oid -> consented
	tgrants  map[string]int64           // successful token answers by grant type
	epoch    string                     // per-process random: baked into delta tokens
	faults   FaultOptions
	rng      *rand.Rand
	idSeq    uint64
	samples  []sample
	samplesD bool

	thr   *throttler
	stats map[string]*Stats // by mailbox key (lower upn)
	total Stats

	// gate, when set (tests), blocks Graph handlers after they took their
	// concurrency slot, so a test can hold requests in flight deterministically.
	gate chan struct{}
	// inflight counts requests holding a concurrency slot, per mailbox.
	inflightAll atomic.Int64
}

// App is a registered application (client).
type App struct {
	ClientID     string
	ClientSecret string
	// RedirectURIs match exactly; an entry ending in "*" matches by prefix
	// (e.g. "http://127.0.0.1:*" for loopback with any port).
	RedirectURIs []string
	// Name is shown on the consent page.
	Name string
}

// Grant gives a user rights on a shared mailbox.
type Grant struct {
	User         string
	FullAccess   bool
	SendAs       bool
	SendOnBehalf bool
}

// User is a mailbox: a person or a shared mailbox.
type User struct {
	ID          string // object id (oid), a GUID
	UPN         string
	DisplayName string
	Shared      bool

	index  int
	grants map[string]Grant // by lower upn of the grantee
	// tokensValidFrom: refresh tokens issued before are revoked (AADSTS50173).
	tokensValidFrom time.Time
	requireMFA      bool
	rejectTokens    int // RejectTokens: Graph requests still to answer 401
	mb              *mailbox
}

// FaultOptions inject failures into Graph requests.
type FaultOptions struct {
	Rate  float64     // 0..1, chance that a Graph request gets a fault
	Kinds []FaultKind // which faults; empty means all
	// BurstLen is how many requests a 429 burst covers (default 5).
	BurstLen int
}

// FaultKind names an injected failure.
type FaultKind string

// Fault kinds.
const (
	Fault5xx          FaultKind = "5xx"       // 503 ServiceUnavailable with Retry-After
	FaultReset        FaultKind = "reset"     // the TCP connection is closed without an answer
	Fault429Burst     FaultKind = "429burst"  // this and the next BurstLen-1 requests of the mailbox get 429
	FaultExpiredDelta FaultKind = "delta410"  // a delta request gets 410 SyncStateNotFound
	FaultShortPage    FaultKind = "shortpage" // a delta page carries a third of its items (Outlook internal timeout)
)

// Stats count what one mailbox (or all of them) received.
type Stats struct {
	Requests      int64 // Graph requests counted against the mailbox (batch inner requests included)
	Throttled     int64 // 429 answers (the three below, and forced bursts)
	ThrottledApp  int64 // … of them: over the app's 2,000 requests/s over all mailboxes
	ThrottledConc int64 // … of them: over 4 requests in flight on the mailbox
	ThrottledRate int64 // … of them: over 10,000 requests in 10 minutes on the mailbox
	BatchInner    int64 // requests that came inside a $batch
	Batches       int64 // $batch envelopes
	Faults        int64 // injected faults
	Delta         int64 // delta requests
	MIME          int64 // $value downloads
	Sent          int64 // messages sent
	Errors        int64 // 4xx/5xx answers other than 429
	MaxInFlight   int64 // highest concurrency seen
	Notifications int64 // change notifications delivered (totals only)
	NotifyFailed  int64 // change notifications that failed (totals only)
	Rejected      int64 // valid tokens answered 401 by RejectTokens
}

// New builds a simulator; call Start to serve.
func New(opts Options) (*Sim, error) {
	if opts.TimeScale <= 0 {
		opts.TimeScale = 1
	}
	if opts.Listen == "" {
		opts.Listen = "127.0.0.1:0"
	}
	if opts.Domain == "" {
		opts.Domain = "contoso.com"
	}
	s := &Sim{
		opts:    opts,
		scale:   opts.TimeScale,
		domain:  strings.ToLower(opts.Domain),
		apps:    map[string]*App{},
		users:   map[string]*User{},
		usersID: map[string]*User{},
		codes:   map[string]*authCode{},
		txns:    map[string]*authTxn{},
		access:  map[string]*accessToken{},
		refresh: map[string]*refreshToken{},
		subs:    map[string]*subscription{},
		uploads: map[string]*uploadSession{},
		consent: map[string]map[string]bool{},
		tgrants: map[string]int64{},
		epoch:   newEpoch(),
		rng:     rand.New(rand.NewSource(opts.Seed)),
		stats:   map[string]*Stats{},
	}
	if opts.Logger != nil {
		s.log = *opts.Logger
	} else {
		s.log = zerolog.Nop()
	}
	s.tenant = opts.Tenant
	if s.tenant == "" {
		s.tenant = guidFrom(opts.Seed, "tenant")
	}
	s.thr = newThrottler(s)
	if err := s.makeCA(); err != nil {
		return nil, fmt.Errorf("m365sim: make CA: %w", err)
	}
	s.notify = opts.NotificationClient
	if s.notify == nil {
		s.notify = &http.Client{
			Timeout: 10 * time.Second,
			Transport: &http.Transport{
				TLSClientConfig: &tls.Config{InsecureSkipVerify: true}, //nolint:gosec // loopback receivers use self-signed certs
			},
		}
	}
	s.RegisterApp(DefaultApp())
	return s, nil
}

// Start listens and serves in the background.
func (s *Sim) Start() error {
	ln, err := net.Listen("tcp", s.opts.Listen)
	if err != nil {
		return fmt.Errorf("m365sim: listen %s: %w", s.opts.Listen, err)
	}
	s.ln = ln
	s.url = "https://" + ln.Addr().String()
	s.srv = &http.Server{
		Handler:           s.handler(),
		ReadHeaderTimeout: 10 * time.Second,
		TLSConfig:         &tls.Config{Certificates: []tls.Certificate{s.tlsCert}, MinVersion: tls.VersionTLS12},
		ErrorLog:          nil,
	}
	tl := tls.NewListener(ln, s.srv.TLSConfig)
	s.bg.Add(1)
	go func() {
		defer s.bg.Done()
		defer s.recoverBG()
		if err := s.srv.Serve(tl); err != nil && !errors.Is(err, http.ErrServerClosed) {
			s.log.Error().Err(err).Msg("m365sim: serve")
		}
	}()
	return nil
}

// Close stops the server.
func (s *Sim) Close() error {
	if s.closed.Swap(true) {
		return nil
	}
	var err error
	if s.srv != nil {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		// Requests still running after the grace period are cut off: the
		// simulator is closed either way (a "restart" in tests must not fail
		// because a client's request was in flight).
		if err = s.srv.Shutdown(ctx); err != nil {
			err = s.srv.Close()
		}
	}
	s.mu.Lock()
	if s.gate != nil {
		close(s.gate)
		s.gate = nil
	}
	s.mu.Unlock()
	s.bg.Wait()
	return err
}

// Panics returns how many panics background goroutines recovered from.
func (s *Sim) Panics() int64 { return s.panics.Load() }

func (s *Sim) recoverBG() {
	if r := recover(); r != nil {
		s.panics.Add(1)
		s.log.Error().Interface("panic", r).Msg("m365sim: recovered panic")
	}
}

// URL is the server root, e.g. https://127.0.0.1:8766.
func (s *Sim) URL() string { return s.url }

// AuthorityURL is the MSAL authority: URL()/tenant.
func (s *Sim) AuthorityURL() string { return s.url + "/" + s.tenant }

// GraphBaseURL is URL()/v1.0.
func (s *Sim) GraphBaseURL() string { return s.url + "/v1.0" }

// Tenant is the tenant id.
func (s *Sim) Tenant() string { return s.tenant }

// Domain is the mail domain of seeded users.
func (s *Sim) Domain() string { return s.domain }

// CAPEM is the PEM of the CA that signed the server certificate.
func (s *Sim) CAPEM() []byte { return append([]byte(nil), s.caPEM...) }

// CertPool holds the simulator's CA.
func (s *Sim) CertPool() *x509.CertPool { return s.pool }

// Client is an HTTP client trusting the simulator's CA; it does not follow
// redirects of the identity endpoints only because callers decide (it follows
// the default policy).
func (s *Sim) Client() *http.Client { return s.client }

// Transport returns a fresh transport trusting the simulator's CA.
func (s *Sim) Transport() *http.Transport {
	return &http.Transport{
		TLSClientConfig:     &tls.Config{RootCAs: s.pool, MinVersion: tls.VersionTLS12},
		MaxIdleConnsPerHost: 64,
		IdleConnTimeout:     90 * time.Second,
	}
}

// scaled divides a real-world duration by the time scale.
func (s *Sim) scaled(d time.Duration) time.Duration {
	return time.Duration(float64(d) / s.scale)
}

func (s *Sim) handler() http.Handler {
	mux := http.NewServeMux()
	mux.HandleFunc("/v1.0/", s.serveGraphTop)
	mux.HandleFunc("/v1.0", s.serveGraphTop)
	mux.HandleFunc("/upload/", s.serveUpload)
	mux.HandleFunc("/", s.serveIdentity)
	return mux
}
