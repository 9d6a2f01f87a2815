package bridge

import (
	"context"
	"sync"
	"time"

	"github.com/rs/zerolog"

	"github.com/maildesk/maildesk/bridge/odoo"
	"github.com/maildesk/maildesk/store"
)

// LiveConfig configures Live.
type LiveConfig struct {
	// Store gives the mailbox (its Odoo id) and the Odoo settings.
	Store interface {
		MailboxReader
		Settings() (store.Settings, error)
	}
	Odoo OdooFactory // DefaultOdooFactory when nil
	Log  zerolog.Logger
	// Window is the least time between two notices of one mailbox (default
	// 1.5 s): the first change is told at once, later ones within the window
	// are summed into one notice at its end — so new mail is told at most
	// 1.5 s after its round, within the inbox's 2 s budget, and a burst of
	// mail costs Odoo one call per mailbox per window.
	Window time.Duration
	// CallTimeout bounds one maildesk_notify call (default 10 s).
	CallTimeout time.Duration
	Now         func() time.Time
}

// Live tells Odoo when a mailbox's inbox changed, so the inboxes open in
// Odoo update without polling: the syncer calls InboxChanged after a delta
// round changed the inbox (new mail, read flags, moves), and Live sends
// maildesk_notify with {"kind": "new_mail", "mailbox", "email", "folder":
// "inbox", "count": n, "unread": u} — or kind "unread" when no mail was new
// — at most once per mailbox per Window. Backfilled mail never reaches it.
// Notices are best effort and kept in memory only: a notice Odoo could not
// take is tried again with the mailbox's next one; the mail itself is
// delivered by the pusher whatever happens here.
type Live struct {
	cfg  LiveConfig
	mu   sync.Mutex
	due  map[string]int       // mailbox → new mail not told yet (0: read flags or moves only)
	last map[string]time.Time // mailbox → when its last notice went
	wake chan struct{}

	client    OdooAPI
	clientFor time.Time
}

// NewLive builds a Live; Run sends its notices.
func NewLive(cfg LiveConfig) *Live {
	if cfg.Odoo == nil {
		cfg.Odoo = DefaultOdooFactory
	}
	if cfg.Window <= 0 {
		cfg.Window = 1500 * time.Millisecond
	}
	if cfg.CallTimeout <= 0 {
		cfg.CallTimeout = 10 * time.Second
	}
	if cfg.Now == nil {
		cfg.Now = time.Now
	}
	return &Live{cfg: cfg, due: map[string]int{}, last: map[string]time.Time{}, wake: make(chan struct{}, 1)}
}

// InboxChanged records a change of a mailbox's inbox with newMail new
// messages; it never blocks (SyncConfig.OnInbox).
func (l *Live) InboxChanged(mailboxID string, newMail int) {
	l.mu.Lock()
	l.due[mailboxID] += max(newMail, 0)
	l.mu.Unlock()
	select {
	case l.wake <- struct{}{}:
	default:
	}
}

// Run sends due notices until ctx ends.
func (l *Live) Run(ctx context.Context) {
	timer := time.NewTimer(time.Hour)
	defer timer.Stop()
	for {
		wait := l.flush(ctx)
		if !timer.Stop() {
			select {
			case <-timer.C:
			default:
			}
		}
		timer.Reset(wait)
		select {
		case <-ctx.Done():
			return
		case <-l.wake:
		case <-timer.C:
		}
	}
}

// flush sends the notices whose window has passed and returns how long
// until the next one is due (an hour when none waits).
func (l *Live) flush(ctx context.Context) time.Duration {
	now := l.cfg.Now()
	wait := time.Hour
	send := map[string]int{}
	l.mu.Lock()
	for id, n := range l.due {
		if next := l.last[id].Add(l.cfg.Window); now.Before(next) {
			wait = min(wait, next.Sub(now))
			continue
		}
		send[id] = n
		delete(l.due, id)
		l.last[id] = now
	}
	l.mu.Unlock()
	for id, n := range send {
		if err := l.notify(ctx, id, n); err != nil {
			l.cfg.Log.Warn().Err(err).Str("mailbox", id).Msg("live: Odoo did not take the inbox notice; told with the next one")
			l.mu.Lock()
			l.due[id] += n
			l.mu.Unlock()
			wait = min(wait, l.cfg.Window)
		}
	}
	return wait
}

func (l *Live) notify(ctx context.Context, mailboxID string, newMail int) error {
	m, err := l.cfg.Store.Mailbox(mailboxID)
	if err != nil || m.OdooID == 0 {
		return nil // deleted, or not linked to an Odoo record: nobody to tell
	}
	client, err := l.odooClient()
	if err != nil {
		return err
	}
	kind := "new_mail"
	if newMail == 0 {
		kind = "unread"
	}
	n := odoo.Notice{Kind: kind, Mailbox: m.ID, Email: m.Email,
		Extra: map[string]any{"folder": "inbox", "count": newMail, "unread": m.Counts.Unread}}
	cctx, cancel := context.WithTimeout(ctx, l.cfg.CallTimeout)
	defer cancel()
	return client.Notify(cctx, m.OdooID, []odoo.Notice{n})
}

func (l *Live) odooClient() (OdooAPI, error) {
	st, err := l.cfg.Store.Settings()
	if err != nil {
		return nil, err
	}
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.client != nil && l.clientFor.Equal(st.UpdatedAt) {
		return l.client, nil
	}
	c, err := l.cfg.Odoo(st.Odoo)
	if err != nil {
		return nil, err
	}
	l.client, l.clientFor = c, st.UpdatedAt
	return c, nil
}
