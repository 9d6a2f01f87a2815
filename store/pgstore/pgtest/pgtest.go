// Package pgtest finds a PostgreSQL for tests: MAILDESK_TEST_POSTGRES when
// set ("private" forces the private cluster); else one on 127.0.0.1:5432
// with trust auth and a database "test" (CI machines have it); else a
// private cluster from Debian's binaries (/usr/lib/postgresql/*/bin) in a
// temporary directory; else the tests skip with a message saying how to
// get one. A package using it calls Stop from its TestMain.
package pgtest

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"fmt"
	"net"
	"os"
	"os/exec"
	"os/user"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
)

// FreshSchema creates an empty schema on the test PostgreSQL, dropped when
// t ends, and returns the URL with search_path set to it, and its name.
func FreshSchema(t testing.TB) (url, schema string) {
	t.Helper()
	base := URL(t)
	b := make([]byte, 6)
	_, _ = rand.Read(b)
	schema = "t_" + hex.EncodeToString(b)
	ctx := context.Background()
	conn, err := pgx.Connect(ctx, base)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close(ctx)
	if _, err := conn.Exec(ctx, "CREATE SCHEMA "+pgx.Identifier{schema}.Sanitize()); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		conn, err := pgx.Connect(ctx, base)
		if err == nil {
			_, _ = conn.Exec(ctx, "DROP SCHEMA "+pgx.Identifier{schema}.Sanitize()+" CASCADE")
			conn.Close(ctx)
		}
	})
	sep := "?"
	if strings.Contains(base, "?") {
		sep = "&"
	}
	return base + sep + "search_path=" + schema, schema
}

// The PostgreSQL the tests use: MAILDESK_TEST_POSTGRES when set ("private"
// forces the private cluster); else one
// on 127.0.0.1:5432 with trust auth and a database "test" (CI machines
// have it); else a private cluster from Debian's binaries
// (/usr/lib/postgresql/*/bin) in a temporary directory; else the tests skip.
var (
	pgOnce sync.Once
	pgURL  string
	pgWhy  string
	pgStop func()
)

const skipHow = "no PostgreSQL for the pgstore tests: set MAILDESK_TEST_POSTGRES=postgres://user@host:port/db, " +
	"run one on 127.0.0.1:5432 with trust auth and a database \"test\", or install Debian's postgresql package " +
	"(apt-get install postgresql) so the tests can start a private cluster"

// Stop stops the private cluster, if one was started (call it after m.Run).
func Stop() {
	if pgStop != nil {
		pgStop()
		pgStop = nil
	}
}

// URL returns the test PostgreSQL's URL, or skips t saying how to get one.
func URL(t testing.TB) string {
	t.Helper()
	pgOnce.Do(func() { pgURL, pgWhy = findPostgres() })
	if pgURL == "" {
		t.Skip(skipHow + " (" + pgWhy + ")")
	}
	return pgURL
}

func reachable(url string) error {
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Second)
	defer cancel()
	conn, err := pgx.Connect(ctx, url)
	if err != nil {
		return err
	}
	defer conn.Close(ctx)
	return conn.Ping(ctx)
}

func findPostgres() (string, string) {
	if os.Getenv("MAILDESK_TEST_POSTGRES") == "private" {
		u, err := privateCluster()
		if err != nil {
			return "", "private cluster: " + err.Error()
		}
		return u, ""
	}
	if u := os.Getenv("MAILDESK_TEST_POSTGRES"); u != "" {
		if err := reachable(u); err != nil {
			return "", "MAILDESK_TEST_POSTGRES does not answer: " + err.Error()
		}
		return u, ""
	}
	local := "postgres://postgres@127.0.0.1:5432/test?sslmode=disable"
	if reachable(local) == nil {
		return local, ""
	}
	u, err := privateCluster()
	if err != nil {
		return "", "127.0.0.1:5432 does not answer; private cluster: " + err.Error()
	}
	return u, ""
}

// privateCluster starts PostgreSQL from Debian's binaries in a temporary
// directory (as the "nobody" user when running as root: initdb refuses
// root) and returns its URL.
func privateCluster() (string, error) {
	bins, _ := filepath.Glob("/usr/lib/postgresql/*/bin/initdb")
	sort.Strings(bins)
	initdb := ""
	if len(bins) > 0 {
		initdb = bins[len(bins)-1]
	} else if p, err := exec.LookPath("initdb"); err == nil {
		initdb = p
	} else {
		return "", fmt.Errorf("no initdb in /usr/lib/postgresql/*/bin or on PATH")
	}
	postgres := filepath.Join(filepath.Dir(initdb), "postgres")
	dir, err := os.MkdirTemp("", "maildesk-pg-")
	if err != nil {
		return "", err
	}
	var cred *syscall.Credential
	if os.Geteuid() == 0 {
		u, err := user.Lookup("nobody")
		if err != nil {
			return "", fmt.Errorf("running as root and no user nobody to run PostgreSQL as")
		}
		uid, _ := strconv.Atoi(u.Uid)
		gid, _ := strconv.Atoi(u.Gid)
		if err := os.Chown(dir, uid, gid); err != nil {
			return "", err
		}
		cred = &syscall.Credential{Uid: uint32(uid), Gid: uint32(gid)}
	}
	run := func(name string, args ...string) *exec.Cmd {
		c := exec.Command(name, args...)
		c.Dir = dir
		if cred != nil {
			c.SysProcAttr = &syscall.SysProcAttr{Credential: cred}
		}
		return c
	}
	data := filepath.Join(dir, "data")
	if out, err := run(initdb, "-D", data, "-U", "postgres", "-A", "trust", "-E", "UTF8", "--no-sync").CombinedOutput(); err != nil {
		os.RemoveAll(dir)
		return "", fmt.Errorf("initdb: %v: %s", err, out)
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return "", err
	}
	port := ln.Addr().(*net.TCPAddr).Port
	ln.Close()
	srv := run(postgres, "-D", data, "-p", strconv.Itoa(port), "-k", dir, "-c", "listen_addresses=127.0.0.1", "-c", "fsync=off")
	logf, _ := os.Create(filepath.Join(os.TempDir(), fmt.Sprintf("maildesk-pg-%d.log", port)))
	srv.Stdout, srv.Stderr = logf, logf
	if err := srv.Start(); err != nil {
		os.RemoveAll(dir)
		return "", fmt.Errorf("start postgres: %w", err)
	}
	pgStop = func() {
		_ = srv.Process.Signal(syscall.SIGINT)
		_ = srv.Wait()
		os.RemoveAll(dir)
		if logf != nil {
			logf.Close()
			os.Remove(logf.Name())
		}
	}
	url := fmt.Sprintf("postgres://postgres@127.0.0.1:%d/postgres?sslmode=disable", port)
	deadline := time.Now().Add(60 * time.Second)
	for {
		err := reachable(url)
		if err == nil {
			return url, nil
		}
		if time.Now().After(deadline) {
			pgStop()
			pgStop = nil
			return "", fmt.Errorf("the private cluster did not answer in 60 s: %v", err)
		}
		time.Sleep(100 * time.Millisecond)
	}
}
