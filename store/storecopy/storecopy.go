// Package storecopy copies a MailDesk store into another: a bbolt data
// directory into PostgreSQL (maildesk store copy), so a sidecar can move to
// PostgreSQL with its mailboxes, tokens, cursors, message index, outbox and
// audit log, and go on where it stopped: nothing is synced or delivered
// again, nothing is lost.
package storecopy

import (
	"errors"
	"fmt"
	"io"
	"strings"
	"time"

	"github.com/maildesk/maildesk/store"
)

// Source is a store that exports its records (store.Store).
type Source interface {
	Export(fn func(store.Record) error) error
}

// Target is a store that takes them (pgstore.Store).
type Target interface {
	Counts() (map[string]int, error)
	Import(recs []store.Record) error
	FinishImport() error
}

// Options tune Copy.
type Options struct {
	// Force copies into a target that holds data already (records with the
	// same keys are overwritten). Without it a non-empty target is refused.
	Force bool
	// Progress gets a line per batch and the final counts (nil: none).
	Progress io.Writer
	// Batch is how many records go in one target transaction (default 2,000).
	Batch int
}

// Result counts each kind of record in the source and, after the copy, in
// the target.
type Result struct {
	Source, Target map[string]int
}

// ErrNotEmpty is Copy's answer for a target that holds data, without Force.
var ErrNotEmpty = errors.New("the target already holds MailDesk data")

// Copy copies every record of src into dst, in batches, then checks that
// the target holds at least as many records of each kind as the source
// (exactly as many when it was empty). Pending sign-ins are not copied.
func Copy(src Source, dst Target, opts Options) (Result, error) {
	if opts.Batch <= 0 {
		opts.Batch = 2000
	}
	out := opts.Progress
	if out == nil {
		out = io.Discard
	}
	before, err := dst.Counts()
	if err != nil {
		return Result{}, err
	}
	empty := true
	for _, n := range before {
		if n > 0 {
			empty = false
		}
	}
	if !empty && !opts.Force {
		return Result{}, fmt.Errorf("storecopy: %w (%s): copy into an empty database, or give --force to copy over what is there", ErrNotEmpty, summary(before))
	}
	res := Result{Source: map[string]int{}}
	var batch []store.Record
	total, start := 0, time.Now()
	flush := func() error {
		if len(batch) == 0 {
			return nil
		}
		if err := dst.Import(batch); err != nil {
			return err
		}
		total += len(batch)
		last := batch[len(batch)-1]
		fmt.Fprintf(out, "copied %d records (%s, now %s) in %s\n", total, summary(res.Source), last.Kind, time.Since(start).Round(time.Millisecond))
		batch = batch[:0]
		return nil
	}
	err = src.Export(func(r store.Record) error {
		res.Source[r.Kind]++
		batch = append(batch, r)
		if len(batch) >= opts.Batch {
			return flush()
		}
		return nil
	})
	if err == nil {
		err = flush()
	}
	if err != nil {
		return res, fmt.Errorf("storecopy: after %d records: %w", total, err)
	}
	if err := dst.FinishImport(); err != nil {
		return res, err
	}
	if res.Target, err = dst.Counts(); err != nil {
		return res, err
	}
	var bad []string
	for _, kind := range store.RecordKinds {
		s, t := res.Source[kind], res.Target[kind]
		ok := t == s || (!empty && t >= s)
		mark := "ok"
		if !ok {
			mark = "MISSING"
			bad = append(bad, fmt.Sprintf("%s: %d of %d", kind, t, s))
		}
		fmt.Fprintf(out, "  %-12s source %8d  target %8d  %s\n", kind, s, t, mark)
	}
	if len(bad) > 0 {
		return res, fmt.Errorf("storecopy: the target does not hold everything copied (%s)", strings.Join(bad, ", "))
	}
	return res, nil
}

func summary(counts map[string]int) string {
	var parts []string
	for _, kind := range store.RecordKinds {
		if n := counts[kind]; n > 0 {
			parts = append(parts, fmt.Sprintf("%s %d", kind, n))
		}
	}
	if len(parts) == 0 {
		return "nothing"
	}
	return strings.Join(parts, ", ")
}
