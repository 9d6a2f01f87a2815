package m365sim

import (
	"context"
	"encoding/json"
	"io"
	"net/http"
	"net/http/httptest"
	"sync"
	"testing"
	"time"
)

type receiver struct {
	mu        sync.Mutex
	validated int
	notes     []map[string]any
	refuse    bool
}

func (rc *receiver) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	if tok := r.URL.Query().Get("validationToken"); tok != "" {
		rc.mu.Lock()
		rc.validated++
		refuse := rc.refuse
		rc.mu.Unlock()
		if refuse {
			http.Error(w, "no", 500)
			return
		}
		w.Header().Set("Content-Type", "text/plain")
		_, _ = io.WriteString(w, tok)
		return
	}
	var body struct {
		Value []map[string]any `json:"value"`
	}
	_ = json.NewDecoder(r.Body).Decode(&body)
	rc.mu.Lock()
	rc.notes = append(rc.notes, body.Value...)
	rc.mu.Unlock()
	w.WriteHeader(http.StatusAccepted)
}

func (rc *receiver) count() int {
	rc.mu.Lock()
	defer rc.mu.Unlock()
	return len(rc.notes)
}

func TestSubscriptionNotificationsCarryClientState(t *testing.T) {
	s := newSim(t, Options{})
	tok, _ := token(t, s, testUser, allScopes)
	rc := &receiver{}
	srv := httptest.NewTLSServer(rc)
	defer srv.Close()
	exp := time.Now().Add(time.Hour).UTC().Format(time.RFC3339Nano)
	r := call(t, s, tok, "POST", "/subscriptions", map[string]any{
		"changeType": "created,updated", "notificationUrl": srv.URL + "/hook", "lifecycleNotificationUrl": srv.URL + "/life",
		"resource": "me/mailFolders('Inbox')/messages", "expirationDateTime": exp, "clientState": "secret-state-1",
	}, "Prefer", immutable)
	if r.status != 201 {
		t.Fatalf("create: %d %s", r.status, r.body)
	}
	sub := r.json(t)
	if sub["clientState"] != "secret-state-1" || sub["applicationId"] != defaultClientID || rc.validated != 2 {
		t.Fatalf("subscription: %v (validations %d)", sub, rc.validated)
	}
	id := deliver(t, s, testUser, "inbox", "notify me")
	deliver(t, s, testUser, "archive", "not watched")
	waitFor(t, "notification", func() bool { return rc.count() >= 1 })
	rc.mu.Lock()
	n := rc.notes[0]
	rc.mu.Unlock()
	rd := n["resourceData"].(map[string]any)
	if n["clientState"] != "secret-state-1" || n["changeType"] != "created" || n["subscriptionId"] != sub["id"] || rd["id"] != id || rd["@odata.type"] != "#Microsoft.Graph.Message" {
		t.Fatalf("notification: %v", n)
	}
	s.MarkRead(testUser, id, true)
	waitFor(t, "update notification", func() bool { return rc.count() >= 2 })

	// Lifecycle event.
	if err := s.SendLifecycle(context.Background(), sub["id"].(string), LifecycleMissed); err != nil {
		t.Fatal(err)
	}
	rc.mu.Lock()
	last := rc.notes[len(rc.notes)-1]
	rc.mu.Unlock()
	if last["lifecycleEvent"] != "missed" || last["clientState"] != "secret-state-1" {
		t.Fatalf("lifecycle: %v", last)
	}

	// Renew, too long, delete.
	subURL := "/subscriptions/" + sub["id"].(string)
	if r := call(t, s, tok, "PATCH", subURL, map[string]string{"expirationDateTime": time.Now().Add(2 * time.Hour).UTC().Format(time.RFC3339Nano)}); r.status != 200 || r.json(t)["resource"] == nil {
		t.Fatalf("renew: %d %s", r.status, r.body)
	}
	if r := call(t, s, tok, "PATCH", subURL, map[string]string{"expirationDateTime": time.Now().Add(5000 * time.Minute).UTC().Format(time.RFC3339Nano)}); r.status != 400 {
		t.Fatalf("renew beyond 4230 min: %d", r.status)
	}
	if r := call(t, s, tok, "DELETE", subURL, nil); r.status != 204 {
		t.Fatalf("delete: %d", r.status)
	}
	if len(s.Subscriptions()) != 0 {
		t.Fatal("subscription still listed")
	}

	// A failed handshake refuses the subscription; shared mailboxes cannot be subscribed.
	rc.mu.Lock()
	rc.refuse = true
	rc.mu.Unlock()
	if r := call(t, s, tok, "POST", "/subscriptions", map[string]any{"changeType": "created", "notificationUrl": srv.URL,
		"resource": "me/messages", "expirationDateTime": exp, "clientState": "x"}); r.status != 400 || r.errCode(t) != "ValidationError" {
		t.Fatalf("failed handshake: %d %s", r.status, r.body)
	}
	s.AddSharedMailbox("support@contoso.com", "Support", Grant{User: testUser, FullAccess: true})
	if r := call(t, s, tok, "POST", "/subscriptions", map[string]any{"changeType": "created", "notificationUrl": srv.URL,
		"resource": "users/support@contoso.com/messages", "expirationDateTime": exp}); r.status != 403 {
		t.Fatalf("shared subscription: %d", r.status)
	}
}
