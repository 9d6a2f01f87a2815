package m365sim

import (
	"bytes"
	"mime"
	"net/mail"
	"strings"
)

// Attached e-mails (message/rfc822 parts, Outlook's "forward as
// attachment") are item attachments in Exchange: Graph lists them as
// #microsoft.graph.itemAttachment named after the attached item's subject,
// with contentType null and no contentBytes, and
// GET .../attachments/{id}/$value returns the attached message's MIME
// (shared/graph-samples 31 and 33).

// isItemAttachment says whether a MIME part becomes an itemAttachment.
func isItemAttachment(contentType string) bool {
	ct, _, _ := mime.ParseMediaType(contentType)
	return strings.EqualFold(ct, "message/rfc822") || strings.EqualFold(contentType, "message/rfc822")
}

// itemName is the name Graph gives an attached message: its subject.
func itemName(raw []byte, fallback string) string {
	if msg, err := mail.ReadMessage(bytes.NewReader(raw)); err == nil {
		subj := msg.Header.Get("Subject")
		if dec, err := new(mime.WordDecoder).DecodeHeader(subj); err == nil {
			subj = dec
		}
		if subj = strings.TrimSpace(subj); subj != "" {
			return subj
		}
	}
	if fallback = strings.TrimSuffix(strings.TrimSpace(fallback), ".eml"); fallback != "" {
		return fallback
	}
	return "Untitled"
}

// markItem turns a parsed message/rfc822 attachment into an item attachment.
func markItem(a *attachment) {
	if !isItemAttachment(a.contentType) {
		return
	}
	a.item = true
	a.inline = false
	a.contentID = ""
	a.name = itemName(a.data, a.name)
}

func (s *Sim) itemAttachmentJSON(a *attachment) map[string]any {
	return map[string]any{
		"@odata.type":          "#microsoft.graph.itemAttachment",
		"id":                   a.id,
		"lastModifiedDateTime": a.modified.UTC().Format("2006-01-02T15:04:05Z"),
		"name":                 a.name,
		"contentType":          nil,
		"size":                 a.size,
		"isInline":             false,
	}
}
