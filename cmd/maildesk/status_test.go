package main

import (
	"bytes"
	"strings"
	"testing"
	"time"

	"github.com/maildesk/maildesk/bridge"
)

func TestProgressBar(t *testing.T) {
	cases := []struct {
		p    bridge.ProgressView
		want string
	}{
		{bridge.ProgressView{}, "-"},
		{bridge.ProgressView{Finished: true}, "done"},
		{bridge.ProgressView{Done: 0, Total: 400}, "[----------] 0/400 0%"},
		{bridge.ProgressView{Done: 120, Total: 400}, "[###-------] 120/400 30%"},
		{bridge.ProgressView{Done: 400, Total: 400, Finished: true}, "[##########] 400/400 100% done"},
		{bridge.ProgressView{Done: 450, Total: 400}, "[##########] 450/400 100%"},
		{bridge.ProgressView{Done: 17}, "[??????????] 17/?"},
	}
	for _, c := range cases {
		if got := progressBar(c.p); got != c.want {
			t.Errorf("progressBar(%+v) = %q, want %q", c.p, got, c.want)
		}
	}
}

func TestPrintStatusShowsBackfillAndDelivery(t *testing.T) {
	since := time.Date(2026, 11, 22, 9, 30, 0, 0, time.Local)
	h := bridge.Health{Status: "degraded", Components: map[string]bridge.ComponentStatus{
		"store": {Status: "ok"}, "odoo": {Status: "degraded", Detail: "connection refused"}}}
	mbs := []bridge.MailboxView{
		{Email: "info@example.com", Kind: "shared", Mode: "sync", State: "syncing",
			Progress: bridge.ProgressView{Done: 250, Total: 1000},
			Delivery: bridge.DeliveryView{Delayed: true, Reason: "Odoo is not answering:\nconnection refused", Since: &since}},
		{Email: "anna@example.com", Kind: "personal", Mode: "sync", State: "connected",
			Progress: bridge.ProgressView{Done: 80, Total: 80, Finished: true}},
	}
	var out bytes.Buffer
	printStatus(&out, "http://127.0.0.1:8765", h, mbs)
	got := out.String()
	lines := strings.Split(got, "\n")
	find := func(prefix string) string {
		for _, l := range lines {
			if strings.HasPrefix(l, prefix) {
				return l
			}
		}
		t.Fatalf("no line starting %q in:\n%s", prefix, got)
		return ""
	}
	header := find("MAILBOX")
	for _, col := range []string{"BACKFILL", "DELIVERY"} {
		if !strings.Contains(header, col) {
			t.Errorf("header has no %s column: %q", col, header)
		}
	}
	info := find("info@example.com")
	for _, want := range []string{"[##--------] 250/1000 25%", "DELAYED since 09:30: Odoo is not answering: connection refused"} {
		if !strings.Contains(info, want) {
			t.Errorf("info line lacks %q: %q", want, info)
		}
	}
	anna := find("anna@example.com")
	for _, want := range []string{"[##########] 80/80 100% done", " ok "} {
		if !strings.Contains(anna+" ", want) {
			t.Errorf("anna line lacks %q: %q", want, anna)
		}
	}
	if !strings.Contains(got, "MailDesk at http://127.0.0.1:8765: DEGRADED") || !strings.Contains(find("odoo"), "connection refused") {
		t.Errorf("health part:\n%s", got)
	}
}
