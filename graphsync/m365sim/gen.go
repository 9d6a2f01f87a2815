package m365sim

import (
	"fmt"
	"hash/fnv"
	"math/rand"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"time"
)

// GenOptions shape GenerateMailbox. Zero values pick realistic defaults.
type GenOptions struct {
	Start, End     time.Time // received times spread over [Start, End]; default the last 90 days
	AttachmentRate float64   // share of messages with attachments; default 0.3, negative: none
	MaxAttachment  int       // largest attachment in bytes; default 30 MB
	SentRate       float64   // share written by the mailbox owner (saved in sentitems); default 0.2
	InviteRate     float64   // share of calendar invites; default 0.05
	InlineRate     float64   // share with an inline image; default 0.1
	UnreadRate     float64   // share of unread inbox mail; default 0.3
	NoSamples      bool      // leave out the real-world MIME samples
	Folder         string    // inbound folder; default inbox
	// PrivateRate is the share of generated messages their sender marked
	// private in Outlook (Sensitivity: Private); default 0. Drawn from the
	// message number, not the generator's random stream, so the rest of a
	// seeded mailbox stays the same whatever the rate.
	PrivateRate float64
}

// DemoPrivateRate is the share of private mail in demo mailboxes (Seed and
// the maildesk demo): a few, so privacy rules have something to keep out.
const DemoPrivateRate = 0.02

type sample struct {
	name string
	raw  []byte
}

type contact struct{ name, addr string }

var correspondents = []contact{
	{"Zoë Müller", "zoe.mueller@example.de"},
	{"José Álvarez", "jose.alvarez@example.es"},
	{"Łukasz Wiśniewski", "lukasz@example.pl"},
	{"山田 太郎", "yamada@example.jp"},
	{"Ørjan Nilsen", "orjan.nilsen@example.no"},
	{"Анна Петрова", "anna.petrova@example.ru"},
	{"Chloé Dubois", "chloe.dubois@example.fr"},
	{"Björn Åkesson", "bjorn@example.se"},
	{"Priya Natarajan", "priya@example.in"},
	{"Ahmed Al-Sayed", "ahmed@example.ae"},
	{"Mary O'Brien", "mary.obrien@example.ie"},
	{"Acme Billing", "billing@acme.example.com"},
	{"Ticket System", "noreply@support.example.com"},
}

var subjects = []string{
	"Quote request for %s",
	"Angebot für %s – Rückfrage",
	"Facture n° %d – échéance",
	"Pedido %d: confirmación de envío",
	"%sの見積もりについて",
	"Встреча по проекту %s",
	"🚀 Launch plan for %s",
	"Contract renewal %d",
	"Order %d shipped",
	"Question about invoice %d",
	"Meeting notes: %s",
}

var products = []string{"Widget Pro", "Sirius X", "Kaffeemaschine", "Zahnräder", "Solar panels", "Ergo chair", "Fiber plan", "Consulting"}

var attKinds = []struct{ ext, ct string }{
	{"pdf", "application/pdf"},
	{"xlsx", "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet"},
	{"docx", "application/vnd.openxmlformats-officedocument.wordprocessingml.document"},
	{"csv", "text/csv"},
	{"zip", "application/zip"},
	{"jpg", "image/jpeg"},
}

// onePixelPNG is a valid 1x1 PNG used for inline images.
var onePixelPNG = []byte("\x89PNG\r\n\x1a\n\x00\x00\x00\rIHDR\x00\x00\x00\x01\x00\x00\x00\x01\x08\x06\x00\x00\x00\x1f\x15\xc4\x89\x00\x00\x00\rIDATx\x9cc\xf8\x0f\x00\x00\x01\x01\x00\x05\x18\xd8N\x00\x00\x00\x00IEND\xaeB`\x82")

func hash64(parts ...string) uint64 {
	h := fnv.New64a()
	for _, p := range parts {
		h.Write([]byte(p))
		h.Write([]byte{0})
	}
	return h.Sum64()
}

// genBytes makes deterministic content for a generated attachment.
func genBytes(seed uint64, size int, ct string) []byte {
	if size <= 0 {
		return []byte{}
	}
	if ct == "image/png" && size == len(onePixelPNG) {
		return append([]byte(nil), onePixelPNG...)
	}
	out := make([]byte, size)
	x := seed | 1
	if ct == "text/csv" {
		const row = "2025-01-01;ACME-0001;Widget;12;19.90;EUR\r\n"
		for i := 0; i < size; i += len(row) {
			copy(out[i:], row)
		}
		return out
	}
	for i := 0; i < size; i += 8 {
		x ^= x << 13
		x ^= x >> 7
		x ^= x << 17
		for k := 0; k < 8 && i+k < size; k++ {
			out[i+k] = byte(x >> (8 * k))
		}
	}
	var magic string
	switch ct {
	case "application/pdf":
		magic = "%PDF-1.7\n%\xe2\xe3\xcf\xd3\n"
	case "application/zip", "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet", "application/vnd.openxmlformats-officedocument.wordprocessingml.document":
		magic = "PK\x03\x04"
	case "image/jpeg":
		magic = "\xff\xd8\xff\xe0\x00\x10JFIF\x00"
	}
	copy(out, magic)
	return out
}

// loadSamples reads the real-world MIME samples of Options.SamplesDir once.
// Without SamplesDir there are none: what a seed generates must not depend
// on where the process runs.
func (s *Sim) loadSamples() []sample {
	s.mu.Lock()
	if s.samplesD {
		out := s.samples
		s.mu.Unlock()
		return out
	}
	s.mu.Unlock()
	dir := s.opts.SamplesDir
	var samples []sample
	if dir != "" {
		files, _ := filepath.Glob(filepath.Join(dir, "*.raw"))
		sort.Strings(files)
		for _, f := range files {
			b, err := os.ReadFile(f)
			if err != nil || len(b) == 0 {
				continue
			}
			if _, err := parseMIME(b, time.Now()); err != nil {
				continue
			}
			samples = append(samples, sample{name: filepath.Base(f), raw: b})
		}
	}
	if len(samples) == 0 && dir != "" {
		s.log.Info().Str("dir", dir).Msg("m365sim: no real-world MIME samples found; generating only")
	}
	s.mu.Lock()
	s.samples, s.samplesD = samples, true
	s.mu.Unlock()
	return samples
}

// GenerateMailbox adds n deterministic, realistic messages to upn's
// mailbox: threads (References/In-Reply-To), HTML+plain bodies, non-ASCII
// names and subjects, inline images, attachments (bytes to MaxAttachment,
// content generated on demand), calendar invites, sent items, and
// real-world MIME samples. The user is created if unknown.
func (s *Sim) GenerateMailbox(upn string, n int, o GenOptions) {
	u := s.user(upn)
	if u == nil {
		u = s.AddUser(upn, displayFromUPN(upn))
	}
	if o.End.IsZero() {
		o.End = time.Now().Add(-time.Minute).Truncate(time.Second)
	}
	if o.Start.IsZero() {
		o.Start = o.End.Add(-90 * 24 * time.Hour)
	}
	if o.AttachmentRate == 0 {
		o.AttachmentRate = 0.3
	}
	if o.MaxAttachment <= 0 {
		o.MaxAttachment = 30 * 1024 * 1024
	}
	if o.SentRate == 0 {
		o.SentRate = 0.2
	}
	if o.InviteRate == 0 {
		o.InviteRate = 0.05
	}
	if o.InlineRate == 0 {
		o.InlineRate = 0.1
	}
	if o.UnreadRate == 0 {
		o.UnreadRate = 0.3
	}
	if o.Folder == "" {
		o.Folder = "inbox"
	}
	var samples []sample
	if !o.NoSamples {
		samples = s.loadSamples()
	}
	mb := u.mb
	mb.mu.Lock()
	defer mb.mu.Unlock()
	mb.seeding = true
	defer func() { mb.seeding = false }()
	base := mb.msgNum
	rng := rand.New(rand.NewSource(s.opts.Seed ^ int64(hash64(strings.ToLower(upn))) ^ int64(base)))
	in, sent := mb.folder(o.Folder), mb.folder("sentitems")
	if in == nil {
		in = mb.folder("inbox")
	}
	span := o.End.Sub(o.Start)
	step := span / time.Duration(n+1)
	me := addr{u.DisplayName, u.UPN}
	sampleNext, sampleAt := 0, 12
	k := 0
	for k < n {
		slot := o.Start.Add(step * time.Duration(k+1))
		// every 25th slot takes a real-world sample, each sample once per mailbox
		if sampleNext < len(samples) && k >= sampleAt {
			sampleAt += 25
			sm := samples[sampleNext]
			sampleNext++
			m, err := parseMIME(sm.raw, slot)
			if err == nil {
				m.received, m.created = slot, slot
				if m.msgID == "" {
					m.msgID = fmt.Sprintf("<sample.%d.%s@%s>", base+uint64(k), sm.name, s.domain)
					m.raw = append([]byte("Message-ID: "+m.msgID+"\r\n"), m.raw...)
				}
				m.convID = convID(threadRoot(m))
				m.isRead = rng.Float64() > o.UnreadRate
				mb.add(in, m)
				assignAttIDs(mb, m)
				k++
				continue
			}
		}
		peer := correspondents[rng.Intn(len(correspondents))]
		them := addr{peer.name, peer.addr}
		subj := fmt.Sprintf(subjects[rng.Intn(len(subjects))], products[rng.Intn(len(products))])
		if strings.Contains(subj, "%!") {
			subj = fmt.Sprintf(strings.ReplaceAll(subjects[rng.Intn(len(subjects))], "%s", "%d"), 1000+rng.Intn(9000))
		}
		if strings.Contains(subj, "%!") {
			subj = "Follow-up " + products[rng.Intn(len(products))]
		}
		threadLen := 1 + int(rng.ExpFloat64()*1.2)
		if threadLen > 6 {
			threadLen = 6
		}
		outbound := rng.Float64() < o.SentRate
		var refs []string
		t := slot
		for j := 0; j < threadLen && k < n; j++ {
			num := base + uint64(k) + 1
			m := &message{importance: "normal", received: t, created: t, sent: t.Add(-time.Duration(2+rng.Intn(40)) * time.Second)}
			m.msgID = fmt.Sprintf("<gen.%016x.%d@%s>", hash64(strings.ToLower(upn), fmt.Sprint(s.opts.Seed)), num, mailDomain(outbound, peer.addr, s.domain))
			if j > 0 {
				m.subject = "Re: " + subj
				m.inReplyTo = refs[len(refs)-1]
				m.references = strings.Join(refs, " ")
			} else {
				m.subject = subj
			}
			if outbound {
				m.from, m.to = me, []addr{them}
				m.isRead = true
			} else {
				m.from, m.to = them, []addr{me}
				m.isRead = rng.Float64() > o.UnreadRate
				if rng.Intn(4) == 0 {
					m.cc = []addr{{"Team", "team@" + s.domain}}
				}
			}
			greet := strings.SplitN(m.to[0].Name, " ", 2)[0]
			para := fmt.Sprintf("Hello %s,\n\nthanks for your message about %s. Could we settle the details (prices in €, delivery to Köln) by Friday?\n\nBest regards,\n%s", greet, subj, m.from.Name)
			m.bodyText = para
			m.bodyHTML = "<html><head><meta http-equiv=\"Content-Type\" content=\"text/html; charset=utf-8\"></head><body><p>" +
				strings.ReplaceAll(htmlEscape(para), "\n\n", "</p><p>") + "</p></body></html>"
			if rng.Float64() < o.InviteRate {
				m.subject = "Invitation: " + strings.TrimPrefix(m.subject, "Re: ")
				start := t.Add(72 * time.Hour).UTC()
				m.calendar = fmt.Sprintf("BEGIN:VCALENDAR\r\nMETHOD:REQUEST\r\nPRODID:Microsoft Exchange Server 2010\r\nVERSION:2.0\r\nBEGIN:VEVENT\r\nUID:%s\r\nDTSTART:%s\r\nDTEND:%s\r\nSUMMARY;LANGUAGE=en-US:%s\r\nORGANIZER;CN=\"%s\":mailto:%s\r\nATTENDEE;ROLE=REQ-PARTICIPANT;RSVP=TRUE:mailto:%s\r\nEND:VEVENT\r\nEND:VCALENDAR\r\n",
					strings.Trim(m.msgID, "<>"), start.Format("20060102T150405Z"), start.Add(time.Hour).Format("20060102T150405Z"), m.subject, m.from.Name, m.from.Address, m.to[0].Address)
			}
			if rng.Float64() < o.InlineRate {
				cid := fmt.Sprintf("image%03d.png@01DA%08X", j+1, uint32(num))
				m.bodyHTML = strings.Replace(m.bodyHTML, "</body>", "<img src=\"cid:"+cid+"\" alt=\"logo\"></body>", 1)
				m.atts = append(m.atts, &attachment{name: "image001.png", contentType: "image/png", size: len(onePixelPNG), inline: true, contentID: cid, seed: num})
			}
			if o.AttachmentRate > 0 && rng.Float64() < o.AttachmentRate {
				cnt := 1 + rng.Intn(2)
				for a := 0; a < cnt; a++ {
					kind := attKinds[rng.Intn(len(attKinds))]
					size := 2048 + rng.Intn(300*1024)
					switch p := rng.Float64(); {
					case p < 0.01:
						size = 5*1024*1024 + rng.Intn(max(1, o.MaxAttachment-5*1024*1024))
					case p < 0.06:
						size = 1024*1024 + rng.Intn(4*1024*1024)
					case p < 0.2:
						size = 1 + rng.Intn(2048)
					}
					size = min(size, o.MaxAttachment)
					name := fmt.Sprintf("%s-%d.%s", []string{"Angebot", "facture", "report", "Übersicht", "見積書", "scan"}[rng.Intn(6)], num, kind.ext)
					m.atts = append(m.atts, &attachment{name: name, contentType: kind.ct, size: size, seed: hash64(fmt.Sprint(num), name, upn)})
				}
			}
			if o.PrivateRate > 0 && float64(hash64(strings.ToLower(upn), "private", fmt.Sprint(num))%10000) < o.PrivateRate*10000 {
				m.sensitivity = "private"
			}
			f := in
			if outbound {
				f = sent
			}
			m.convID = convID(threadRoot(m))
			mb.add(f, m)
			assignAttIDs(mb, m)
			refs = append(refs, m.msgID)
			k++
			outbound = !outbound
			t = t.Add(time.Duration(1+rng.Intn(int(max(1, int64(step/time.Minute))))) * time.Minute / 2)
			if t.After(o.End) {
				t = o.End
			}
		}
	}
}

func mailDomain(outbound bool, peer, own string) string {
	if outbound {
		return own
	}
	if i := strings.LastIndex(peer, "@"); i >= 0 {
		return peer[i+1:]
	}
	return own
}

func htmlEscape(s string) string {
	return strings.NewReplacer("&", "&amp;", "<", "&lt;", ">", "&gt;", `"`, "&quot;").Replace(s)
}

func displayFromUPN(upn string) string {
	local := upn
	if i := strings.Index(upn, "@"); i > 0 {
		local = upn[:i]
	}
	parts := strings.FieldsFunc(local, func(r rune) bool { return r == '.' || r == '_' || r == '-' })
	for i, p := range parts {
		if p != "" {
			parts[i] = strings.ToUpper(p[:1]) + p[1:]
		}
	}
	return strings.Join(parts, " ")
}
