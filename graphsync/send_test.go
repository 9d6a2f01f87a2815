package graphsync_test

import (
	"bytes"
	"context"
	"crypto/rand"
	"encoding/base64"
	"errors"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/jhillyerd/enmime"

	"github.com/maildesk/maildesk/graphsync"
)

type part struct {
	name, ctype, cte string
	data             []byte
}

func buildMixed(parts ...part) []byte {
	var b bytes.Buffer
	b.WriteString("From: anna@contoso.com\r\nTo: carl@customer.example\r\nSubject: =?utf-8?q?Gr=C3=BC=C3=9Fe?=\r\nMessage-Id: <s1@odoo.contoso.com>\r\n")
	b.WriteString("In-Reply-To: <o1@customer.example>\r\nReferences: <r1@customer.example>\r\n <o1@customer.example>\r\nMIME-Version: 1.0\r\n")
	b.WriteString("Content-Type: multipart/mixed;\r\n boundary=\"==b==\"\r\n\r\nThis is a multi-part message.\r\n")
	b.WriteString("--==b==\r\nContent-Type: text/html; charset=\"utf-8\"\r\nContent-Transfer-Encoding: quoted-printable\r\n\r\n<p>Gr=C3=BC=C3=9Fe</p>\r\n")
	for _, p := range parts {
		b.WriteString("--==b==\r\nContent-Type: " + p.ctype + "; name=\"" + p.name + "\"\r\nContent-Disposition: attachment; filename=\"" + p.name + "\"\r\n")
		b.WriteString("Content-Transfer-Encoding: " + p.cte + "\r\n\r\n")
		if p.cte == "base64" {
			enc := base64.StdEncoding.EncodeToString(p.data)
			for len(enc) > 76 {
				b.WriteString(enc[:76] + "\r\n")
				enc = enc[76:]
			}
			b.WriteString(enc + "\r\n")
		} else {
			b.Write(p.data)
			b.WriteString("\r\n")
		}
	}
	b.WriteString("--==b==--\r\n")
	return b.Bytes()
}

func random(n int) []byte {
	b := make([]byte, n)
	_, _ = rand.Read(b)
	return b
}

func TestSplitKeepsSmallMessagesWhole(t *testing.T) {
	raw := buildMixed(part{"a.bin", "application/octet-stream", "base64", random(100 << 10)})
	out, err := graphsync.Split(raw)
	if err != nil || !bytes.Equal(out.MIME, raw) || len(out.Large) != 0 {
		t.Fatalf("small message changed: %v, %d large", err, len(out.Large))
	}
	plain := []byte("From: a@contoso.com\r\nTo: b@x.example\r\n\r\nhi\r\n")
	if out, err := graphsync.Split(plain); err != nil || !bytes.Equal(out.MIME, plain) {
		t.Fatalf("plain message: %v", err)
	}
}

func TestSplitTakesOutLargeAttachments(t *testing.T) {
	big, small, notes := random(5<<20), random(200<<10), []byte("line one\r\nline two = three")
	raw := buildMixed(
		part{"small.bin", "application/octet-stream", "base64", small},
		part{"big.pdf", "application/pdf", "base64", big},
		part{"notes.csv", "application/csv", "7bit", notes},
	)
	out, err := graphsync.Split(raw)
	if err != nil {
		t.Fatal(err)
	}
	if len(out.Large) != 1 || out.Large[0].Name != "big.pdf" || out.Large[0].ContentType != "application/pdf" || !bytes.Equal(out.Large[0].Data, big) {
		t.Fatalf("large: %+v", out.Large)
	}
	hdrEnd := bytes.Index(raw, []byte("\r\n\r\n"))
	if !bytes.Equal(out.MIME[:hdrEnd], raw[:hdrEnd]) {
		t.Fatal("the header block changed")
	}
	env, err := enmime.ReadEnvelope(bytes.NewReader(out.MIME))
	if err != nil {
		t.Fatal(err)
	}
	if env.GetHeader("Subject") != "Grüße" || !strings.Contains(env.HTML, "Grüße") || env.Root.Header.Get("References") == "" {
		t.Fatalf("body or headers lost: %q %q", env.GetHeader("Subject"), env.HTML)
	}
	if len(env.Attachments) != 2 || !bytes.Equal(env.Attachments[0].Content, small) || env.Attachments[1].FileName != "notes.csv" {
		t.Fatalf("kept attachments: %d", len(env.Attachments))
	}
	if base64.StdEncoding.EncodedLen(len(out.MIME)) > graphsync.MaxRequestBody {
		t.Fatal("what stays does not fit in one request")
	}
}

func TestSplitMovesBiggestUntilItFits(t *testing.T) {
	// Four 1 MB attachments: none is large, together they are over 4 MB of base64.
	var parts []part
	for _, n := range []string{"a", "b", "c", "d"} {
		parts = append(parts, part{n + ".bin", "application/octet-stream", "base64", random(1 << 20)})
	}
	out, err := graphsync.Split(buildMixed(parts...))
	if err != nil {
		t.Fatal(err)
	}
	if len(out.Large) == 0 || len(out.Large) == 4 || base64.StdEncoding.EncodedLen(len(out.MIME)) > graphsync.MaxRequestBody {
		t.Fatalf("%d uploaded, %d bytes left", len(out.Large), len(out.MIME))
	}
	// A big single-part message cannot be split.
	big := append([]byte("From: a@contoso.com\r\nTo: b@x.example\r\nContent-Type: application/pdf\r\n\r\n"), random(4<<20)...)
	if _, err := graphsync.Split(big); err == nil {
		t.Fatal("split a single-part message over the request limit")
	}
}

func TestUploadBudget(t *testing.T) {
	var offset atomic.Int64
	now := func() time.Time { return time.Now().Add(time.Duration(offset.Load())) }
	b := graphsync.NewUploadBudget(10, time.Minute, now)
	ctx := context.Background()
	if err := b.Acquire(ctx, 6); err != nil {
		t.Fatal(err)
	}
	short, cancel := context.WithTimeout(ctx, 20*time.Millisecond)
	defer cancel()
	if err := b.Acquire(short, 6); !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("over the budget: %v, want a wait", err)
	}
	if err := b.Acquire(ctx, 4); err != nil {
		t.Fatalf("within the budget: %v", err)
	}
	if err := b.Acquire(ctx, 11); err == nil {
		t.Fatal("an upload bigger than the budget was accepted")
	}
	offset.Store(int64(time.Minute + time.Second))
	if err := b.Acquire(ctx, 10); err != nil {
		t.Fatalf("after the window: %v", err)
	}
}
