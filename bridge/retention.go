package bridge

import (
	"context"
	"fmt"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/rs/zerolog"

	"github.com/maildesk/maildesk/store"
)

// RetentionStore is what pruning needs of storage: the retention settings
// and the two indexed prunes.
type RetentionStore interface {
	Settings() (store.Settings, error)
	PruneAudit(before time.Time, limit int) (int, error)
	PruneMessages(before time.Time, limit int) (int, error)
}

// RetentionOptions tune the pruning loop; zero values take the defaults.
type RetentionOptions struct {
	Every      time.Duration // between passes; default 1 h (the first pass 1 min after start)
	Batch      int           // entries removed per store transaction; default 1,000
	Now        func() time.Time
	Log        zerolog.Logger
	Registerer prometheus.Registerer
}

// Retention prunes the audit log and the message index to the days
// Settings.Retention keeps (0: forever), periodically and in bounded
// batches, counting what it removed (maildesk_retention_pruned_total).
type Retention struct {
	st     RetentionStore
	opts   RetentionOptions
	pruned *prometheus.CounterVec
	runs   *prometheus.CounterVec
}

// NewRetention returns the pruner over st.
func NewRetention(st RetentionStore, opts RetentionOptions) *Retention {
	if opts.Every <= 0 {
		opts.Every = time.Hour
	}
	if opts.Batch <= 0 {
		opts.Batch = 1000
	}
	if opts.Now == nil {
		opts.Now = time.Now
	}
	r := &Retention{st: st, opts: opts,
		pruned: prometheus.NewCounterVec(prometheus.CounterOpts{Name: "maildesk_retention_pruned_total",
			Help: "Entries removed by retention, by kind (audit: audit log entries, messages: message index entries)."}, []string{"kind"}),
		runs: prometheus.NewCounterVec(prometheus.CounterOpts{Name: "maildesk_retention_runs_total",
			Help: "Retention passes, by result (ok or error)."}, []string{"result"}),
	}
	r.pruned.WithLabelValues("audit")
	r.pruned.WithLabelValues("messages")
	if opts.Registerer != nil {
		for _, c := range []prometheus.Collector{r.pruned, r.runs} {
			_ = opts.Registerer.Register(c)
		}
	}
	return r
}

// Prune runs one pass: every audit entry and message index entry older
// than the settings keep, in batches, until none is left or ctx ends.
func (r *Retention) Prune(ctx context.Context) (audit, messages int, err error) {
	defer func() {
		result := "ok"
		if err != nil {
			result = "error"
		}
		r.runs.WithLabelValues(result).Inc()
	}()
	st, err := r.st.Settings()
	if err != nil {
		return 0, 0, err
	}
	now := r.opts.Now()
	for _, k := range []struct {
		kind  string
		days  int
		prune func(time.Time, int) (int, error)
		n     *int
	}{
		{"audit", st.Retention.AuditDays, r.st.PruneAudit, &audit},
		{"messages", st.Retention.MessageDays, r.st.PruneMessages, &messages},
	} {
		if k.days <= 0 {
			continue
		}
		before := now.Add(-time.Duration(k.days) * 24 * time.Hour)
		for ctx.Err() == nil {
			n, err := k.prune(before, r.opts.Batch)
			*k.n += n
			r.pruned.WithLabelValues(k.kind).Add(float64(n))
			if err != nil {
				return audit, messages, fmt.Errorf("bridge: retention of %s: %w", k.kind, err)
			}
			if n < r.opts.Batch {
				break
			}
		}
	}
	return audit, messages, ctx.Err()
}

// Run prunes a minute after start, then every Every, until ctx ends.
func (r *Retention) Run(ctx context.Context) {
	wait := min(time.Minute, r.opts.Every)
	for {
		t := time.NewTimer(wait)
		select {
		case <-ctx.Done():
			t.Stop()
			return
		case <-t.C:
		}
		wait = r.opts.Every
		a, m, err := r.Prune(ctx)
		switch {
		case err != nil && ctx.Err() == nil:
			r.opts.Log.Error().Err(err).Int("audit", a).Int("messages", m).Msg("retention: pruning failed; the next pass tries again")
		case a+m > 0:
			r.opts.Log.Info().Int("audit", a).Int("messages", m).Msg("retention: old audit entries and message index entries pruned")
		}
	}
}
