package guard

import (
	"bytes"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"os"
	"sync"
	"time"
)

// ValidateTLSFiles checks that the certificate and key are given together.
func ValidateTLSFiles(certFile, keyFile string) error {
	switch {
	case certFile == "" && keyFile == "":
		return nil
	case certFile == "":
		return errors.New("guard: --tls-key is set but --tls-cert is not: give both (or neither, to serve plain HTTP behind a TLS reverse proxy)")
	case keyFile == "":
		return errors.New("guard: --tls-cert is set but --tls-key is not: give both (or neither, to serve plain HTTP behind a TLS reverse proxy)")
	}
	return nil
}

// DefaultRecheck is how often CertLoader looks at its files again.
const DefaultRecheck = time.Minute

// CertLoader serves the listener's certificate from a PEM certificate file
// (leaf first, then intermediates) and a PEM key file. It reads them again at
// most every Recheck; when their bytes changed and parse as a matching pair,
// new handshakes get the new certificate. A renewal that fails to parse keeps
// the old certificate and is reported to OnError. Safe for concurrent use.
type CertLoader struct {
	certFile, keyFile string
	recheck           time.Duration
	now               func() time.Time
	onError           func(error)

	mu        sync.Mutex
	cert      *tls.Certificate
	certPEM   []byte
	keyPEM    []byte
	checkedAt time.Time
	notAfter  time.Time
}

// CertOptions tune NewCertLoader; the zero value is fine.
type CertOptions struct {
	Recheck time.Duration    // default DefaultRecheck
	Now     func() time.Time // default time.Now; tests replace it
	OnError func(error)      // told when a changed pair cannot be loaded
}

// NewCertLoader loads the pair once and fails when it cannot: unreadable
// files, no certificate, or a key that does not match.
func NewCertLoader(certFile, keyFile string, o CertOptions) (*CertLoader, error) {
	if err := ValidateTLSFiles(certFile, keyFile); err != nil {
		return nil, err
	}
	if certFile == "" {
		return nil, errors.New("guard: no TLS files given")
	}
	if o.Recheck <= 0 {
		o.Recheck = DefaultRecheck
	}
	if o.Now == nil {
		o.Now = time.Now
	}
	c := &CertLoader{certFile: certFile, keyFile: keyFile, recheck: o.Recheck, now: o.Now, onError: o.OnError}
	certPEM, keyPEM, err := c.read()
	if err != nil {
		return nil, err
	}
	if err := c.install(certPEM, keyPEM); err != nil {
		return nil, err
	}
	c.checkedAt = c.now()
	return c, nil
}

func (c *CertLoader) read() (certPEM, keyPEM []byte, err error) {
	certPEM, err = os.ReadFile(c.certFile)
	if err != nil {
		return nil, nil, fmt.Errorf("guard: read TLS certificate: %w", err)
	}
	keyPEM, err = os.ReadFile(c.keyFile)
	if err != nil {
		return nil, nil, fmt.Errorf("guard: read TLS key: %w", err)
	}
	return certPEM, keyPEM, nil
}

// install parses and swaps in a pair; the caller holds mu or owns c alone.
func (c *CertLoader) install(certPEM, keyPEM []byte) error {
	pair, err := tls.X509KeyPair(certPEM, keyPEM)
	if err != nil {
		return fmt.Errorf("guard: TLS certificate %s and key %s: %w", c.certFile, c.keyFile, err)
	}
	leaf := pair.Leaf
	if leaf == nil {
		if leaf, err = x509.ParseCertificate(pair.Certificate[0]); err != nil {
			return fmt.Errorf("guard: parse TLS certificate %s: %w", c.certFile, err)
		}
		pair.Leaf = leaf
	}
	c.cert, c.certPEM, c.keyPEM, c.notAfter = &pair, certPEM, keyPEM, leaf.NotAfter
	return nil
}

// maybeReload looks at the files again when Recheck has passed.
func (c *CertLoader) maybeReload() {
	c.mu.Lock()
	defer c.mu.Unlock()
	now := c.now()
	if now.Sub(c.checkedAt) < c.recheck {
		return
	}
	c.checkedAt = now
	certPEM, keyPEM, err := c.read()
	if err == nil && bytes.Equal(certPEM, c.certPEM) && bytes.Equal(keyPEM, c.keyPEM) {
		return
	}
	if err == nil {
		err = c.install(certPEM, keyPEM)
	}
	if err != nil && c.onError != nil {
		c.onError(fmt.Errorf("%w (still serving the certificate loaded before)", err))
	}
}

// GetCertificate is tls.Config.GetCertificate.
func (c *CertLoader) GetCertificate(*tls.ClientHelloInfo) (*tls.Certificate, error) {
	c.maybeReload()
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.cert, nil
}

// NotAfter is when the certificate being served expires (for a metric).
func (c *CertLoader) NotAfter() time.Time {
	c.maybeReload()
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.notAfter
}

// TLSConfig is a server configuration serving the loader's certificate with
// TLS 1.2 or newer.
func (c *CertLoader) TLSConfig() *tls.Config {
	return &tls.Config{
		MinVersion:     tls.VersionTLS12,
		GetCertificate: c.GetCertificate,
		NextProtos:     []string{"h2", "http/1.1"},
	}
}
