package bridge_test

import (
	"context"
	"crypto/rand"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/rs/zerolog"

	"github.com/maildesk/maildesk/bridge"
	"github.com/maildesk/maildesk/graphsync"
	"github.com/maildesk/maildesk/store"
)

type fixedTokens struct{}

func (fixedTokens) Token(context.Context, string) (string, error) { return "t0k", nil }

// fakeGraph answers the few send requests with what the simulator cannot
// show: a Send on Behalf copy (sender ≠ from), throttling, a failing upload.
type fakeGraph struct {
	mu      sync.Mutex
	seen    []string
	handler func(w http.ResponseWriter, r *http.Request) bool // true: handled
}

func (f *fakeGraph) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	f.mu.Lock()
	f.seen = append(f.seen, r.Method+" "+r.URL.Path)
	f.mu.Unlock()
	if f.handler(w, r) {
		return
	}
	w.WriteHeader(http.StatusNotFound)
	_, _ = w.Write([]byte(`{"error":{"code":"ErrorItemNotFound","message":"not here"}}`))
}

func (f *fakeGraph) requests() []string {
	f.mu.Lock()
	defer f.mu.Unlock()
	return append([]string(nil), f.seen...)
}

func newFakeSender(t *testing.T, fg *fakeGraph, kind string) (*bridge.Sender, store.Mailbox) {
	t.Helper()
	srv := httptest.NewTLSServer(fg)
	t.Cleanup(srv.Close)
	r := newRig(t, rigOpts{})
	graph, err := graphsync.New(graphsync.Config{BaseURL: srv.URL + "/v1.0", Transport: srv.Client().Transport, Tokens: fixedTokens{},
		Retry: graphsync.RetryOptions{MaxAttempts: 2, BaseDelay: time.Millisecond, MaxDelay: 2 * time.Millisecond, MaxPause: 10 * time.Millisecond}})
	if err != nil {
		t.Fatal(err)
	}
	s, err := bridge.NewSender(bridge.SenderConfig{Store: r.st, Graph: graph, Mailboxes: bridge.NewMailboxes(r.st, zerolog.Nop()), Log: zerolog.Nop()})
	if err != nil {
		t.Fatal(err)
	}
	email := "anna@contoso.com"
	if kind == "shared" {
		email = "sales@contoso.com"
	}
	m, err := r.st.CreateMailbox(store.Mailbox{MailboxConfig: store.MailboxConfig{Email: email, Kind: kind, OwnerUID: 2, MainUserID: 2, Mode: "log", MaxMessageBytes: 100 << 20}, MailboxStatus: store.MailboxStatus{ConnectedAs: "anna@contoso.com", State: bridge.StateConnected}})
	if err != nil {
		t.Fatal(err)
	}
	return s, m
}

func TestSendSharedOnBehalfIsReported(t *testing.T) {
	fg := &fakeGraph{handler: func(w http.ResponseWriter, r *http.Request) bool {
		p := r.URL.Path
		switch {
		case r.Method == http.MethodPost && strings.HasSuffix(p, "/users/sales@contoso.com/messages"):
			w.Header().Set("Content-Type", "application/json")
			w.WriteHeader(201)
			_, _ = w.Write([]byte(`{"id":"AAMkDraft1","internetMessageId":"<EX1@prod.outlook.com>"}`))
		case r.Method == http.MethodPost && strings.HasSuffix(p, "/messages/AAMkDraft1/send"),
			r.Method == http.MethodPost && strings.HasSuffix(p, "/users/sales@contoso.com/sendMail"):
			w.WriteHeader(202)
		case r.Method == http.MethodGet && strings.HasSuffix(p, "/messages/AAMkDraft1"):
			w.Header().Set("Content-Type", "application/json")
			_, _ = w.Write([]byte(`{"id":"AAMkDraft1","from":{"emailAddress":{"address":"sales@contoso.com"}},"sender":{"emailAddress":{"name":"Anna","address":"anna@contoso.com"}}}`))
		default:
			return false
		}
		return true
	}}
	s, m := newFakeSender(t, fg, "shared")
	for i, want := range []int{3, 1} { // draft+send+read back, then one sendMail
		before := len(fg.requests())
		res, err := s.Send(context.Background(), anna, bridge.SendParams{MailboxID: m.ID,
			MIMEBase64: b64(odooReply("sales@contoso.com", "carl@customer.example", "<ob@odoo.contoso.com>", nil))})
		if err != nil {
			t.Fatal(err)
		}
		if res.SentAs != bridge.SentAsOnBehalf {
			t.Fatalf("send %d: sent_as %q, want on_behalf", i, res.SentAs)
		}
		// The draft came back with a Message-Id of Exchange's: answered
		// (recipients see it); sendMail keeps ours.
		if wantID := map[int]string{0: "<EX1@prod.outlook.com>", 1: "<ob@odoo.contoso.com>"}[i]; res.InternetMessageID != wantID {
			t.Fatalf("send %d: internet_message_id %q, want %q", i, res.InternetMessageID, wantID)
		}
		if n := len(fg.requests()) - before; n != want {
			t.Fatalf("send %d: %d requests %v, want %d", i, n, fg.requests()[before:], want)
		}
	}
}

func TestSendThrottledAndFailedUploadCleansUp(t *testing.T) {
	var mu sync.Mutex
	deleted := 0
	fg := &fakeGraph{handler: func(w http.ResponseWriter, r *http.Request) bool {
		p := r.URL.Path
		switch {
		case strings.HasSuffix(p, "/sendMail"):
			w.Header().Set("Retry-After", "0")
			w.Header().Set("Content-Type", "application/json")
			w.WriteHeader(429)
			_, _ = w.Write([]byte(`{"error":{"code":"ApplicationThrottled","message":"Application is over its MailboxConcurrency limit."}}`))
		case r.Method == http.MethodPost && strings.HasSuffix(p, "/messages"):
			w.Header().Set("Content-Type", "application/json")
			w.WriteHeader(201)
			_, _ = w.Write([]byte(`{"id":"AAMkD2"}`))
		case strings.HasSuffix(p, "/createUploadSession"):
			w.Header().Set("Content-Type", "application/json")
			w.WriteHeader(201)
			_, _ = w.Write([]byte(`{"uploadUrl":"https://` + r.Host + `/upload/s1?authtoken=x"}`))
		case strings.HasPrefix(p, "/upload/"):
			if r.Header.Get("Authorization") != "" {
				w.WriteHeader(401)
				return true
			}
			w.Header().Set("Content-Type", "application/json")
			w.WriteHeader(416)
			_, _ = w.Write([]byte(`{"error":{"code":"invalidRange","message":"overlap"}}`))
		case r.Method == http.MethodDelete && strings.HasSuffix(p, "/messages/AAMkD2"):
			mu.Lock()
			deleted++
			mu.Unlock()
			w.WriteHeader(204)
		default:
			return false
		}
		return true
	}}
	s, m := newFakeSender(t, fg, "personal")
	_, err := s.Send(context.Background(), anna, bridge.SendParams{MailboxID: m.ID, RequestID: "t1",
		MIMEBase64: b64(odooReply("anna@contoso.com", "carl@customer.example", "<t1@odoo.contoso.com>", nil))})
	if codeOfErr(err) != "throttled" {
		t.Fatalf("429: %v", err)
	}
	att := make([]byte, 5<<20)
	_, _ = rand.Read(att)
	_, err = s.Send(context.Background(), anna, bridge.SendParams{MailboxID: m.ID, RequestID: "t2",
		MIMEBase64: b64(odooReply("anna@contoso.com", "carl@customer.example", "<t2@odoo.contoso.com>", att))})
	if codeOfErr(err) != "graph_error" || !strings.Contains(err.Error(), "invalidRange") {
		t.Fatalf("failed upload: %v", err)
	}
	mu.Lock()
	defer mu.Unlock()
	if deleted != 1 {
		t.Fatalf("draft deleted %d times, want 1 (requests %v)", deleted, fg.requests())
	}
}
