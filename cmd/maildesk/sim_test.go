package main

import (
	"bufio"
	"context"
	"io"
	"strings"
	"testing"
	"time"
)

// `maildesk sim` runs the simulator until cancelled and prints where it is.
func TestSimCommand(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	pr, pw := io.Pipe()
	done := make(chan int, 1)
	go func() {
		done <- run(ctx, []string{"sim", "--listen", "127.0.0.1:0", "--mailboxes", "1", "--messages", "5"}, pw, io.Discard, func(string) string { return "" })
		pw.Close()
	}()
	sc := bufio.NewScanner(pr)
	seen := false
	for sc.Scan() {
		if strings.Contains(sc.Text(), "graph base URL:") && strings.Contains(sc.Text(), "https://127.0.0.1:") {
			seen = true
			cancel()
		}
	}
	if code := <-done; code != 0 || !seen {
		t.Fatalf("sim exited %d, printed its Graph URL: %v", code, seen)
	}
}
