package tarpit

import (
	"context"
	"log/slog"
	"math/rand/v2"
	"os"
	"os/exec"
	"strconv"
	"sync/atomic"
	"testing"
	"time"

	"github.com/clavitor/clavis-telemetry/internal/e2eutil"
)

func requireBinary(t *testing.T, name string) string { return e2eutil.RequireBinary(t, name) }

func itoa(i int) string { return strconv.Itoa(i) }

func newTestRand() *rand.Rand { return rand.New(rand.NewPCG(1, 2)) }

// commandOutput runs a program and returns its combined output.
func commandOutput(ctx context.Context, name string, args ...string) (string, error) {
	b, err := exec.CommandContext(ctx, name, args...).CombinedOutput()
	return string(b), err
}

func discardLogger() *slog.Logger { return slog.New(slog.DiscardHandler) }

// atomicTime is a settable clock for the scanner log's sweep.
type atomicTime struct{ v atomic.Int64 }

func (a *atomicTime) set(t time.Time) { a.v.Store(t.UnixNano()) }
func (a *atomicTime) now() time.Time  { return time.Unix(0, a.v.Load()) }

func readFile(path string) (string, error) {
	b, err := os.ReadFile(path)
	return string(b), err
}
