package m365sim

import (
	"bytes"
	"context"
	"net/url"
	"os"
	"os/exec"
	"strings"
	"testing"
	"time"

	"github.com/jhillyerd/enmime"
)

func TestGeneratorDeterministicAndRealistic(t *testing.T) {
	mk := func() *Sim {
		s, err := New(Options{Seed: 42, SamplesDir: t.TempDir()})
		if err != nil {
			t.Fatal(err)
		}
		end := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
		s.GenerateMailbox(testUser, 400, GenOptions{End: end, MaxAttachment: 512 * 1024})
		return s
	}
	a, b := mk(), mk()
	ma, mb := a.Messages(testUser, "inbox"), b.Messages(testUser, "inbox")
	if len(ma) == 0 || len(ma) != len(mb) {
		t.Fatalf("inbox sizes %d %d", len(ma), len(mb))
	}
	for i := range ma {
		if ma[i].Subject != mb[i].Subject || ma[i].InternetMessageID != mb[i].InternetMessageID || ma[i].ID != mb[i].ID {
			t.Fatalf("message %d differs", i)
		}
	}
	ra, _ := a.MIME(testUser, ma[3].ID)
	rb, _ := b.MIME(testUser, mb[3].ID)
	if !bytes.Equal(ra, rb) {
		t.Fatal("MIME not deterministic")
	}
	sent := a.Messages(testUser, "sentitems")
	var replies, withAtt, invites, inline, nonASCII int
	for _, box := range [][]MessageInfo{ma, sent} {
		for _, m := range box {
			raw, _ := a.MIME(testUser, m.ID)
			env, err := enmime.ReadEnvelope(bytes.NewReader(raw))
			if err != nil {
				t.Fatalf("generated MIME does not parse: %v", err)
			}
			if env.GetHeader("Subject") != m.Subject {
				t.Fatalf("subject round trip %q != %q", env.GetHeader("Subject"), m.Subject)
			}
			if m.InReplyTo != "" && strings.Contains(m.References, m.InReplyTo) {
				replies++
			}
			if len(env.Attachments) > 0 {
				withAtt++
			}
			if strings.Contains(string(raw), "text/calendar") {
				invites++
			}
			if len(env.Inlines) > 0 || len(env.OtherParts) > 0 {
				inline++
			}
			if strings.Contains(string(raw), "=?utf-8?") || strings.Contains(string(raw), "=?UTF-8?") {
				nonASCII++
			}
			if env.HTML == "" || env.Text == "" {
				t.Fatalf("message %s lacks html or text", m.Subject)
			}
		}
	}
	total := len(ma) + len(sent)
	if len(sent) == 0 || replies == 0 || invites == 0 || inline == 0 || nonASCII == 0 {
		t.Fatalf("sent %d replies %d invites %d inline %d nonASCII %d", len(sent), replies, invites, inline, nonASCII)
	}
	if share := float64(withAtt) / float64(total); share < 0.2 || share > 0.4 {
		t.Fatalf("attachment share %.2f", share)
	}
}

func TestGeneratorReadsEnmimeSamples(t *testing.T) {
	out, err := exec.Command("go", "list", "-m", "-f", "{{.Dir}}", "github.com/jhillyerd/enmime").Output()
	if err != nil || len(bytes.TrimSpace(out)) == 0 {
		t.Skip("enmime module not found")
	}
	dir := strings.TrimSpace(string(out)) + "/testdata/mail"
	if _, err := os.Stat(dir); err != nil {
		t.Skip("enmime testdata not present")
	}
	s, err := New(Options{Seed: 1, SamplesDir: dir})
	if err != nil {
		t.Fatal(err)
	}
	s.GenerateMailbox(testUser, 100, GenOptions{})
	if len(s.samples) == 0 {
		t.Fatal("no samples loaded")
	}
	found := 0
	for _, m := range s.Messages(testUser, "inbox") {
		raw, _ := s.MIME(testUser, m.ID)
		for _, sm := range s.samples {
			if bytes.HasSuffix(raw, sm.raw) {
				found++
				break
			}
		}
	}
	if found < 3 {
		t.Fatalf("samples in mailbox: %d", found)
	}
}

func TestMainServesOIDCAndDelta(t *testing.T) {
	ctx, cancel := context.WithCancel(context.Background())
	caFile := t.TempDir() + "/ca.pem"
	pr, pw := newPipe()
	done := make(chan error, 1)
	go func() {
		done <- Main(ctx, []string{"--listen", "127.0.0.1:0", "--ca-file", caFile, "--mailboxes", "2", "--messages", "30"}, pw)
	}()
	var authority, graph string
	waitFor(t, "startup output", func() bool {
		o := pr.String()
		authority = field(o, "authority:")
		graph = field(o, "graph base URL:")
		return strings.Contains(o, "support@")
	})
	o := pr.String()
	for _, want := range []string{"anna@contoso.com", "ben@contoso.com", defaultClientID, "CA file:", "http://127.0.0.1:*"} {
		if !strings.Contains(o, want) {
			t.Fatalf("output lacks %q:\n%s", want, o)
		}
	}
	// A plain client that trusts only the CA file, as curl --cacert would.
	pem, err := os.ReadFile(caFile)
	if err != nil {
		t.Fatal(err)
	}
	c := clientFromPEM(t, pem)
	res, err := c.Get(authority + "/v2.0/.well-known/openid-configuration")
	if err != nil || res.StatusCode != 200 {
		t.Fatalf("openid-configuration: %v", err)
	}
	res.Body.Close()
	// Sign in anna through the consent form and run a delta call.
	v, ch := pkcePair()
	q := url.Values{"client_id": {defaultClientID}, "response_type": {"code"}, "redirect_uri": {"http://localhost:8069/cb"},
		"scope": {"Mail.Read offline_access"}, "code_challenge": {ch}, "code_challenge_method": {"S256"}, "login_hint": {"anna@contoso.com"}}
	tok := formFlow(t, c, authority, q, v)
	req, _ := newReq("GET", graph+"/me/mailFolders/inbox/messages/delta", tok)
	res, err = c.Do(req)
	if err != nil || res.StatusCode != 200 {
		t.Fatalf("delta: %v %v", err, res)
	}
	res.Body.Close()
	cancel()
	if err := <-done; err != nil {
		t.Fatal(err)
	}
}
