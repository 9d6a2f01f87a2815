package bridge

import (
	"fmt"

	"github.com/maildesk/maildesk/graphsync"
	"github.com/maildesk/maildesk/store"
)

// Mailbox states (see docs/mailbox-states.md). The store keeps a mailbox's
// state as a string; what the states mean and which may follow which is
// the bridge's.
const (
	StateDraft          = "draft"
	StatePendingConsent = "pending_consent"
	StateConnected      = "connected"
	StateSyncing        = "syncing"
	StateReauthRequired = "reauth_required"
	StateError          = "error"
	StateDisconnected   = "disconnected"
)

// allowed lists the mailbox state machine's transitions (docs/mailbox-states.md).
//
//	draft → pending_consent → connected ⇄ syncing → reauth_required | error | disconnected
var allowed = map[string][]string{
	StateDraft:          {StatePendingConsent, StateDisconnected},
	StatePendingConsent: {StatePendingConsent, StateConnected, StateError, StateDraft, StateDisconnected},
	StateConnected:      {StateSyncing, StateReauthRequired, StateError, StateDisconnected, StatePendingConsent},
	StateSyncing:        {StateConnected, StateReauthRequired, StateError, StateDisconnected},
	StateReauthRequired: {StatePendingConsent, StateConnected, StateDisconnected, StateReauthRequired},
	StateError:          {StatePendingConsent, StateConnected, StateSyncing, StateReauthRequired, StateDisconnected, StateError},
	StateDisconnected:   {StatePendingConsent, StateDisconnected},
}

// CanTransition reports whether the state machine allows from → to.
func CanTransition(from, to string) bool {
	for _, s := range allowed[from] {
		if s == to {
			return true
		}
	}
	return false
}

// Transition moves a mailbox to state `to`, records code and message as its
// error (empty clears it), and audits the change with who made it
// (mailbox.state), in one transaction. It refuses transitions the state
// machine does not allow. extra may change more of the mailbox's status in
// the same transaction (nil for none).
func Transition(st MailboxStore, actor Actor, mailboxID, to, code, message string, extra func(m *store.MailboxStatus)) (store.Mailbox, error) {
	return TransitionAudited(st, actor, mailboxID, to, code, message, extra, "", nil)
}

// TransitionAudited is Transition whose audit entry is the action that
// caused it (mailbox.disconnect, ...) with detail, written even when the
// state stays the same; "" audits a change of state as mailbox.state. The
// entry carries from and to, and is written in the state change's
// transaction.
func TransitionAudited(st MailboxStore, actor Actor, mailboxID, to, code, message string, extra func(m *store.MailboxStatus), action string, detail map[string]any) (store.Mailbox, error) {
	return st.UpdateMailboxStatus(mailboxID, func(m *store.MailboxStatus, c store.MailboxConfig) (*store.AuditEntry, error) {
		from := m.State
		if from != to && !CanTransition(from, to) {
			return nil, Errorf(KindUser, "invalid_state", "Mailbox %s is %s and cannot become %s", c.Email, from, to)
		}
		m.State = to
		m.ErrorCode = code
		m.Error = message
		if extra != nil {
			extra(m)
		}
		if action == "" {
			if from == to {
				return nil, nil
			}
			action = "mailbox.state"
		}
		d := map[string]any{"from": from, "to": to}
		for k, v := range detail {
			d[k] = v
		}
		if code != "" {
			d["code"] = code
		}
		return &store.AuditEntry{UID: actor.UID, Actor: actor.name(), Action: action, Detail: d}, nil
	})
}

// MailboxStore is what the mailbox domain's status writers (transitions,
// the connector, the syncer, the pusher, the scheduler) need of storage: a
// mailbox's status record changed together with its audit entry in one
// transaction. They never write the config (UpdateMailboxConfig, the
// mailbox service's), so neither side overwrites the other's fields.
type MailboxStore interface {
	UpdateMailboxStatus(id string, fn func(st *store.MailboxStatus, c store.MailboxConfig) (*store.AuditEntry, error)) (store.Mailbox, error)
}

// updateStatus changes a mailbox's status with fn, without an audit entry.
func updateStatus(st MailboxStore, id string, fn func(m *store.MailboxStatus) error) (store.Mailbox, error) {
	return st.UpdateMailboxStatus(id, func(m *store.MailboxStatus, _ store.MailboxConfig) (*store.AuditEntry, error) { return nil, fn(m) })
}

// MailboxReader reads one mailbox record.
type MailboxReader interface {
	Mailbox(id string) (store.Mailbox, error)
}

// Accounts answers graphsync.Accounts from the mailbox records: which
// Microsoft account a mailbox signed in as, and — the mailbox domain's
// decision — that a reauth_required mailbox gets no token until its owner
// signs in again.
type Accounts struct{ st MailboxReader }

// NewAccounts returns the graphsync.Accounts of the mailboxes in st.
func NewAccounts(st MailboxReader) Accounts { return Accounts{st: st} }

var _ graphsync.Accounts = Accounts{}

// Account implements graphsync.Accounts.
func (a Accounts) Account(mailboxID string) (graphsync.Account, error) {
	m, err := a.st.Mailbox(mailboxID)
	if err != nil {
		return graphsync.Account{}, err
	}
	acct := graphsync.Account{MailboxID: m.ID, Kind: m.Kind, HomeAccountID: m.HomeAccountID}
	if m.State == StateReauthRequired {
		return acct, &graphsync.ReauthError{MailboxID: mailboxID, Code: "reauth_required", Reason: m.Error}
	}
	if m.HomeAccountID == "" {
		return acct, fmt.Errorf("bridge: mailbox %s: %w", mailboxID, graphsync.ErrNotConnected)
	}
	return acct, nil
}
