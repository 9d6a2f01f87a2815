// Package guard owns who may reach the sidecar's HTTP listener before any
// handler runs: the allow-list of client addresses (--allow-from) and the TLS
// certificate of the listener (--tls-cert, --tls-key), reloaded from its files
// when they change so a renewed certificate needs no restart.
//
// The allow-list is defence in depth: every JSON-RPC call still needs the
// bearer shared secret. It checks the TCP peer of the connection, never a
// header such as X-Forwarded-For, which any client can write. Behind a reverse
// proxy, the peer is the proxy.
package guard

import (
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"net/netip"
	"strings"
)

// AllowList is a set of client addresses and networks. A nil or empty list
// allows every address. Immutable once parsed; safe for concurrent use.
type AllowList struct {
	prefixes []netip.Prefix
}

// ParseAllowList parses entries separated by commas, spaces or newlines; each
// is an IPv4 or IPv6 address ("10.0.4.2", "::1") or a network in CIDR
// notation ("10.0.4.0/24", "fd00::/8"). Every bad entry is reported in one
// error. An empty string gives an empty list (allow all).
func ParseAllowList(s string) (*AllowList, error) {
	a := &AllowList{}
	var bad []string
	for _, f := range strings.FieldsFunc(s, func(r rune) bool {
		return r == ',' || r == ' ' || r == '\n' || r == '\t' || r == ';'
	}) {
		p, err := parseEntry(f)
		if err != nil {
			bad = append(bad, fmt.Sprintf("%q", f))
			continue
		}
		a.prefixes = append(a.prefixes, p)
	}
	if len(bad) > 0 {
		return nil, fmt.Errorf("guard: allow-from: %s %s not an IP address or CIDR network (like 10.0.4.2 or 10.0.4.0/24)",
			strings.Join(bad, ", "), map[bool]string{true: "is", false: "are"}[len(bad) == 1])
	}
	return a, nil
}

func parseEntry(s string) (netip.Prefix, error) {
	if strings.Contains(s, "/") {
		p, err := netip.ParsePrefix(s)
		if err != nil {
			return netip.Prefix{}, err
		}
		if p.Addr().Is4In6() {
			p = netip.PrefixFrom(p.Addr().Unmap(), p.Bits()-96)
			if p.Bits() < 0 {
				return netip.Prefix{}, errors.New("mapped prefix too short")
			}
		}
		return p.Masked(), nil
	}
	ip, err := netip.ParseAddr(s)
	if err != nil {
		return netip.Prefix{}, err
	}
	ip = ip.Unmap().WithZone("")
	return netip.PrefixFrom(ip, ip.BitLen()), nil
}

// Empty reports whether the list allows everything.
func (a *AllowList) Empty() bool { return a == nil || len(a.prefixes) == 0 }

// Allows reports whether ip may connect. IPv4-mapped IPv6 addresses
// (::ffff:10.0.0.1, as a dual-stack listener reports IPv4 peers) match IPv4
// entries.
func (a *AllowList) Allows(ip netip.Addr) bool {
	if a.Empty() {
		return true
	}
	if !ip.IsValid() {
		return false
	}
	ip = ip.Unmap().WithZone("")
	for _, p := range a.prefixes {
		if p.Contains(ip) {
			return true
		}
	}
	return false
}

// String lists the entries in canonical form, comma-separated ("" when empty).
func (a *AllowList) String() string {
	if a.Empty() {
		return ""
	}
	parts := make([]string, len(a.prefixes))
	for i, p := range a.prefixes {
		if p.IsSingleIP() {
			parts[i] = p.Addr().String()
		} else {
			parts[i] = p.String()
		}
	}
	return strings.Join(parts, ",")
}

// PeerAddr is the IP address of the TCP peer of r (r.RemoteAddr), or the
// zero Addr when it has none (a unix-socket listener).
func PeerAddr(r *http.Request) netip.Addr {
	if ap, err := netip.ParseAddrPort(r.RemoteAddr); err == nil {
		return ap.Addr().Unmap().WithZone("")
	}
	if ip, err := netip.ParseAddr(r.RemoteAddr); err == nil {
		return ip.Unmap().WithZone("")
	}
	return netip.Addr{}
}

// Options configure Middleware.
type Options struct {
	// Allow is the allow-list; nil or empty lets everyone through.
	Allow *AllowList
	// ExemptPrefixes are URL path prefixes reachable from any address: the
	// Graph change-notification webhook (Microsoft calls it from its own
	// addresses) and the health probes. "/healthz" exempts "/healthz" and
	// "/healthz/…", not "/healthzz".
	ExemptPrefixes []string
	// AllowLoopback lets 127.0.0.0/8 and ::1 through whatever the list
	// says: the host's own tools (`maildesk status`, `maildesk backup`, a
	// container's health check) still need the bearer secret, and a
	// loopback peer is on the sidecar's own host or container.
	AllowLoopback bool
	// OnDeny, when set, is told of each refused request (log it, count it).
	OnDeny func(r *http.Request, peer netip.Addr)
}

// Middleware refuses requests from addresses outside the allow-list with
// HTTP 403. On the JSON-RPC routes (/jsonrpc and /jsonrpc/<method>) the body
// is an Odoo-shaped AccessDenied error, so the addon shows the admin why;
// elsewhere it is plain text.
func Middleware(opts Options, next http.Handler) http.Handler {
	if opts.Allow.Empty() {
		return next
	}
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		peer := PeerAddr(r)
		if opts.Allow.Allows(peer) || (opts.AllowLoopback && peer.IsLoopback()) || exempt(r.URL.Path, opts.ExemptPrefixes) {
			next.ServeHTTP(w, r)
			return
		}
		if opts.OnDeny != nil {
			opts.OnDeny(r, peer)
		}
		Deny(w, r, peer)
	})
}

func exempt(path string, prefixes []string) bool {
	for _, p := range prefixes {
		p = strings.TrimSuffix(p, "/")
		if p == "" {
			continue
		}
		if path == p || strings.HasPrefix(path, p+"/") {
			return true
		}
	}
	return false
}

// IsJSONRPCPath reports whether path is one of the JSON-RPC routes.
func IsJSONRPCPath(path string) bool {
	return path == "/jsonrpc" || strings.HasPrefix(path, "/jsonrpc/")
}

// DeniedCode is error.data.code of the AccessDenied answer.
const DeniedCode = "address_not_allowed"

// Deny writes the 403 answer for peer.
func Deny(w http.ResponseWriter, r *http.Request, peer netip.Addr) {
	who := "this address"
	if peer.IsValid() {
		who = peer.String()
	}
	msg := fmt.Sprintf("The MailDesk sidecar does not accept calls from %s. Add the Odoo server's address to the sidecar's allow-list (--allow-from or MAILDESK_ALLOW_FROM).", who)
	if !IsJSONRPCPath(r.URL.Path) {
		w.Header().Set("Content-Type", "text/plain; charset=utf-8")
		w.Header().Set("X-Content-Type-Options", "nosniff")
		w.WriteHeader(http.StatusForbidden)
		_, _ = w.Write([]byte(msg + "\n"))
		return
	}
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(http.StatusForbidden)
	_, _ = w.Write(accessDeniedBody(msg))
}

// accessDeniedBody is the JSON-RPC error Odoo itself would send for
// AccessDenied (API.md): code 200, data.name the exception, data.code ours.
// The id is null: the body of a refused client is not read.
func accessDeniedBody(msg string) []byte {
	type data struct {
		Name      string   `json:"name"`
		Message   string   `json:"message"`
		Arguments []string `json:"arguments"`
		Code      string   `json:"code"`
		Debug     string   `json:"debug"`
	}
	type rpcErr struct {
		Code    int    `json:"code"`
		Message string `json:"message"`
		Data    data   `json:"data"`
	}
	b, _ := json.Marshal(struct {
		JSONRPC string `json:"jsonrpc"`
		ID      any    `json:"id"`
		Error   rpcErr `json:"error"`
	}{"2.0", nil, rpcErr{200, "MailDesk Error", data{
		Name: "odoo.exceptions.AccessDenied", Message: msg, Arguments: []string{msg}, Code: DeniedCode,
	}}})
	return b
}
