package odoosim

import (
	"context"
	"testing"
	"time"

	"github.com/maildesk/maildesk/bridge/odoo"
)

func TestLoopbackOnly(t *testing.T) {
	s := New(Options{Addr: "0.0.0.0:0"})
	if err := s.Start(); err == nil {
		s.Close()
		t.Fatal("listening on 0.0.0.0 was allowed")
	}
	s = New(Options{Addr: "127.0.0.1:0"})
	if err := s.Start(); err != nil {
		t.Fatal(err)
	}
	s.Close()
}

// TestDownKeepsData: an outage keeps the database and the address.
func TestDownKeepsData(t *testing.T) {
	r := newRig(t, 19)
	r.s.SetItemCost(time.Microsecond)
	r.s.AddPartner("Ada", "ada@example.com")
	url := r.s.URL()
	if res := r.ingest(item("g1", "<d1@ex>", "ada@example.com", "x")); res[0].Status != odoo.StatusPosted {
		t.Fatalf("%+v", res[0])
	}
	if err := r.s.SetDown(true); err != nil {
		t.Fatal(err)
	}
	if _, err := r.c.Ingest(context.Background(), r.mbx, []odoo.IngestItem{item("g1", "<d1@ex>", "ada@example.com", "x")}); !odoo.IsTransient(err) {
		t.Fatalf("down: %v", err)
	}
	if err := r.s.SetDown(false); err != nil {
		t.Fatal(err)
	}
	if r.s.URL() != url {
		t.Errorf("URL changed: %s → %s", url, r.s.URL())
	}
	if res := r.ingest(item("g1", "<d1@ex>", "ada@example.com", "x")); res[0].Status != odoo.StatusDuplicate {
		t.Errorf("after outage: %+v", res[0])
	}
	if st := r.s.IngestCalls(); st.Calls != 2 {
		t.Errorf("calls = %+v (the refused one must not count)", st)
	}
}
