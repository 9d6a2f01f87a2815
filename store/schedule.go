package store

import (
	"encoding/binary"
	"fmt"
	"time"

	bolt "go.etcd.io/bbolt"
)

// SetDue stores when a mailbox should sync next. The scheduler writes it
// before each attempt, so a crash does not cause a retry storm.
func (s *Store) SetDue(mailboxID string, at time.Time) error {
	err := s.db.Update(func(tx *bolt.Tx) error {
		return tx.Bucket(bucketDue).Put([]byte(mailboxID), u64(uint64(at.UnixNano())))
	})
	if err != nil {
		return fmt.Errorf("store: set due %s: %w", mailboxID, err)
	}
	return nil
}

// SetDueMany stores the next sync time of several mailboxes in one
// transaction (one disk sync for a pass of the scheduler).
func (s *Store) SetDueMany(due map[string]time.Time) error {
	if len(due) == 0 {
		return nil
	}
	err := s.db.Update(func(tx *bolt.Tx) error {
		b := tx.Bucket(bucketDue)
		for id, at := range due {
			if err := b.Put([]byte(id), u64(uint64(at.UnixNano()))); err != nil {
				return err
			}
		}
		return nil
	})
	if err != nil {
		return fmt.Errorf("store: set due times: %w", err)
	}
	return nil
}

// DueTimes returns every mailbox's next sync time.
func (s *Store) DueTimes() (map[string]time.Time, error) {
	out := map[string]time.Time{}
	err := s.db.View(func(tx *bolt.Tx) error {
		return tx.Bucket(bucketDue).ForEach(func(k, v []byte) error {
			if len(v) == 8 {
				out[string(k)] = time.Unix(0, int64(binary.BigEndian.Uint64(v)))
			}
			return nil
		})
	})
	if err != nil {
		return nil, fmt.Errorf("store: due times: %w", err)
	}
	return out, nil
}

// SendRecord remembers a message.send by its client request id, so a retried
// call does not send twice.
type SendRecord struct {
	RequestID         string    `json:"request_id"`
	InternetMessageID string    `json:"internet_message_id"`
	QueuedAt          time.Time `json:"queued_at"`
	Status            string    `json:"status"` // sending | sent | failed
	Error             string    `json:"error,omitempty"`
	SentAs            string    `json:"sent_as,omitempty"`
}

// ClaimSend records a send under requestID unless one exists; it returns the
// existing record and false when the request id was used before.
func (s *Store) ClaimSend(mailboxID string, rec SendRecord) (SendRecord, bool, error) {
	var existing SendRecord
	claimed := false
	err := s.db.Update(func(tx *bolt.Tx) error {
		b, err := sub(tx, bucketSends, mailboxID, true)
		if err != nil {
			return err
		}
		if err := getJSON(b, []byte(rec.RequestID), &existing); err == nil {
			return nil
		}
		claimed = true
		existing = rec
		return putJSON(b, []byte(rec.RequestID), rec)
	})
	if err != nil {
		return SendRecord{}, false, fmt.Errorf("store: claim send %s: %w", rec.RequestID, err)
	}
	return existing, claimed, nil
}

// PutSend updates a send record.
func (s *Store) PutSend(mailboxID string, rec SendRecord) error {
	err := s.db.Update(func(tx *bolt.Tx) error {
		b, err := sub(tx, bucketSends, mailboxID, true)
		if err != nil {
			return err
		}
		return putJSON(b, []byte(rec.RequestID), rec)
	})
	if err != nil {
		return fmt.Errorf("store: save send %s: %w", rec.RequestID, err)
	}
	return nil
}
