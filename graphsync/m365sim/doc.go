// Package m365sim is a stateful Microsoft 365 simulator for tests, the
// demo, benchmarks and `maildesk serve --simulate`: the v2.0 identity
// endpoints that MSAL Go uses and the Graph v1.0 mail surface the bridge
// uses, served over TLS on loopback with a CA generated at start.
//
// It owns nothing of the product; it only has to behave like Microsoft.
// Behaviour comes from ../../shared/FACTS.md and the wire samples in
// ../../shared/graph-samples (cited as "sample NN"). Where Graph's
// behaviour is unknown the strictest plausible one is chosen and listed
// under "Assumptions".
//
// (The full behaviour table is below; it is kept in step with the code.)
package m365sim
