package graphsync

import (
	"bytes"
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"io"
	"math/rand/v2"
	"net"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"sync"
	"time"

	abs "github.com/microsoft/kiota-abstractions-go"
	absauth "github.com/microsoft/kiota-abstractions-go/authentication"
	khttp "github.com/microsoft/kiota-http-go"
	msgraphsdk "github.com/microsoftgraph/msgraph-sdk-go"
	msgraphcore "github.com/microsoftgraph/msgraph-sdk-go-core"
	"github.com/microsoftgraph/msgraph-sdk-go/models/odataerrors"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/rs/zerolog"
)

// DefaultBaseURL is Microsoft Graph v1.0.
const DefaultBaseURL = "https://graph.microsoft.com/v1.0"

// Config builds a Client. Zero fields take sensible defaults.
type Config struct {
	// BaseURL is Graph's v1.0 root: DefaultBaseURL, or the simulator's
	// GraphBaseURL.
	BaseURL string
	// Transport is the ONE connection pool every mailbox shares. Default:
	// NewTransport(nil).
	Transport http.RoundTripper
	// Tokens hands out access tokens per mailbox.
	Tokens TokenSource
	// Budget are the per-mailbox limits; Retry the retry policy.
	Budget BudgetOptions
	Retry  RetryOptions
	// AppRate bounds the requests per second of all mailboxes together
	// (inner requests of a $batch each count), so a fleet's polls bunched
	// together — after a start, all mailboxes are due at once — never
	// burst past an app-wide limit (the simulator's 2,000 per second;
	// Graph documents 130,000 per 10 s per app). Default 1,500.
	AppRate int
	// AttemptTimeout bounds one HTTP attempt, body included (default 60 s).
	AttemptTimeout time.Duration
	// BatchSlots is how many concurrency slots one $batch takes (default 4:
	// Outlook runs up to 4 inner requests of a batch in parallel, so a batch
	// may count as 4 in flight against MailboxConcurrency).
	BatchSlots int
	// Registerer receives the Graph metrics (nil: not registered).
	Registerer prometheus.Registerer
	Log        zerolog.Logger
}

// RetryOptions say how the client retries 429, 5xx and connection resets.
//
// MailDesk retries below the SDK (the SDK's RetryHandler is left out of the
// middleware): only there can each attempt take a budget slot, a 429's
// Retry-After pause the whole mailbox instead of one request, and resets be
// retried, which the SDK's handler does not do.
type RetryOptions struct {
	MaxAttempts int           // default 8
	BaseDelay   time.Duration // first backoff without Retry-After (default 500 ms)
	MaxDelay    time.Duration // backoff cap (default 30 s)
	MaxPause    time.Duration // cap on one Retry-After (default 5 min)
}

func (o *RetryOptions) defaults() {
	if o.MaxAttempts <= 0 {
		o.MaxAttempts = 8
	}
	if o.BaseDelay <= 0 {
		o.BaseDelay = 500 * time.Millisecond
	}
	if o.MaxDelay <= 0 {
		o.MaxDelay = 30 * time.Second
	}
	if o.MaxPause <= 0 {
		o.MaxPause = 5 * time.Minute
	}
}

// NewTransport returns the shared transport: one pool, keep-alives, HTTP/2,
// timeouts on every phase. tlsConf nil uses the system roots.
func NewTransport(tlsConf *tls.Config) *http.Transport {
	return &http.Transport{
		Proxy:                 http.ProxyFromEnvironment,
		DialContext:           (&net.Dialer{Timeout: 10 * time.Second, KeepAlive: 30 * time.Second}).DialContext,
		TLSClientConfig:       tlsConf,
		ForceAttemptHTTP2:     true,
		MaxIdleConns:          256,
		MaxIdleConnsPerHost:   64,
		IdleConnTimeout:       90 * time.Second,
		TLSHandshakeTimeout:   10 * time.Second,
		ResponseHeaderTimeout: 60 * time.Second,
		ExpectContinueTimeout: time.Second,
	}
}

// Client hands out one Graph client per mailbox over the shared transport.
type Client struct {
	cfg     Config
	base    *url.URL
	hosts   []string
	metrics *graphMetrics

	mu        sync.Mutex
	mailboxes map[string]*Mailbox
	app       *Budget // AppRate over all mailboxes
}

// New checks cfg and builds a Client.
func New(cfg Config) (*Client, error) {
	if cfg.BaseURL == "" {
		cfg.BaseURL = DefaultBaseURL
	}
	cfg.BaseURL = strings.TrimRight(cfg.BaseURL, "/")
	u, err := url.Parse(cfg.BaseURL)
	if err != nil || u.Host == "" {
		return nil, fmt.Errorf("graphsync: bad Graph base URL %q", cfg.BaseURL)
	}
	if cfg.Tokens == nil {
		return nil, errors.New("graphsync: no token source")
	}
	if cfg.Transport == nil {
		cfg.Transport = NewTransport(nil)
	}
	if cfg.AttemptTimeout <= 0 {
		cfg.AttemptTimeout = 60 * time.Second
	}
	if cfg.BatchSlots <= 0 {
		cfg.BatchSlots = 4
	}
	if cfg.AppRate <= 0 {
		cfg.AppRate = 1500
	}
	cfg.Retry.defaults()
	cfg.Budget.defaults()
	hosts := []string{"graph.microsoft.com", u.Hostname()}
	if u.Port() != "" {
		hosts = append(hosts, u.Host)
	}
	// The app's pace: a one-second window in tenths, no concurrency bound.
	app := NewBudget(BudgetOptions{Limit: cfg.AppRate, Window: time.Second, Buckets: 10, MaxInFlight: 1 << 16})
	return &Client{cfg: cfg, base: u, hosts: hosts, metrics: newGraphMetrics(cfg.Registerer), mailboxes: map[string]*Mailbox{}, app: app}, nil
}

// BaseURL is the Graph root requests go to.
func (c *Client) BaseURL() string { return c.cfg.BaseURL }

// Mailbox returns the mailbox's client, creating it on first use. user is
// the mailbox's address (or object id) used in /users/{user}/... paths.
func (c *Client) Mailbox(mailboxID, user string) (*Mailbox, error) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if m := c.mailboxes[mailboxID]; m != nil && m.user == user {
		return m, nil
	}
	m := &Mailbox{c: c, id: mailboxID, user: user, budget: NewBudget(c.cfg.Budget)}
	m.rt = &budgetTransport{m: m}
	provider := &tokenProvider{ts: c.cfg.Tokens, mailboxID: mailboxID, hosts: absauth.NewAllowedHostsValidator(c.hosts)}
	bearer := absauth.NewBaseBearerTokenAuthenticationProvider(provider)
	mw := []khttp.Middleware{
		msgraphcore.NewGraphTelemetryHandler(&msgraphcore.GraphClientOptions{}),
		khttp.NewUrlReplaceHandler(true, msgraphcore.ReplacementPairs),
		khttp.NewRedirectHandler(),
		khttp.NewParametersNameDecodingHandler(),
		khttp.NewUserAgentHandler(),
		khttp.NewHeadersInspectionHandler(),
	}
	hc := &http.Client{Transport: khttp.NewCustomTransportWithParentTransport(m.rt, mw...)}
	adapter, err := msgraphsdk.NewGraphRequestAdapterWithParseNodeFactoryAndSerializationWriterFactoryAndHttpClient(bearer, nil, nil, hc)
	if err != nil {
		return nil, fmt.Errorf("graphsync: request adapter for %s: %w", mailboxID, err)
	}
	adapter.SetBaseUrl(c.cfg.BaseURL)
	m.adapter = adapter
	m.sdk = msgraphsdk.NewGraphServiceClient(adapter)
	c.mailboxes[mailboxID] = m
	return m, nil
}

// Forget drops a mailbox's client (mailbox deleted or disconnected).
func (c *Client) Forget(mailboxID string) {
	c.mu.Lock()
	delete(c.mailboxes, mailboxID)
	c.mu.Unlock()
}

// Mailbox is one mailbox's Graph client: the SDK's GraphServiceClient over
// a transport that keeps the mailbox's budget and retries.
type Mailbox struct {
	c       *Client
	id      string
	user    string
	budget  *Budget
	rt      *budgetTransport
	adapter *msgraphsdk.GraphRequestAdapter
	sdk     *msgraphsdk.GraphServiceClient
}

// ID is the MailDesk mailbox id; User the Graph user the paths name.
func (m *Mailbox) ID() string   { return m.id }
func (m *Mailbox) User() string { return m.user }

// SDK is the mailbox's GraphServiceClient.
func (m *Mailbox) SDK() *msgraphsdk.GraphServiceClient { return m.sdk }

// Budget is the mailbox's request budget.
func (m *Mailbox) Budget() *Budget { return m.budget }

// errorMapping makes the SDK decode Graph error bodies as ODataError.
var errorMapping = abs.ErrorMappings{"XXX": odataerrors.CreateODataErrorFromDiscriminatorValue}

// getRaw sends a GET for rawURL (absolute: a nextLink or deltaLink) through
// the SDK's adapter and returns the body.
func (m *Mailbox) getRaw(ctx context.Context, rawURL string, headers map[string]string) ([]byte, error) {
	ri := abs.NewRequestInformation()
	ri.Method = abs.GET
	u, err := url.Parse(rawURL)
	if err != nil {
		return nil, fmt.Errorf("graphsync: bad link %q: %w", rawURL, err)
	}
	ri.SetUri(*u)
	ri.Headers.TryAdd("Accept", "application/json")
	for k, v := range headers {
		ri.Headers.Add(k, v)
	}
	return m.send(ctx, ri)
}

// send runs a request through the adapter and returns the raw body.
func (m *Mailbox) send(ctx context.Context, ri *abs.RequestInformation) ([]byte, error) {
	res, err := m.adapter.SendPrimitive(ctx, ri, "[]byte", errorMapping)
	if err != nil {
		return nil, err
	}
	if res == nil {
		return nil, nil
	}
	b, _ := res.([]byte)
	return b, nil
}

// url builds an absolute URL under the mailbox: /users/{user}/rel.
func (m *Mailbox) url(rel string, q url.Values) string {
	s := m.c.cfg.BaseURL + "/users/" + url.PathEscape(m.user) + "/" + rel
	if len(q) > 0 {
		s += "?" + encodeQuery(q)
	}
	return s
}

// encodeQuery keeps $ in OData parameter names readable.
func encodeQuery(q url.Values) string {
	return strings.ReplaceAll(q.Encode(), "%24", "$")
}

// tokenProvider adapts a TokenSource to kiota's AccessTokenProvider.
type tokenProvider struct {
	ts        TokenSource
	mailboxID string
	hosts     absauth.AllowedHostsValidator
}

func (p *tokenProvider) GetAuthorizationToken(ctx context.Context, u *url.URL, _ map[string]any) (string, error) {
	if !p.hosts.IsUrlHostValid(u) {
		return "", nil
	}
	return p.ts.Token(ctx, p.mailboxID)
}

func (p *tokenProvider) GetAllowedHostsValidator() *absauth.AllowedHostsValidator { return &p.hosts }

// ctx keys for per-request budget information.
type costKey struct{}

// requestCost tells the transport what a request costs: units (inner
// requests of a $batch) and concurrency slots.
type requestCost struct{ units, slots int }

func withCost(ctx context.Context, units, slots int) context.Context {
	return context.WithValue(ctx, costKey{}, requestCost{units, slots})
}

// budgetTransport is the bottom of each mailbox's pipeline: it takes a
// budget slot for every attempt, adds Prefer: IdType="ImmutableId", and
// retries 429/5xx/resets with Retry-After or jittered backoff.
type budgetTransport struct{ m *Mailbox }

func (t *budgetTransport) RoundTrip(req *http.Request) (*http.Response, error) {
	m := t.m
	c := m.c
	ctx := req.Context()
	cost, _ := ctx.Value(costKey{}).(requestCost)
	var body []byte
	if req.Body != nil && req.Body != http.NoBody {
		b, err := io.ReadAll(req.Body)
		req.Body.Close()
		if err != nil {
			return nil, fmt.Errorf("graphsync: read request body: %w", err)
		}
		body = b
	}
	idempotent := req.Method == http.MethodGet || strings.HasSuffix(req.URL.Path, "/$batch")
	ro := c.cfg.Retry
	authz := req.Header.Get("Authorization") // replaced once after a 401
	reauthed := false
	for attempt := 1; ; attempt++ {
		release, err := m.budget.Acquire(ctx, cost.units, cost.slots)
		if err != nil {
			return nil, err
		}
		// Then the app's pace (a rate only: its slot goes back at once).
		appRelease, err := c.app.Acquire(ctx, cost.units, 1)
		if err != nil {
			release()
			return nil, err
		}
		appRelease()
		actx, cancel := context.WithTimeout(ctx, c.cfg.AttemptTimeout)
		r := req.Clone(actx)
		if authz != "" {
			r.Header.Set("Authorization", authz)
		}
		if !hasImmutablePrefer(r.Header) {
			r.Header.Add("Prefer", `IdType="ImmutableId"`)
		}
		if body != nil {
			r.Body = io.NopCloser(bytes.NewReader(body))
			r.ContentLength = int64(len(body))
			r.GetBody = func() (io.ReadCloser, error) { return io.NopCloser(bytes.NewReader(body)), nil }
		}
		units := max(cost.units, 1)
		c.metrics.requests.WithLabelValues(m.id).Add(float64(units))
		resp, err := c.cfg.Transport.RoundTrip(r)
		last := attempt >= ro.MaxAttempts
		if err != nil {
			release()
			cancel()
			if ctx.Err() != nil || !idempotent || last {
				return nil, fmt.Errorf("graphsync: %s %s: %w", req.Method, redactURL(req.URL), err)
			}
			c.metrics.retries.WithLabelValues(m.id).Inc()
			if err := sleepCtx(ctx, backoff(ro, attempt)); err != nil {
				return nil, err
			}
			continue
		}
		retryable := resp.StatusCode == http.StatusTooManyRequests || resp.StatusCode == http.StatusServiceUnavailable ||
			resp.StatusCode == http.StatusGatewayTimeout || (resp.StatusCode == http.StatusBadGateway && idempotent) ||
			(resp.StatusCode == http.StatusInternalServerError && idempotent)
		if resp.StatusCode == http.StatusTooManyRequests {
			c.metrics.throttled.WithLabelValues(m.id).Inc()
		}
		if resp.StatusCode == http.StatusUnauthorized && strings.HasPrefix(authz, "Bearer ") {
			// Graph no longer takes the access token MSAL believed valid
			// (revoked session, signing key rollover, a simulator restart):
			// drop it, refresh, and retry once; a second 401 or a refused
			// refresh means the owner must sign in again.
			code, msg := graphErrorBody(resp.Body)
			resp.Body.Close()
			release()
			cancel()
			if reauthed {
				return nil, m.reauth401(ctx, code, msg)
			}
			reauthed = true
			tok, err := m.freshToken(ctx, strings.TrimPrefix(authz, "Bearer "))
			if err != nil {
				return nil, err
			}
			authz = "Bearer " + tok
			c.metrics.retries.WithLabelValues(m.id).Inc()
			continue
		}
		if !retryable || last {
			resp.Body = &releaseBody{ReadCloser: resp.Body, release: release, cancel: cancel}
			return resp, nil
		}
		ra, hasRA := retryAfter(resp.Header, ro.MaxPause)
		_, _ = io.Copy(io.Discard, io.LimitReader(resp.Body, 64<<10))
		resp.Body.Close()
		release()
		cancel()
		c.metrics.retries.WithLabelValues(m.id).Inc()
		if hasRA {
			// Graph's Retry-After applies to the app+mailbox: pause all of it.
			m.budget.Pause(time.Now().Add(ra))
			continue
		}
		if err := sleepCtx(ctx, backoff(ro, attempt)); err != nil {
			return nil, err
		}
	}
}

func hasImmutablePrefer(h http.Header) bool {
	for _, v := range h.Values("Prefer") {
		if strings.Contains(strings.ToLower(v), "idtype") {
			return true
		}
	}
	return false
}

// releaseBody frees the budget slot and the attempt's timeout when the
// caller is done with the body.
type releaseBody struct {
	io.ReadCloser
	release func()
	cancel  context.CancelFunc
	once    sync.Once
}

func (b *releaseBody) Close() error {
	err := b.ReadCloser.Close()
	b.once.Do(func() { b.release(); b.cancel() })
	return err
}

// retryAfter parses Retry-After (seconds, possibly fractional, or an HTTP
// date), capped at maxPause.
func retryAfter(h http.Header, maxPause time.Duration) (time.Duration, bool) {
	v := strings.TrimSpace(h.Get("Retry-After"))
	if v == "" {
		return 0, false
	}
	var d time.Duration
	if f, err := strconv.ParseFloat(v, 64); err == nil {
		d = time.Duration(f * float64(time.Second))
	} else if t, err := http.ParseTime(v); err == nil {
		d = time.Until(t)
	} else {
		return 0, false
	}
	if d < 0 {
		d = 0
	}
	if d > maxPause {
		d = maxPause
	}
	return d, true
}

// backoff is capped exponential backoff with full jitter over its upper half.
func backoff(o RetryOptions, attempt int) time.Duration {
	d := o.BaseDelay << min(attempt-1, 20)
	if d > o.MaxDelay || d <= 0 {
		d = o.MaxDelay
	}
	return d/2 + time.Duration(rand.Int64N(int64(d/2)+1))
}

func sleepCtx(ctx context.Context, d time.Duration) error {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-t.C:
		return nil
	case <-ctx.Done():
		return ctx.Err()
	}
}

// redactURL drops the query (delta tokens are credentials of a sort).
func redactURL(u *url.URL) string {
	return u.Scheme + "://" + u.Host + u.Path
}

// GraphError describes a failed Graph call.
type GraphError struct {
	Status int
	Code   string
	Msg    string
	Err    error
}

func (e *GraphError) Error() string {
	return fmt.Sprintf("graph: %d %s: %s", e.Status, e.Code, e.Msg)
}
func (e *GraphError) Unwrap() error { return e.Err }

// asGraphError extracts status and code from an SDK error.
func asGraphError(err error) (*GraphError, bool) {
	var ge *GraphError
	if errors.As(err, &ge) {
		return ge, true
	}
	var oe *odataerrors.ODataError
	if errors.As(err, &oe) {
		g := &GraphError{Status: oe.ResponseStatusCode, Err: err}
		if e := oe.GetErrorEscaped(); e != nil {
			if c := e.GetCode(); c != nil {
				g.Code = *c
			}
			if msg := e.GetMessage(); msg != nil {
				g.Msg = *msg
			}
		}
		return g, true
	}
	var ae *abs.ApiError
	if errors.As(err, &ae) {
		return &GraphError{Status: ae.ResponseStatusCode, Msg: ae.Message, Err: err}, true
	}
	return nil, false
}

// IsResync reports whether err means a folder's delta state is gone: 410,
// syncStateNotFound, resyncRequired, or an invalid sync state.
func IsResync(err error) bool {
	ge, ok := asGraphError(err)
	if !ok {
		return false
	}
	code := strings.ToLower(ge.Code)
	return ge.Status == http.StatusGone || code == "syncstatenotfound" || code == "resyncrequired" ||
		code == "errorinvalidsyncstatedata" || code == "syncstateinvalid"
}

// IsNotFound reports a 404 from Graph.
func IsNotFound(err error) bool {
	ge, ok := asGraphError(err)
	return ok && ge.Status == http.StatusNotFound
}

// StatusOf returns Graph's HTTP status in err (0 when none).
func StatusOf(err error) int {
	if ge, ok := asGraphError(err); ok {
		return ge.Status
	}
	return 0
}

// graphMetrics are per-mailbox request counters.
type graphMetrics struct {
	requests, throttled, retries *prometheus.CounterVec
}

func newGraphMetrics(reg prometheus.Registerer) *graphMetrics {
	gm := &graphMetrics{
		requests: prometheus.NewCounterVec(prometheus.CounterOpts{Name: "maildesk_graph_requests_total",
			Help: "Graph requests sent, per mailbox ($batch inner requests counted one by one, retries included)."}, []string{"mailbox"}),
		throttled: prometheus.NewCounterVec(prometheus.CounterOpts{Name: "maildesk_graph_throttled_total",
			Help: "Graph answers 429 Too Many Requests, per mailbox."}, []string{"mailbox"}),
		retries: prometheus.NewCounterVec(prometheus.CounterOpts{Name: "maildesk_graph_retries_total",
			Help: "Graph requests retried (429, 5xx, resets), per mailbox."}, []string{"mailbox"}),
	}
	if reg != nil {
		for _, c := range []prometheus.Collector{gm.requests, gm.throttled, gm.retries} {
			if err := reg.Register(c); err != nil {
				var are prometheus.AlreadyRegisteredError
				if errors.As(err, &are) {
					continue
				}
			}
		}
	}
	return gm
}
