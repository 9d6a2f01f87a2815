package main

import (
	"crypto/tls"
	"net/http"
	"sync"
	"time"

	"github.com/maildesk/maildesk/graphsync"
	"github.com/maildesk/maildesk/graphsync/m365sim"
)

// Microsoft says where identity and Graph live for this sidecar: Microsoft's
// cloud, or the simulator under `serve --simulate` and `demo`. Wire
// functions take their HTTP clients from here, so MSAL and Graph trust the
// same certificates and share one connection pool.
type Microsoft struct {
	// GraphBaseURL is Graph's v1.0 root.
	GraphBaseURL string
	// TLS is the trust for identity and Graph; nil means the system roots.
	TLS *tls.Config
	// Sim is the in-process simulator, when one runs.
	Sim *m365sim.Sim

	once      sync.Once
	transport *http.Transport
}

// Transport is the one connection pool for every Microsoft call.
func (m *Microsoft) Transport() *http.Transport {
	m.once.Do(func() { m.transport = graphsync.NewTransport(m.TLS) })
	return m.transport
}

// HTTPClient returns a client over Transport with a timeout.
func (m *Microsoft) HTTPClient(timeout time.Duration) *http.Client {
	return &http.Client{Transport: m.Transport(), Timeout: timeout}
}

// defaultMicrosoft is Microsoft's cloud.
func defaultMicrosoft() *Microsoft {
	return &Microsoft{GraphBaseURL: graphsync.DefaultBaseURL}
}
