// Package odoosim is an in-memory Odoo for tests and the demo: it speaks
// /jsonrpc (common.version, common.login/authenticate, object.execute_kw) and,
// from version 19, JSON-2 (/json/2/<model>/<method>) with the envelopes, HTTP
// statuses and error shapes recorded from real Odoo 18 and 19
// (shared/odoo-transcripts). It holds the models MailDesk touches (res.partner,
// res.users, mail.message, mail.activity(.type), ir.model, crm.lead,
// maildesk.mailbox with maildesk_ingest / maildesk_notify) and has switchable
// latency and faults (down, slow, 5xx, serialization errors, revoked key).
// It binds 127.0.0.1 only.
package odoosim

import (
	"crypto/rand"
	"encoding/hex"
	"fmt"
	"net"
	"net/http"
	"sync"
	"time"
)

// User is an extra user to seed.
type User struct {
	ID, PartnerID int64 // 0 = next free
	Name, Login   string
	Password      string
	Email         string
	APIKeys       []string
	Groups        []string // e.g. "base.group_user"; empty = internal user only
}

// Options configure a Server.
type Options struct {
	// Version is the Odoo major version to mimic: 17, 18 (default) or 19.
	Version int
	// DB is the database name (default "odoo"); OtherDBs makes it a multi-database server.
	DB       string
	OtherDBs []string
	// AdminPassword of user "admin" (uid 2), default "admin"; AdminAPIKeys are extra keys for admin.
	AdminPassword string
	AdminAPIKeys  []string
	// TechLogin and APIKey of the technical user MailDesk uses (defaults
	// "maildesk-bot" and a random 40-hex key). TechUserID/TechPartnerID fix its ids.
	TechLogin     string
	APIKey        string
	TechUserID    int64
	TechPartnerID int64
	// Users are more users to seed.
	Users []User
	// Addr to listen on; "127.0.0.1:0" (a free port) when empty. Must be a loopback address.
	Addr string
	// Latency added to every call.
	Latency time.Duration
	// ItemCost is added per maildesk_ingest item while the database is held, as a
	// one-worker Odoo spends time per message; 0 by default.
	ItemCost time.Duration
	// Now is the clock (time.Now when nil).
	Now func() time.Time
}

// FaultKind is what FailNext makes the next calls fail with.
type FaultKind int

const (
	// FaultHTTP500 answers an HTML 500 Internal Server Error.
	FaultHTTP500 FaultKind = iota
	// FaultHTTP503 answers 503 Service Unavailable, as a proxy in front of a restarting Odoo does.
	FaultHTTP503
	// FaultSerialization answers Odoo's error for a PostgreSQL serialization failure
	// (a /jsonrpc envelope, or JSON-2 HTTP 500).
	FaultSerialization
	// FaultReset closes the connection without an answer.
	FaultReset
)

// Server is the simulated Odoo.
type Server struct {
	opts Options

	mu sync.Mutex // guards d and the auth state below
	d  *db
	// tech user
	techUID    int64
	techKey    string
	keyRevoked bool

	fmu       sync.Mutex // guards faults, latency and the listener
	latency   time.Duration
	slow      time.Duration
	down      bool
	failN     int
	failKind  FaultKind
	addr      string
	itemCost  time.Duration
	ln        net.Listener
	srv       *http.Server
	calls     int64
	closed    bool
	serveDone []chan struct{}
}

// New builds a server with its seed data; Start makes it listen.
func New(opts Options) *Server {
	if opts.Version == 0 {
		opts.Version = 18
	}
	if opts.DB == "" {
		opts.DB = "odoo"
	}
	if opts.AdminPassword == "" {
		opts.AdminPassword = "admin"
	}
	if opts.TechLogin == "" {
		opts.TechLogin = "maildesk-bot"
	}
	if opts.APIKey == "" {
		var b [20]byte
		_, _ = rand.Read(b[:])
		opts.APIKey = hex.EncodeToString(b[:])
	}
	if opts.Now == nil {
		opts.Now = time.Now
	}
	s := &Server{opts: opts, latency: opts.Latency, techKey: opts.APIKey, addr: opts.Addr, itemCost: opts.ItemCost}
	s.d = &db{version: opts.Version, now: opts.Now, tables: map[string]*table{}, seq: map[string]int64{},
		byMessageID: map[string][]int64{}, byGraphID: map[string][]int64{},
		byConversation: map[string][]int64{}}
	s.d.models = s.buildModels()
	s.d.itemCost = s.currentItemCost
	s.seed()
	return s
}

func (s *Server) seed() {
	d := s.d
	v := s.opts.Version
	d.insert("res.partner", 1, record{"name": "My Company", "is_company": true, "active": true})
	d.insert("res.partner", 2, record{"name": "OdooBot", "email": "odoobot@example.com", "active": true})
	d.insert("res.partner", 3, record{"name": "Administrator", "email": "admin@example.com", "active": true})
	d.insert("res.partner", 4, record{"name": "Public user", "active": false})
	d.insert("res.users", 1, record{"name": "OdooBot", "login": "__system__", "partner_id": int64(2), "active": false, "_groups": []string{groupSystem}})
	d.insert("res.users", 2, record{"name": "Administrator", "login": "admin", "password": s.opts.AdminPassword, "partner_id": int64(3), "active": true,
		"_groups": []string{groupUser, groupSystem, groupSale}, "_apikeys": s.opts.AdminAPIKeys})
	d.insert("res.users", 3, record{"name": "Public user", "login": "public", "partner_id": int64(4), "active": false, "share": true})
	for i := range s.opts.AdminAPIKeys {
		name := "rig-bridge-key"
		if i > 0 {
			name = fmt.Sprintf("admin-key-%d", i+1)
		}
		d.insert("res.users.apikeys", 0, record{"name": name, "scope": "rpc", "user_id": int64(2)})
	}
	// technical user
	tp := d.insert("res.partner", s.opts.TechPartnerID, record{"name": "MailDesk Bot", "email": s.opts.TechLogin + "@maildesk.invalid", "active": true})
	s.techUID = d.insert("res.users", s.opts.TechUserID, record{"name": "MailDesk Bot", "login": s.opts.TechLogin, "partner_id": tp, "active": true,
		"_groups": []string{groupUser, groupSale}})
	d.insert("res.users.apikeys", 0, record{"name": "maildesk", "scope": "rpc", "user_id": s.techUID})
	for _, u := range s.opts.Users {
		name := u.Name
		if name == "" {
			name = u.Login
		}
		pid := d.insert("res.partner", u.PartnerID, record{"name": name, "email": u.Email, "active": true})
		groups := u.Groups
		if len(groups) == 0 {
			groups = []string{groupUser}
		}
		uid := d.insert("res.users", u.ID, record{"name": name, "login": u.Login, "password": u.Password, "partner_id": pid, "active": true,
			"_groups": groups, "_apikeys": u.APIKeys})
		for range u.APIKeys {
			d.insert("res.users.apikeys", 0, record{"name": u.Login + "-key", "scope": "rpc", "user_id": uid})
		}
	}
	// first ids as on the recorded servers
	if d.seq["res.partner"] < 6 {
		d.seq["res.partner"] = 6
	}
	if v >= 19 {
		d.seq["mail.message"] = 52
	} else {
		d.seq["mail.message"] = 6
	}
	d.insert("mail.message.subtype", 1, record{"name": "Discussions"})
	d.insert("mail.message.subtype", 2, record{"name": "Note", "internal": true})
	for i, t := range []record{
		{"name": "Email", "category": "default"},
		{"name": "Call", "category": "phonecall"},
		{"name": "Meeting", "category": "meeting"},
		{"name": "To-Do", "category": "default"},
		{"name": "Upload Document", "category": "upload_file"},
		{"name": OutboxActivityType, "category": "default", "keep_done": true},
	} {
		t["active"] = true
		d.insert("mail.activity.type", int64(i+1), t)
	}
	for name, id := range irModelIDs(v) {
		desc := name
		if m := d.models[name]; m != nil {
			desc = m.desc
		}
		d.insert("ir.model", id, record{"model": name, "name": desc})
	}
	d.insert("res.groups", 1, record{"name": "Internal User"})
	d.insert("res.groups", 10, record{"name": "Portal"})
	d.insert("ir.model.data", 5, record{"module": "base", "name": "group_user", "model": "res.groups", "res_id": int64(1)})
	d.insert("ir.model.data", 3698, record{"module": "base", "name": "group_portal", "model": "res.groups", "res_id": int64(10)})
}

// OutboxActivityType is the activity type sent mail is logged as.
const OutboxActivityType = "Email – Outbox"

// Start listens on 127.0.0.1 (a free port the first time, the same port after SetDown(false)).
func (s *Server) Start() error {
	s.fmu.Lock()
	defer s.fmu.Unlock()
	return s.listenLocked()
}

func (s *Server) listenLocked() error {
	addr := s.addr
	if addr == "" {
		addr = "127.0.0.1:0"
	}
	host, _, err := net.SplitHostPort(addr)
	if ip := net.ParseIP(host); err != nil || ip == nil || !ip.IsLoopback() {
		return fmt.Errorf("odoosim: address %q is not a loopback IP address", addr)
	}
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		return fmt.Errorf("odoosim: listen %s: %w", addr, err)
	}
	s.ln = ln
	s.addr = ln.Addr().String()
	srv := &http.Server{Handler: s, ReadHeaderTimeout: 10 * time.Second}
	s.srv = srv
	done := make(chan struct{})
	s.serveDone = append(s.serveDone, done)
	go func() {
		defer close(done)
		defer func() { _ = recover() }()
		_ = srv.Serve(ln)
	}()
	return nil
}

// Close stops the server.
func (s *Server) Close() {
	s.fmu.Lock()
	s.closed = true
	srv := s.srv
	s.srv = nil
	done := s.serveDone
	s.fmu.Unlock()
	if srv != nil {
		_ = srv.Close()
	}
	for _, d := range done {
		<-d
	}
}

// URL is the base URL, e.g. http://127.0.0.1:41234.
func (s *Server) URL() string {
	s.fmu.Lock()
	defer s.fmu.Unlock()
	return "http://" + s.addr
}

// DB is the database name.
func (s *Server) DB() string { return s.opts.DB }

// Version is the mimicked major version.
func (s *Server) Version() int { return s.opts.Version }

// TechLogin is the technical user's login.
func (s *Server) TechLogin() string { return s.opts.TechLogin }

// TechUID is the technical user's id.
func (s *Server) TechUID() int64 { return s.techUID }

// APIKey is the technical user's API key.
func (s *Server) APIKey() string { return s.techKey }

// SetLatency sets the delay added to every call.
func (s *Server) SetLatency(d time.Duration) {
	s.fmu.Lock()
	s.latency = d
	s.fmu.Unlock()
}

// SetItemCost sets the time each maildesk_ingest item costs (see Options.ItemCost).
func (s *Server) SetItemCost(d time.Duration) {
	s.fmu.Lock()
	s.itemCost = d
	s.fmu.Unlock()
}

func (s *Server) currentItemCost() time.Duration {
	s.fmu.Lock()
	defer s.fmu.Unlock()
	return s.itemCost
}

// SetSlow adds d on top of the latency (0 to stop): a slow Odoo, e.g. beyond a client's timeout.
func (s *Server) SetSlow(d time.Duration) {
	s.fmu.Lock()
	s.slow = d
	s.fmu.Unlock()
}

// SetDown(true) stops listening (connections are refused) and drops open
// connections; SetDown(false) listens again on the same address.
func (s *Server) SetDown(down bool) error {
	s.fmu.Lock()
	defer s.fmu.Unlock()
	if down == s.down || s.closed {
		return nil
	}
	s.down = down
	if down {
		if s.srv != nil {
			_ = s.srv.Close()
			s.srv = nil
		}
		return nil
	}
	return s.listenLocked()
}

// FailNext makes the next n calls to /jsonrpc or /json/2 fail with kind.
func (s *Server) FailNext(n int, kind FaultKind) {
	s.fmu.Lock()
	s.failN, s.failKind = n, kind
	s.fmu.Unlock()
}

// RevokeAPIKey makes the technical user's key invalid until RestoreAPIKey.
func (s *Server) RevokeAPIKey() {
	s.mu.Lock()
	s.keyRevoked = true
	s.mu.Unlock()
}

// RestoreAPIKey makes the technical user's key valid again.
func (s *Server) RestoreAPIKey() {
	s.mu.Lock()
	s.keyRevoked = false
	s.mu.Unlock()
}

// Calls counts the requests served.
func (s *Server) Calls() int64 {
	s.fmu.Lock()
	defer s.fmu.Unlock()
	return s.calls
}

// ServeHTTP routes one request.
func (s *Server) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	s.fmu.Lock()
	s.calls++
	down := s.down
	delay := s.latency + s.slow
	var fault *FaultKind
	isAPI := r.URL.Path == "/jsonrpc" || len(r.URL.Path) >= 7 && r.URL.Path[:7] == "/json/2"
	if isAPI && s.failN > 0 {
		s.failN--
		k := s.failKind
		fault = &k
	}
	s.fmu.Unlock()
	if down {
		dropConn(w)
		return
	}
	if delay > 0 {
		t := time.NewTimer(delay)
		select {
		case <-t.C:
		case <-r.Context().Done():
			t.Stop()
			return
		}
	}
	if fault != nil {
		s.serveFault(w, r, *fault)
		return
	}
	switch {
	case r.URL.Path == "/jsonrpc":
		s.serveJSONRPC(w, r)
	case r.URL.Path == "/json/2" || len(r.URL.Path) > 7 && r.URL.Path[:8] == "/json/2/":
		s.serveJSON2(w, r)
	case r.URL.Path == "/web/version" && r.Method == http.MethodGet:
		writeRaw(w, 200, "application/json; charset=utf-8", pyJSON(odict{{"version_info", s.versionInfo()}, {"version", s.serie()}}))
	case len(r.URL.Path) > 17 && r.URL.Path[:17] == "/web/dataset/call":
		s.serveSessionExpired(w, r)
	default:
		writeRaw(w, 404, "text/html; charset=utf-8", []byte("<!doctype html>\n<html lang=en>\n<title>404 Not Found</title>\n<h1>Not Found</h1>\n<p>The requested URL was not found on the server. If you entered the URL manually please check your spelling and try again.</p>\n"))
	}
}

func dropConn(w http.ResponseWriter) {
	hj, ok := w.(http.Hijacker)
	if !ok {
		panic(http.ErrAbortHandler)
	}
	c, _, err := hj.Hijack()
	if err == nil {
		_ = c.Close()
	}
}

func (s *Server) serveFault(w http.ResponseWriter, r *http.Request, k FaultKind) {
	switch k {
	case FaultReset:
		dropConn(w)
	case FaultHTTP503:
		writeRaw(w, 503, "text/html; charset=utf-8", []byte("<html><head><title>503 Service Temporarily Unavailable</title></head><body><center><h1>503 Service Temporarily Unavailable</h1></center></body></html>\n"))
	case FaultSerialization:
		e := newErr("psycopg2.errors.SerializationFailure", 500, "could not serialize access due to concurrent update\n")
		if r.URL.Path == "/jsonrpc" {
			s.writeRPCError(w, nil, e, 200)
		} else {
			s.writeJSON2Error(w, e)
		}
	default:
		writeRaw(w, 500, "text/html; charset=utf-8", []byte("<!doctype html>\n<html lang=en>\n<title>500 Internal Server Error</title>\n<h1>Internal Server Error</h1>\n<p>The server encountered an internal error and was unable to complete your request. Either the server is overloaded or there is an error in the application.</p>\n"))
	}
}

func writeRaw(w http.ResponseWriter, status int, ct string, body []byte) {
	if ct != "" {
		w.Header().Set("Content-Type", ct)
	}
	w.Header().Set("Content-Length", fmt.Sprint(len(body)))
	w.WriteHeader(status)
	_, _ = w.Write(body)
}

func (s *Server) serie() string { return fmt.Sprintf("%d.0", s.opts.Version) }

func (s *Server) versionInfo() []any {
	return []any{s.opts.Version, 0, 0, "final", 0, ""}
}

// authPassword checks a password or API key for uid; the technical key can be revoked.
func (s *Server) authPassword(uid int64, pw string) bool {
	u := s.d.get("res.users", uid)
	if u == nil || u["active"] == false || pw == "" {
		return false
	}
	if uid == s.techUID && pw == s.techKey {
		return !s.keyRevoked
	}
	if p, _ := u["password"].(string); p != "" && p == pw {
		return true
	}
	keys, _ := u["_apikeys"].([]string)
	for _, k := range keys {
		if k == pw {
			return true
		}
	}
	return false
}

// uidForKey finds the user of an API key (JSON-2 accepts keys only).
func (s *Server) uidForKey(key string) int64 {
	if key == "" {
		return 0
	}
	if key == s.techKey {
		if s.keyRevoked {
			return 0
		}
		return s.techUID
	}
	for _, id := range s.d.sortedIDs("res.users") {
		u := s.d.tables["res.users"].recs[id]
		keys, _ := u["_apikeys"].([]string)
		for _, k := range keys {
			if k == key && u["active"] != false {
				return id
			}
		}
	}
	return 0
}

func (s *Server) login(login, pw string) int64 {
	for _, id := range s.d.sortedIDs("res.users") {
		if s.d.tables["res.users"].recs[id]["login"] == login && s.authPassword(id, pw) {
			return id
		}
	}
	return 0
}

func (s *Server) knownDB(name string) bool {
	if name == s.opts.DB {
		return true
	}
	for _, o := range s.opts.OtherDBs {
		if o == name {
			return true
		}
	}
	return false
}
