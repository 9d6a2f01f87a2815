package m365sim

import (
	"context"
	"flag"
	"fmt"
	"io"
	"os"
	"strings"
	"time"
)

// Main implements `maildesk sim`: it seeds a simulator, prints where it
// is and who is in it, and serves until ctx is cancelled.
func Main(ctx context.Context, args []string, stdout io.Writer) error {
	fs := flag.NewFlagSet("sim", flag.ContinueOnError)
	fs.SetOutput(stdout)
	listen := fs.String("listen", "127.0.0.1:8766", "address to listen on (TLS)")
	caFile := fs.String("ca-file", "", "write the CA certificate (PEM) here so clients can trust the simulator")
	seed := fs.Int64("seed", 1, "seed for the deterministic generator")
	mailboxes := fs.Int("mailboxes", 3, "number of user mailboxes to seed (plus one shared mailbox)")
	messages := fs.Int("messages", 200, "messages per seeded mailbox")
	tenant := fs.String("tenant", "", "tenant id (default: a GUID derived from the seed)")
	throttle := fs.Bool("throttle", true, "enforce Graph's per app+mailbox limits")
	scale := fs.Float64("time-scale", 1, "speed factor for limits and latency")
	autoApprove := fs.Bool("auto-approve", false, "skip the consent page for users who already consented")
	if err := fs.Parse(args); err != nil {
		return fmt.Errorf("sim: %w", err)
	}
	s, err := New(Options{Listen: *listen, Seed: *seed, Tenant: *tenant, Throttle: *throttle, TimeScale: *scale, AutoApprove: *autoApprove})
	if err != nil {
		return err
	}
	users := Seed(s, *mailboxes, *messages)
	if err := s.Start(); err != nil {
		return err
	}
	defer s.Close()
	if *caFile != "" {
		if err := os.WriteFile(*caFile, s.CAPEM(), 0o644); err != nil {
			return fmt.Errorf("sim: write CA file %s: %w", *caFile, err)
		}
	}
	app := DefaultApp()
	fmt.Fprintf(stdout, "Microsoft 365 simulator listening\n")
	fmt.Fprintf(stdout, "  authority:      %s\n", s.AuthorityURL())
	fmt.Fprintf(stdout, "  openid config:  %s/v2.0/.well-known/openid-configuration\n", s.AuthorityURL())
	fmt.Fprintf(stdout, "  graph base URL: %s\n", s.GraphBaseURL())
	if *caFile != "" {
		fmt.Fprintf(stdout, "  CA file:        %s\n", *caFile)
	} else {
		fmt.Fprintf(stdout, "  CA file:        (not written; pass --ca-file)\n")
	}
	fmt.Fprintf(stdout, "  tenant:         %s\n", s.Tenant())
	fmt.Fprintf(stdout, "  client id:      %s\n", app.ClientID)
	fmt.Fprintf(stdout, "  client secret:  %s (simulator only)\n", app.ClientSecret)
	fmt.Fprintf(stdout, "  redirect URIs:  %s\n", strings.Join(app.RedirectURIs, " "))
	fmt.Fprintf(stdout, "  users:\n")
	for _, u := range users {
		kind := "user"
		if u.Shared {
			kind = "shared"
		}
		fmt.Fprintf(stdout, "    %-32s %-7s %s (%d messages)\n", u.UPN, kind, u.ID, u.MessageCount())
	}
	if len(users) > 0 {
		if tok, err := s.IssueToken(users[0].UPN, app.ClientID); err == nil {
			fmt.Fprintf(stdout, "  test token for %s (simulator only, 1 h):\n    %s\n", users[0].UPN, tok)
			fmt.Fprintf(stdout, "  try: curl --cacert CA_FILE -H 'Authorization: Bearer TOKEN' '%s/me/mailFolders/inbox/messages/delta'\n", s.GraphBaseURL())
		}
	}
	<-ctx.Done()
	return nil
}

// Seed adds n users with m generated messages each and one shared mailbox
// ("support@") that every seeded user has full access and send-as on; the
// first user's inbox also gets the hostile sample (HostileMIME), half an
// hour old, so the demo and the end-to-end test show it through the real
// sidecar. It returns the users in creation order.
func Seed(s *Sim, n, m int) []*User {
	names := []string{"Anna Schmidt", "Ben Okafor", "Chloé Martin", "Dmitri Ivanov", "Eva Lindqvist", "Farid Haddad", "Grace Kim", "Hiro Tanaka"}
	var out []*User
	var grants []Grant
	for i := 0; i < n; i++ {
		name := names[i%len(names)]
		first := strings.ToLower(strings.Fields(name)[0])
		first = strings.NewReplacer("é", "e", "ö", "o", "ü", "u").Replace(first)
		upn := first + "@" + s.Domain()
		if i >= len(names) {
			upn = fmt.Sprintf("%s%d@%s", first, i/len(names)+1, s.Domain())
			name = fmt.Sprintf("%s %d", name, i/len(names)+1)
		}
		u := s.AddUser(upn, name)
		s.GenerateMailbox(upn, m, GenOptions{PrivateRate: DemoPrivateRate})
		out = append(out, u)
		grants = append(grants, Grant{User: upn, FullAccess: true, SendAs: true})
	}
	if n > 0 {
		at := time.Now().Add(-30 * time.Minute).Truncate(time.Second)
		msgID := "<hostile.sample@" + HostileHost + ">"
		if _, err := s.deliverMIME(out[0].UPN, "inbox", HostileMIME(out[0].UPN, msgID, at), at, true); err != nil {
			panic(err) // a fixed, well-formed message
		}
		sh := s.AddSharedMailbox("support@"+s.Domain(), "Support", grants...)
		s.GenerateMailbox(sh.UPN, m, GenOptions{SentRate: 0.1, PrivateRate: DemoPrivateRate})
		out = append(out, sh)
	}
	return out
}

// MessageCount is the number of messages in the user's mailbox.
func (u *User) MessageCount() int {
	u.mb.mu.Lock()
	defer u.mb.mu.Unlock()
	return len(u.mb.byImm)
}
