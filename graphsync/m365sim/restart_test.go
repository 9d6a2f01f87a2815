package m365sim

import (
	"strings"
	"testing"
)

// A restarted simulator (same seed: same users, folders and message ids)
// refuses the delta and next links of the earlier run with Graph's 410
// SyncStateNotFound instead of taking them for its own.
func TestRestartedSimRefusesEarlierDeltaLinks(t *testing.T) {
	mk := func() (*Sim, string) {
		s := newSim(t, Options{Seed: 5})
		s.GenerateMailbox(testUser, 30, GenOptions{NoSamples: true, AttachmentRate: -1, SentRate: -1})
		tok, _ := token(t, s, testUser, allScopes)
		return s, tok
	}
	s1, tok1 := mk()
	_, dl, _ := round(t, s1, tok1, "/me/mailFolders/inbox/messages/delta")
	next, _ := call(t, s1, tok1, "GET", "/me/mailFolders/inbox/messages/delta()", nil).json(t)["@odata.nextLink"].(string)
	if next == "" {
		t.Fatal("no nextLink")
	}
	s2, tok2 := mk()
	if m1, m2 := s1.Messages(testUser, "inbox"), s2.Messages(testUser, "inbox"); len(m1) != len(m2) || m1[0].ID != m2[0].ID {
		t.Fatal("same seed, different mailboxes")
	}
	for _, link := range []string{dl, next} {
		moved := strings.Replace(link, s1.URL(), s2.URL(), 1)
		r := call(t, s2, tok2, "GET", moved, nil)
		if r.status != 410 || r.errCode(t) != "SyncStateNotFound" {
			t.Fatalf("earlier run's link on the restarted simulator: %d %s", r.status, r.body)
		}
	}
	// Mail that arrives after the restart never gets an id an earlier run
	// gave other mail (seeded mail keeps its ids, checked above).
	if a, b := deliver(t, s1, testUser, "inbox", "to the first run"), deliver(t, s2, testUser, "inbox", "to the second run"); a == b {
		t.Fatalf("both runs gave a new message the id %s", a)
	}
	// The run that issued them still takes them; the new run's own work.
	if r := call(t, s1, tok1, "GET", dl, nil); r.status != 200 || len(r.json(t)["value"].([]any)) != 1 {
		t.Fatalf("own deltaLink: %d %s", r.status, r.body)
	}
	if items, _, _ := round(t, s2, tok2, "/me/mailFolders/inbox/messages/delta"); len(items) != len(s2.Messages(testUser, "inbox")) {
		t.Fatalf("fresh round on the restarted simulator saw %d", len(items))
	}
}

// RevokeAccessTokens refuses the current access token until a refresh;
// RejectTokens refuses n requests whatever the token.
func TestTokenFaultKnobs(t *testing.T) {
	s := newSim(t, Options{})
	tok, rt := token(t, s, testUser, allScopes)
	s.RevokeAccessTokens(testUser)
	if r := call(t, s, tok, "GET", "/me", nil); r.status != 401 || r.errCode(t) != "InvalidAuthenticationToken" {
		t.Fatalf("revoked token: %d %s", r.status, r.body)
	}
	st, body := redeem(t, s, map[string][]string{"grant_type": {"refresh_token"}, "refresh_token": {rt}, "scope": {allScopes}})
	if st != 200 || s.TokenGrants("refresh_token") != 1 {
		t.Fatalf("refresh after revoke: %d %v (grants %d)", st, body, s.TokenGrants("refresh_token"))
	}
	fresh := body["access_token"].(string)
	if r := call(t, s, fresh, "GET", "/me", nil); r.status != 200 {
		t.Fatalf("fresh token: %d", r.status)
	}
	s.RejectTokens(testUser, 2)
	for i := 0; i < 2; i++ {
		if r := call(t, s, fresh, "GET", "/me", nil); r.status != 401 || r.errCode(t) != "InvalidAuthenticationToken" {
			t.Fatalf("rejected request %d: %d", i, r.status)
		}
	}
	if r := call(t, s, fresh, "GET", "/me", nil); r.status != 200 {
		t.Fatalf("after the rejected requests: %d", r.status)
	}
	if got := s.Stats(testUser).Rejected; got != 2 {
		t.Fatalf("Rejected %d", got)
	}
}
