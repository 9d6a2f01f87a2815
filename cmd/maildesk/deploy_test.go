package main

// Tests of the binary as deploy/ runs it: built with the exact `go build`
// line of deploy/Dockerfile, started as `maildesk serve` under a fake
// systemd notify socket, over TLS, and backed up and restored with the CLI.

import (
	"bufio"
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/json"
	"encoding/pem"
	"errors"
	"io"
	"math/big"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"
)

// dockerBuildLine returns the arguments of the `go build` in deploy/Dockerfile
// (after "go build"), with ${VAR} build arguments replaced by vars.
func dockerBuildLine(t *testing.T, vars map[string]string) (env []string, args []string) {
	t.Helper()
	raw, err := os.ReadFile(filepath.Join("..", "..", "deploy", "Dockerfile"))
	if err != nil {
		t.Fatal(err)
	}
	// Join continuation lines, then find the RUN holding "go build".
	text := strings.ReplaceAll(string(raw), "\\\n", " ")
	var line string
	for _, l := range strings.Split(text, "\n") {
		if strings.HasPrefix(strings.TrimSpace(l), "RUN") && strings.Contains(l, " go build ") {
			if line != "" {
				t.Fatal("deploy/Dockerfile has more than one RUN with go build")
			}
			line = l
		}
	}
	if line == "" {
		t.Fatal("deploy/Dockerfile has no RUN with go build")
	}
	words := shellWords(t, line)
	i := 0
	for i < len(words) && words[i] != "go" {
		if strings.Contains(words[i], "=") && !strings.HasPrefix(words[i], "-") && !strings.HasPrefix(words[i], "RUN") {
			env = append(env, words[i])
		}
		i++
	}
	if i+1 >= len(words) || words[i+1] != "build" {
		t.Fatalf("cannot read the go build command in %q", line)
	}
	for _, w := range words[i+2:] {
		args = append(args, os.Expand(w, func(k string) string {
			v, ok := vars[k]
			if !ok {
				t.Fatalf("deploy/Dockerfile's go build uses ${%s}; give it a test value", k)
			}
			return v
		}))
	}
	return env, args
}

// shellWords splits a RUN line the way sh would for the simple quoting the
// Dockerfile uses ("..." and '...').
func shellWords(t *testing.T, s string) []string {
	var out []string
	var cur strings.Builder
	inWord := false
	var quote rune
	for _, r := range s {
		switch {
		case quote != 0:
			if r == quote {
				quote = 0
			} else {
				cur.WriteRune(r)
			}
		case r == '"' || r == '\'':
			quote, inWord = r, true
		case r == ' ' || r == '\t':
			if inWord {
				out = append(out, cur.String())
				cur.Reset()
				inWord = false
			}
		default:
			cur.WriteRune(r)
			inWord = true
		}
	}
	if quote != 0 {
		t.Fatalf("unbalanced quote in %q", s)
	}
	if inWord {
		out = append(out, cur.String())
	}
	return out
}

// buildLikeDockerfile builds cmd/maildesk into t.TempDir() with
// deploy/Dockerfile's command, only the output path changed.
func buildLikeDockerfile(t *testing.T) string {
	t.Helper()
	env, args := dockerBuildLine(t, map[string]string{"VERSION": "deploy-test"})
	bin := filepath.Join(t.TempDir(), "maildesk")
	for i := 0; i < len(args); i++ {
		if args[i] == "-o" && i+1 < len(args) {
			args[i+1] = bin
		}
	}
	cmd := exec.Command("go", append([]string{"build"}, args...)...)
	cmd.Dir = filepath.Join("..", "..")
	cmd.Env = append(os.Environ(), env...)
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("go build %s: %v\n%s", strings.Join(args, " "), err, out)
	}
	return bin
}

// TestDeployedBinary runs the binary the image ships, built once for all
// subtests.
func TestDeployedBinary(t *testing.T) {
	t.Parallel()
	if testing.Short() {
		t.Skip("builds the binary; skipped with -short")
	}
	bin := buildLikeDockerfile(t)
	if out, err := exec.Command(bin, "version").CombinedOutput(); err != nil || !strings.Contains(string(out), "maildesk deploy-test") {
		t.Fatalf("maildesk version: %v: %s (the Dockerfile's -ldflags must set the version)", err, out)
	}
	t.Run("NotifiesSystemd", func(t *testing.T) { testServeNotifiesSystemd(t, bin) })
	t.Run("WithoutNotifySocket", func(t *testing.T) { testServeWithoutNotifySocket(t, bin) })
	t.Run("TLSAndHealthcheck", func(t *testing.T) { testServeTLSAndHealthcheck(t, bin) })
	t.Run("RefusesBadNetConfig", func(t *testing.T) { testServeRefusesBadNetConfig(t, bin) })
	t.Run("BackupRestoreCLI", func(t *testing.T) { testBackupRestoreCLI(t, bin) })
}

func TestDockerfileBuildLine(t *testing.T) {
	env, args := dockerBuildLine(t, map[string]string{"VERSION": "v9"})
	if strings.Join(env, " ") != "CGO_ENABLED=0" {
		t.Errorf("Dockerfile go build env %v, want CGO_ENABLED=0 (a static binary for distroless)", env)
	}
	joined := strings.Join(args, " ")
	for _, want := range []string{"-trimpath", "./cmd/maildesk", "-o /out/maildesk"} {
		if !strings.Contains(joined, want) {
			t.Errorf("Dockerfile go build %q lacks %q", joined, want)
		}
	}
}

// notifySocket is a fake systemd notify socket collecting datagrams.
type notifySocket struct {
	path string
	conn *net.UnixConn
}

func newNotifySocket(t *testing.T) *notifySocket {
	t.Helper()
	path := filepath.Join(t.TempDir(), "notify.sock")
	c, err := net.ListenUnixgram("unixgram", &net.UnixAddr{Name: path, Net: "unixgram"})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close() })
	return &notifySocket{path: path, conn: c}
}

// waitFor reads datagrams until one starts with prefix, failing after the
// deadline; it returns that datagram and the ones before it.
func (s *notifySocket) waitFor(t *testing.T, prefix string, deadline time.Duration) (string, []string) {
	t.Helper()
	_ = s.conn.SetReadDeadline(time.Now().Add(deadline))
	var seen []string
	buf := make([]byte, 4096)
	for {
		n, err := s.conn.Read(buf)
		if err != nil {
			t.Fatalf("waiting for %q on the notify socket: %v (seen %q)", prefix, err, seen)
		}
		msg := string(buf[:n])
		if strings.HasPrefix(msg, prefix) {
			return msg, seen
		}
		seen = append(seen, msg)
	}
}

// sidecar is a running `maildesk serve`.
type sidecar struct {
	cmd    *exec.Cmd
	stdout *lineBuffer
	stderr *lineBuffer
	done   chan error
}

// lineBuffer keeps a process's output and lets a test wait for a line.
type lineBuffer struct {
	mu    sync.Mutex
	lines []string
	cond  *sync.Cond
}

func newLineBuffer(r io.Reader) *lineBuffer {
	b := &lineBuffer{}
	b.cond = sync.NewCond(&b.mu)
	go func() {
		sc := bufio.NewScanner(r)
		sc.Buffer(make([]byte, 64<<10), 1<<20)
		for sc.Scan() {
			b.mu.Lock()
			b.lines = append(b.lines, sc.Text())
			b.cond.Broadcast()
			b.mu.Unlock()
		}
		b.mu.Lock()
		b.lines = append(b.lines, "\x00EOF")
		b.cond.Broadcast()
		b.mu.Unlock()
	}()
	return b
}

// waitMatch waits for a line matching re and returns its submatches.
func (b *lineBuffer) waitMatch(t *testing.T, re *regexp.Regexp, deadline time.Duration) []string {
	t.Helper()
	timer := time.AfterFunc(deadline, func() { b.mu.Lock(); b.lines = append(b.lines, "\x00TIMEOUT"); b.cond.Broadcast(); b.mu.Unlock() })
	defer timer.Stop()
	b.mu.Lock()
	defer b.mu.Unlock()
	for i := 0; ; i++ {
		for i >= len(b.lines) {
			b.cond.Wait()
		}
		l := b.lines[i]
		if l == "\x00EOF" || l == "\x00TIMEOUT" {
			t.Fatalf("no line matching %s (%s); output:\n%s", re, strings.TrimPrefix(l, "\x00"), strings.Join(b.lines[:i], "\n"))
		}
		if m := re.FindStringSubmatch(l); m != nil {
			return m
		}
	}
}

func (b *lineBuffer) String() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return strings.Join(b.lines, "\n")
}

var servingRE = regexp.MustCompile(`serving JSON-RPC on (https?)://([0-9.:]+)/jsonrpc`)

// startSidecar runs `maildesk serve --listen 127.0.0.1:0 <args>` with env
// added to a minimal environment, and stops it at the end of the test.
func startSidecar(t *testing.T, bin string, env []string, args ...string) *sidecar {
	t.Helper()
	cmd := exec.Command(bin, append([]string{"serve", "--listen", "127.0.0.1:0", "--log-format", "json"}, args...)...)
	cmd.Env = append([]string{"PATH=" + os.Getenv("PATH"), "HOME=" + t.TempDir()}, env...)
	outR, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	errR, err := cmd.StderrPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	s := &sidecar{cmd: cmd, stdout: newLineBuffer(outR), stderr: newLineBuffer(errR), done: make(chan error, 1)}
	go func() { s.done <- cmd.Wait() }()
	t.Cleanup(func() {
		_ = cmd.Process.Kill()
		<-s.done
	})
	return s
}

// stop sends SIGTERM and waits for a clean exit.
func (s *sidecar) stop(t *testing.T) {
	t.Helper()
	if err := s.cmd.Process.Signal(syscall.SIGTERM); err != nil {
		t.Fatal(err)
	}
	select {
	case err := <-s.done:
		s.done <- err // for Cleanup
		if err != nil {
			t.Fatalf("sidecar exited with %v; stderr:\n%s", err, s.stderr)
		}
	case <-time.After(60 * time.Second):
		t.Fatalf("sidecar did not stop within 60 s of SIGTERM; stderr:\n%s", s.stderr)
	}
}

// The acceptance test of deploy/systemd/maildesk.service's Type=notify: the
// binary sends READY=1 once /healthz answers, WATCHDOG=1 at half of
// WATCHDOG_USEC, and STOPPING=1 on SIGTERM.
func testServeNotifiesSystemd(t *testing.T, bin string) {
	sock := newNotifySocket(t)
	data := t.TempDir()
	s := startSidecar(t, bin, []string{
		"NOTIFY_SOCKET=" + sock.path,
		"WATCHDOG_USEC=400000", // 0.4 s: pings every 0.2 s
		"MAILDESK_DATA_DIR=" + data,
	})
	ready, before := sock.waitFor(t, "READY=1", 60*time.Second)
	if len(before) != 0 {
		t.Errorf("datagrams before READY=1: %q", before)
	}
	m := regexp.MustCompile(`STATUS=serving JSON-RPC on http://([0-9.:]+)`).FindStringSubmatch(ready)
	if m == nil {
		t.Fatalf("READY datagram %q has no STATUS with the address", ready)
	}
	// READY means ready: the listener answers at once.
	resp, err := http.Get("http://" + m[1] + "/healthz")
	if err != nil {
		t.Fatalf("READY=1 was sent but /healthz does not answer: %v", err)
	}
	resp.Body.Close()
	if resp.StatusCode != 200 {
		t.Fatalf("/healthz answered %d after READY=1", resp.StatusCode)
	}
	for i := 0; i < 3; i++ {
		if msg, other := sock.waitFor(t, "WATCHDOG=1", 60*time.Second); msg != "WATCHDOG=1" || len(other) != 0 {
			t.Fatalf("watchdog datagram %q, others %q", msg, other)
		}
	}
	if err := s.cmd.Process.Signal(syscall.SIGTERM); err != nil {
		t.Fatal(err)
	}
	if _, other := sock.waitFor(t, "STOPPING=1", 60*time.Second); len(other) > 0 {
		for _, o := range other {
			if o != "WATCHDOG=1" {
				t.Errorf("unexpected datagram before STOPPING=1: %q", o)
			}
		}
	}
	if err := <-s.done; err != nil {
		t.Fatalf("exit after SIGTERM: %v; stderr:\n%s", err, s.stderr)
	}
	s.done <- nil
}

// Without NOTIFY_SOCKET (a container, a shell) serve runs as usual and
// WATCHDOG_USEC alone changes nothing.
func testServeWithoutNotifySocket(t *testing.T, bin string) {
	s := startSidecar(t, bin, []string{"WATCHDOG_USEC=100000", "MAILDESK_DATA_DIR=" + t.TempDir()})
	s.stdout.waitMatch(t, servingRE, 60*time.Second)
	s.stop(t)
}

// writeCert makes a self-signed certificate for 127.0.0.1 and returns the
// paths of its PEM files.
func writeCert(t *testing.T, dir string) (certFile, keyFile string) {
	t.Helper()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	tmpl := &x509.Certificate{
		SerialNumber: big.NewInt(1),
		Subject:      pkix.Name{CommonName: "maildesk.example.com"},
		DNSNames:     []string{"maildesk.example.com"}, // not 127.0.0.1: the CLI pins the cert instead
		NotBefore:    time.Now().Add(-time.Hour),
		NotAfter:     time.Now().Add(24 * time.Hour),
		KeyUsage:     x509.KeyUsageDigitalSignature,
		ExtKeyUsage:  []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth},
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		t.Fatal(err)
	}
	kder, err := x509.MarshalPKCS8PrivateKey(key)
	if err != nil {
		t.Fatal(err)
	}
	certFile, keyFile = filepath.Join(dir, "cert.pem"), filepath.Join(dir, "key.pem")
	if err := os.WriteFile(certFile, pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der}), 0o644); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(keyFile, pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: kder}), 0o600); err != nil {
		t.Fatal(err)
	}
	return certFile, keyFile
}

// runCLI runs the binary with args and the environment env.
func runCLI(t *testing.T, bin string, env []string, args ...string) (string, error) {
	t.Helper()
	cmd := exec.Command(bin, args...)
	cmd.Env = append([]string{"PATH=" + os.Getenv("PATH"), "HOME=" + t.TempDir()}, env...)
	out, err := cmd.CombinedOutput()
	return string(out), err
}

// TLS on the listener: HTTPS answers, plain HTTP does not, and the CLI
// (healthcheck, status) reaches it through the pinned certificate.
func testServeTLSAndHealthcheck(t *testing.T, bin string) {
	dir := t.TempDir()
	certFile, keyFile := writeCert(t, dir)
	env := []string{
		"MAILDESK_DATA_DIR=" + filepath.Join(dir, "data"),
		"MAILDESK_TLS_CERT=" + certFile,
		"MAILDESK_TLS_KEY=" + keyFile,
		"MAILDESK_ALLOW_FROM=10.11.12.0/24", // loopback (the CLI) stays allowed
	}
	s := startSidecar(t, bin, env)
	m := s.stdout.waitMatch(t, servingRE, 60*time.Second)
	if m[1] != "https" {
		t.Fatalf("serving %s, want https", m[1])
	}
	addr := m[2]
	pool := x509.NewCertPool()
	pemBytes, _ := os.ReadFile(certFile)
	pool.AppendCertsFromPEM(pemBytes)
	client := &http.Client{Timeout: 10 * time.Second, Transport: &http.Transport{TLSClientConfig: &tls.Config{RootCAs: pool, ServerName: "maildesk.example.com"}}}
	resp, err := client.Get("https://" + addr + "/healthz")
	if err != nil {
		t.Fatalf("HTTPS /healthz: %v", err)
	}
	resp.Body.Close()
	if resp.StatusCode != 200 {
		t.Fatalf("HTTPS /healthz: %d", resp.StatusCode)
	}
	if resp, err := (&http.Client{Timeout: 10 * time.Second}).Get("http://" + addr + "/healthz"); err == nil {
		resp.Body.Close()
		if resp.StatusCode == 200 {
			t.Fatal("plain HTTP answered 200 on a TLS listener")
		}
	}
	cliEnv := append([]string{"MAILDESK_LISTEN=" + addr}, env...)
	if out, err := runCLI(t, bin, cliEnv, "healthcheck"); err != nil || !strings.Contains(out, "healthy") {
		t.Fatalf("maildesk healthcheck over TLS: %v\n%s", err, out)
	}
	if out, err := runCLI(t, bin, cliEnv, "status"); err != nil || !strings.Contains(out, "MailDesk at https://") {
		t.Fatalf("maildesk status over TLS: %v\n%s", err, out)
	}
	s.stop(t)
	// Nothing listens any more: healthcheck fails.
	if out, err := runCLI(t, bin, cliEnv, "healthcheck", "--timeout", "3s"); err == nil {
		t.Fatalf("healthcheck succeeded with the sidecar stopped:\n%s", out)
	}
}

func testServeRefusesBadNetConfig(t *testing.T, bin string) {
	dir := t.TempDir()
	certFile, _ := writeCert(t, dir)
	out, err := runCLI(t, bin, []string{"MAILDESK_DATA_DIR=" + dir}, "serve", "--listen", "127.0.0.1:0",
		"--tls-cert", certFile, "--allow-from", "10.0.0.0/8, odoo.internal, 10.0.0.0/33")
	var ee *exec.ExitError
	if !errors.As(err, &ee) || ee.ExitCode() == 0 {
		t.Fatalf("serve started with a bad configuration: %v\n%s", err, out)
	}
	for _, want := range []string{"--tls-cert is set but --tls-key is not", `"odoo.internal"`, `"10.0.0.0/33"`} {
		if !strings.Contains(out, want) {
			t.Errorf("error output lacks %q:\n%s", want, out)
		}
	}
	// A key that does not belong to the certificate stops serve before it listens.
	_, otherKey := writeCert(t, t.TempDir())
	out, err = runCLI(t, bin, []string{"MAILDESK_DATA_DIR=" + filepath.Join(dir, "d2")}, "serve", "--listen", "127.0.0.1:0",
		"--tls-cert", certFile, "--tls-key", otherKey)
	if err == nil || !strings.Contains(out, "private key does not match public key") {
		t.Fatalf("serve accepted a mismatched key: %v\n%s", err, out)
	}
}

// rpcCall calls a JSON-RPC method as a MailDesk administrator.
func rpcCall(t *testing.T, base, secret, method string, params map[string]any, out any) {
	t.Helper()
	if params == nil {
		params = map[string]any{}
	}
	params["context"] = map[string]any{"uid": 2, "maildesk_admin": true}
	body, _ := json.Marshal(map[string]any{"jsonrpc": "2.0", "id": 1, "method": method, "params": params})
	req, _ := http.NewRequestWithContext(context.Background(), http.MethodPost, base+"/jsonrpc", strings.NewReader(string(body)))
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("Authorization", "Bearer "+secret)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatalf("%s: %v", method, err)
	}
	defer resp.Body.Close()
	var ans struct {
		Result json.RawMessage `json:"result"`
		Error  json.RawMessage `json:"error"`
	}
	if err := json.NewDecoder(resp.Body).Decode(&ans); err != nil {
		t.Fatalf("%s: %v", method, err)
	}
	if len(ans.Error) > 0 && string(ans.Error) != "null" {
		t.Fatalf("%s: %s", method, ans.Error)
	}
	if out != nil {
		if err := json.Unmarshal(ans.Result, out); err != nil {
			t.Fatalf("%s: result %s: %v", method, ans.Result, err)
		}
	}
}

// The backup and restore procedure of docs/operations.md, with processes:
// `maildesk backup` from a running sidecar, `maildesk restore` into a
// stopped one (refused while it runs), and the restored sidecar serves the
// backed-up state.
func testBackupRestoreCLI(t *testing.T, bin string) {
	dir := t.TempDir()
	data := filepath.Join(dir, "data")
	env := []string{"MAILDESK_DATA_DIR=" + data}
	s := startSidecar(t, bin, env)
	addr := s.stdout.waitMatch(t, servingRE, 60*time.Second)[2]
	base := "http://" + addr
	secret, err := os.ReadFile(filepath.Join(data, "shared-secret"))
	if err != nil {
		t.Fatal(err)
	}
	sec := strings.TrimSpace(string(secret))
	cliEnv := append([]string{"MAILDESK_LISTEN=" + addr}, env...)

	create := func(email string) {
		rpcCall(t, base, sec, "mailbox.create", map[string]any{"email": email, "kind": "personal", "owner_uid": 2,
			"user_ids": []int{2}, "main_user_id": 2, "mode": "log"}, nil)
	}
	list := func(base string) []string {
		var mbs []struct {
			Email string `json:"email"`
		}
		rpcCall(t, base, sec, "mailbox.list", nil, &mbs)
		var out []string
		for _, m := range mbs {
			out = append(out, m.Email)
		}
		return out
	}
	create("anna@contoso.com")
	create("bert@contoso.com")
	backup := filepath.Join(dir, "maildesk-backup.db")
	out, err := runCLI(t, bin, cliEnv, "backup", backup)
	if err != nil || !strings.Contains(out, "streamed from the running sidecar") {
		t.Fatalf("maildesk backup: %v\n%s", err, out)
	}
	create("carl@contoso.com") // after the backup: gone after the restore

	// restore refuses while the sidecar holds the database.
	if out, err := runCLI(t, bin, cliEnv, "restore", backup); err == nil || !strings.Contains(out, "stop the sidecar") {
		t.Fatalf("restore ran against a running sidecar: %v\n%s", err, out)
	}
	s.stop(t)
	// A backup checked with another key is refused and changes nothing.
	badKeyDir := t.TempDir()
	if out, err := runCLI(t, bin, []string{"MAILDESK_DATA_DIR=" + data, "MAILDESK_KEY_FILE=" + filepath.Join(badKeyDir, "k")}, "restore", backup); err == nil {
		t.Fatalf("restore without the key file succeeded:\n%s", out)
	}
	out, err = runCLI(t, bin, cliEnv, "restore", backup)
	if err != nil || !strings.Contains(out, "restored") || !strings.Contains(out, "before-restore-") {
		t.Fatalf("maildesk restore: %v\n%s", err, out)
	}
	kept, _ := filepath.Glob(filepath.Join(data, "maildesk.db.before-restore-*"))
	if len(kept) != 1 {
		t.Fatalf("the replaced database was not kept: %v", kept)
	}

	s2 := startSidecar(t, bin, env)
	addr2 := s2.stdout.waitMatch(t, servingRE, 60*time.Second)[2]
	got := strings.Join(list("http://"+addr2), ",")
	if got != "anna@contoso.com,bert@contoso.com" && got != "bert@contoso.com,anna@contoso.com" {
		t.Fatalf("restored sidecar lists %q, want anna and bert only", got)
	}
	s2.stop(t)
}
