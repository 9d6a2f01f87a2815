package m365sim

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/url"
	"strings"
	"time"
)

// maxSubscriptionLife is the documented maximum for Outlook messages
// (4,230 minutes; FACTS.md "change notifications").
const maxSubscriptionLife = 4230 * time.Minute

type subscription struct {
	id           string
	app          *App
	user         *User
	folder       *folder // nil: every folder
	resource     string
	changeTypes  map[string]bool
	changeType   string
	notifyURL    string
	lifecycleURL string
	clientState  string
	expires      time.Time
	renewals     int // PATCHes that set expirationDateTime
	immutable    bool
	created      time.Time
}

// SubscriptionInfo describes a subscription (driver API).
type SubscriptionInfo struct {
	ID, Resource, ChangeType, NotificationURL, LifecycleNotificationURL, ClientState string
	User                                                                             string
	Expires                                                                          time.Time
	// Renewals counts the PATCHes that renewed it: a test waits on the
	// renewal itself, since a renewal within the same second may leave
	// Expires where it was.
	Renewals int
}

func (s *Sim) subJSON(sub *subscription) map[string]any {
	m := map[string]any{
		"@odata.context":            s.GraphBaseURL() + "/$metadata#subscriptions/$entity",
		"id":                        sub.id,
		"resource":                  sub.resource,
		"applicationId":             sub.app.ClientID,
		"changeType":                sub.changeType,
		"clientState":               nilIfEmpty(sub.clientState),
		"notificationUrl":           sub.notifyURL,
		"expirationDateTime":        sub.expires.UTC().Format("2006-01-02T15:04:05.0000000Z"),
		"creatorId":                 sub.user.ID,
		"latestSupportedTlsVersion": "v1_2",
		"encryptionCertificate":     nil,
		"encryptionCertificateId":   nil,
		"includeResourceData":       false,
		"notificationContentType":   "application/json",
	}
	if sub.lifecycleURL != "" {
		m["lifecycleNotificationUrl"] = sub.lifecycleURL
	}
	return m
}

func notifyURLOK(raw string) bool {
	u, err := url.Parse(raw)
	if err != nil || u.Host == "" {
		return false
	}
	if u.Scheme == "https" {
		return true
	}
	if u.Scheme != "http" {
		return false
	}
	host := u.Hostname()
	if host == "localhost" {
		return true
	}
	ip := net.ParseIP(host)
	return ip != nil && ip.IsLoopback()
}

func (s *Sim) serveSubscriptions(g *greq) {
	r := g.r
	segs := g.segs // ["subscriptions", id?, "reauthorize"?]
	if len(segs) == 1 {
		switch r.Method {
		case http.MethodPost:
			s.createSubscription(g)
		case http.MethodGet:
			s.mu.Lock()
			vals := []any{}
			for _, sub := range s.subs {
				if sub.app == g.at.app {
					vals = append(vals, s.subJSON(sub))
				}
			}
			s.mu.Unlock()
			writeJSON(g.w, 200, map[string]any{"@odata.context": s.GraphBaseURL() + "/$metadata#subscriptions", "value": vals})
		default:
			g.error(405, "BadRequest", "Method not allowed.")
		}
		return
	}
	s.mu.Lock()
	sub := s.subs[segs[1]]
	if sub != nil && (sub.app != g.at.app || time.Now().After(sub.expires)) {
		sub = nil
	}
	s.mu.Unlock()
	if sub == nil {
		g.error(404, "ResourceNotFound", "The object was not found.")
		return
	}
	if len(segs) == 3 && segs[2] == "reauthorize" && r.Method == http.MethodPost {
		g.w.WriteHeader(http.StatusNoContent)
		return
	}
	switch r.Method {
	case http.MethodGet:
		s.mu.Lock()
		out := s.subJSON(sub)
		s.mu.Unlock()
		writeJSON(g.w, 200, out)
	case http.MethodPatch:
		var body struct {
			ExpirationDateTime string `json:"expirationDateTime"`
		}
		if err := json.NewDecoder(r.Body).Decode(&body); err != nil {
			g.badRequest("Invalid JSON body.")
			return
		}
		exp, msg := parseExpiry(body.ExpirationDateTime)
		if msg != "" {
			g.error(400, "ExtensionError", msg)
			return
		}
		s.mu.Lock()
		sub.expires = exp
		sub.renewals++
		out := s.subJSON(sub)
		s.mu.Unlock()
		writeJSON(g.w, 200, out)
	case http.MethodDelete:
		s.mu.Lock()
		delete(s.subs, sub.id)
		s.mu.Unlock()
		g.w.WriteHeader(http.StatusNoContent)
	default:
		g.error(405, "BadRequest", "Method not allowed.")
	}
}

func parseExpiry(v string) (time.Time, string) {
	exp, err := time.Parse(time.RFC3339Nano, v)
	if err != nil {
		return exp, "expirationDateTime is missing or not an ISO 8601 date."
	}
	now := time.Now()
	if !exp.After(now) {
		return exp, "Subscription expiration date must be in the future."
	}
	if exp.Sub(now) > maxSubscriptionLife+time.Minute {
		return exp, fmt.Sprintf("Subscription expiration can only be %d minutes in the future.", int(maxSubscriptionLife/time.Minute))
	}
	return exp, ""
}

// resolveResource maps a subscription resource to mailbox and folder.
func (s *Sim) resolveResource(g *greq, res string) (*User, *folder, bool) {
	segs := splitPath(res)
	if len(segs) == 0 {
		return nil, nil, false
	}
	var u *User
	switch strings.ToLower(segs[0]) {
	case "me":
		u, segs = g.at.user, segs[1:]
	case "users":
		if len(segs) < 2 {
			return nil, nil, false
		}
		u, segs = s.user(segs[1]), segs[2:]
	default:
		return nil, nil, false
	}
	if u == nil {
		return nil, nil, false
	}
	switch {
	case len(segs) == 1 && strings.EqualFold(segs[0], "messages"):
		return u, nil, true
	case len(segs) == 3 && strings.EqualFold(segs[0], "mailFolders") && strings.EqualFold(segs[2], "messages"):
		u.mb.mu.Lock()
		f := u.mb.folder(segs[1])
		u.mb.mu.Unlock()
		return u, f, f != nil
	}
	return nil, nil, false
}

func (s *Sim) createSubscription(g *greq) {
	var body struct {
		ChangeType               string `json:"changeType"`
		NotificationURL          string `json:"notificationUrl"`
		LifecycleNotificationURL string `json:"lifecycleNotificationUrl"`
		Resource                 string `json:"resource"`
		ExpirationDateTime       string `json:"expirationDateTime"`
		ClientState              string `json:"clientState"`
	}
	if err := json.NewDecoder(g.r.Body).Decode(&body); err != nil {
		g.badRequest("Invalid JSON body.")
		return
	}
	cts := map[string]bool{}
	for _, c := range strings.Split(body.ChangeType, ",") {
		c = strings.TrimSpace(c)
		if c != "created" && c != "updated" && c != "deleted" {
			g.error(400, "ExtensionError", "Invalid changeType '"+c+"'.")
			return
		}
		cts[c] = true
	}
	if !notifyURLOK(body.NotificationURL) || (body.LifecycleNotificationURL != "" && !notifyURLOK(body.LifecycleNotificationURL)) {
		g.error(400, "ValidationError", "The notification URL must be https (or http on loopback in this simulator).")
		return
	}
	if len(body.ClientState) > 128 {
		g.error(400, "ValidationError", "clientState must not be longer than 128 characters.")
		return
	}
	exp, msg := parseExpiry(body.ExpirationDateTime)
	if msg != "" {
		g.error(400, "ExtensionError", msg)
		return
	}
	u, f, ok := s.resolveResource(g, body.Resource)
	if !ok {
		g.error(400, "ExtensionError", "Operation: Create; Exception: [Status Code: BadRequest; Reason: The resource '"+body.Resource+"' is not supported.]")
		return
	}
	if u != g.at.user {
		// Delegated *.Shared scopes cannot subscribe to other mailboxes (FACTS.md).
		g.error(403, "ExtensionError", "Operation: Create; Exception: [Status Code: Forbidden; Reason: Access is denied. Check credentials and try again.]")
		return
	}
	if !(g.at.scopes["mail.read"] || g.at.scopes["mail.readwrite"] || g.at.scopes["mail.readbasic"]) {
		g.error(403, "ExtensionError", "Operation: Create; Exception: [Status Code: Forbidden; Reason: Access is denied. Check credentials and try again.]")
		return
	}
	for _, target := range []string{body.NotificationURL, body.LifecycleNotificationURL} {
		if target == "" {
			continue
		}
		if err := s.validateEndpoint(g.r.Context(), target); err != nil {
			g.error(400, "ValidationError", "Subscription validation request failed. Notification endpoint must respond with 200 OK to validation request. ("+err.Error()+")")
			return
		}
	}
	sub := &subscription{id: guidFrom(s.opts.Seed, "sub", randToken("", 8)), app: g.at.app, user: u, folder: f, resource: body.Resource,
		changeTypes: cts, changeType: body.ChangeType, notifyURL: body.NotificationURL, lifecycleURL: body.LifecycleNotificationURL,
		clientState: body.ClientState, expires: exp, immutable: g.immutable, created: time.Now()}
	s.mu.Lock()
	s.subs[sub.id] = sub
	out := s.subJSON(sub)
	s.mu.Unlock()
	writeJSON(g.w, 201, out)
}

// validateEndpoint runs the validation handshake (sample 62).
func (s *Sim) validateEndpoint(ctx context.Context, target string) error {
	token := "Validation: Testing client application reachability for subscription Request-Id: " + newRequestID()
	u, err := url.Parse(target)
	if err != nil {
		return err
	}
	q := u.Query()
	q.Set("validationToken", token)
	u.RawQuery = q.Encode()
	ctx, cancel := context.WithTimeout(ctx, 10*time.Second)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, u.String(), nil)
	if err != nil {
		return err
	}
	req.Header.Set("Content-Type", "text/plain; charset=utf-8")
	resp, err := s.notify.Do(req)
	if err != nil {
		return fmt.Errorf("validation POST: %w", err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(io.LimitReader(resp.Body, 4096))
	if resp.StatusCode != 200 {
		return fmt.Errorf("validation answered %d", resp.StatusCode)
	}
	if string(b) != token {
		return fmt.Errorf("validation answer does not echo the token")
	}
	return nil
}

// notifyChange posts change notifications (sample 63) to matching
// subscriptions, in the background.
func (s *Sim) notifyChange(u *User, f *folder, m *message, changeType string) {
	if s.closed.Load() {
		return
	}
	now := time.Now()
	type target struct {
		sub     *subscription
		expires time.Time
	}
	s.mu.Lock()
	var targets []target
	for _, sub := range s.subs {
		if sub.user == u && (sub.folder == nil || sub.folder == f) && sub.changeTypes[changeType] && now.Before(sub.expires) {
			targets = append(targets, target{sub, sub.expires})
		}
	}
	s.mu.Unlock()
	if len(targets) == 0 {
		return
	}
	u.mb.mu.Lock()
	imm, rest, etag := m.imm, m.rest, m.changeKey()
	u.mb.mu.Unlock()
	for _, tg := range targets {
		sub := tg.sub
		id := rest
		if sub.immutable {
			id = imm
		}
		res := "Users/" + u.ID + "/Messages/" + id
		payload := map[string]any{"value": []any{map[string]any{
			"id":                             randToken("", 10),
			"subscriptionId":                 sub.id,
			"subscriptionExpirationDateTime": tg.expires.UTC().Format("2006-01-02T15:04:05.0000000+00:00"),
			"clientState":                    nilIfEmpty(sub.clientState),
			"changeType":                     changeType,
			"resource":                       res,
			"tenantId":                       s.tenant,
			"resourceData": map[string]any{
				"@odata.type": "#Microsoft.Graph.Message",
				"@odata.id":   res,
				"@odata.etag": `W/"` + etag + `"`,
				"id":          id,
			},
		}}}
		s.post(sub.notifyURL, payload)
	}
}

func (s *Sim) post(target string, payload any) {
	b, _ := json.Marshal(payload)
	s.mu.Lock() // Close takes s.mu before it waits: no Add after Wait
	if s.closed.Load() {
		s.mu.Unlock()
		return
	}
	s.bg.Add(1)
	s.mu.Unlock()
	go func() {
		defer s.bg.Done()
		defer s.recoverBG()
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		if err := s.postNow(ctx, target, b); err != nil {
			s.mu.Lock()
			s.total.NotifyFailed++
			s.mu.Unlock()
			s.log.Warn().Err(err).Msg("m365sim: notification not delivered")
			return
		}
		s.mu.Lock()
		s.total.Notifications++
		s.mu.Unlock()
	}()
}

func (s *Sim) postNow(ctx context.Context, target string, body []byte) error {
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, target, bytes.NewReader(body))
	if err != nil {
		return err
	}
	req.Header.Set("Content-Type", "application/json")
	resp, err := s.notify.Do(req)
	if err != nil {
		return err
	}
	_, _ = io.Copy(io.Discard, io.LimitReader(resp.Body, 1<<16))
	resp.Body.Close()
	if resp.StatusCode < 200 || resp.StatusCode > 299 {
		return fmt.Errorf("notification answered %d", resp.StatusCode)
	}
	return nil
}

// Lifecycle events (samples 64-66).
const (
	LifecycleReauthorizationRequired = "reauthorizationRequired"
	LifecycleSubscriptionRemoved     = "subscriptionRemoved"
	LifecycleMissed                  = "missed"
)

// SendLifecycle posts a lifecycle event to the subscription's
// lifecycleNotificationUrl and waits for the answer. subscriptionRemoved
// also deletes the subscription.
func (s *Sim) SendLifecycle(ctx context.Context, subscriptionID, event string) error {
	s.mu.Lock()
	sub := s.subs[subscriptionID]
	var expires time.Time
	if sub != nil {
		expires = sub.expires
	}
	if sub != nil && event == LifecycleSubscriptionRemoved {
		delete(s.subs, subscriptionID)
	}
	s.mu.Unlock()
	if sub == nil {
		return fmt.Errorf("m365sim: lifecycle: unknown subscription %s", subscriptionID)
	}
	if sub.lifecycleURL == "" {
		return fmt.Errorf("m365sim: lifecycle: subscription %s has no lifecycleNotificationUrl", subscriptionID)
	}
	b, _ := json.Marshal(map[string]any{"value": []any{map[string]any{
		"lifecycleEvent":                 event,
		"subscriptionId":                 sub.id,
		"subscriptionExpirationDateTime": expires.UTC().Format("2006-01-02T15:04:05.0000000+00:00"),
		"clientState":                    nilIfEmpty(sub.clientState),
		"tenantId":                       s.tenant,
	}}})
	ctx, cancel := context.WithTimeout(ctx, 10*time.Second)
	defer cancel()
	if err := s.postNow(ctx, sub.lifecycleURL, b); err != nil {
		return fmt.Errorf("m365sim: lifecycle %s: %w", event, err)
	}
	return nil
}

// Subscriptions lists live subscriptions.
func (s *Sim) Subscriptions() []SubscriptionInfo {
	s.mu.Lock()
	defer s.mu.Unlock()
	var out []SubscriptionInfo
	now := time.Now()
	for _, sub := range s.subs {
		if now.After(sub.expires) {
			continue
		}
		out = append(out, SubscriptionInfo{ID: sub.id, Resource: sub.resource, ChangeType: sub.changeType, NotificationURL: sub.notifyURL,
			LifecycleNotificationURL: sub.lifecycleURL, ClientState: sub.clientState, User: sub.user.UPN, Expires: sub.expires, Renewals: sub.renewals})
	}
	return out
}
