package guard

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"io"
	"log"
	"math/big"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"
)

// selfSigned makes a certificate for 127.0.0.1 with the given common name.
func selfSigned(t *testing.T, cn string, notAfter time.Time) (certPEM, keyPEM []byte, cert *x509.Certificate) {
	t.Helper()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	tmpl := &x509.Certificate{
		SerialNumber:          big.NewInt(time.Now().UnixNano()),
		Subject:               pkix.Name{CommonName: cn},
		NotBefore:             time.Now().Add(-time.Hour),
		NotAfter:              notAfter,
		IPAddresses:           []net.IP{net.ParseIP("127.0.0.1")},
		KeyUsage:              x509.KeyUsageDigitalSignature | x509.KeyUsageCertSign,
		ExtKeyUsage:           []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth},
		BasicConstraintsValid: true,
		IsCA:                  true,
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		t.Fatal(err)
	}
	kder, err := x509.MarshalECPrivateKey(key)
	if err != nil {
		t.Fatal(err)
	}
	cert, _ = x509.ParseCertificate(der)
	return pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der}),
		pem.EncodeToMemory(&pem.Block{Type: "EC PRIVATE KEY", Bytes: kder}), cert
}

func write(t *testing.T, path string, b []byte) {
	t.Helper()
	if err := os.WriteFile(path, b, 0o600); err != nil {
		t.Fatal(err)
	}
}

// serveTLS serves on 127.0.0.1 with the loader's configuration alone
// (httptest's StartTLS would add its own certificate, which wins without SNI).
func serveTLS(t *testing.T, l *CertLoader) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	srv := &http.Server{
		Handler:  http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {}),
		ErrorLog: log.New(io.Discard, "", 0), // refused handshakes are expected here
	}
	go srv.Serve(tls.NewListener(ln, l.TLSConfig()))
	t.Cleanup(func() { srv.Close() })
	return ln.Addr().String()
}

func TestValidateTLSFiles(t *testing.T) {
	if ValidateTLSFiles("", "") != nil || ValidateTLSFiles("a", "b") != nil {
		t.Fatal("both or neither must be accepted")
	}
	if err := ValidateTLSFiles("a", ""); err == nil || !strings.Contains(err.Error(), "--tls-key") {
		t.Fatalf("cert without key: %v", err)
	}
	if err := ValidateTLSFiles("", "b"); err == nil || !strings.Contains(err.Error(), "--tls-cert") {
		t.Fatalf("key without cert: %v", err)
	}
}

func TestNewCertLoaderRejectsBadPairs(t *testing.T) {
	dir := t.TempDir()
	c1, k1, _ := selfSigned(t, "one", time.Now().Add(time.Hour))
	_, k2, _ := selfSigned(t, "two", time.Now().Add(time.Hour))
	certFile, keyFile, otherKey := filepath.Join(dir, "c.pem"), filepath.Join(dir, "k.pem"), filepath.Join(dir, "k2.pem")
	write(t, certFile, c1)
	write(t, keyFile, k1)
	write(t, otherKey, k2)
	if _, err := NewCertLoader(certFile, otherKey, CertOptions{}); err == nil {
		t.Error("a key that does not match the certificate was accepted")
	}
	if _, err := NewCertLoader(filepath.Join(dir, "missing.pem"), keyFile, CertOptions{}); err == nil {
		t.Error("a missing certificate file was accepted")
	}
	if _, err := NewCertLoader(certFile, keyFile, CertOptions{}); err != nil {
		t.Errorf("good pair refused: %v", err)
	}
}

// A TLS listener serves the loaded certificate, picks up a renewed one after
// the recheck interval, and keeps the old one when the renewal is broken.
func TestCertLoaderServesAndReloads(t *testing.T) {
	dir := t.TempDir()
	certFile, keyFile := filepath.Join(dir, "cert.pem"), filepath.Join(dir, "key.pem")
	exp1 := time.Now().Add(24 * time.Hour).Truncate(time.Second)
	c1, k1, x1 := selfSigned(t, "first", exp1)
	write(t, certFile, c1)
	write(t, keyFile, k1)

	var mu sync.Mutex
	now := time.Now()
	clock := func() time.Time { mu.Lock(); defer mu.Unlock(); return now }
	advance := func(d time.Duration) { mu.Lock(); now = now.Add(d); mu.Unlock() }
	var errs []error
	l, err := NewCertLoader(certFile, keyFile, CertOptions{Recheck: time.Minute, Now: clock, OnError: func(e error) { errs = append(errs, e) }})
	if err != nil {
		t.Fatal(err)
	}
	if !l.NotAfter().Equal(exp1) {
		t.Fatalf("NotAfter %v, want %v", l.NotAfter(), exp1)
	}

	addr := serveTLS(t, l)

	// servedCN connects afresh and returns the common name the server showed.
	servedCN := func() string {
		t.Helper()
		conn, err := tls.Dial("tcp", addr, &tls.Config{InsecureSkipVerify: true}) // the test reads the peer cert itself
		if err != nil {
			t.Fatal(err)
		}
		defer conn.Close()
		return conn.ConnectionState().PeerCertificates[0].Subject.CommonName
	}
	// And a verifying client trusting the first certificate.
	pool := x509.NewCertPool()
	pool.AddCert(x1)
	cl := &http.Client{Transport: &http.Transport{TLSClientConfig: &tls.Config{RootCAs: pool}}}
	resp, err := cl.Get("https://" + addr + "/healthz")
	if err != nil {
		t.Fatalf("verified TLS call failed: %v", err)
	}
	resp.Body.Close()
	if cn := servedCN(); cn != "first" {
		t.Fatalf("served %q", cn)
	}

	// Renewal: not picked up before the recheck interval, then picked up.
	c2, k2, _ := selfSigned(t, "second", exp1.Add(24*time.Hour))
	write(t, certFile, c2)
	write(t, keyFile, k2)
	if cn := servedCN(); cn != "first" {
		t.Fatalf("reloaded before the recheck interval: %q", cn)
	}
	advance(2 * time.Minute)
	if cn := servedCN(); cn != "second" {
		t.Fatalf("renewed certificate not served: %q", cn)
	}
	if !l.NotAfter().Equal(exp1.Add(24 * time.Hour)) {
		t.Fatalf("NotAfter not updated: %v", l.NotAfter())
	}

	// A half-written renewal (new cert, old key) keeps serving "second".
	c3, _, _ := selfSigned(t, "third", exp1)
	write(t, certFile, c3)
	advance(2 * time.Minute)
	if cn := servedCN(); cn != "second" {
		t.Fatalf("broken renewal replaced the certificate: %q", cn)
	}
	if len(errs) != 1 || !strings.Contains(errs[0].Error(), "still serving") {
		t.Fatalf("OnError got %v, want one error", errs)
	}
}

func TestTLSConfigMinVersion(t *testing.T) {
	dir := t.TempDir()
	c, k, _ := selfSigned(t, "x", time.Now().Add(time.Hour))
	write(t, filepath.Join(dir, "c"), c)
	write(t, filepath.Join(dir, "k"), k)
	l, err := NewCertLoader(filepath.Join(dir, "c"), filepath.Join(dir, "k"), CertOptions{})
	if err != nil {
		t.Fatal(err)
	}
	addr := serveTLS(t, l)
	_, err = tls.Dial("tcp", addr, &tls.Config{InsecureSkipVerify: true, MaxVersion: tls.VersionTLS11})
	if err == nil {
		t.Fatal("a TLS 1.1 client was accepted")
	}
}
