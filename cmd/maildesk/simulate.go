package main

import (
	"crypto/tls"

	"github.com/maildesk/maildesk/graphsync/m365sim"
)

// simTLS trusts the simulator's CA (and only it) for identity and Graph.
func simTLS(sim *m365sim.Sim) *tls.Config {
	return &tls.Config{RootCAs: sim.CertPool(), MinVersion: tls.VersionTLS12}
}
