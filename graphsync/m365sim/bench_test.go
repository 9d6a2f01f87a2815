package m365sim

import (
	"fmt"
	"io"
	"net/url"
	"runtime"
	"testing"
	"time"
)

// BenchmarkBackfillDelta pages a 20,000-message inbox through delta with
// Prefer: odata.maxpagesize=200 and the $select a sync engine uses
// (body and internetMessageHeaders), as the backfill benchmark will.
func BenchmarkBackfillDelta(b *testing.B) {
	s, err := New(Options{Seed: 1, TimeScale: 1, SamplesDir: b.TempDir()})
	if err != nil {
		b.Fatal(err)
	}
	s.AddUser(testUser, "Anna")
	var before, after runtime.MemStats
	runtime.GC()
	runtime.ReadMemStats(&before)
	start := time.Now()
	s.GenerateMailbox(testUser, 20000, GenOptions{SentRate: -1})
	gen := time.Since(start)
	runtime.GC()
	runtime.ReadMemStats(&after)
	if err := s.Start(); err != nil {
		b.Fatal(err)
	}
	defer s.Close()
	t := &testing.T{}
	tok, _ := token(t, s, testUser, allScopes)
	n := len(s.Messages(testUser, "inbox"))
	first := "/me/mailFolders/inbox/messages/delta?" + url.Values{"$select": {"subject,from,toRecipients,receivedDateTime,internetMessageId,internetMessageHeaders,body,hasAttachments,isRead"}}.Encode()
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		link := first
		got := 0
		for {
			r := callB(b, s, tok, link, "Prefer", "odata.maxpagesize=200", "Prefer", immutable)
			got += r.items
			if r.next == "" {
				break
			}
			link = r.next
		}
		if got != n {
			b.Fatalf("delta saw %d of %d", got, n)
		}
	}
	el := b.Elapsed().Seconds()
	b.ReportMetric(float64(n*b.N)/el, "msgs/s")
	b.ReportMetric(float64(after.HeapAlloc-before.HeapAlloc)/float64(n), "heapB/msg")
	b.ReportMetric(gen.Seconds(), "gen-s")
}

// BenchmarkQuietPoll runs one quiet delta round per mailbox over 2,000
// mailboxes (the poll benchmark's shape).
func BenchmarkQuietPoll(b *testing.B) {
	s, err := New(Options{Seed: 1, TimeScale: 1, SamplesDir: b.TempDir()}) // raw server speed: above 2,000 req/s the app limit would answer 429
	if err != nil {
		b.Fatal(err)
	}
	if err := s.Start(); err != nil {
		b.Fatal(err)
	}
	defer s.Close()
	const boxes = 2000
	toks := make([]string, boxes)
	links := make([]string, boxes)
	t := &testing.T{}
	for i := 0; i < boxes; i++ {
		upn := fmt.Sprintf("user%d@contoso.com", i)
		s.AddUser(upn, "User")
		s.GenerateMailbox(upn, 5, GenOptions{NoSamples: true, SentRate: -1, AttachmentRate: -1})
		toks[i], _ = token(t, s, upn, allScopes)
		link := "/me/mailFolders/inbox/messages/delta"
		for {
			r := callB(b, s, toks[i], link)
			if r.next == "" {
				links[i] = r.delta
				break
			}
			link = r.next
		}
	}
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		k := i % boxes
		r := callB(b, s, toks[k], links[k])
		if r.items != 0 || r.delta == "" {
			b.Fatalf("quiet round: %d items", r.items)
		}
	}
	b.ReportMetric(float64(b.N)/b.Elapsed().Seconds(), "polls/s")
}

// BenchmarkMIMEFetch downloads $value of generated messages with the
// default attachment mix (30 % with attachments, up to 30 MB).
func BenchmarkMIMEFetch(b *testing.B) {
	s, err := New(Options{Seed: 1, TimeScale: 1, SamplesDir: b.TempDir()})
	if err != nil {
		b.Fatal(err)
	}
	s.AddUser(testUser, "Anna")
	s.GenerateMailbox(testUser, 2000, GenOptions{SentRate: -1})
	if err := s.Start(); err != nil {
		b.Fatal(err)
	}
	defer s.Close()
	tok, _ := token(&testing.T{}, s, testUser, allScopes)
	msgs := s.Messages(testUser, "inbox")
	var bytesOut int64
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		m := msgs[i%len(msgs)]
		req, _ := newReq("GET", s.GraphBaseURL()+"/me/messages/"+m.ID+"/$value", tok)
		res, err := s.Client().Do(req)
		if err != nil || res.StatusCode != 200 {
			b.Fatalf("$value: %v", err)
		}
		n, _ := io.Copy(io.Discard, res.Body)
		res.Body.Close()
		bytesOut += n
	}
	b.ReportMetric(float64(b.N)/b.Elapsed().Seconds(), "msgs/s")
	b.ReportMetric(float64(bytesOut)/float64(b.N), "B/msg")
}
