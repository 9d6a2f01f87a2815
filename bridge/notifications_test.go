package bridge_test

import (
	"context"
	"fmt"
	"net/http"
	"net/http/httptest"
	"sort"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/rs/zerolog"

	"github.com/maildesk/maildesk/bridge"
	"github.com/maildesk/maildesk/bridge/odoo"
	"github.com/maildesk/maildesk/graphsync/m365sim"
	"github.com/maildesk/maildesk/internal/recovery"
	"github.com/maildesk/maildesk/store"
)

type notifyRig struct {
	*rig
	sched    *bridge.Scheduler
	notifier *bridge.Notifier
	kicks    atomic.Int64
	srv      *httptest.Server
}

// newNotifyRig runs the scheduler (polling every hour, so only
// notifications bring new mail quickly) and the webhook on a TLS server.
func newNotifyRig(t testing.TB, o rigOpts) *notifyRig {
	r := &notifyRig{rig: newRig(t, o)}
	grp := recovery.New(zerolog.Nop(), nil)
	var err error
	mux := http.NewServeMux()
	r.srv = httptest.NewTLSServer(mux)
	t.Cleanup(r.srv.Close)
	r.notifier, err = bridge.NewNotifier(bridge.NotifierConfig{Store: r.st, Graph: r.graph,
		Kick:      func(id string) error { r.kicks.Add(1); return r.sched.Kick(id) },
		NotifyURL: r.srv.URL + "/graph/notify", LifecycleURL: r.srv.URL + "/graph/lifecycle", Log: zerolog.New(zerolog.NewTestWriter(t)).Level(zerolog.WarnLevel)})
	if err != nil {
		t.Fatal(err)
	}
	mux.Handle("POST /graph/notify", r.notifier.NotifyHandler())
	mux.Handle("POST /graph/lifecycle", r.notifier.LifecycleHandler())
	r.sched, err = bridge.NewScheduler(bridge.SchedulerConfig{Store: r.st, Sync: r.sync.SyncMailbox, PollInterval: time.Hour,
		Covered: r.notifier.Covered, Recovery: grp})
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() { _ = r.sched.Run(ctx); close(done) }()
	t.Cleanup(func() { cancel(); <-done })
	return r
}

func (r *notifyRig) subsOf(upn string) []m365sim.SubscriptionInfo {
	var out []m365sim.SubscriptionInfo
	for _, s := range r.sim.Subscriptions() {
		if strings.EqualFold(s.User, upn) && s.Expires.After(time.Now()) {
			out = append(out, s)
		}
	}
	return out
}

func TestNotificationsKickDeltaRounds(t *testing.T) {
	r := newNotifyRig(t, rigOpts{throttle: true})
	upn := "kim@" + r.sim.Domain()
	r.sim.GenerateMailbox(upn, 30, m365sim.GenOptions{MaxAttachment: 4 << 10, NoSamples: true})
	id := r.mailbox(upn, odoo.ModeLog, 0)
	shared, err := r.st.CreateMailbox(store.Mailbox{MailboxConfig: store.MailboxConfig{Email: "sales@" + r.sim.Domain(), Kind: "shared", Mode: odoo.ModeGateway, Folders: []string{"inbox"}}, MailboxStatus: store.MailboxStatus{State: bridge.StateConnected}})
	if err != nil {
		t.Fatal(err)
	}
	r.sim.AddSharedMailbox(shared.Email, "Sales")
	_ = r.sched.Kick(id)
	waitFor(t, "backfill", func() bool {
		m, _ := r.st.Mailbox(id)
		return m.Progress.Finished
	})
	ctx := context.Background()
	r.notifier.Reconcile(ctx)
	subs := r.subsOf(upn)
	if len(subs) != 1 || !r.notifier.Covered(id) {
		t.Fatalf("subscriptions %+v", subs)
	}
	if len(r.subsOf(shared.Email)) != 0 || r.notifier.Covered(shared.ID) {
		t.Fatal("a shared mailbox got a subscription")
	}
	if subs[0].ClientState == "" || subs[0].NotificationURL != r.srv.URL+"/graph/notify" {
		t.Fatalf("subscription %+v", subs[0])
	}

	// New mail reaches the outbox through the notification (polling is hourly).
	raw := "From: a@example.com\r\nTo: " + upn + "\r\nSubject: ping\r\nMessage-ID: <ping@example.com>\r\nContent-Type: text/plain\r\n\r\nx\r\n"
	gid, err := r.sim.DeliverMIME(upn, "inbox", []byte(raw))
	if err != nil {
		t.Fatal(err)
	}
	waitFor(t, "notified mail in the index", func() bool { _, err := r.st.Message(id, gid); return err == nil })
	r.checkExactlyOnce(id, upn)

	// A forged notification (wrong clientState) kicks nothing.
	before := r.kicks.Load()
	body := fmt.Sprintf(`{"value":[{"subscriptionId":%q,"clientState":"forged","changeType":"created","resource":"x"}]}`, subs[0].ID)
	resp, err := r.srv.Client().Post(r.srv.URL+"/graph/notify", "application/json", strings.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusAccepted || r.kicks.Load() != before {
		t.Fatalf("forged notification: status %d, kicks %d → %d", resp.StatusCode, before, r.kicks.Load())
	}
	// The validation handshake echoes the token as text/plain.
	resp, err = r.srv.Client().Post(r.srv.URL+"/graph/notify?validationToken=a%2Bb%20c", "text/plain", nil)
	if err != nil {
		t.Fatal(err)
	}
	buf := make([]byte, 64)
	nb, _ := resp.Body.Read(buf)
	resp.Body.Close()
	if resp.StatusCode != 200 || string(buf[:nb]) != "a+b c" || !strings.HasPrefix(resp.Header.Get("Content-Type"), "text/plain") {
		t.Fatalf("handshake: %d %q %q", resp.StatusCode, buf[:nb], resp.Header.Get("Content-Type"))
	}

	// Lifecycle: missed → a round; subscriptionRemoved → a new subscription.
	before = r.kicks.Load()
	if err := r.sim.SendLifecycle(ctx, subs[0].ID, "missed"); err != nil {
		t.Fatal(err)
	}
	waitFor(t, "kick after missed", func() bool { return r.kicks.Load() > before })
	if err := r.sim.SendLifecycle(ctx, subs[0].ID, "subscriptionRemoved"); err != nil {
		t.Fatal(err)
	}
	// Graph holds the new subscription as soon as it answers the POST; the
	// notifier knows it (and so accepts its lifecycle events) a moment later.
	waitFor(t, "a new subscription", func() bool {
		s := r.subsOf(upn)
		return len(s) == 1 && s[0].ID != subs[0].ID && r.notifier.Covered(id)
	})
	renewed := r.subsOf(upn)[0]
	if err := r.sim.SendLifecycle(ctx, renewed.ID, "reauthorizationRequired"); err != nil {
		t.Fatal(err)
	}
	waitFor(t, "renewal", func() bool {
		s := r.subsOf(upn)
		return len(s) == 1 && s[0].ID == renewed.ID && s[0].Renewals > renewed.Renewals && !s[0].Expires.Before(renewed.Expires)
	})
}

// BenchmarkNotificationLatency delivers 100 messages one by one to a
// personal mailbox with notifications on (TimeScale 1, limits on) and
// prints the p50 and p90 of delivery → outbox. MAILDESK_BENCH_LATENCY_MS
// adds Graph latency per request (default 0).
func BenchmarkNotificationLatency(b *testing.B) {
	for i := 0; i < b.N; i++ {
		lat0 := time.Duration(envInt("MAILDESK_BENCH_LATENCY_MS", 0)) * time.Millisecond
		r := newNotifyRig(b, rigOpts{scale: 1, throttle: true, latency: lat0})
		upn := "lat@" + r.sim.Domain()
		r.sim.GenerateMailbox(upn, 20, m365sim.GenOptions{MaxAttachment: 4 << 10, NoSamples: true})
		id := r.mailbox(upn, odoo.ModeLog, 0)
		_ = r.sched.Kick(id)
		deadline := time.Now().Add(time.Minute)
		for {
			m, _ := r.st.Mailbox(id)
			if m.Progress.Finished {
				break
			}
			if time.Now().After(deadline) {
				b.Fatal("backfill did not finish")
			}
			time.Sleep(5 * time.Millisecond)
		}
		r.notifier.Reconcile(context.Background())
		if !r.notifier.Covered(id) {
			b.Fatal("no subscription")
		}
		var lat []time.Duration
		for k := 0; k < 100; k++ {
			raw := fmt.Sprintf("From: a@example.com\r\nTo: %s\r\nSubject: n%d\r\nMessage-ID: <n%d@example.com>\r\nContent-Type: text/plain\r\n\r\nx\r\n", upn, k, k)
			start := time.Now()
			gid, err := r.sim.DeliverMIME(upn, "inbox", []byte(raw))
			if err != nil {
				b.Fatal(err)
			}
			for {
				if _, err := r.st.Message(id, gid); err == nil {
					break
				}
				if time.Since(start) > 30*time.Second {
					b.Fatalf("message %d never arrived", k)
				}
				time.Sleep(time.Millisecond)
			}
			lat = append(lat, time.Since(start))
		}
		sort.Slice(lat, func(i, j int) bool { return lat[i] < lat[j] })
		b.ReportMetric(float64(lat[49].Milliseconds()), "p50_ms")
		b.ReportMetric(float64(lat[89].Milliseconds()), "p90_ms")
		b.Logf("notification → outbox over 100 messages: p50 %v, p90 %v, max %v", lat[49], lat[89], lat[99])
	}
}
