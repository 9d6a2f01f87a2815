package odoosim

// Inspection and setup helpers for tests and the demo. They read or change the
// database directly, without latency or faults.

// Partner is a res.partner as tests see it.
type Partner struct {
	ID          int64
	Name, Email string
}

// Message is a mail.message as tests see it.
type Message struct {
	ID            int64
	Model         string
	ResID         int64
	Subject       string
	Body          string
	MessageID     string
	GraphID       string
	MessageType   string
	EmailFrom     string
	Date          string
	AuthorID      int64
	AttachmentIDs []int64
}

// Activity is a mail.activity (done ones included) as tests see it.
type Activity struct {
	ID       int64
	ResModel string
	ResID    int64
	TypeID   int64
	TypeName string
	Summary  string
	UserID   int64
	Deadline string
	Done     bool
}

// Partners lists active partners by id.
func (s *Server) Partners() []Partner {
	s.mu.Lock()
	defer s.mu.Unlock()
	var out []Partner
	for _, id := range s.d.sortedIDs("res.partner") {
		r := s.d.tables["res.partner"].recs[id]
		if r["active"] == false {
			continue
		}
		out = append(out, Partner{ID: id, Name: str(r["name"]), Email: str(r["email"])})
	}
	return out
}

// PartnerByEmail returns the first active partner whose normalised e-mail matches, 0 if none.
func (s *Server) PartnerByEmail(email string) int64 {
	s.mu.Lock()
	defer s.mu.Unlock()
	if ids := s.d.partnersByEmail(normalizeEmail(email)); len(ids) > 0 {
		return ids[0]
	}
	return 0
}

// AddPartner creates a partner (as the admin would) and returns its id.
func (s *Server) AddPartner(name, email string) int64 {
	s.mu.Lock()
	defer s.mu.Unlock()
	ids, oe := s.d.create(&env{uid: 2}, s.d.models["res.partner"], []map[string]any{{"name": name, "email": email}})
	if oe != nil {
		panic(oe)
	}
	return ids[0]
}

// CreateMailbox creates a maildesk.mailbox record for the sidecar mailbox id and returns its Odoo id.
func (s *Server) CreateMailbox(sidecarID, email string) int64 {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.d.insert("maildesk.mailbox", 0, record{"name": email, "email": email, "sidecar_mailbox_id": sidecarID, "active": true})
}

// AddUser creates an internal user and returns its id.
func (s *Server) AddUser(name, login, email string) int64 {
	s.mu.Lock()
	defer s.mu.Unlock()
	pid := s.d.insert("res.partner", 0, record{"name": name, "email": email, "active": true})
	return s.d.insert("res.users", 0, record{"name": name, "login": login, "partner_id": pid, "active": true, "_groups": []string{groupUser}})
}

func (s *Server) message(id int64) Message {
	r := s.d.get("mail.message", id)
	att, _ := r["attachment_ids"].([]int64)
	return Message{ID: id, Model: str(r["model"]), ResID: toInt(r["res_id"]), Subject: str(r["subject"]), Body: str(r["body"]),
		MessageID: str(r["message_id"]), GraphID: str(r["maildesk_graph_id"]), MessageType: str(r["message_type"]),
		EmailFrom: str(r["email_from"]), Date: str(r["date"]), AuthorID: toInt(r["author_id"]), AttachmentIDs: att}
}

// MessagesOn lists the messages on one record, oldest first.
func (s *Server) MessagesOn(model string, id int64) []Message {
	s.mu.Lock()
	defer s.mu.Unlock()
	ids := messagesOf(s.d, model, id)
	out := make([]Message, 0, len(ids))
	for i := len(ids) - 1; i >= 0; i-- {
		out = append(out, s.message(ids[i]))
	}
	return out
}

// Messages lists every message that carries a Graph id (i.e. came through ingest), oldest first.
func (s *Server) Messages() []Message {
	s.mu.Lock()
	defer s.mu.Unlock()
	var out []Message
	for _, id := range s.d.sortedIDs("mail.message") {
		if str(s.d.tables["mail.message"].recs[id]["maildesk_graph_id"]) != "" {
			out = append(out, s.message(id))
		}
	}
	return out
}

// Activities lists all activities, done ones included.
func (s *Server) Activities() []Activity {
	s.mu.Lock()
	defer s.mu.Unlock()
	var out []Activity
	for _, id := range s.d.sortedIDs("mail.activity") {
		r := s.d.tables["mail.activity"].recs[id]
		tid := toInt(r["activity_type_id"])
		out = append(out, Activity{ID: id, ResModel: str(r["res_model"]), ResID: toInt(r["res_id"]), TypeID: tid,
			TypeName: str(s.d.displayName("mail.activity.type", tid)), Summary: str(r["summary"]), UserID: toInt(r["user_id"]),
			Deadline: str(r["date_deadline"]), Done: r["active"] == false})
	}
	return out
}

// Records returns every record of a model as read() would (all fields), by id.
func (s *Server) Records(model string) []map[string]any {
	s.mu.Lock()
	defer s.mu.Unlock()
	m := s.d.models[model]
	if m == nil {
		return nil
	}
	rows, _ := s.d.readRecords(&env{uid: 1, context: map[string]any{}}, m, s.d.sortedIDs(model), nil)
	return rows
}

// IngestCalls reports how many maildesk_ingest calls and items arrived.
func (s *Server) IngestCalls() IngestStats {
	s.mu.Lock()
	defer s.mu.Unlock()
	st := s.d.ingest
	st.BatchSizes = append([]int(nil), st.BatchSizes...)
	st.Mailboxes = append([]int64(nil), st.Mailboxes...)
	return st
}

// Notices lists what maildesk_notify received, each with "odoo_mailbox_id" added.
func (s *Server) Notices() []map[string]any {
	s.mu.Lock()
	defer s.mu.Unlock()
	out := make([]map[string]any, len(s.d.notices))
	copy(out, s.d.notices)
	return out
}

// RefuseItems makes maildesk_ingest answer every item of the Odoo mailbox
// odooMailboxID with status "error" and reason (as Odoo does for an item it
// cannot take, e.g. an access error while creating a lead); an empty reason
// takes them again.
func (s *Server) RefuseItems(odooMailboxID int64, reason string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if reason == "" {
		delete(s.d.refuse, odooMailboxID)
		return
	}
	if s.d.refuse == nil {
		s.d.refuse = map[int64]string{}
	}
	s.d.refuse[odooMailboxID] = reason
}
