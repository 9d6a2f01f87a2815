package store

import (
	"encoding/json"
	"fmt"
	"time"

	bolt "go.etcd.io/bbolt"
)

// OAuthState is a pending sign-in: the state parameter handed to Microsoft,
// bound to one mailbox, with the PKCE verifier that redeems its code. The
// whole record is sealed (the verifier is a secret).
type OAuthState struct {
	State     string    `json:"state"`
	MailboxID string    `json:"mailbox_id"`
	Verifier  string    `json:"verifier"`
	ExpiresAt time.Time `json:"expires_at"`
	CreatedBy int64     `json:"created_by"` // Odoo uid that asked for the URL
	CreatedAt time.Time `json:"created_at"`
}

// PutOAuthState stores a pending state.
func (s *Store) PutOAuthState(st OAuthState) error {
	raw, err := json.Marshal(st)
	if err != nil {
		return err
	}
	err = s.db.Update(func(tx *bolt.Tx) error {
		return tx.Bucket(bucketOAuth).Put([]byte(st.State), s.seal.seal(raw, []byte(st.State)))
	})
	if err != nil {
		return fmt.Errorf("store: save oauth state: %w", err)
	}
	return nil
}

// ConsumeOAuthState removes and returns the pending state. It is single use:
// a second call gives ErrNotFound. An expired state is removed and gives
// ErrExpired (with the record, so the caller can name the mailbox).
func (s *Store) ConsumeOAuthState(state string) (OAuthState, error) {
	var st OAuthState
	var expired bool
	err := s.db.Update(func(tx *bolt.Tx) error {
		b := tx.Bucket(bucketOAuth)
		v := b.Get([]byte(state))
		if v == nil {
			return ErrNotFound
		}
		plain, err := s.seal.open(v, []byte(state))
		if err != nil {
			return err
		}
		if err := json.Unmarshal(plain, &st); err != nil {
			return err
		}
		expired = !s.now().Before(st.ExpiresAt)
		return b.Delete([]byte(state))
	})
	if err != nil {
		return OAuthState{}, fmt.Errorf("store: oauth state: %w", err)
	}
	if expired {
		return st, fmt.Errorf("store: oauth state for %s: %w", st.MailboxID, ErrExpired)
	}
	return st, nil
}

// PruneOAuthStates removes expired pending states and returns how many.
func (s *Store) PruneOAuthStates() (int, error) {
	n := 0
	err := s.db.Update(func(tx *bolt.Tx) error {
		b := tx.Bucket(bucketOAuth)
		var dead [][]byte
		_ = b.ForEach(func(k, v []byte) error {
			plain, err := s.seal.open(v, k)
			var st OAuthState
			if err != nil || json.Unmarshal(plain, &st) != nil || !s.now().Before(st.ExpiresAt) {
				dead = append(dead, append([]byte(nil), k...))
			}
			return nil
		})
		for _, k := range dead {
			if err := b.Delete(k); err != nil {
				return err
			}
		}
		n = len(dead)
		return nil
	})
	return n, err
}

func deleteOAuthStatesOf(tx *bolt.Tx, s *Store, mailboxID string) error {
	b := tx.Bucket(bucketOAuth)
	var dead [][]byte
	_ = b.ForEach(func(k, v []byte) error {
		plain, err := s.seal.open(v, k)
		var st OAuthState
		if err == nil && json.Unmarshal(plain, &st) == nil && st.MailboxID == mailboxID {
			dead = append(dead, append([]byte(nil), k...))
		}
		return nil
	})
	for _, k := range dead {
		if err := b.Delete(k); err != nil {
			return err
		}
	}
	return nil
}

// TokenCache returns the opened MSAL cache of a mailbox, or nil when none.
func (s *Store) TokenCache(mailboxID string) ([]byte, error) {
	var out []byte
	err := s.db.View(func(tx *bolt.Tx) error {
		v := tx.Bucket(bucketTokens).Get([]byte(mailboxID))
		if v == nil {
			return nil
		}
		plain, err := s.seal.open(v, []byte("token:"+mailboxID))
		if err != nil {
			return err
		}
		out = plain
		return nil
	})
	if err != nil {
		return nil, fmt.Errorf("store: token cache of %s: %w", mailboxID, err)
	}
	return out, nil
}

// PutTokenCache seals and stores a mailbox's MSAL cache.
func (s *Store) PutTokenCache(mailboxID string, cache []byte) error {
	err := s.db.Update(func(tx *bolt.Tx) error {
		return tx.Bucket(bucketTokens).Put([]byte(mailboxID), s.seal.seal(cache, []byte("token:"+mailboxID)))
	})
	if err != nil {
		return fmt.Errorf("store: save token cache of %s: %w", mailboxID, err)
	}
	return nil
}

// DeleteTokenCache erases a mailbox's tokens.
func (s *Store) DeleteTokenCache(mailboxID string) error {
	err := s.db.Update(func(tx *bolt.Tx) error {
		return tx.Bucket(bucketTokens).Delete([]byte(mailboxID))
	})
	if err != nil {
		return fmt.Errorf("store: delete token cache of %s: %w", mailboxID, err)
	}
	return nil
}
