package main

import (
	"context"
	"fmt"
	"strings"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/maildesk/maildesk/bridge"
	"github.com/maildesk/maildesk/store/pgstore"
)

// LeaseConfig names this node and sets its lease TTL (PostgreSQL only).
type LeaseConfig struct {
	// NodeID names this sidecar in the nodes and leases tables; default
	// the host name and a random suffix.
	NodeID string
	// TTL is how long a lease holds without renewal: a node that stops
	// renewing loses its mailboxes after it (default 15 s).
	TTL time.Duration
}

func leaseOptions() []option {
	return []option{
		{name: "node-id", usage: "this sidecar's name among several on one PostgreSQL (default: host name and a random suffix)",
			set: func(c *Config, v string) error { c.Lease.NodeID = v; return nil }},
		{name: "lease-ttl", def: "15s", usage: "with --store postgres://…: how long a mailbox lease holds without renewal; a node that stops renewing loses its mailboxes after it",
			set: func(c *Config, v string) error {
				d, err := time.ParseDuration(v)
				if err != nil || d < 500*time.Millisecond {
					return fmt.Errorf("%q is not a duration of at least 500ms, such as 15s", v)
				}
				c.Lease.TTL = d
				return nil
			}},
	}
}

// useLeases sets what the workers write through: on bbolt the store and
// every mailbox; on PostgreSQL this node's leases and the store they fence.
func (a *App) useLeases() error {
	a.Work, a.Owner = a.Store, bridge.SoleOwner
	pg, ok := a.Store.(*pgstore.Store)
	if !ok {
		return nil
	}
	l, err := pg.NewLeases(pgstore.LeaseOptions{NodeID: a.Cfg.Lease.NodeID, TTL: a.Cfg.Lease.TTL,
		Log: a.Log.With().Str("component", "leases").Logger()})
	if err != nil {
		return err
	}
	a.Leases, a.Work, a.Owner = l, l.Fence(), l
	return nil
}

// forwardKick tells the node holding a mailbox to sync it now (a
// sync_now, backfill, connection or change notification that arrived here).
func (a *App) forwardKick(mailboxID string) error {
	if a.Leases == nil {
		return nil
	}
	return a.Leases.Send("kick", mailboxID)
}

// wireLeases runs this node's leases under --store postgres://…: the
// renewal loop, the messages from other nodes (a kick for a mailbox held
// here; items queued on another node), the "leases" health component
// (maildesk status) and the lease metrics.
func wireLeases(a *App) error {
	l := a.Leases
	if l == nil {
		return nil
	}
	l.OnMessage(func(kind, mailboxID string) {
		switch kind {
		case "kick":
			if a.Scheduler != nil {
				a.Scheduler.KickLocal(mailboxID)
			}
		case "queued":
			if a.Pusher != nil {
				a.Pusher.Kick()
			}
		}
	})
	// Items queued here (retry_failed, a send logged…) may belong to a
	// mailbox another node delivers.
	a.Store.(*pgstore.Store).OnQueued(l.Queued)
	sup := a.AddWorker("leases", l.Run)
	a.System.AddComponent("leases", func(ctx context.Context) bridge.ComponentStatus {
		if cs := workerHealth(sup); cs.Status != bridge.StatusOK {
			return cs
		}
		return leaseHealth(ctx, a.Store.(*pgstore.Store), l)
	})
	a.Registry.MustRegister(leaseCollector{pg: a.Store.(*pgstore.Store), l: l})
	return nil
}

// leaseHealth names this node, what it holds, and every node with its
// leases: "node a holds 100 of 300 mailboxes; nodes: a 100, b 100, c 100".
func leaseHealth(ctx context.Context, pg *pgstore.Store, l *pgstore.Leases) bridge.ComponentStatus {
	held := l.Held()
	if msg, okAt := l.LastError(); msg != "" {
		since := "never renewed"
		if !okAt.IsZero() {
			since = "last renewed " + okAt.UTC().Format(time.RFC3339)
		}
		return bridge.ComponentStatus{Status: bridge.StatusDegraded, Detail: fmt.Sprintf("node %s cannot renew its leases (%s; %s); it holds %d and stops working them when they run out (TTL %s): check PostgreSQL", l.NodeID(), msg, since, held, l.TTL())}
	}
	ctx, cancel := context.WithTimeout(ctx, 5*time.Second)
	defer cancel()
	nodes, unheld, err := pg.Membership(ctx)
	if err != nil {
		return bridge.ComponentStatus{Status: bridge.StatusUnknown, Detail: err.Error()}
	}
	total := unheld
	var alive, dead []string
	for _, n := range nodes {
		total += n.Leases
		if n.Alive {
			alive = append(alive, fmt.Sprintf("%s %d", n.ID, n.Leases))
		} else {
			dead = append(dead, n.ID)
		}
	}
	d := fmt.Sprintf("node %s holds %d of %d mailboxes; nodes alive: %s", l.NodeID(), held, total, strings.Join(alive, ", "))
	if unheld > 0 {
		d += fmt.Sprintf("; %d without a holder yet", unheld)
	}
	if len(dead) > 0 {
		d += "; gone: " + strings.Join(dead, ", ")
	}
	return bridge.ComponentStatus{Status: bridge.StatusOK, Detail: d}
}

// leaseCollector exports membership and leases at scrape time.
type leaseCollector struct {
	pg *pgstore.Store
	l  *pgstore.Leases
}

var (
	descNodesAlive = prometheus.NewDesc("maildesk_nodes_alive", "Sidecars sharing this PostgreSQL whose heartbeat is current.", nil, nil)
	descLeasesNode = prometheus.NewDesc("maildesk_leases_held", "Unexpired mailbox leases per node, from the lease table.", []string{"node"}, nil)
	descUnheld     = prometheus.NewDesc("maildesk_leases_unheld", "Mailboxes without an unexpired lease (waiting for a node to claim them).", nil, nil)
	descHeldHere   = prometheus.NewDesc("maildesk_lease_local_held", "Leases this node counts as held now (by its own clock; 0 once it could not renew in time).", []string{"node"}, nil)
	descAcquired   = prometheus.NewDesc("maildesk_lease_acquisitions_total", "Mailbox leases this node claimed.", []string{"node"}, nil)
	descLost       = prometheus.NewDesc("maildesk_lease_losses_total", "Mailbox leases this node lost (not renewed in time, or taken after they expired).", []string{"node"}, nil)
	descReleased   = prometheus.NewDesc("maildesk_lease_releases_total", "Mailbox leases this node handed back (rebalancing when a node joined, shutdown).", []string{"node"}, nil)
)

func (c leaseCollector) Describe(ch chan<- *prometheus.Desc) {
	for _, d := range []*prometheus.Desc{descNodesAlive, descLeasesNode, descUnheld, descHeldHere, descAcquired, descLost, descReleased} {
		ch <- d
	}
}

func (c leaseCollector) Collect(ch chan<- prometheus.Metric) {
	id := c.l.NodeID()
	n := c.l.Counts()
	ch <- prometheus.MustNewConstMetric(descHeldHere, prometheus.GaugeValue, float64(c.l.Held()), id)
	ch <- prometheus.MustNewConstMetric(descAcquired, prometheus.CounterValue, float64(n.Acquired), id)
	ch <- prometheus.MustNewConstMetric(descLost, prometheus.CounterValue, float64(n.Lost), id)
	ch <- prometheus.MustNewConstMetric(descReleased, prometheus.CounterValue, float64(n.Released), id)
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Second)
	defer cancel()
	nodes, unheld, err := c.pg.Membership(ctx)
	if err != nil {
		return // PostgreSQL unreachable: this node's own figures only
	}
	alive := 0
	for _, nd := range nodes {
		if nd.Alive {
			alive++
		}
		ch <- prometheus.MustNewConstMetric(descLeasesNode, prometheus.GaugeValue, float64(nd.Leases), nd.ID)
	}
	ch <- prometheus.MustNewConstMetric(descNodesAlive, prometheus.GaugeValue, float64(alive))
	ch <- prometheus.MustNewConstMetric(descUnheld, prometheus.GaugeValue, float64(unheld))
}
