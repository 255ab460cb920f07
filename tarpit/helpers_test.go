package tarpit

import (
	"context"
	"math/rand/v2"
	"os/exec"
	"strconv"
	"testing"

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
