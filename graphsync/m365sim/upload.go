package m365sim

import (
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"regexp"
	"strconv"
	"strings"
	"time"
)

const uploadSessionLife = 24 * time.Hour

type uploadSession struct {
	user        *User
	msg         *message
	name        string
	contentType string
	inline      bool
	contentID   string
	size        int
	data        []byte
	expires     time.Time
}

func (s *Sim) createUploadSession(g *greq, m *message) {
	if g.r.Method != http.MethodPost {
		g.error(405, "ErrorInvalidRequest", "Method not allowed.")
		return
	}
	if !g.allowed(accWrite) {
		return
	}
	var body struct {
		AttachmentItem struct {
			AttachmentType string `json:"attachmentType"`
			Name           string `json:"name"`
			Size           int    `json:"size"`
			ContentType    string `json:"contentType"`
			IsInline       bool   `json:"isInline"`
			ContentID      string `json:"contentId"`
		} `json:"AttachmentItem"`
	}
	if err := json.NewDecoder(g.r.Body).Decode(&body); err != nil {
		g.badRequest("Invalid JSON body.")
		return
	}
	it := body.AttachmentItem
	if it.Name == "" || it.Size <= 0 {
		g.badRequest("AttachmentItem needs name and size.")
		return
	}
	if it.Size > maxUploadSize {
		g.error(400, "ErrorAttachmentSizeLimitExceeded", "The attachment exceeds the maximum size of 150 MB.")
		return
	}
	g.target.mb.mu.Lock()
	draft := m.isDraft
	g.target.mb.mu.Unlock()
	if !draft {
		g.error(400, "ErrorInvalidOperation", "Attachments can only be uploaded to draft messages.")
		return
	}
	exp := time.Now().Add(s.scaled(uploadSessionLife))
	id := randToken("", 24)
	s.mu.Lock()
	s.uploads[id] = &uploadSession{user: g.target, msg: m, name: it.Name, contentType: orDefault(it.ContentType, "application/octet-stream"),
		inline: it.IsInline, contentID: it.ContentID, size: it.Size, expires: exp}
	s.mu.Unlock()
	writeJSON(g.w, 201, map[string]any{
		"@odata.context":     s.GraphBaseURL() + "/$metadata#microsoft.graph.uploadSession",
		"uploadUrl":          s.url + "/upload/" + id + "?authtoken=" + randToken("", 16),
		"expirationDateTime": exp.UTC().Format("2006-01-02T15:04:05.0000000Z"),
		"nextExpectedRanges": []string{"0-"},
	})
}

var contentRangeRe = regexp.MustCompile(`^bytes (\d+)-(\d+)/(\d+)$`)

// serveUpload takes the chunk PUTs of an upload session (samples 47-49).
// The URL is pre-authenticated; an Authorization header is ignored.
func (s *Sim) serveUpload(w http.ResponseWriter, r *http.Request) {
	id := strings.TrimPrefix(r.URL.Path, "/upload/")
	g := &greq{sim: s, w: w, r: r, reqID: newRequestID()}
	s.mu.Lock()
	us := s.uploads[id]
	if us != nil && time.Now().After(us.expires) {
		delete(s.uploads, id)
		us = nil
	}
	s.mu.Unlock()
	if us == nil {
		g.error(404, "ErrorItemNotFound", "The upload session was not found or has expired.")
		return
	}
	switch r.Method {
	case http.MethodDelete:
		s.mu.Lock()
		delete(s.uploads, id)
		s.mu.Unlock()
		w.WriteHeader(http.StatusNoContent)
		return
	case http.MethodPut:
	default:
		g.error(405, "ErrorInvalidRequest", "Method not allowed.")
		return
	}
	mres := contentRangeRe.FindStringSubmatch(r.Header.Get("Content-Range"))
	if mres == nil {
		g.error(400, "invalidRequest", "A valid Content-Range header (bytes start-end/total) is required.")
		return
	}
	start, _ := strconv.Atoi(mres[1])
	end, _ := strconv.Atoi(mres[2])
	total, _ := strconv.Atoi(mres[3])
	n := end - start + 1
	if total != us.size || end >= total || n <= 0 {
		g.error(416, "invalidRange", "The Content-Range does not match the upload session.")
		return
	}
	if n > maxUploadChunk {
		g.error(413, "invalidRange", "A chunk must not be larger than 4 MB.")
		return
	}
	s.mu.Lock()
	next := len(us.data)
	s.mu.Unlock()
	if start != next {
		g.error(416, "invalidRange", fmt.Sprintf("Uploaded fragment overlaps with existing data or leaves a gap; next expected byte is %d.", next))
		return
	}
	buf, err := io.ReadAll(io.LimitReader(r.Body, int64(n)+1))
	if err != nil || len(buf) != n {
		g.error(400, "invalidRequest", "The body length does not match the Content-Range.")
		return
	}
	s.mu.Lock()
	us.data = append(us.data, buf...)
	complete := len(us.data) == us.size
	if complete {
		delete(s.uploads, id)
	}
	s.mu.Unlock()
	if !complete {
		writeJSONCT(w, 200, "application/json", map[string]any{
			"@odata.context":     s.url + "/api/v2.0/$metadata#Users('" + us.user.ID + "')/Messages('" + us.msg.imm + "')/AttachmentSessions/$entity",
			"ExpirationDateTime": us.expires.UTC().Format("2006-01-02T15:04:05.0000000Z"),
			"nextExpectedRanges": []string{strconv.Itoa(end + 1)},
		})
		return
	}
	mb := us.user.mb
	mb.mu.Lock()
	a := &attachment{name: us.name, contentType: us.contentType, size: us.size, data: us.data, inline: us.inline, contentID: us.contentID, modified: time.Now()}
	us.msg.atts = append(us.msg.atts, a)
	assignAttIDs(mb, us.msg)
	mb.touch(us.msg, time.Now())
	msgID := us.msg.imm
	mb.mu.Unlock()
	w.Header().Set("Location", s.GraphBaseURL()+"/users('"+us.user.ID+"')/messages('"+msgID+"')/attachments('"+a.id+"')")
	w.Header().Set("Content-Length", "0")
	w.WriteHeader(http.StatusCreated)
}
