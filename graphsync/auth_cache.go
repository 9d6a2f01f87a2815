package graphsync

import (
	"context"
	"encoding/json"
	"fmt"
	"sync"

	"github.com/AzureAD/microsoft-authentication-library-for-go/apps/cache"
)

// tokenCache persists one mailbox's MSAL cache in the store (sealed there).
//
// MSAL calls Replace before every read and Export after every write. The
// client's in-memory cache stays the truth once loaded, because every write
// goes through Export: Replace reads the store only the first time (or after
// reload), so a Token call costs no database read and no copy of the bytes is
// kept beside MSAL's own.
//
// A staging cache (a sign-in not yet checked) keeps its export in memory
// until commit, so a wrong account never reaches the store.
type tokenCache struct {
	st        TokenCaches
	mailboxID string

	mu      sync.Mutex
	loaded  bool
	staging bool
	staged  []byte
}

var _ cache.ExportReplace = (*tokenCache)(nil)

func (c *tokenCache) Replace(ctx context.Context, u cache.Unmarshaler, _ cache.ReplaceHints) error {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.loaded || c.staging {
		return nil
	}
	if err := ctx.Err(); err != nil {
		return err
	}
	raw, err := c.st.TokenCache(c.mailboxID)
	if err != nil {
		return fmt.Errorf("graphsync: load token cache: %w", err)
	}
	if raw == nil {
		raw = []byte("{}") // erased: start empty rather than keep stale memory
	}
	if err := u.Unmarshal(raw); err != nil {
		return fmt.Errorf("graphsync: token cache of %s does not parse: %w", c.mailboxID, err)
	}
	c.loaded = true
	return nil
}

func (c *tokenCache) Export(ctx context.Context, m cache.Marshaler, _ cache.ExportHints) error {
	raw, err := m.Marshal()
	if err != nil {
		return fmt.Errorf("graphsync: marshal token cache: %w", err)
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.staging {
		c.staged = raw
		return nil
	}
	if err := c.st.PutTokenCache(c.mailboxID, raw); err != nil {
		return fmt.Errorf("graphsync: save token cache: %w", err)
	}
	c.loaded = true
	return nil
}

// reload makes the next Replace read the store again.
func (c *tokenCache) reload() {
	c.mu.Lock()
	c.loaded = false
	c.mu.Unlock()
}

// commit writes a staged cache to the store and turns staging off.
func (c *tokenCache) commit() error {
	c.mu.Lock()
	defer c.mu.Unlock()
	if !c.staging {
		return nil
	}
	if c.staged == nil {
		return fmt.Errorf("graphsync: sign-in of %s produced no tokens to store", c.mailboxID)
	}
	if err := c.st.PutTokenCache(c.mailboxID, c.staged); err != nil {
		return err
	}
	c.staged, c.staging, c.loaded = nil, false, true
	return nil
}

// dropAccessTokens removes the access tokens from a serialised MSAL cache
// and keeps everything else (refresh tokens, accounts, id tokens) as it is.
// The format is MSAL's shared cache schema, whose "AccessToken" section is
// common to every MSAL library.
func dropAccessTokens(raw []byte) ([]byte, error) {
	var top map[string]json.RawMessage
	if err := json.Unmarshal(raw, &top); err != nil {
		return nil, fmt.Errorf("token cache does not parse: %w", err)
	}
	delete(top, "AccessToken")
	return json.Marshal(top)
}
