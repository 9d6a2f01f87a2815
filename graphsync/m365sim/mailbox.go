package m365sim

import (
	"bytes"
	"fmt"
	"net/mail"
	"net/textproto"
	"sort"
	"strings"
	"sync"
	"time"

	"github.com/jhillyerd/enmime"
)

type addr struct{ Name, Address string }

type hdr struct{ Name, Value string }

type attachment struct {
	id          string
	name        string
	contentType string
	size        int
	inline      bool
	contentID   string
	data        []byte // nil: generated from seed on demand
	item        bool   // an attached e-mail (itemAttachment); data is its MIME
	seed        uint64
	modified    time.Time
}

func (a *attachment) bytes() []byte {
	if a.data != nil {
		return a.data
	}
	return genBytes(a.seed, a.size, a.contentType)
}

type message struct {
	imm      string
	rest     string
	num      uint64
	salt     uint64 // mailbox.runSalt for messages not seeded
	moveGen  uint64
	folder   *folder
	seq      uint64 // mailbox sequence of the last change
	addedSeq uint64 // sequence when it entered its current folder
	deleted  bool

	created, received, sent, modified time.Time
	isRead, isDraft                   bool
	importance                        string
	flagStatus                        string // followupFlag.flagStatus: notFlagged ("") | flagged | complete
	sensitivity                       string // normal | personal | private | confidential ("" = normal)
	subject, msgID, convID            string
	inReplyTo, references             string
	from                              addr
	to, cc, bcc, replyTo              []addr
	bodyHTML, bodyText                string
	calendar                          string // text/calendar body of an invite
	extraHeaders                      []hdr
	atts                              []*attachment
	raw                               []byte // MIME as delivered; nil: built on demand
}

func (m *message) hasAttachments() bool {
	for _, a := range m.atts {
		if !a.inline {
			return true
		}
	}
	return false
}

func (m *message) changeKey() string {
	return outlookID("CQAAAB", m.num, m.seq)
}

type event struct {
	seq     uint64
	m       *message
	removed bool
	oldRest string // REST id the item had in this folder (for @removed)
}

type folder struct {
	id        string
	name      string
	wellKnown string
	parentID  string
	index     uint64
	msgs      []*message // sorted by received ascending
	unread    int
	log       []event
	gen       uint64
}

func (f *folder) insert(m *message) {
	i := sort.Search(len(f.msgs), func(i int) bool { return f.msgs[i].received.After(m.received) })
	f.msgs = append(f.msgs, nil)
	copy(f.msgs[i+1:], f.msgs[i:])
	f.msgs[i] = m
	if !m.isRead {
		f.unread++
	}
}

func (f *folder) remove(m *message) {
	for i, x := range f.msgs {
		if x == m {
			f.msgs = append(f.msgs[:i], f.msgs[i+1:]...)
			break
		}
	}
	if !m.isRead {
		f.unread--
	}
}

type mailbox struct {
	mu      sync.Mutex
	user    *User
	root    string
	folders []*folder
	byID    map[string]*folder // id and lower-case well-known name
	byImm   map[string]*message
	byRest  map[string]*message
	seq     uint64
	msgNum  uint64
	sent    []SentMessage
	// runSalt goes into the ids of messages created while the simulator
	// runs (deliveries, sends, drafts), so a restarted simulator never
	// gives a new message the id an earlier run gave another one; seeded
	// messages (seeding) keep ids that depend on the seed only.
	runSalt uint64
	seeding bool
}

var wellKnownFolders = []struct{ key, name string }{
	{"archive", "Archive"},
	{"conversationhistory", "Conversation History"},
	{"deleteditems", "Deleted Items"},
	{"drafts", "Drafts"},
	{"inbox", "Inbox"},
	{"junkemail", "Junk Email"},
	{"outbox", "Outbox"},
	{"sentitems", "Sent Items"},
}

func newMailbox(u *User) *mailbox {
	mb := &mailbox{user: u, byID: map[string]*folder{}, byImm: map[string]*message{}, byRest: map[string]*message{}}
	mb.root = outlookID("AQMkAD", uint64(u.index), 1)
	mb.byID[mb.root] = &folder{id: mb.root, name: "Top of Information Store", wellKnown: "msgfolderroot"}
	mb.byID["msgfolderroot"] = mb.byID[mb.root]
	for i, wk := range wellKnownFolders {
		f := &folder{id: outlookID("AQMkAD", uint64(u.index), uint64(i+2)), name: wk.name, wellKnown: wk.key, parentID: mb.root, index: uint64(i + 2)}
		mb.folders = append(mb.folders, f)
		mb.byID[f.id] = f
		mb.byID[wk.key] = f
	}
	return mb
}

// folder resolves an id or a well-known name (case-insensitive for names).
func (mb *mailbox) folder(key string) *folder {
	if f, ok := mb.byID[key]; ok {
		return f
	}
	return mb.byID[strings.ToLower(key)]
}

// addFolder creates a folder under parentID (the root when empty).
func (mb *mailbox) addFolder(name, parentID string) *folder {
	if parentID == "" {
		parentID = mb.root
	}
	f := &folder{id: outlookID("AQMkAD", uint64(mb.user.index), uint64(len(mb.folders)+2)), name: name, parentID: parentID, index: uint64(len(mb.folders) + 2)}
	mb.folders = append(mb.folders, f)
	mb.byID[f.id] = f
	return f
}

func (mb *mailbox) message(id string) *message {
	if m, ok := mb.byImm[id]; ok && !m.deleted {
		return m
	}
	if m, ok := mb.byRest[id]; ok && !m.deleted {
		return m
	}
	return nil
}

func (mb *mailbox) restID(m *message) string {
	if m.salt != 0 {
		return outlookID("AAMkAG", uint64(mb.user.index), m.num, m.moveGen, m.salt)
	}
	return outlookID("AAMkAG", uint64(mb.user.index), m.num, m.moveGen)
}

// add puts a new message into a folder; caller holds mb.mu.
func (mb *mailbox) add(f *folder, m *message) {
	mb.msgNum++
	m.num = mb.msgNum
	m.imm = outlookID("AAkALg", uint64(mb.user.index), m.num)
	if !mb.seeding && mb.runSalt != 0 {
		m.salt = mb.runSalt
		m.imm = outlookID("AAkALg", uint64(mb.user.index), m.num, m.salt)
	}
	m.rest = mb.restID(m)
	mb.byImm[m.imm] = m
	mb.byRest[m.rest] = m
	// Graph's timestamps have second precision.
	m.received = m.received.Truncate(time.Second)
	m.sent = m.sent.Truncate(time.Second)
	if m.created.IsZero() {
		m.created = m.received
	}
	m.created = m.created.Truncate(time.Second)
	m.modified = m.created
	mb.seq++
	m.seq, m.addedSeq, m.folder = mb.seq, mb.seq, f
	f.insert(m)
	f.log = append(f.log, event{seq: m.seq, m: m})
}

// touch records an update of m; caller holds mb.mu.
func (mb *mailbox) touch(m *message, now time.Time) {
	mb.seq++
	m.seq = mb.seq
	m.modified = now
	m.folder.log = append(m.folder.log, event{seq: m.seq, m: m})
}

func (mb *mailbox) setRead(m *message, read bool, now time.Time) {
	if m.isRead == read {
		return
	}
	if read {
		m.folder.unread--
	} else {
		m.folder.unread++
	}
	m.isRead = read
	mb.touch(m, now)
}

// move changes folder; the REST id changes, the immutable id stays.
func (mb *mailbox) move(m *message, dst *folder, now time.Time) {
	if m.folder == dst {
		return
	}
	src := m.folder
	src.remove(m)
	mb.seq++
	src.log = append(src.log, event{seq: mb.seq, m: m, removed: true, oldRest: m.rest})
	delete(mb.byRest, m.rest)
	m.moveGen++
	m.rest = mb.restID(m)
	mb.byRest[m.rest] = m
	mb.seq++
	m.seq, m.addedSeq, m.folder, m.modified = mb.seq, mb.seq, dst, now
	dst.insert(m)
	dst.log = append(dst.log, event{seq: m.seq, m: m})
}

// hardDelete removes m for good.
func (mb *mailbox) hardDelete(m *message) {
	f := m.folder
	f.remove(m)
	mb.seq++
	f.log = append(f.log, event{seq: mb.seq, m: m, removed: true, oldRest: m.rest})
	m.deleted = true
	delete(mb.byRest, m.rest)
	delete(mb.byImm, m.imm)
}

// MessageInfo describes a stored message (driver API).
type MessageInfo struct {
	ID                string // immutable id
	RestID            string // id without Prefer: IdType="ImmutableId"
	Folder            string // well-known name or display name
	Subject           string
	InternetMessageID string
	ConversationID    string
	From              string
	To                []string
	ReceivedAt        time.Time
	IsRead            bool
	IsDraft           bool
	HasAttachments    bool
	InReplyTo         string
	References        string
	// Sensitivity is the Outlook sensitivity (normal, personal, private,
	// confidential): Graph v1.0 has no message property for it, so clients
	// see it as the Sensitivity header in internetMessageHeaders and MIME.
	Sensitivity string
	// FlagStatus is followupFlag.flagStatus (notFlagged, flagged, complete).
	FlagStatus string
}

// SentMessage is what a user sent through Graph.
type SentMessage struct {
	From              string // mailbox that sent (upn)
	Via               string // "sendMail/json", "sendMail/mime", "draft/send"
	InternetMessageID string
	Subject           string
	To, Cc, Bcc       []string
	Header            textproto.MIMEHeader
	MIME              []byte
	SentAt            time.Time
	SavedID           string // immutable id of the Sent Items copy ("" when not saved)
}

func info(m *message) MessageInfo {
	fname := m.folder.wellKnown
	if fname == "" {
		fname = m.folder.name
	}
	mi := MessageInfo{ID: m.imm, RestID: m.rest, Folder: fname, Subject: m.subject, InternetMessageID: m.msgID,
		ConversationID: m.convID, From: m.from.Address, ReceivedAt: m.received, IsRead: m.isRead, IsDraft: m.isDraft,
		HasAttachments: m.hasAttachments(), InReplyTo: m.inReplyTo, References: m.references, Sensitivity: orDefault(m.sensitivity, "normal"),
		FlagStatus: orDefault(m.flagStatus, "notFlagged")}
	for _, a := range m.to {
		mi.To = append(mi.To, a.Address)
	}
	return mi
}

// parseMIME turns raw MIME into a message (not yet stored).
func parseMIME(raw []byte, now time.Time) (*message, error) {
	env, err := enmime.ReadEnvelope(bytes.NewReader(raw))
	if err != nil {
		return nil, fmt.Errorf("parse MIME: %w", err)
	}
	m := &message{raw: raw, importance: "normal"}
	m.subject = env.GetHeader("Subject")
	m.msgID = strings.TrimSpace(env.Root.Header.Get("Message-Id"))
	m.inReplyTo = strings.TrimSpace(env.Root.Header.Get("In-Reply-To"))
	m.references = strings.Join(strings.Fields(env.Root.Header.Get("References")), " ")
	m.sensitivity = sensitivityOfHeader(env.Root.Header.Get("Sensitivity"))
	if al, err := env.AddressList("From"); err == nil && len(al) > 0 {
		m.from = addr{al[0].Name, al[0].Address}
	}
	for _, k := range []struct {
		h   string
		dst *[]addr
	}{{"To", &m.to}, {"Cc", &m.cc}, {"Bcc", &m.bcc}, {"Reply-To", &m.replyTo}} {
		if al, err := env.AddressList(k.h); err == nil {
			for _, a := range al {
				*k.dst = append(*k.dst, addr{a.Name, a.Address})
			}
		}
	}
	if d, err := mail.ParseDate(env.Root.Header.Get("Date")); err == nil {
		m.sent = d.UTC()
	} else {
		m.sent = now
	}
	m.bodyHTML, m.bodyText = env.HTML, env.Text
	mod := now
	for i, p := range env.Attachments {
		a := &attachment{name: p.FileName, contentType: p.ContentType, size: len(p.Content), data: p.Content, modified: mod, id: fmt.Sprintf("att%d", i)}
		markItem(a)
		m.atts = append(m.atts, a)
	}
	for i, p := range env.Inlines {
		m.atts = append(m.atts, &attachment{name: p.FileName, contentType: p.ContentType, size: len(p.Content), data: p.Content, inline: true, contentID: strings.Trim(p.ContentID, "<>"), modified: mod, id: fmt.Sprintf("inl%d", i)})
	}
	for i, p := range env.OtherParts {
		if p.ContentType == "text/calendar" {
			m.calendar = string(p.Content)
			continue
		}
		m.atts = append(m.atts, &attachment{name: p.FileName, contentType: p.ContentType, size: len(p.Content), data: p.Content, inline: true, contentID: strings.Trim(p.ContentID, "<>"), modified: mod, id: fmt.Sprintf("oth%d", i)})
	}
	return m, nil
}

// threadRoot is the first References entry (or In-Reply-To, or the
// message itself): it names the conversation.
func threadRoot(m *message) string {
	if f := strings.Fields(m.references); len(f) > 0 {
		return f[0]
	}
	if m.inReplyTo != "" {
		return m.inReplyTo
	}
	return m.msgID
}

// Sensitivity values (Graph's sensitivity enum, as on event and
// messageRulePredicates) and the RFC 2156 Sensitivity header Exchange writes
// for them in MIME and internetMessageHeaders.
var sensitivityHeaders = map[string]string{"personal": "Personal", "private": "Private", "confidential": "Company-Confidential"}

// sensitivityOfHeader maps a Sensitivity header value to the enum ("" for
// none or unknown: normal).
func sensitivityOfHeader(v string) string {
	v = strings.ToLower(strings.TrimSpace(v))
	switch v {
	case "personal", "private":
		return v
	case "company-confidential", "company confidential", "confidential":
		return "confidential"
	}
	return ""
}

// SetSensitivity marks a message personal, private or confidential (or
// normal) as its sender's Outlook would have; it shows as the Sensitivity
// header of the message's internetMessageHeaders and MIME. It reports
// whether the message exists and the value is known.
func (s *Sim) SetSensitivity(upn, id, sensitivity string) bool {
	sensitivity = strings.ToLower(sensitivity)
	if _, ok := sensitivityHeaders[sensitivity]; !ok && sensitivity != "normal" {
		return false
	}
	u := s.user(upn)
	if u == nil {
		return false
	}
	mb := u.mb
	mb.mu.Lock()
	defer mb.mu.Unlock()
	m := mb.message(id)
	if m == nil {
		return false
	}
	if sensitivity == "normal" {
		sensitivity = ""
	}
	m.sensitivity = sensitivity
	if m.raw != nil {
		m.raw = withSensitivityHeader(m.raw, sensitivityHeaders[sensitivity])
	}
	return true
}

// withSensitivityHeader replaces raw MIME's Sensitivity header (none when
// value is "").
func withSensitivityHeader(raw []byte, value string) []byte {
	// The header block with its last line's line end; the body from the
	// blank line on.
	end := bytes.Index(raw, []byte("\r\n\r\n")) + 2
	if end < 2 {
		end = bytes.Index(raw, []byte("\n\n")) + 1
	}
	if end < 1 {
		end = len(raw)
	}
	var out []byte
	if value != "" {
		out = append(out, "Sensitivity: "+value+"\r\n"...)
	}
	head, body := raw[:end], raw[end:]
	lines := strings.SplitAfter(string(head), "\n")
	skip := false
	for _, l := range lines {
		if skip && (strings.HasPrefix(l, " ") || strings.HasPrefix(l, "\t")) {
			continue
		}
		skip = len(l) > 12 && strings.EqualFold(l[:12], "sensitivity:")
		if !skip {
			out = append(out, l...)
		}
	}
	return append(out, body...)
}
