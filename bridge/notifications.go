package bridge

import (
	"context"
	"crypto/rand"
	"crypto/subtle"
	"encoding/base64"
	"errors"
	"io"
	"net/http"
	"strings"
	"sync"
	"time"

	"github.com/rs/zerolog"

	"github.com/maildesk/maildesk/graphsync"
	"github.com/maildesk/maildesk/store"
)

// NotifierConfig builds a Notifier.
type NotifierConfig struct {
	Store Store
	Graph *graphsync.Client
	// Kick makes a mailbox due now (Scheduler.Kick).
	Kick func(mailboxID string) error
	// NotifyURL and LifecycleURL are the public URLs of the handlers
	// (e.g. https://maildesk.example.com/graph/notify and /graph/lifecycle).
	NotifyURL, LifecycleURL string
	// Life is how long a subscription is asked for (default 2 days; Graph's
	// maximum for messages is 4,230 minutes). RenewBefore renews a
	// subscription this long before it expires (default Life/2).
	Life, RenewBefore time.Duration
	// Every is how often subscriptions are checked (default 1 min).
	Every time.Duration
	Log   zerolog.Logger
	Now   func() time.Time

	// Owner says which mailboxes this node subscribes to (SoleOwner when
	// nil): the holder of a mailbox's lease keeps its subscription.
	Owner Owner
}

// Notifier keeps change-notification subscriptions for personal mailboxes
// (delegated tokens cannot subscribe to shared mailboxes: those poll) and
// turns notifications into scheduler kicks. A notification never carries
// data into the outbox; it only triggers a delta round.
//
// Subscriptions are kept in memory: after a restart they are created again
// and the old ones expire on their own (their notifications carry a
// clientState this process does not know, so they are ignored).
type Notifier struct {
	cfg NotifierConfig

	mu    sync.Mutex
	subs  map[string]*liveSub // by subscription id
	byBox map[string]*liveSub // by mailbox id
}

type liveSub struct {
	mailboxID   string
	id          string
	clientState string
	expires     time.Time
}

// NewNotifier checks cfg and builds a Notifier.
func NewNotifier(cfg NotifierConfig) (*Notifier, error) {
	if cfg.Store == nil || cfg.Graph == nil || cfg.Kick == nil || cfg.NotifyURL == "" {
		return nil, errors.New("bridge: notifier needs a store, a Graph client, a kick func and a notification URL")
	}
	if cfg.Life <= 0 {
		cfg.Life = 48 * time.Hour
	}
	if cfg.RenewBefore <= 0 {
		cfg.RenewBefore = cfg.Life / 2
	}
	if cfg.Every <= 0 {
		cfg.Every = time.Minute
	}
	if cfg.Now == nil {
		cfg.Now = time.Now
	}
	return &Notifier{cfg: cfg, subs: map[string]*liveSub{}, byBox: map[string]*liveSub{}}, nil
}

// Covered reports whether a mailbox has a live subscription (the scheduler
// then polls it less often).
func (n *Notifier) Covered(mailboxID string) bool {
	n.mu.Lock()
	defer n.mu.Unlock()
	s := n.byBox[mailboxID]
	return s != nil && n.cfg.Now().Before(s.expires)
}

// Run checks subscriptions until ctx is cancelled.
func (n *Notifier) Run(ctx context.Context) {
	t := time.NewTicker(n.cfg.Every)
	defer t.Stop()
	for {
		n.Reconcile(ctx)
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
	}
}

// Reconcile creates missing subscriptions, renews expiring ones and drops
// those of mailboxes that no longer sync.
func (n *Notifier) Reconcile(ctx context.Context) {
	mbs, err := n.cfg.Store.Mailboxes()
	if err != nil {
		n.cfg.Log.Error().Err(err).Msg("notifier: list mailboxes")
		return
	}
	want := map[string]bool{}
	for _, m := range mbs {
		if m.Kind == "shared" || !Syncable(m.State) || !holds(n.cfg.Owner, m.ID) {
			continue // the holder of the mailbox's lease subscribes
		}
		want[m.ID] = true
		if err := n.ensure(ctx, m, false); err != nil {
			n.cfg.Log.Warn().Err(err).Str("mailbox", m.ID).Msg("notifier: subscription")
		}
	}
	n.mu.Lock()
	var drop []*liveSub
	for id, s := range n.byBox {
		if !want[id] {
			drop = append(drop, s)
		}
	}
	n.mu.Unlock()
	for _, s := range drop {
		n.forget(s)
		if m, err := n.cfg.Store.Mailbox(s.mailboxID); err == nil {
			if gm, err := n.cfg.Graph.Mailbox(m.ID, m.Email); err == nil {
				cctx, cancel := context.WithTimeout(ctx, 30*time.Second)
				_ = gm.DeleteSubscription(cctx, s.id)
				cancel()
			}
		}
	}
}

func (n *Notifier) forget(s *liveSub) {
	n.mu.Lock()
	defer n.mu.Unlock()
	delete(n.subs, s.id)
	if n.byBox[s.mailboxID] == s {
		delete(n.byBox, s.mailboxID)
	}
}

// ensure creates or renews the subscription of a mailbox; force renews
// even when it is far from expiring.
func (n *Notifier) ensure(ctx context.Context, m store.Mailbox, force bool) error {
	now := n.cfg.Now()
	n.mu.Lock()
	cur := n.byBox[m.ID]
	n.mu.Unlock()
	if cur != nil && !force && cur.expires.Sub(now) > n.cfg.RenewBefore {
		return nil
	}
	gm, err := n.cfg.Graph.Mailbox(m.ID, m.Email)
	if err != nil {
		return err
	}
	ctx, cancel := context.WithTimeout(ctx, 30*time.Second)
	defer cancel()
	if cur != nil && now.Before(cur.expires) {
		sub, err := gm.RenewSubscription(ctx, cur.id, now.Add(n.cfg.Life))
		if err == nil {
			n.mu.Lock()
			cur.expires = sub.Expires
			n.mu.Unlock()
			return nil
		}
		if !graphsync.IsNotFound(err) {
			return err
		}
		n.forget(cur) // gone at Graph: create a new one
	}
	return n.create(ctx, m, gm)
}

func (n *Notifier) create(ctx context.Context, m store.Mailbox, gm *graphsync.Mailbox) error {
	b := make([]byte, 32)
	if _, err := rand.Read(b); err != nil {
		return err
	}
	state := base64.RawURLEncoding.EncodeToString(b)
	sub, err := gm.CreateSubscription(ctx, graphsync.SubscriptionOptions{NotificationURL: n.cfg.NotifyURL,
		LifecycleURL: n.cfg.LifecycleURL, ClientState: state, Expires: n.cfg.Now().Add(n.cfg.Life)})
	if err != nil {
		return err
	}
	ls := &liveSub{mailboxID: m.ID, id: sub.ID, clientState: state, expires: sub.Expires}
	n.mu.Lock()
	if old := n.byBox[m.ID]; old != nil {
		delete(n.subs, old.id)
	}
	n.subs[sub.ID] = ls
	n.byBox[m.ID] = ls
	n.mu.Unlock()
	return nil
}

// lookup finds the subscription of a notification and checks its clientState.
func (n *Notifier) lookup(no graphsync.Notification) *liveSub {
	n.mu.Lock()
	defer n.mu.Unlock()
	s := n.subs[no.SubscriptionID]
	if s == nil || subtle.ConstantTimeCompare([]byte(s.clientState), []byte(no.ClientState)) != 1 {
		return nil
	}
	cp := *s
	return &cp
}

// validation answers Graph's handshake: 200 text/plain with the token.
func validation(w http.ResponseWriter, r *http.Request) bool {
	tok := r.URL.Query().Get("validationToken")
	if tok == "" {
		return false
	}
	w.Header().Set("Content-Type", "text/plain; charset=utf-8")
	w.WriteHeader(http.StatusOK)
	_, _ = io.WriteString(w, tok)
	return true
}

func readNotifications(w http.ResponseWriter, r *http.Request) ([]graphsync.Notification, bool) {
	body, err := io.ReadAll(http.MaxBytesReader(w, r.Body, 1<<20))
	if err != nil {
		http.Error(w, "body too large or unreadable", http.StatusRequestEntityTooLarge)
		return nil, false
	}
	ns, err := graphsync.ParseNotifications(body)
	if err != nil {
		http.Error(w, "bad notification body", http.StatusBadRequest)
		return nil, false
	}
	return ns, true
}

// NotifyHandler serves the public change-notification URL. Notifications
// with an unknown subscription or a wrong clientState are ignored; good ones
// kick the mailbox. It answers 202 at once (Graph wants 2xx within 3 s).
func (n *Notifier) NotifyHandler() http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if validation(w, r) {
			return
		}
		ns, ok := readNotifications(w, r)
		if !ok {
			return
		}
		kicked := map[string]bool{}
		for _, no := range ns {
			s := n.lookup(no)
			if s == nil {
				n.cfg.Log.Warn().Str("subscription", no.SubscriptionID).Msg("notifier: notification with an unknown subscription or a wrong clientState ignored")
				continue
			}
			if !kicked[s.mailboxID] {
				kicked[s.mailboxID] = true
				if err := n.cfg.Kick(s.mailboxID); err != nil {
					n.cfg.Log.Error().Err(err).Str("mailbox", s.mailboxID).Msg("notifier: kick")
				}
			}
		}
		w.WriteHeader(http.StatusAccepted)
	})
}

// LifecycleHandler serves the lifecycle URL: reauthorizationRequired renews
// the subscription, subscriptionRemoved creates it again and resyncs,
// missed runs a delta round.
func (n *Notifier) LifecycleHandler() http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if validation(w, r) {
			return
		}
		ns, ok := readNotifications(w, r)
		if !ok {
			return
		}
		w.WriteHeader(http.StatusAccepted)
		for _, no := range ns {
			s := n.lookup(no)
			if s == nil {
				continue
			}
			m, err := n.cfg.Store.Mailbox(s.mailboxID)
			if err != nil {
				continue
			}
			switch strings.ToLower(no.LifecycleEvent) {
			case "reauthorizationrequired":
				go n.renewSoon(m, true)
			case "subscriptionremoved":
				n.mu.Lock()
				if cur := n.subs[s.id]; cur != nil {
					delete(n.subs, s.id)
					if n.byBox[s.mailboxID] == cur {
						delete(n.byBox, s.mailboxID)
					}
				}
				n.mu.Unlock()
				go n.renewSoon(m, false)
				_ = n.cfg.Kick(m.ID)
			default: // missed, and anything new: catch up with a delta round
				_ = n.cfg.Kick(m.ID)
			}
		}
	})
}

// renewSoon runs ensure in the background (the handler must answer fast).
func (n *Notifier) renewSoon(m store.Mailbox, force bool) {
	defer func() { _ = recover() }()
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	if err := n.ensure(ctx, m, force); err != nil {
		n.cfg.Log.Warn().Err(err).Str("mailbox", m.ID).Msg("notifier: renew after lifecycle event")
	}
}
