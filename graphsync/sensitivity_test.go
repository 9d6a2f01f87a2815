package graphsync_test

import (
	"context"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/microsoftgraph/msgraph-sdk-go/models"

	"github.com/maildesk/maildesk/graphsync"
	"github.com/maildesk/maildesk/graphsync/m365sim"
)

// Every property the pages ask for is a property of Graph v1.0's message as
// msgraph-sdk-go knows it: Graph answers 400 to an unknown $select property
// and the whole sync would stop. (sensitivity is not one: see Sensitivity.)
func TestMessageSelectIsGraphMessage(t *testing.T) {
	known := models.NewMessage().GetFieldDeserializers()
	for _, p := range graphsync.MessageSelect {
		if _, ok := known[p]; !ok {
			t.Errorf("MessageSelect asks for %q, which Graph v1.0's message does not have", p)
		}
	}
}

// A delta page brings each message's sensitivity (from the Sensitivity header
// Exchange writes) and its threading ids, with no request per message.
func TestSensitivityAndThreadingFromDeltaPage(t *testing.T) {
	sim := newSim(t, m365sim.Options{Seed: 11, TimeScale: 100})
	upn := "anna@" + sim.Domain()
	sim.GenerateMailbox(upn, 30, m365sim.GenOptions{NoSamples: true, AttachmentRate: -1, End: time.Now().Add(-time.Hour)})
	inbox := sim.Messages(upn, "inbox")
	priv, conf := inbox[0].ID, inbox[1].ID
	if !sim.SetSensitivity(upn, priv, "private") || !sim.SetSensitivity(upn, conf, "confidential") {
		t.Fatal("SetSensitivity refused")
	}
	var refs []string
	for i := 0; i < 25; i++ {
		refs = append(refs, fmt.Sprintf("<r%02d@example.com>", i))
	}
	raw := "From: Zoë <zoe@example.de>\r\nTo: " + upn + "\r\nSubject: personal\r\nMessage-ID: <p1@example.de>\r\n" +
		"In-Reply-To: <r24@example.com>\r\nReferences: " + strings.Join(refs, "\r\n ") + "\r\nSensitivity: Personal\r\n" +
		"Content-Type: text/plain; charset=utf-8\r\n\r\nhello\r\n"
	pers, err := sim.DeliverMIME(upn, "inbox", []byte(raw))
	if err != nil {
		t.Fatal(err)
	}
	toks := newSimTokens(sim)
	toks.add("mbx_a", upn)
	c := newClient(t, sim, toks, 100)
	m, err := c.Mailbox("mbx_a", upn)
	if err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	before := sim.Stats(upn)
	p, err := m.DeltaStart(ctx, "inbox", time.Time{}, 200)
	if err != nil {
		t.Fatal(err)
	}
	if p.NextLink != "" {
		t.Fatal("expected one page")
	}
	if got := sim.Stats(upn).Requests - before.Requests; got != 1 {
		t.Fatalf("%d requests for one page, want 1", got)
	}
	byID := map[string]*graphsync.Message{}
	for _, msg := range p.Messages {
		byID[msg.ID] = msg
	}
	want := map[string]string{priv: "private", conf: "confidential", pers: "personal"}
	normal, replies := 0, 0
	for id, msg := range byID {
		s := msg.Sensitivity()
		if w, ok := want[id]; ok {
			if s != w {
				t.Errorf("message %s: sensitivity %q, want %q", id, s, w)
			}
			continue
		}
		if s != graphsync.SensitivityNormal {
			t.Errorf("message %s: sensitivity %q, want normal", id, s)
		}
		normal++
		if msg.InReplyTo() != "" {
			replies++
			if r := msg.References(); len(r) == 0 || r[len(r)-1] != msg.InReplyTo() {
				t.Errorf("message %s: references %v do not end with in-reply-to %s", id, r, msg.InReplyTo())
			}
		}
	}
	if normal == 0 || replies == 0 {
		t.Fatalf("%d normal messages, %d replies: the generated mailbox should have both", normal, replies)
	}
	pm := byID[pers]
	if pm == nil {
		t.Fatal("delivered message not in the page")
	}
	if pm.InReplyTo() != "<r24@example.com>" {
		t.Errorf("in-reply-to %q", pm.InReplyTo())
	}
	if r := pm.References(); len(r) != graphsync.MaxReferences || r[0] != "<r05@example.com>" || r[19] != "<r24@example.com>" {
		t.Errorf("references kept: %v (want the last 20)", r)
	}
}

func TestSensitivityOf(t *testing.T) {
	for in, want := range map[string]string{"": "normal", "Personal": "personal", " private ": "private",
		"Company-Confidential": "confidential", "company confidential": "confidential", "bogus": "normal"} {
		if got := graphsync.SensitivityOf(in); got != want {
			t.Errorf("SensitivityOf(%q) = %q, want %q", in, got, want)
		}
	}
	m := &graphsync.Message{MIME: []byte("Subject: x\r\nSensitivity: Private\r\n\r\nbody")}
	if got := m.Sensitivity(); got != "private" {
		t.Errorf("from MIME: %q", got)
	}
}
