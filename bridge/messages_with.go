package bridge

import (
	"strings"

	"github.com/maildesk/maildesk/store"
)

// withAddress matches the index entries from, to or cc address (exact, any
// case); nil for an empty address.
func withAddress(address string) func(*store.Message) bool {
	a := strings.ToLower(strings.TrimSpace(address))
	if a == "" {
		return nil
	}
	is := func(x store.Address) bool { return strings.EqualFold(strings.TrimSpace(x.Email), a) }
	return func(m *store.Message) bool {
		if is(m.From) {
			return true
		}
		for _, x := range m.To {
			if is(x) {
				return true
			}
		}
		for _, x := range m.Cc {
			if is(x) {
				return true
			}
		}
		return false
	}
}
