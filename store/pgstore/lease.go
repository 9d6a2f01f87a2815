package pgstore

import (
	"context"
	"crypto/rand"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"os"
	"sort"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/rs/zerolog"

	"github.com/maildesk/maildesk/store"
)

// Several sidecars on one database share the mailboxes through leases:
//
//   - nodes: one row per running sidecar, its heartbeat and until when it
//     counts as alive (heartbeat + TTL, the database's clock).
//   - leases: one row per mailbox: the holder, until when the lease holds,
//     and a fencing epoch that grows each time the mailbox changes hands.
//
// Every node renews its leases and its heartbeat every TTL/5 in one
// transaction, and claims free or expired leases up to its fair share
// (ceil(mailboxes / live nodes)); a node holding more than its share
// releases the excess (a node joined). A node that stops renewing (killed,
// partitioned) loses its leases when they expire; the others claim them.
//
// Fencing: the stores the syncer and the pusher write through (Fence) check
// in the same transaction as the write that the lease row still names this
// node with the epoch this node claimed it under, and has not expired. A
// node that lost a lease cannot commit for that mailbox (store.ErrNotHolder).
//
// A node also knows locally until when its leases hold: the start of its
// last successful renewal plus 2/3 of the TTL, always before the expiry the
// database computed. Past that (PostgreSQL unreachable), Holds answers false
// and the change hooks fire, so the node stops working its mailboxes before
// another node may claim them.
const leaseMigration = `CREATE TABLE nodes (id text PRIMARY KEY, started_at timestamptz NOT NULL,
		heartbeat timestamptz NOT NULL, expires_at timestamptz NOT NULL);
	CREATE TABLE leases (mailbox_id text PRIMARY KEY, holder text NOT NULL DEFAULT '', epoch bigint NOT NULL DEFAULT 0,
		expires_at timestamptz NOT NULL DEFAULT '-infinity', acquired_at timestamptz);
	CREATE INDEX leases_holder ON leases (holder, expires_at);`

// LeaseOptions configure a node's leases.
type LeaseOptions struct {
	// NodeID names this sidecar in the nodes and leases tables (default:
	// host name and a random suffix).
	NodeID string
	// TTL is how long a lease holds without renewal (default 15 s): a node
	// that stops renewing loses its mailboxes after it.
	TTL time.Duration
	Log zerolog.Logger
}

// Leases is this node's membership and mailbox leases. Run keeps them.
type Leases struct {
	s       *Store
	id      string
	ttl     time.Duration
	log     zerolog.Logger
	channel string

	mu       sync.Mutex
	held     map[string]int64 // mailbox id → epoch
	deadline time.Time        // local: the held leases count until then
	expire   *time.Timer
	onChange []func()
	onMsg    []func(kind, mailboxID string)
	lastErr  string
	lastOK   time.Time

	acquired, lost, released atomic.Int64
	queued                   chan struct{}
}

// NewLeases prepares this node's leases on s; Run starts them.
func (s *Store) NewLeases(o LeaseOptions) (*Leases, error) {
	if o.TTL <= 0 {
		o.TTL = 15 * time.Second
	}
	if o.TTL < 500*time.Millisecond {
		return nil, fmt.Errorf("pgstore: a lease TTL of %s is too short (at least 500ms; 15s is the default)", o.TTL)
	}
	if o.NodeID == "" {
		host, _ := os.Hostname()
		b := make([]byte, 3)
		_, _ = rand.Read(b)
		o.NodeID = host + "-" + hex.EncodeToString(b)
	}
	// NOTIFY channels are per database; the schema goes into the name so
	// two MailDesk schemas in one database do not hear each other.
	var where string
	if err := s.pool.QueryRow(bg, "SELECT current_database() || '.' || current_schema()").Scan(&where); err != nil {
		return nil, fmt.Errorf("pgstore: leases: %w", err)
	}
	sum := sha256.Sum256([]byte(where))
	return &Leases{s: s, id: o.NodeID, ttl: o.TTL, log: o.Log, channel: "maildesk_" + hex.EncodeToString(sum[:8]),
		held: map[string]int64{}, queued: make(chan struct{}, 1)}, nil
}

// NodeID is this node's name.
func (l *Leases) NodeID() string { return l.id }

// TTL is how long a lease holds without renewal.
func (l *Leases) TTL() time.Duration { return l.ttl }

// Holds reports whether this node holds the mailbox's lease now, and under
// which epoch.
func (l *Leases) Holds(mailboxID string) (int64, bool) {
	l.mu.Lock()
	defer l.mu.Unlock()
	e, ok := l.held[mailboxID]
	if !ok || !time.Now().Before(l.deadline) {
		return 0, false
	}
	return e, true
}

// Held is how many leases this node holds now.
func (l *Leases) Held() int {
	l.mu.Lock()
	defer l.mu.Unlock()
	if !time.Now().Before(l.deadline) {
		return 0
	}
	return len(l.held)
}

// OnChange registers fn, run after this node gained or lost leases; it must
// not block.
func (l *Leases) OnChange(fn func()) {
	l.mu.Lock()
	defer l.mu.Unlock()
	l.onChange = append(l.onChange, fn)
}

// OnMessage registers fn for messages other nodes send (Send); it must not
// block.
func (l *Leases) OnMessage(fn func(kind, mailboxID string)) {
	l.mu.Lock()
	defer l.mu.Unlock()
	l.onMsg = append(l.onMsg, fn)
}

func (l *Leases) changed() {
	l.mu.Lock()
	fns := l.onChange
	l.mu.Unlock()
	for _, fn := range fns {
		fn()
	}
}

// LeaseCounts are this node's lease counters since start.
type LeaseCounts struct {
	Acquired, Lost, Released int64
}

// Counts returns the acquisitions, losses (expired or taken while this
// node held them) and releases (rebalancing, shutdown) so far.
func (l *Leases) Counts() LeaseCounts {
	return LeaseCounts{Acquired: l.acquired.Load(), Lost: l.lost.Load(), Released: l.released.Load()}
}

// LastError is the last renewal's error ("" after a good one) and when
// the last good one was.
func (l *Leases) LastError() (string, time.Time) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.lastErr, l.lastOK
}

// Run keeps the heartbeat and the leases until ctx ends, then releases
// them so the other nodes take over at once.
func (l *Leases) Run(ctx context.Context) {
	every := l.ttl / 5
	listenDone := make(chan struct{})
	go func() { defer close(listenDone); l.listen(ctx) }()
	sendDone := make(chan struct{})
	go func() { defer close(sendDone); l.sendQueued(ctx) }()
	t := time.NewTimer(0)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			l.shutdown()
			<-listenDone
			<-sendDone
			return
		case <-t.C:
		}
		if err := l.Renew(ctx); err != nil && ctx.Err() == nil {
			l.mu.Lock()
			l.lastErr = err.Error()
			l.mu.Unlock()
			l.log.Warn().Err(err).Str("node", l.id).Msg("leases: renewal failed; this node stops working its mailboxes when its leases run out")
		}
		t.Reset(every)
	}
}

type leaseRow struct {
	id    string
	epoch int64
}

func collectLeases(rows pgx.Rows) ([]leaseRow, error) {
	return pgx.CollectRows(rows, func(r pgx.CollectableRow) (leaseRow, error) {
		var lr leaseRow
		err := r.Scan(&lr.id, &lr.epoch)
		return lr, err
	})
}

// Renew is one renewal, as Run does every TTL/5: heartbeat, renew, claim up to the fair share or
// release the excess.
func (l *Leases) Renew(ctx context.Context) error {
	sent := time.Now()
	ctx, cancel := context.WithTimeout(ctx, l.ttl/2)
	defer cancel()
	ttl := l.ttl.Seconds()
	var renewed, claimed []leaseRow
	var share int
	err := pgx.BeginFunc(ctx, l.s.pool, func(tx pgx.Tx) error {
		renewed, claimed = nil, nil
		if _, err := tx.Exec(ctx, `INSERT INTO nodes (id, started_at, heartbeat, expires_at) VALUES ($1, now(), now(), now() + make_interval(secs => $2))
			ON CONFLICT (id) DO UPDATE SET heartbeat = now(), expires_at = EXCLUDED.expires_at`, l.id, ttl); err != nil {
			return err
		}
		// One lease row per mailbox.
		if _, err := tx.Exec(ctx, `INSERT INTO leases (mailbox_id) SELECT m.id FROM mailboxes m
			WHERE NOT EXISTS (SELECT 1 FROM leases l WHERE l.mailbox_id = m.id) ON CONFLICT DO NOTHING`); err != nil {
			return err
		}
		if _, err := tx.Exec(ctx, `DELETE FROM leases l WHERE NOT EXISTS (SELECT 1 FROM mailboxes m WHERE m.id = l.mailbox_id)`); err != nil {
			return err
		}
		if _, err := tx.Exec(ctx, `DELETE FROM nodes WHERE expires_at < now() - make_interval(secs => $1)`, 20*ttl); err != nil {
			return err
		}
		rows, err := tx.Query(ctx, `UPDATE leases SET expires_at = now() + make_interval(secs => $2)
			WHERE holder = $1 AND expires_at > now() RETURNING mailbox_id, epoch`, l.id, ttl)
		if err != nil {
			return err
		}
		if renewed, err = collectLeases(rows); err != nil {
			return err
		}
		var live, total int
		if err := tx.QueryRow(ctx, `SELECT (SELECT count(*) FROM nodes WHERE expires_at > now()), (SELECT count(*) FROM leases)`).Scan(&live, &total); err != nil {
			return err
		}
		share = (total + max(live, 1) - 1) / max(live, 1)
		if n := share - len(renewed); n > 0 {
			rows, err := tx.Query(ctx, `UPDATE leases SET holder = $1, epoch = epoch + 1, expires_at = now() + make_interval(secs => $2), acquired_at = now()
				WHERE mailbox_id IN (SELECT mailbox_id FROM leases WHERE expires_at <= now() ORDER BY mailbox_id LIMIT $3 FOR UPDATE SKIP LOCKED)
				RETURNING mailbox_id, epoch`, l.id, ttl, n)
			if err != nil {
				return err
			}
			if claimed, err = collectLeases(rows); err != nil {
				return err
			}
		}
		return nil
	})
	if err != nil {
		return fmt.Errorf("pgstore: renew leases of node %s: %w", l.id, err)
	}
	held := make(map[string]int64, len(renewed)+len(claimed))
	for _, r := range renewed {
		held[r.id] = r.epoch
	}
	for _, r := range claimed {
		held[r.id] = r.epoch
	}
	// The excess over the fair share goes back (a node joined): dropped
	// here first, so this node's writes for them are fenced from now on.
	var release []string
	if extra := len(held) - share; extra > 0 {
		ids := make([]string, 0, len(held))
		for id := range held {
			ids = append(ids, id)
		}
		sort.Strings(ids)
		release = ids[len(ids)-extra:]
		for _, id := range release {
			delete(held, id)
		}
	}
	l.mu.Lock()
	lost := 0
	for id, e := range l.held {
		if ne, ok := held[id]; !ok || ne != e {
			if !contains(release, id) {
				lost++
			}
		}
	}
	gained := len(claimed)
	changed := lost > 0 || gained > 0 || len(release) > 0 || !time.Now().Before(l.deadline) && len(held) > 0
	l.held = held
	l.deadline = sent.Add(l.ttl * 2 / 3)
	l.lastErr, l.lastOK = "", time.Now()
	if l.expire != nil {
		l.expire.Stop()
	}
	l.expire = time.AfterFunc(time.Until(l.deadline), l.expired)
	l.mu.Unlock()
	l.acquired.Add(int64(gained))
	l.lost.Add(int64(lost))
	if len(release) > 0 {
		if _, err := l.s.pool.Exec(ctx, `UPDATE leases SET holder = '', expires_at = '-infinity' WHERE holder = $1 AND mailbox_id = ANY($2)`, l.id, release); err != nil {
			// They expire by themselves within the TTL.
			l.log.Warn().Err(err).Int("leases", len(release)).Msg("leases: release the excess")
		}
		l.released.Add(int64(len(release)))
	}
	if changed {
		l.log.Info().Str("node", l.id).Int("held", len(held)).Int("claimed", gained).Int("lost", lost).Int("released", len(release)).Int("share", share).Msg("leases changed")
		l.changed()
	}
	return nil
}

func contains(ids []string, id string) bool {
	for _, x := range ids {
		if x == id {
			return true
		}
	}
	return false
}

// expired runs when the local deadline passed without a renewal: every
// lease counts as lost from now on.
func (l *Leases) expired() {
	l.mu.Lock()
	if time.Now().Before(l.deadline) || len(l.held) == 0 {
		l.mu.Unlock()
		return
	}
	n := len(l.held)
	l.held = map[string]int64{}
	l.mu.Unlock()
	l.lost.Add(int64(n))
	l.log.Warn().Str("node", l.id).Int("leases", n).Msg("leases: not renewed in time (PostgreSQL unreachable?); this node stops working its mailboxes")
	l.changed()
}

// shutdown hands every lease back and leaves the node table, so the
// others take over without waiting for the TTL.
func (l *Leases) shutdown() {
	l.mu.Lock()
	n := len(l.held)
	l.held = map[string]int64{}
	if l.expire != nil {
		l.expire.Stop()
	}
	l.mu.Unlock()
	if n > 0 {
		l.changed()
	}
	ctx, cancel := context.WithTimeout(bg, 5*time.Second)
	defer cancel()
	err := pgx.BeginFunc(ctx, l.s.pool, func(tx pgx.Tx) error {
		if _, err := tx.Exec(ctx, `UPDATE leases SET holder = '', expires_at = '-infinity' WHERE holder = $1`, l.id); err != nil {
			return err
		}
		_, err := tx.Exec(ctx, `DELETE FROM nodes WHERE id = $1`, l.id)
		return err
	})
	if err != nil {
		l.log.Warn().Err(err).Msg("leases: release at shutdown; they expire within the TTL")
		return
	}
	l.released.Add(int64(n))
}

// ---- messages between nodes (LISTEN/NOTIFY) ----

// Send tells the other nodes something about a mailbox ("kick": sync it
// now, its holder does). It reaches the nodes listening now; a node that
// misses it finds the same in the database later (due times, outbox).
func (l *Leases) Send(kind, mailboxID string) error {
	ctx, cancel := context.WithTimeout(bg, 5*time.Second)
	defer cancel()
	if _, err := l.s.pool.Exec(ctx, "SELECT pg_notify($1, $2)", l.channel, l.id+"|"+kind+"|"+mailboxID); err != nil {
		return fmt.Errorf("pgstore: notify the other nodes: %w", err)
	}
	return nil
}

// Queued tells the other nodes, at most four times a second, that outbox
// items were queued here (an Odoo request on this node may queue items of
// a mailbox another node delivers).
func (l *Leases) Queued() {
	select {
	case l.queued <- struct{}{}:
	default:
	}
}

func (l *Leases) sendQueued(ctx context.Context) {
	for {
		select {
		case <-ctx.Done():
			return
		case <-l.queued:
		}
		if err := l.Send("queued", ""); err != nil {
			l.log.Debug().Err(err).Msg("leases: notify queued")
		}
		select {
		case <-ctx.Done():
			return
		case <-time.After(250 * time.Millisecond):
		}
	}
}

// listen receives the other nodes' messages on a connection of its own,
// reconnecting after failures; after a reconnection the change hooks run
// (a message may have been missed: the scheduler reads due times again).
func (l *Leases) listen(ctx context.Context) {
	first := true
	for ctx.Err() == nil {
		err := l.listenOnce(ctx, first)
		first = false
		if ctx.Err() != nil {
			return
		}
		l.log.Debug().Err(err).Msg("leases: listen connection lost; reconnecting")
		select {
		case <-ctx.Done():
			return
		case <-time.After(time.Second):
		}
	}
}

func (l *Leases) listenOnce(ctx context.Context, first bool) error {
	cctx, cancel := context.WithTimeout(ctx, 10*time.Second)
	conn, err := pgx.ConnectConfig(cctx, l.s.pool.Config().ConnConfig.Copy())
	cancel()
	if err != nil {
		return err
	}
	defer conn.Close(bg)
	if _, err := conn.Exec(ctx, "LISTEN "+pgx.Identifier{l.channel}.Sanitize()); err != nil {
		return err
	}
	if !first {
		l.changed()
	}
	for {
		n, err := conn.WaitForNotification(ctx)
		if err != nil {
			return err
		}
		parts := strings.SplitN(n.Payload, "|", 3)
		if len(parts) != 3 || parts[0] == l.id {
			continue
		}
		l.mu.Lock()
		fns := l.onMsg
		l.mu.Unlock()
		for _, fn := range fns {
			fn(parts[1], parts[2])
		}
	}
}

// ---- fencing ----

// fence checks, inside a write's transaction, that this node may write for
// a mailbox; nil means no fencing (one sidecar).
type fence func(tx pgx.Tx, mailboxID string) error

func (f fence) check(tx pgx.Tx, mailboxID string) error {
	if f == nil {
		return nil
	}
	return f(tx, mailboxID)
}

// check is the fence: the lease row still names this node, with the epoch
// this node claimed it under, unexpired. FOR SHARE keeps another node's
// claim of the row waiting until this write committed.
func (l *Leases) check(tx pgx.Tx, mailboxID string) error {
	epoch, ok := l.Holds(mailboxID)
	if !ok {
		return fmt.Errorf("mailbox %s: %w", mailboxID, store.ErrNotHolder)
	}
	var e int64
	err := tx.QueryRow(bg, `SELECT epoch FROM leases WHERE mailbox_id = $1 AND holder = $2 AND expires_at > clock_timestamp() FOR SHARE`, mailboxID, l.id).Scan(&e)
	if errors.Is(err, pgx.ErrNoRows) || err == nil && e != epoch {
		return fmt.Errorf("mailbox %s (epoch %d): %w", mailboxID, epoch, store.ErrNotHolder)
	}
	return err
}

// Fenced is the store as this node's syncer, scheduler and pusher see it:
// the same database, but every commit that advances a mailbox (a page with
// its cursor, a backfill request applied, outbox acks, the mailbox's
// status, requeued mail) first checks this node's lease in the same
// transaction. Reads and everything else are the Store's.
type Fenced struct {
	*Store
	l *Leases
}

// Fence returns the store fenced by this node's leases.
func (l *Leases) Fence() *Fenced { return &Fenced{Store: l.s, l: l} }

// ApplyPage is Store.ApplyPage, fenced.
func (f *Fenced) ApplyPage(mailboxID string, p store.Page) (store.PageResult, error) {
	return f.applyPage(mailboxID, p, f.l.check)
}

// PutCursor is Store.PutCursor, fenced.
func (f *Fenced) PutCursor(mailboxID string, c store.Cursor) error {
	_, err := f.applyPage(mailboxID, store.Page{Folder: c.Folder, Cursor: &c}, f.l.check)
	return err
}

// ApplyBackfillRequest is Store.ApplyBackfillRequest, fenced.
func (f *Fenced) ApplyBackfillRequest(mailboxID string, seq int64, cursor func(c *store.Cursor), mailbox func(m *store.MailboxStatus)) (bool, error) {
	return f.applyBackfillRequest(mailboxID, seq, cursor, mailbox, f.l.check)
}

// AckOutbox is Store.AckOutbox, fenced per mailbox of the acks.
func (f *Fenced) AckOutbox(acks []store.OutboxAck, failLimit int) error {
	return f.ackOutbox(acks, failLimit, f.l.check)
}

// UpdateMailboxStatus is Store.UpdateMailboxStatus, fenced. (Config
// writes — RPC, any node — are not fenced.)
func (f *Fenced) UpdateMailboxStatus(id string, fn func(st *store.MailboxStatus, c store.MailboxConfig) (*store.AuditEntry, error)) (store.Mailbox, error) {
	return f.updateMailboxStatus(id, fn, f.l.check)
}

// Requeue is Store.Requeue, fenced.
func (f *Fenced) Requeue(mailboxID string, items []store.OutboxItem, from []string) (int, error) {
	return f.requeue(mailboxID, items, from, f.l.check)
}

// ---- what the nodes and leases look like ----

// Node is one sidecar in the nodes table.
type Node struct {
	ID        string    `json:"id"`
	Alive     bool      `json:"alive"`
	Heartbeat time.Time `json:"heartbeat"`
	Leases    int       `json:"leases"` // unexpired leases it holds
}

// Membership lists the nodes (alive first, then by id) and the number of
// mailboxes without an unexpired lease.
func (s *Store) Membership(ctx context.Context) (nodes []Node, unheld int, err error) {
	rows, err := s.pool.Query(ctx, `SELECT n.id, n.expires_at > now(), n.heartbeat,
		(SELECT count(*) FROM leases l WHERE l.holder = n.id AND l.expires_at > now())
		FROM nodes n ORDER BY 2 DESC, 1`)
	if err != nil {
		return nil, 0, fmt.Errorf("pgstore: nodes: %w", err)
	}
	nodes, err = pgx.CollectRows(rows, func(r pgx.CollectableRow) (Node, error) {
		var n Node
		err := r.Scan(&n.ID, &n.Alive, &n.Heartbeat, &n.Leases)
		return n, err
	})
	if err != nil {
		return nil, 0, fmt.Errorf("pgstore: nodes: %w", err)
	}
	if err := s.pool.QueryRow(ctx, `SELECT count(*) FROM leases WHERE expires_at <= now()`).Scan(&unheld); err != nil {
		return nil, 0, fmt.Errorf("pgstore: leases: %w", err)
	}
	return nodes, unheld, nil
}
