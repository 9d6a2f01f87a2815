package bridge

import (
	"context"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"html"
	"strings"
	"sync"
	"time"

	"github.com/rs/zerolog"

	"github.com/maildesk/maildesk/bridge/odoo"
	"github.com/maildesk/maildesk/graphsync"
	"github.com/maildesk/maildesk/store"
)

// SyncConfig builds a Syncer. Zero fields take defaults.
type SyncConfig struct {
	Store CursorStore
	Graph *graphsync.Client
	Log   zerolog.Logger
	// Metrics may be nil.
	Metrics *SyncMetrics
	// OnReauth is called when the mailbox's tokens are refused for good
	// (a *graphsync.ReauthError); syncing of that mailbox stops. Wire it to
	// Connector.MarkReauth. Nil: the mailbox is moved to reauth_required here.
	OnReauth func(ctx context.Context, mailboxID string, err error) error
	// PageSize is Prefer: odata.maxpagesize of delta rounds (default 100).
	PageSize int
	// BackfillPageSize is $top of the backfill listing (default 100).
	BackfillPageSize int
	// BackfillSlice bounds the backfill work of one round, so new mail is
	// not held up behind a long backfill (default 30 s; the scheduler runs
	// the next slice at once).
	BackfillSlice time.Duration
	// BatchParallel is how many attachment/MIME $batch requests of one folder
	// run at once (default 2).
	BatchParallel int
	// LazyCursor skips writing a folder's new deltaLink after a round that
	// changed nothing, unless the stored one is over 10 minutes old: the
	// stored link stays valid, and idle mailboxes (most rounds) then cost
	// no cursor write. Cursor.Rounds then counts rounds that wrote.
	LazyCursor bool
	// QuietIdle makes polls of connected, fully backfilled mailboxes skip
	// the connected → syncing → connected writes, and record an uneventful
	// success at most every 5 minutes (last_sync_at lags that much for idle
	// mailboxes). Rounds with mail or errors are recorded as usual.
	QuietIdle bool
	// OnInbox is called after a delta round changed a mailbox's inbox, once
	// its unread count was read again: newMail is how many messages were new
	// to the index (never backfilled mail; read flags and moves give 0).
	// Wire it to Live.InboxChanged; it must not block.
	OnInbox func(mailboxID string, newMail int)
	Now     func() time.Time
}

// Syncer runs sync rounds: per folder, a delta round, then a slice of the
// backfill. Every page goes into the store with its cursor in one
// transaction (store.ApplyPage), so a crash anywhere resumes from the last
// written page and queues nothing twice.
type Syncer struct {
	cfg SyncConfig
	st  CursorStore
	log zerolog.Logger
}

// NewSyncer checks cfg and builds a Syncer.
func NewSyncer(cfg SyncConfig) (*Syncer, error) {
	if cfg.Store == nil || cfg.Graph == nil {
		return nil, errors.New("bridge: syncer needs a store and a Graph client")
	}
	if cfg.PageSize <= 0 {
		cfg.PageSize = 100
	}
	if cfg.BackfillPageSize <= 0 {
		cfg.BackfillPageSize = 100
	}
	if cfg.BackfillSlice <= 0 {
		cfg.BackfillSlice = 30 * time.Second
	}
	if cfg.BatchParallel <= 0 {
		cfg.BatchParallel = 2
	}
	if cfg.Now == nil {
		cfg.Now = time.Now
	}
	return &Syncer{cfg: cfg, st: cfg.Store, log: cfg.Log}, nil
}

// RoundResult says what one round did.
type RoundResult struct {
	Queued  int  // new outbox items
	Seen    int  // messages in the pages
	More    bool // backfill not finished: run again soon
	Skipped bool // the mailbox is not in a state that syncs
	Removed int  // messages the delta rounds saw removed
}

// Syncable reports whether a mailbox in state may be synced.
func Syncable(state string) bool {
	return state == StateConnected || state == StateError || state == StateSyncing
}

// SyncMailbox runs one round for a mailbox. The caller (the scheduler)
// makes sure only one round per mailbox runs at a time.
func (s *Syncer) SyncMailbox(ctx context.Context, mailboxID string) (RoundResult, error) {
	start := s.cfg.Now()
	var res RoundResult
	// One read of the mailbox serves both checks (an idle poll's reads are
	// most of its cost); it is read again only after a redelivery.
	mb, err := s.st.Mailbox(mailboxID)
	if err == nil && mb.Redeliver != nil && Syncable(mb.State) {
		// mailbox.redeliver: before the round, so a quiet idle mailbox
		// applies it too.
		if err := s.redeliver(ctx, mb); err != nil {
			s.log.Warn().Err(err).Str("mailbox", mailboxID).Msg("redeliver: not done yet; the next round goes on with it")
		}
		mb, err = s.st.Mailbox(mailboxID)
	}
	if s.cfg.QuietIdle && err == nil && mb.State == StateConnected && mb.BackfillRequest == nil {
		if curs, ok := s.backfilled(mb); ok {
			return s.quietRound(ctx, mb, start, curs)
		}
	}
	mb, err = updateStatus(s.st, mailboxID, func(m *store.MailboxStatus) error {
		if !Syncable(m.State) {
			return errSkip
		}
		// connected/error → syncing is a routine flip: not audited (it would
		// write two audit entries per mailbox per poll).
		m.State = StateSyncing
		m.LastSyncAt = start.UTC()
		return nil
	})
	if errors.Is(err, errSkip) {
		res.Skipped = true
		return res, nil
	}
	if err != nil {
		return res, fmt.Errorf("bridge: start sync of %s: %w", mailboxID, err)
	}
	res, err = s.round(ctx, mb, start, nil)
	s.finish(ctx, mb, res, err)
	if s.cfg.Metrics != nil {
		s.cfg.Metrics.observeRound(mailboxID, res, err, s.cfg.Now())
	}
	return res, err
}

var errSkip = errors.New("skip")

// quietStatusEvery is how often a quiet round records its success.
const quietStatusEvery = 5 * time.Minute

// backfilled reports whether every folder of the mailbox finished its
// backfill, and returns the cursors it read (the round starts from them).
func (s *Syncer) backfilled(mb store.Mailbox) (map[string]store.Cursor, bool) {
	if len(mb.Folders) == 0 {
		return nil, false
	}
	curs := make(map[string]store.Cursor, len(mb.Folders))
	for _, f := range mb.Folders {
		c, err := s.cursor(mb, f)
		if err != nil || !c.Backfill || c.NextLink != "" {
			return nil, false
		}
		c.Folder = f // the round's key for it (known, not read again)
		curs[f] = c
	}
	return curs, true
}

// quietRound is a poll of a connected, fully backfilled mailbox: it does
// not flip the state to syncing (the round takes milliseconds), and when
// nothing changed it records its success at most every quietStatusEvery —
// so an idle mailbox's poll costs no state writes. Anything else (mail,
// errors) is recorded as in a normal round.
func (s *Syncer) quietRound(ctx context.Context, mb store.Mailbox, start time.Time, curs map[string]store.Cursor) (RoundResult, error) {
	res, err := s.round(ctx, mb, start, curs)
	if err != nil || res.Queued > 0 || res.Seen > 0 || res.More || start.Sub(mb.LastSuccessAt) >= quietStatusEvery {
		if err == nil {
			s.recordSuccess(mb.ID, start) // one write: the sync time with the success
		} else {
			s.finish(ctx, mb, res, err)
		}
	}
	if s.cfg.Metrics != nil {
		s.cfg.Metrics.observeRound(mb.ID, res, err, s.cfg.Now())
	}
	return res, err
}

// cursorRefresh is how old a folder's stored deltaLink may get before an
// empty round writes the new one.
const cursorRefresh = 10 * time.Minute

// recordSuccess records a successful round: connected, no error, the
// success time, and (when not zero) the round's start as last_sync_at.
func (s *Syncer) recordSuccess(id string, syncAt time.Time) {
	now := s.cfg.Now().UTC()
	_, err := updateStatus(s.st, id, func(m *store.MailboxStatus) error {
		if m.State == StateSyncing {
			m.State = StateConnected
		}
		m.ErrorCode, m.Error = "", ""
		m.LastSuccessAt = now
		m.Failures = 0
		if !syncAt.IsZero() {
			m.LastSyncAt = syncAt.UTC()
		}
		return nil
	})
	if err != nil {
		s.log.Error().Err(err).Str("mailbox", id).Msg("sync: record success")
	}
}

func (s *Syncer) finish(ctx context.Context, mb store.Mailbox, res RoundResult, err error) {
	switch {
	case err == nil:
		s.recordSuccess(mb.ID, time.Time{})
	case graphsync.IsReauth(err):
		s.back(mb.ID)
		if s.cfg.OnReauth != nil {
			if rerr := s.cfg.OnReauth(ctx, mb.ID, err); rerr != nil {
				s.log.Error().Err(rerr).Str("mailbox", mb.ID).Msg("sync: mark reauth")
			}
			return
		}
		if _, terr := Transition(s.st, Actor{}, mb.ID, StateReauthRequired, "reauth_required", err.Error(), nil); terr != nil {
			s.log.Error().Err(terr).Str("mailbox", mb.ID).Msg("sync: mark reauth")
		}
	case errors.Is(err, context.Canceled) && ctx.Err() != nil:
		s.back(mb.ID) // shutdown: not the mailbox's fault
	default:
		s.log.Warn().Err(err).Str("mailbox", mb.ID).Msg("sync round failed")
		var failures int
		m, uerr := updateStatus(s.st, mb.ID, func(m *store.MailboxStatus) error {
			m.Failures++
			failures = m.Failures
			return nil
		})
		if uerr != nil {
			return
		}
		if m.State == StateSyncing || m.State == StateError || m.State == StateConnected {
			msg := fmt.Sprintf("Sync with Microsoft 365 failed (%d in a row); MailDesk retries with backoff: %s", failures, firstLine(err.Error()))
			if _, terr := Transition(s.st, Actor{}, mb.ID, StateError, "graph_error", msg, nil); terr != nil {
				s.log.Error().Err(terr).Str("mailbox", mb.ID).Msg("sync: mark error")
			}
		}
	}
}

// back returns a mailbox from syncing to connected (round aborted).
func (s *Syncer) back(id string) {
	_, _ = updateStatus(s.st, id, func(m *store.MailboxStatus) error {
		if m.State == StateSyncing {
			m.State = StateConnected
		}
		return nil
	})
}

// folderProgress aggregates backfill progress over a round's folders.
type folderProgress struct {
	mu        sync.Mutex
	seen      map[string]int64
	total     map[string]int64
	done      map[string]bool
	startDone int64
	start     time.Time
}

func (p *folderProgress) sum() (done, total int64, finished bool) {
	finished = true
	for f, t := range p.total {
		d := p.seen[f]
		if p.done[f] {
			t = d
		} else {
			finished = false
		}
		if d > t {
			t = d
		}
		done += d
		total += t
	}
	return
}

// round syncs every folder of the mailbox; curs holds folder cursors the
// caller just read (nil: each folder reads its own).
func (s *Syncer) round(ctx context.Context, mb store.Mailbox, start time.Time, curs map[string]store.Cursor) (RoundResult, error) {
	gm, err := s.cfg.Graph.Mailbox(mb.ID, mb.Email)
	if err != nil {
		return RoundResult{}, err
	}
	if err := s.applyBackfillRequest(mb); err != nil {
		return RoundResult{}, err
	}
	folders := mb.Folders
	if len(folders) == 0 {
		st, err := s.st.Settings()
		if err != nil {
			return RoundResult{}, err
		}
		folders = st.Defaults.Folders
	}
	prog := &folderProgress{seen: map[string]int64{}, total: map[string]int64{}, done: map[string]bool{}, start: start}
	deadline := start.Add(s.cfg.BackfillSlice)
	batched, err := s.batchedFirstPages(ctx, gm, folders, curs)
	if err != nil {
		return RoundResult{}, err
	}
	var (
		mu    sync.Mutex
		res   RoundResult
		first error
		wg    sync.WaitGroup
	)
	for _, f := range folders {
		wg.Add(1)
		go func() {
			defer wg.Done()
			defer func() {
				if r := recover(); r != nil {
					mu.Lock()
					if first == nil {
						first = fmt.Errorf("bridge: panic syncing %s/%s: %v", mb.ID, f, r)
					}
					mu.Unlock()
				}
			}()
			fr, err := s.syncFolder(ctx, mb, gm, f, curs[f], batched[f], deadline, prog)
			if errors.Is(err, store.ErrStaleCursor) {
				// A resync from scratch began during this round: stop
				// here; the next round starts the new generation.
				fr.More, err = true, nil
			}
			mu.Lock()
			defer mu.Unlock()
			res.Queued += fr.Queued
			res.Seen += fr.Seen
			res.More = res.More || fr.More
			if err != nil && (first == nil || graphsync.IsReauth(err)) {
				first = err
			}
		}()
	}
	wg.Wait()
	return res, first
}

// applyBackfillRequest applies a pending mailbox.backfill at the start of
// a round, before any folder reads its cursor: every folder's window widens
// to the request's since and its listing restarts from the newest message,
// and progress starts again, in one transaction with clearing the request.
func (s *Syncer) applyBackfillRequest(mb store.Mailbox) error {
	req := mb.BackfillRequest
	if req == nil {
		return nil
	}
	since := req.Since
	_, err := s.st.ApplyBackfillRequest(mb.ID, req.Seq, func(c *store.Cursor) {
		if !c.BackfillSince.IsZero() && (since.IsZero() || since.Before(c.BackfillSince)) {
			c.BackfillSince = since
		}
		c.BackfillLink, c.Backfill, c.Seen = "", false, 0
	}, func(m *store.MailboxStatus) { m.Progress = store.Progress{} })
	return err
}

// cursor reads a folder's cursor of the mailbox's sync generation: one of
// an older generation (before a resync from scratch) is ErrNotFound.
func (s *Syncer) cursor(mb store.Mailbox, folder string) (store.Cursor, error) {
	c, err := s.st.Cursor(mb.ID, folder)
	if err == nil && c.Gen < mb.SyncGen {
		return store.Cursor{}, fmt.Errorf("bridge: cursor %s/%s of generation %d: %w", mb.ID, folder, c.Gen, store.ErrNotFound)
	}
	return c, err
}

// batchedFirstPages fetches the first delta page of every folder in one
// $batch when the caller read the cursors (a poll of a backfilled mailbox)
// and each folder continues from a stored link: an idle poll is then one
// HTTP exchange instead of one per folder. nil (nothing batched) otherwise.
func (s *Syncer) batchedFirstPages(ctx context.Context, gm *graphsync.Mailbox, folders []string, curs map[string]store.Cursor) (map[string]*graphsync.DeltaResult, error) {
	if len(folders) < 2 || len(curs) != len(folders) {
		return nil, nil
	}
	links := make([]string, len(folders))
	for i, f := range folders {
		c, ok := curs[f]
		link := c.NextLink
		if link == "" {
			link = c.DeltaLink
		}
		if !ok || link == "" || !gm.BatchableLink(link) {
			return nil, nil
		}
		links[i] = link
	}
	res, err := gm.DeltaPages(ctx, links)
	if err != nil {
		return nil, err
	}
	first := make(map[string]*graphsync.DeltaResult, len(folders))
	for i, f := range folders {
		first[f] = &res[i]
	}
	return first, nil
}

// syncFolder runs the delta round of one folder, then a slice of its
// backfill. known is the folder's cursor when the caller read it already
// (zero: read here); first, when not nil, is the answer to the round's
// first request, fetched in the mailbox's $batch.
func (s *Syncer) syncFolder(ctx context.Context, mb store.Mailbox, gm *graphsync.Mailbox, folder string, known store.Cursor, first *graphsync.DeltaResult, deadline time.Time, prog *folderProgress) (RoundResult, error) {
	var res RoundResult
	cur, err := known, error(nil)
	if cur.Folder == "" {
		cur, err = s.cursor(mb, folder)
	}
	if errors.Is(err, store.ErrNotFound) {
		now := s.cfg.Now().UTC().Truncate(time.Second)
		cur = store.Cursor{Folder: folder, BackfillUntil: now, Gen: mb.SyncGen}
		if mb.BackfillDays > 0 {
			cur.BackfillSince = now.Add(-time.Duration(mb.BackfillDays) * 24 * time.Hour)
		}
		f, err := gm.GetFolder(ctx, folder)
		if err != nil {
			return res, err
		}
		cur.FolderID, cur.Total = f.ID, f.Total
		if err := s.st.PutCursor(mb.ID, cur); err != nil {
			return res, err
		}
		if folder == "inbox" {
			s.setUnread(mb.ID, f.Unread)
			mb.UnreadAt = s.cfg.Now()
		}
	} else if err != nil {
		return res, err
	}
	prog.mu.Lock()
	prog.seen[folder], prog.total[folder], prog.done[folder] = cur.Seen, cur.Total, cur.Backfill
	prog.startDone += cur.Seen
	prog.mu.Unlock()

	dr, err := s.deltaRound(ctx, mb, gm, folder, &cur, first)
	if err != nil && graphsync.IsResync(err) {
		// The folder's sync state is gone: drop the delta position and run
		// the round again. The message index keeps the resync from queueing
		// anything twice; the backfill position is kept.
		s.log.Info().Str("mailbox", mb.ID).Str("folder", folder).Err(err).Msg("delta state expired; resyncing folder")
		cur.NextLink, cur.DeltaLink = "", ""
		cur.Resyncs++
		if perr := s.st.PutCursor(mb.ID, cur); perr != nil {
			return res, perr
		}
		if s.cfg.Metrics != nil {
			s.cfg.Metrics.resyncs.WithLabelValues(mb.ID).Inc()
		}
		dr, err = s.deltaRound(ctx, mb, gm, folder, &cur, nil)
	}
	res.Queued += dr.Queued
	res.Seen += dr.Seen
	if err != nil {
		return res, err
	}
	if folder == "inbox" && (dr.Seen > 0 || dr.Removed > 0 || s.cfg.Now().Sub(mb.UnreadAt) >= unreadRefresh) {
		// The inbox changed (new mail, read flags, moves) or the count is
		// old: read Graph's unread count, as Outlook shows it.
		f, err := gm.GetFolder(ctx, folder)
		if err != nil {
			return res, err
		}
		s.setUnread(mb.ID, f.Unread)
		if s.cfg.OnInbox != nil && (dr.Seen > 0 || dr.Removed > 0) {
			s.cfg.OnInbox(mb.ID, dr.Queued)
		}
	}
	if !cur.Backfill {
		br, err := s.backfill(ctx, mb, gm, folder, &cur, deadline, prog)
		res.Queued += br.Queued
		res.Seen += br.Seen
		res.More = br.More
		if err != nil {
			return res, err
		}
	}
	return res, nil
}

// unreadRefresh is how old a mailbox's inbox unread count may get before a
// round without inbox changes reads it again.
const unreadRefresh = 15 * time.Minute

// setUnread stores the inbox's unread count (counts.unread of the mailbox).
func (s *Syncer) setUnread(mailboxID string, unread int64) {
	now := s.cfg.Now().UTC()
	_, err := updateStatus(s.st, mailboxID, func(m *store.MailboxStatus) error {
		m.Counts.Unread, m.UnreadAt = unread, now
		return nil
	})
	if err != nil {
		s.log.Error().Err(err).Str("mailbox", mailboxID).Msg("sync: write unread count")
	}
}

// deltaRound follows the folder's delta links to the end of a round;
// first, when not nil, answers its first request (from a $batch).
func (s *Syncer) deltaRound(ctx context.Context, mb store.Mailbox, gm *graphsync.Mailbox, folder string, cur *store.Cursor, first *graphsync.DeltaResult) (RoundResult, error) {
	var res RoundResult
	link := cur.NextLink
	if link == "" {
		link = cur.DeltaLink
	}
	for {
		var p *graphsync.Page
		var err error
		switch {
		case first != nil:
			p, err = first.Page, first.Err
			first = nil
		case link == "":
			p, err = gm.DeltaStart(ctx, folder, cur.BackfillUntil, s.cfg.PageSize)
		default:
			p, err = gm.NextPage(ctx, link)
		}
		if err != nil {
			return res, err
		}
		if p.NextLink == "" && p.DeltaLink == "" {
			return res, fmt.Errorf("bridge: delta page of %s/%s has neither nextLink nor deltaLink", mb.ID, folder)
		}
		if s.cfg.LazyCursor && p.NextLink == "" && len(p.Messages) == 0 && len(p.Removed) == 0 && cur.NextLink == "" &&
			cur.DeltaLink != "" && s.cfg.Now().Sub(cur.UpdatedAt) < cursorRefresh {
			// Nothing changed: keep the stored deltaLink (still valid; the
			// next round asks for changes since it) and skip a write — idle
			// mailboxes are most rounds. It is refreshed every cursorRefresh.
			return res, nil
		}
		items, err := s.buildItems(ctx, mb, gm, folder, p.Messages, false)
		if err != nil {
			return res, err
		}
		c := *cur
		if p.NextLink != "" {
			c.NextLink = p.NextLink
		} else {
			c.NextLink, c.DeltaLink = "", p.DeltaLink
			c.Rounds++
		}
		pr, err := s.st.ApplyPage(mb.ID, store.Page{Folder: folder, Items: items, Removed: p.Removed, Cursor: &c})
		if err != nil {
			return res, err
		}
		*cur = c
		res.Queued += pr.Queued
		res.Seen += len(p.Messages)
		res.Removed += len(p.Removed)
		if s.cfg.Metrics != nil {
			s.cfg.Metrics.messages.WithLabelValues(mb.ID).Add(float64(pr.Queued))
		}
		if p.NextLink == "" {
			return res, nil
		}
		link = p.NextLink
	}
}

// backfill lists the folder newest first from where it stopped, until the
// listing ends or the slice's deadline passes.
func (s *Syncer) backfill(ctx context.Context, mb store.Mailbox, gm *graphsync.Mailbox, folder string, cur *store.Cursor, deadline time.Time, prog *folderProgress) (RoundResult, error) {
	var res RoundResult
	for {
		if !s.cfg.Now().Before(deadline) {
			res.More = true
			return res, nil
		}
		var p *graphsync.Page
		var err error
		if cur.BackfillLink == "" {
			var opts []graphsync.ListOption
			if mb.Mode != odoo.ModeGateway {
				opts = append(opts, graphsync.ExpandAttachments) // log mode posts them: no request each
			}
			p, err = gm.ListStart(ctx, folder, cur.BackfillSince, cur.BackfillUntil, s.cfg.BackfillPageSize, opts...)
		} else {
			p, err = gm.NextPage(ctx, cur.BackfillLink)
		}
		if err != nil {
			return res, err
		}
		items, err := s.buildItems(ctx, mb, gm, folder, p.Messages, true)
		if err != nil {
			return res, err
		}
		c := *cur
		c.BackfillLink = p.NextLink
		c.Seen += int64(len(p.Messages))
		if p.NextLink == "" {
			c.Backfill = true
		}
		pr, err := s.st.ApplyPage(mb.ID, store.Page{Folder: folder, Items: items, Cursor: &c})
		if err != nil {
			return res, err
		}
		*cur = c
		res.Queued += pr.Queued
		res.Seen += len(p.Messages)
		if s.cfg.Metrics != nil {
			s.cfg.Metrics.messages.WithLabelValues(mb.ID).Add(float64(pr.Queued))
		}
		s.progress(mb.ID, folder, c, prog)
		if c.Backfill {
			return res, nil
		}
	}
}

// progress writes the mailbox's backfill progress {done, total, eta_s}.
func (s *Syncer) progress(mailboxID, folder string, c store.Cursor, prog *folderProgress) {
	prog.mu.Lock()
	prog.seen[folder], prog.done[folder] = c.Seen, c.Backfill
	if c.Total > prog.total[folder] {
		prog.total[folder] = c.Total
	}
	done, total, finished := prog.sum()
	rate := 0.0
	if el := s.cfg.Now().Sub(prog.start).Seconds(); el > 0 {
		rate = float64(done-prog.startDone) / el
	}
	start := prog.start
	// The write stays under prog.mu: two folders' sums written in the
	// other order would leave the older one (the backfill never "finished").
	defer prog.mu.Unlock()
	eta := int64(0)
	if !finished && rate > 0 {
		eta = int64(float64(total-done)/rate + 0.5)
	}
	_, err := updateStatus(s.st, mailboxID, func(m *store.MailboxStatus) error {
		if m.Progress.StartedAt.IsZero() {
			m.Progress.StartedAt = start.UTC()
		}
		m.Progress.Done, m.Progress.Total, m.Progress.ETASecs, m.Progress.Finished = done, total, eta, finished
		return nil
	})
	if err != nil {
		s.log.Error().Err(err).Str("mailbox", mailboxID).Msg("sync: write progress")
	}
}

// buildItems turns page messages into store page items: index entries
// always, outbox payloads for messages seen with content for the first
// time. Attachments (log mode) or raw MIME (gateway mode) are fetched only
// for those, in $batch requests.
// buildItems turns a page into outbox items; backfill marks items of the
// backfill listing (mail from before the mailbox was connected), which Odoo
// logs without notifying anyone.
func (s *Syncer) buildItems(ctx context.Context, mb store.Mailbox, gm *graphsync.Mailbox, folder string, msgs []*graphsync.Message, backfill bool) ([]store.PageItem, error) {
	var fresh []*graphsync.Message
	known := map[string]bool{}
	for _, m := range msgs {
		if !m.Full {
			continue
		}
		if old, err := s.st.Message(mb.ID, m.ID); err == nil && old.Delivery != store.DeliveryNone {
			known[m.ID] = true // a replay, resync or move: nothing to fetch or queue
			continue
		}
		fresh = append(fresh, m)
	}
	var err error
	if mb.Mode == odoo.ModeGateway {
		err = gm.FetchMIME(ctx, fresh, s.cfg.BatchParallel)
	} else {
		err = gm.FetchAttachments(ctx, fresh, s.cfg.BatchParallel)
	}
	if err != nil {
		return nil, err
	}
	direction := directionOf(folder)
	items := make([]store.PageItem, 0, len(msgs))
	for _, m := range msgs {
		sm := indexEntry(folder, m, backfill)
		it := store.PageItem{Message: sm, Direction: direction}
		if m.Full && !known[m.ID] {
			item := s.ingestItemOf(&mb, sm, direction, m)
			payload, err := json.Marshal(item)
			if err != nil {
				return nil, fmt.Errorf("bridge: encode ingest item %s: %w", m.ID, err)
			}
			it.Payload = payload
		}
		items = append(items, it)
	}
	return items, nil
}

func storeAddrs(in []graphsync.Address) []store.Address {
	if len(in) == 0 {
		return nil
	}
	out := make([]store.Address, len(in))
	for i, a := range in {
		out[i] = store.Address(a)
	}
	return out
}

func odooAddrs(in []store.Address) []odoo.Address {
	if len(in) == 0 {
		return nil
	}
	out := make([]odoo.Address, len(in))
	for i, a := range in {
		out[i] = odoo.Address(a)
	}
	return out
}

// threadingHeaders are the internet headers Odoo needs (threading, loop and
// auto-reply detection).
var threadingHeaders = []string{"message-id", "in-reply-to", "references", "auto-submitted", "x-auto-response-suppress", "precedence", "list-id", "reply-to"}

// indexEntry is the message index entry of a page message: what the index
// keeps of it, threading ids and sensitivity included (from the page's
// headers, or the raw MIME once fetched), so an ingest item's envelope can
// be built again from the index (ItemEnvelope) without Graph.
func indexEntry(folder string, m *graphsync.Message, backfill bool) store.Message {
	sm := store.Message{
		ID: m.ID, Folder: folder, InternetMessageID: m.InternetMessageID, ConversationID: m.ConversationID,
		Subject: m.Subject, From: store.Address(m.From), To: storeAddrs(m.To), Cc: storeAddrs(m.Cc),
		ReceivedAt: m.ReceivedAt, IsRead: m.IsRead, HasAttachments: m.HasAttachments,
		Flagged: m.Flagged, FlagKnown: m.FlagKnown, Snippet: store.SnippetOf(m.Preview, 160),
	}
	if m.Full {
		sm.Sensitivity, sm.InReplyTo, sm.References, sm.Backfill = m.Sensitivity(), m.InReplyTo(), m.References(), backfill
	}
	return sm
}

// ItemEnvelope builds an ingest item from an index entry: everything the
// pusher sends except the body, the raw MIME and the attachments — ids,
// folder, direction, dates, subject, addresses, the threading headers the
// index keeps (message-id, in-reply-to, references), sensitivity and the
// mailbox's options as they are now (the pusher sets them at push time).
// Sync builds every item on it; mailbox.preview_items returns it as is.
func ItemEnvelope(mb *store.Mailbox, sm store.Message, direction string) odoo.IngestItem {
	it := odoo.IngestItem{
		GraphID: sm.ID, Mailbox: mb.ID, Folder: sm.Folder, Direction: direction,
		InternetMessageID: sm.InternetMessageID, ConversationID: sm.ConversationID,
		ReceivedAt: sm.ReceivedAt.UTC().Format(time.RFC3339), Sensitivity: sm.Sensitivity,
		Subject: sm.Subject, To: odooAddrs(sm.To), Cc: odooAddrs(sm.Cc),
		Options: ingestOptions(mb),
	}
	it.Options.Backfill = sm.Backfill
	from := odoo.Address(sm.From)
	it.From = &from
	hdr := map[string]string{}
	if sm.InternetMessageID != "" {
		hdr["message-id"] = sm.InternetMessageID
	}
	if sm.InReplyTo != "" {
		hdr["in-reply-to"] = sm.InReplyTo
	}
	if len(sm.References) > 0 {
		hdr["references"] = strings.Join(sm.References, " ")
	}
	it.Headers = hdr
	return it
}

// directionOf is a message's direction as sync decides it: mail in Sent
// Items is outgoing.
func directionOf(folder string) string {
	if strings.EqualFold(folder, "sentitems") {
		return "out"
	}
	return "in"
}

// ingestItem builds the odoo.IngestItem for a message: raw MIME for gateway
// mailboxes, structured fields parsed in Go otherwise.
func (s *Syncer) ingestItem(mb store.Mailbox, folder, direction string, m *graphsync.Message) odoo.IngestItem {
	return s.ingestItemOf(&mb, indexEntry(folder, m, false), direction, m)
}

// ingestItemOf completes the envelope of index entry sm with what only the
// Graph message has: the raw MIME (gateway mailboxes; the structured fields
// then stay out, as Odoo reads the MIME), or the full threading headers,
// the body and the attachments.
func (s *Syncer) ingestItemOf(mb *store.Mailbox, sm store.Message, direction string, m *graphsync.Message) odoo.IngestItem {
	it := ItemEnvelope(mb, sm, direction)
	if mb.Mode == odoo.ModeGateway && len(m.MIME) > 0 {
		it.Subject, it.From, it.To, it.Cc, it.Headers = "", nil, nil, nil, nil
		it.MIMEBase64 = base64.StdEncoding.EncodeToString(m.MIME)
		return it
	}
	for _, name := range threadingHeaders {
		if v := m.Header(name); v != "" {
			it.Headers[name] = v
		}
	}
	if m.BodyType == "html" {
		it.BodyHTML = m.Body
	} else if m.Body != "" {
		it.BodyHTML = "<pre>" + html.EscapeString(m.Body) + "</pre>"
	}
	limit := mb.MaxMessageBytes
	if limit <= 0 {
		limit = 35 << 20
	}
	used := int64(len(it.BodyHTML))
	for _, a := range m.Attachments {
		if a.Data == nil {
			continue // item/reference attachments carry no bytes
		}
		if used+int64(len(a.Data)) > limit {
			s.log.Warn().Str("mailbox", mb.ID).Str("graph_id", m.ID).Str("attachment", a.Name).Msg("attachment left out: message over the size limit")
			continue
		}
		used += int64(len(a.Data))
		it.Attachments = append(it.Attachments, odoo.Attachment{Name: a.Name, ContentType: a.ContentType,
			DataBase64: base64.StdEncoding.EncodeToString(a.Data), ContentID: a.ContentID, IsInline: a.IsInline})
	}
	return it
}

// Resync starts the mailbox's sync again from scratch (mailbox.resync):
// every folder's delta and backfill position is dropped and the backfill
// runs again over the window the mailbox is configured with. It bumps the
// mailbox's sync generation instead of rewriting cursors, so a round that
// runs meanwhile cannot write its old position back (store.ApplyPage
// refuses cursors of an older generation) and stops at its next page.
// Mail already in the message index is not queued again, and Odoo's ingest
// is idempotent by Graph id and Message-Id: nothing lands twice.
func (c *SyncControl) Resync(a Actor, p MailboxRef) (Queued, error) {
	m, err := c.syncable(a, p.MailboxID)
	if err != nil {
		return Queued{}, err
	}
	if _, err := c.st.UpdateMailboxStatus(m.ID, func(mb *store.MailboxStatus, cfg store.MailboxConfig) (*store.AuditEntry, error) {
		mb.SyncGen++
		mb.Progress = store.Progress{}
		return &store.AuditEntry{UID: a.UID, Actor: "odoo", Action: "mailbox.resync",
			Detail: map[string]any{"email": cfg.Email, "sync_gen": mb.SyncGen, "backfill_days": cfg.BackfillDays}}, nil
	}); err != nil {
		return Queued{}, Internal(err)
	}
	if err := c.sched.Kick(m.ID); err != nil {
		return Queued{}, Internal(err)
	}
	return Queued{Queued: true}, nil
}
