package m365sim

import (
	"strings"
	"testing"

	"github.com/jhillyerd/enmime"
)

// Seed puts the hostile sample in the first user's inbox (only there),
// with every trick it names still in its HTML.
func TestSeedHasTheHostileSample(t *testing.T) {
	s, err := New(Options{Seed: 1, SamplesDir: t.TempDir()})
	if err != nil {
		t.Fatal(err)
	}
	users := Seed(s, 2, 20)
	var found []MessageInfo
	for i, u := range users {
		for _, m := range s.Messages(u.UPN, "inbox") {
			if m.Subject == HostileSubject {
				if i != 0 {
					t.Fatalf("the hostile sample is in %s's inbox too", u.UPN)
				}
				found = append(found, m)
			}
		}
	}
	if len(found) != 1 {
		t.Fatalf("%d hostile samples in %s's inbox, want 1", len(found), users[0].UPN)
	}
	if n := users[0].MessageCount(); n != 21 {
		t.Fatalf("%s holds %d messages, want the 20 generated and the sample", users[0].UPN, n)
	}
	raw, ok := s.MIME(users[0].UPN, found[0].ID)
	if !ok {
		t.Fatal("no MIME for the sample")
	}
	env, err := enmime.ReadEnvelope(strings.NewReader(string(raw)))
	if err != nil {
		t.Fatal(err)
	}
	for _, trick := range []string{"<script>", `onload="`, `onerror="`, `onmouseover="`, "javascript:", `srcset="https://` + HostileHost,
		`src="https://` + HostileHost, "url(https://" + HostileHost, "@import", "<iframe", "<object", "<embed", "<form", `formaction="`,
		`http-equiv="refresh"`, `<link rel="stylesheet"`, "position:fixed", "display:none", `poster="`, "<svg"} {
		if !strings.Contains(env.HTML, trick) {
			t.Errorf("the sample's HTML has no %q", trick)
		}
	}
	if env.GetHeader("From") != "Billing <"+HostileFrom+">" {
		t.Errorf("From %q", env.GetHeader("From"))
	}
}
