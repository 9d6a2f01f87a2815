package bridge

import (
	"errors"
	"time"

	"github.com/prometheus/client_golang/prometheus"
)

// SyncMetrics are the sync engine's metrics, per mailbox (sum() over the
// label gives the totals). Graph request, 429 and retry counters live in
// graphsync (maildesk_graph_*).
type SyncMetrics struct {
	rounds      *prometheus.CounterVec
	messages    *prometheus.CounterVec
	resyncs     *prometheus.CounterVec
	lastSuccess *prometheus.GaugeVec
	roundsTotal *prometheus.CounterVec
}

// NewSyncMetrics registers the metrics on reg (nil: unregistered) and a
// backlog collector that reads the outbox on scrape.
func NewSyncMetrics(reg prometheus.Registerer, st OutboxStatter) *SyncMetrics {
	m := &SyncMetrics{
		rounds: prometheus.NewCounterVec(prometheus.CounterOpts{Name: "maildesk_sync_rounds_total",
			Help: "Sync rounds per mailbox and result (ok, error)."}, []string{"mailbox", "result"}),
		roundsTotal: prometheus.NewCounterVec(prometheus.CounterOpts{Name: "maildesk_sync_rounds_all_total",
			Help: "Sync rounds of all mailboxes by result."}, []string{"result"}),
		messages: prometheus.NewCounterVec(prometheus.CounterOpts{Name: "maildesk_sync_messages_total",
			Help: "Messages put into the outbox per mailbox."}, []string{"mailbox"}),
		resyncs: prometheus.NewCounterVec(prometheus.CounterOpts{Name: "maildesk_sync_resyncs_total",
			Help: "Folder resyncs after an expired delta state, per mailbox."}, []string{"mailbox"}),
		lastSuccess: prometheus.NewGaugeVec(prometheus.GaugeOpts{Name: "maildesk_sync_last_success_timestamp_seconds",
			Help: "When a mailbox's last successful round ended (Unix time)."}, []string{"mailbox"}),
	}
	if reg != nil {
		cs := []prometheus.Collector{m.rounds, m.roundsTotal, m.messages, m.resyncs, m.lastSuccess}
		if st != nil {
			cs = append(cs, &backlogCollector{st: st})
		}
		for _, c := range cs {
			if err := reg.Register(c); err != nil {
				var are prometheus.AlreadyRegisteredError
				if !errors.As(err, &are) {
					continue
				}
			}
		}
	}
	return m
}

func (m *SyncMetrics) observeRound(mailboxID string, _ RoundResult, err error, now time.Time) {
	if m == nil {
		return
	}
	result := "ok"
	if err != nil {
		result = "error"
	} else {
		m.lastSuccess.WithLabelValues(mailboxID).Set(float64(now.Unix()))
	}
	m.rounds.WithLabelValues(mailboxID, result).Inc()
	m.roundsTotal.WithLabelValues(result).Inc()
}

// backlogCollector reports outbox items waiting per mailbox and in total.
type backlogCollector struct{ st OutboxStatter }

var (
	backlogDesc      = prometheus.NewDesc("maildesk_sync_backlog", "Outbox items waiting for Odoo, per mailbox.", []string{"mailbox"}, nil)
	backlogTotalDesc = prometheus.NewDesc("maildesk_sync_backlog_all", "Outbox items waiting for Odoo, all mailboxes.", nil, nil)
)

func (c *backlogCollector) Describe(ch chan<- *prometheus.Desc) {
	ch <- backlogDesc
	ch <- backlogTotalDesc
}

func (c *backlogCollector) Collect(ch chan<- prometheus.Metric) {
	stats, err := c.st.OutboxStats()
	if err != nil {
		return
	}
	total := 0
	for id, s := range stats {
		total += s.Items
		ch <- prometheus.MustNewConstMetric(backlogDesc, prometheus.GaugeValue, float64(s.Items), id)
	}
	ch <- prometheus.MustNewConstMetric(backlogTotalDesc, prometheus.GaugeValue, float64(total))
}
