package graphsync

import (
	"context"
	"encoding/json"
	"fmt"
	"net/url"
	"time"

	abs "github.com/microsoft/kiota-abstractions-go"
)

// Subscription is a Graph change-notification subscription.
type Subscription struct {
	ID          string    `json:"id"`
	Resource    string    `json:"resource"`
	ClientState string    `json:"clientState"`
	Expires     time.Time `json:"expirationDateTime"`
}

// SubscriptionOptions describe a new subscription.
type SubscriptionOptions struct {
	NotificationURL string
	LifecycleURL    string
	ClientState     string // at most 128 characters, checked on every notification
	Expires         time.Time
}

// CreateSubscription subscribes to created messages of the mailbox (all
// folders): a notification only triggers a delta round. It is sent with
// Prefer: IdType="ImmutableId" (the transport adds it to every request), so
// notifications carry immutable ids. Graph validates the notification URLs
// before it answers.
func (m *Mailbox) CreateSubscription(ctx context.Context, o SubscriptionOptions) (Subscription, error) {
	body := map[string]any{
		"changeType":         "created,updated,deleted",
		"notificationUrl":    o.NotificationURL,
		"resource":           "/users/" + m.user + "/messages",
		"expirationDateTime": o.Expires.UTC().Format("2006-01-02T15:04:05.0000000Z"),
		"clientState":        o.ClientState,
	}
	if o.LifecycleURL != "" {
		body["lifecycleNotificationUrl"] = o.LifecycleURL
	}
	var sub Subscription
	if err := m.jsonCall(ctx, abs.POST, m.c.cfg.BaseURL+"/subscriptions", body, &sub); err != nil {
		return Subscription{}, fmt.Errorf("graphsync: create subscription for %s: %w", m.id, err)
	}
	return sub, nil
}

// RenewSubscription moves a subscription's expiry.
func (m *Mailbox) RenewSubscription(ctx context.Context, id string, expires time.Time) (Subscription, error) {
	var sub Subscription
	body := map[string]any{"expirationDateTime": expires.UTC().Format("2006-01-02T15:04:05.0000000Z")}
	if err := m.jsonCall(ctx, abs.PATCH, m.c.cfg.BaseURL+"/subscriptions/"+url.PathEscape(id), body, &sub); err != nil {
		return Subscription{}, fmt.Errorf("graphsync: renew subscription %s: %w", id, err)
	}
	return sub, nil
}

// DeleteSubscription removes a subscription (404 counts as done).
func (m *Mailbox) DeleteSubscription(ctx context.Context, id string) error {
	err := m.jsonCall(ctx, abs.DELETE, m.c.cfg.BaseURL+"/subscriptions/"+url.PathEscape(id), nil, nil)
	if err != nil && !IsNotFound(err) {
		return fmt.Errorf("graphsync: delete subscription %s: %w", id, err)
	}
	return nil
}

func (m *Mailbox) jsonCall(ctx context.Context, method abs.HttpMethod, rawURL string, in, out any) error {
	ri := abs.NewRequestInformation()
	ri.Method = method
	u, err := url.Parse(rawURL)
	if err != nil {
		return err
	}
	ri.SetUri(*u)
	ri.Headers.TryAdd("Accept", "application/json")
	if in != nil {
		b, err := json.Marshal(in)
		if err != nil {
			return err
		}
		ri.SetStreamContentAndContentType(b, "application/json")
	}
	body, err := m.send(ctx, ri)
	if err != nil {
		return err
	}
	if out != nil && len(body) > 0 {
		if err := json.Unmarshal(body, out); err != nil {
			return fmt.Errorf("decode answer: %w", err)
		}
	}
	return nil
}

// Notification is one change notification or lifecycle event.
type Notification struct {
	SubscriptionID string `json:"subscriptionId"`
	ClientState    string `json:"clientState"`
	ChangeType     string `json:"changeType"`
	Resource       string `json:"resource"`
	LifecycleEvent string `json:"lifecycleEvent"`
}

// ParseNotifications decodes a notification POST body ({"value":[...]}).
func ParseNotifications(body []byte) ([]Notification, error) {
	var env struct {
		Value []Notification `json:"value"`
	}
	if err := json.Unmarshal(body, &env); err != nil {
		return nil, fmt.Errorf("graphsync: decode notifications: %w", err)
	}
	return env.Value, nil
}
