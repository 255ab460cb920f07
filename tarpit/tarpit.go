// Package tarpit traps scanners: an endlessh-style SSH banner tarpit and a
// slow, endless HTTP response for paths nobody legitimate asks for. Scanner
// addresses go only to the local scanner log; what leaves the package as
// Snapshot is aggregate counts.
//
// This package never imports the Prometheus client: it is linked into the
// community edition, whose binary must hold no telemetry code.
//
// STUB: the API below is what cmd/clavis-telemetry and collector/tarpit.go
// build against; the implementation lands with the tarpit issue.
package tarpit

import (
	"context"
	"log/slog"
	"net/http"

	"github.com/alecthomas/kingpin/v2"
)

// Config is the tarpit's command-line configuration.
type Config struct {
	SSHListenAddresses []string
}

// AddFlags declares the --tarpit.* flags on app.
func AddFlags(app *kingpin.Application) *Config {
	c := &Config{}
	app.Flag("tarpit.ssh.listen-address", "Address to run the SSH banner tarpit on (repeatable; none = off).").StringsVar(&c.SSHListenAddresses)
	return c
}

// ProtocolStats are the aggregates of one protocol ("ssh" or "http").
type ProtocolStats struct {
	Connections    uint64  // accepted and trapped, ever
	Active         int64   // trapped right now
	TrappedSeconds float64 // summed over closed and open connections
	BytesSent      uint64
}

// Snapshot is a consistent copy of the tarpit's aggregates. It never holds
// an address.
type Snapshot struct {
	Protocols        map[string]ProtocolStats
	Rejected         map[string]uint64 // by reason: max_clients, per_source, ...
	UniqueSources24h uint64
}

// Tarpit runs the configured traps.
type Tarpit struct {
	cfg    Config
	logger *slog.Logger
}

// New validates cfg and opens the scanner log.
func New(cfg Config, logger *slog.Logger) (*Tarpit, error) {
	return &Tarpit{cfg: cfg, logger: logger}, nil
}

// Run serves the SSH listeners until ctx is done.
func (t *Tarpit) Run(ctx context.Context) error {
	<-ctx.Done()
	return nil
}

// ServeHTTP traps an HTTP request (any path the exporter does not serve).
func (t *Tarpit) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	http.NotFound(w, r)
}

// Snapshot returns the current aggregates.
func (t *Tarpit) Snapshot() Snapshot {
	return Snapshot{Protocols: map[string]ProtocolStats{}, Rejected: map[string]uint64{}}
}
