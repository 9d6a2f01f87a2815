package m365sim

import (
	"net/http"
	"strconv"
	"strings"
	"sync"
	"time"
)

// Graph's Outlook limits per app and mailbox (FACTS.md "throttling").
const (
	limitRequests    = 10000
	limitWindow      = 10 * time.Minute
	limitConcurrency = 4
	limitAppPerSec   = 2000 // per app over all mailboxes (FACTS.md)
	windowBuckets    = 60
)

// throttler keeps, per app+mailbox, a sliding window of request counts in
// buckets (cheap: no per-request allocation) and the number in flight.
type throttler struct {
	s     *Sim
	mu    sync.Mutex
	keys  map[string]*budget
	limit int // requests per window; tests lower it
	apps  map[string]*appRate
}

// appRate counts an app's requests in the current (scaled) second.
type appRate struct {
	sec   int64
	count int
}

type budget struct {
	inflight int
	buckets  [windowBuckets]int
	stamps   [windowBuckets]int64 // bucket index in absolute bucket time
	burst    int                  // remaining forced 429s (fault injection)
}

func newThrottler(s *Sim) *throttler {
	return &throttler{s: s, keys: map[string]*budget{}, limit: limitRequests, apps: map[string]*appRate{}}
}

func (t *throttler) bucketLen() time.Duration {
	return t.s.scaled(limitWindow) / windowBuckets
}

// count adds one request and returns the total in the window and, when
// over, how long until a slot frees.
func (b *budget) count(now time.Time, bl time.Duration) (int, time.Duration) {
	abs := now.UnixNano() / int64(bl)
	i := abs % windowBuckets
	if b.stamps[i] != abs {
		b.stamps[i], b.buckets[i] = abs, 0
	}
	b.buckets[i]++
	total := 0
	oldest := int64(-1)
	for k := range b.buckets {
		if abs-b.stamps[k] < windowBuckets && b.buckets[k] > 0 {
			total += b.buckets[k]
			if oldest < 0 || b.stamps[k] < oldest {
				oldest = b.stamps[k]
			}
		}
	}
	wait := time.Duration(oldest+windowBuckets-abs) * bl
	return total, wait
}

func retryAfter(d time.Duration) string {
	sec := d.Seconds()
	if sec < 0.001 {
		sec = 0.001
	}
	if sec >= 1 {
		return strconv.Itoa(int(sec + 0.999))
	}
	return strconv.FormatFloat(sec, 'f', 3, 64)
}

func (s *Sim) countAnon() {
	s.mu.Lock()
	s.total.Requests++
	s.total.Errors++
	s.mu.Unlock()
}

func (s *Sim) statsFor(u *User) *Stats {
	st := s.stats[strings.ToLower(u.UPN)]
	if st == nil {
		st = &Stats{}
		s.stats[strings.ToLower(u.UPN)] = st
	}
	return st
}

func (s *Sim) countMIME(u *User) {
	s.mu.Lock()
	s.statsFor(u).MIME++
	s.total.MIME++
	s.mu.Unlock()
}

// admit counts the request against its app+mailbox, injects faults,
// enforces the limits and latency. It returns a release func, or false
// when it already answered.
func (s *Sim) admit(g *greq) (func(), bool) {
	u := g.target
	key := g.at.app.ClientID + "|" + strings.ToLower(u.UPN)
	now := time.Now()

	s.mu.Lock()
	st := s.statsFor(u)
	st.Requests++
	s.total.Requests++
	if g.inner {
		st.BatchInner++
		s.total.BatchInner++
	}
	isDelta := len(g.segs) > 0 && strings.HasPrefix(g.segs[len(g.segs)-1], "delta")
	if isDelta {
		st.Delta++
		s.total.Delta++
	}
	var fault FaultKind
	if s.faults.Rate > 0 && s.rng.Float64() < s.faults.Rate {
		kinds := s.faults.Kinds
		if len(kinds) == 0 {
			kinds = []FaultKind{Fault5xx, FaultReset, Fault429Burst, FaultExpiredDelta, FaultShortPage}
		}
		fault = kinds[s.rng.Intn(len(kinds))]
		if (fault == FaultExpiredDelta || fault == FaultShortPage) && !isDelta {
			fault = ""
		}
		if fault == FaultShortPage {
			g.shortPage, fault = true, ""
			st.Faults++
			s.total.Faults++
		}
		if fault == FaultReset && g.inner {
			fault = Fault5xx
		}
		if fault != "" {
			st.Faults++
			s.total.Faults++
		}
	}
	burstLen := s.faults.BurstLen
	s.mu.Unlock()

	t := s.thr
	t.mu.Lock()
	b := t.keys[key]
	if b == nil {
		b = &budget{}
		t.keys[key] = b
	}
	total, wait := b.count(now, t.bucketLen())
	if fault == Fault429Burst {
		if burstLen <= 0 {
			burstLen = 5
		}
		b.burst = burstLen
	}
	forced := b.burst > 0
	if forced {
		b.burst--
	}
	ar := t.apps[g.at.app.ClientID]
	if ar == nil {
		ar = &appRate{}
		t.apps[g.at.app.ClientID] = ar
	}
	sec := now.UnixNano() / int64(max(time.Nanosecond, t.s.scaled(time.Second)))
	if ar.sec != sec {
		ar.sec, ar.count = sec, 0
	}
	ar.count++
	appOver := s.opts.Throttle && ar.count > limitAppPerSec
	conc := s.opts.Throttle && b.inflight >= limitConcurrency
	over := s.opts.Throttle && total > t.limit
	if !conc && !over && !appOver && !forced && fault == "" {
		b.inflight++
		if int64(b.inflight) > st.MaxInFlight {
			s.mu.Lock()
			st.MaxInFlight = int64(b.inflight)
			if st.MaxInFlight > s.total.MaxInFlight {
				s.total.MaxInFlight = st.MaxInFlight
			}
			s.mu.Unlock()
		}
	}
	t.mu.Unlock()

	switch {
	case fault == FaultReset:
		if hj, ok := g.w.(http.Hijacker); ok {
			if c, _, err := hj.Hijack(); err == nil {
				_ = c.Close()
				return nil, false
			}
		}
		s.countErr(u)
		g.w.Header().Set("Retry-After", retryAfter(s.scaled(2*time.Second)))
		g.error(503, "ServiceUnavailable", "Service Unavailable")
		return nil, false
	case fault == Fault5xx:
		s.countErr(u)
		g.w.Header().Set("Retry-After", retryAfter(s.scaled(2*time.Second)))
		g.error(503, "ServiceUnavailable", "The service is temporarily unavailable. Please retry later.")
		return nil, false
	case fault == FaultExpiredDelta:
		s.countErr(u)
		g.error(410, "SyncStateNotFound", "The sync state generation is not found; generation=1;[highest=2][2].")
		return nil, false
	case conc:
		s.count429(u, &Stats{ThrottledConc: 1})
		g.w.Header().Set("Retry-After", retryAfter(s.scaled(time.Second)))
		g.error(429, "ApplicationThrottled", "Application is over its MailboxConcurrency limit.")
		return nil, false
	case appOver:
		s.count429(u, &Stats{ThrottledApp: 1})
		g.w.Header().Set("Retry-After", retryAfter(s.scaled(time.Second)))
		g.error429()
		return nil, false
	case over || forced:
		why := &Stats{}
		if over {
			why.ThrottledRate = 1
		}
		s.count429(u, why)
		if forced {
			wait = s.scaled(10 * time.Second)
		}
		g.w.Header().Set("Retry-After", retryAfter(wait))
		g.error429()
		return nil, false
	}

	release := func() {
		t.mu.Lock()
		b.inflight--
		t.mu.Unlock()
	}
	s.mu.Lock()
	gate := s.gate
	s.mu.Unlock()
	if gate != nil {
		select {
		case <-gate:
		case <-g.r.Context().Done():
		}
	}
	if s.opts.Latency > 0 {
		tm := time.NewTimer(s.scaled(s.opts.Latency))
		select {
		case <-tm.C:
		case <-g.r.Context().Done():
			tm.Stop()
		}
	}
	return release, true
}

// error429 writes the documented TooManyRequests body (sample 55).
func (g *greq) error429() {
	writeJSONCT(g.w, 429, "application/json", map[string]any{"error": map[string]any{
		"code": "TooManyRequests",
		"innerError": map[string]any{"code": "429", "date": time.Now().UTC().Format("2006-01-02T15:04:05"),
			"message": "Please retry after", "request-id": g.reqID, "status": "429"},
		"message": "Please retry again later.",
	}})
}

// count429 counts a 429 and its reason (why's Throttled* fields).
func (s *Sim) count429(u *User, why *Stats) {
	s.mu.Lock()
	for _, st := range []*Stats{s.statsFor(u), &s.total} {
		st.Throttled++
		st.ThrottledApp += why.ThrottledApp
		st.ThrottledConc += why.ThrottledConc
		st.ThrottledRate += why.ThrottledRate
	}
	s.mu.Unlock()
}

func (s *Sim) countErr(u *User) {
	s.mu.Lock()
	s.statsFor(u).Errors++
	s.total.Errors++
	s.mu.Unlock()
}

// InjectFaults sets (or, with a zero value, clears) fault injection.
func (s *Sim) InjectFaults(f FaultOptions) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.faults = f
}

// Stats returns the counters of one mailbox; an empty upn gives the totals.
func (s *Sim) Stats(upn string) Stats {
	s.mu.Lock()
	defer s.mu.Unlock()
	if upn == "" {
		return s.total
	}
	if st := s.stats[strings.ToLower(upn)]; st != nil {
		return *st
	}
	return Stats{}
}

// InFlight is how many requests of the app hold a concurrency slot on the mailbox.
func (s *Sim) InFlight(clientID, upn string) int {
	t := s.thr
	t.mu.Lock()
	defer t.mu.Unlock()
	if b := t.keys[clientID+"|"+strings.ToLower(upn)]; b != nil {
		return b.inflight
	}
	return 0
}

// holdRequests (tests) makes admitted Graph requests wait until the
// returned func is called.
func (s *Sim) holdRequests() func() {
	s.mu.Lock()
	ch := make(chan struct{})
	s.gate = ch
	s.mu.Unlock()
	return func() {
		s.mu.Lock()
		if s.gate == ch {
			close(ch)
			s.gate = nil
		}
		s.mu.Unlock()
	}
}
