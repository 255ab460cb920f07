//go:build !telemetry && !commercial

package main

import (
	"debug/elf"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"testing"

	"github.com/clavitor/clavis-telemetry/internal/e2eutil"
)

// TestSystemdUnitVerifies runs systemd-analyze on deploy/clavis-telemetry.service
// (pointed at a freshly built commercial binary): no warnings, and an
// exposure score that stays in systemd's "OK" band.
func TestSystemdUnitVerifies(t *testing.T) {
	t.Parallel()
	analyze := e2eutil.RequireBinary(t, "systemd-analyze")
	bin := e2eutil.BuildBinary(t, "./cmd/clavis-telemetry", "commercial")
	unit, err := os.ReadFile(filepath.Join(e2eutil.RepoRoot(t), "deploy", "clavis-telemetry.service"))
	if err != nil {
		t.Fatal(err)
	}
	for _, want := range []string{"ProtectSystem=strict", "NoNewPrivileges=yes", "DynamicUser=yes",
		"ReadOnlyPaths=/proc /sys", "AmbientCapabilities=CAP_NET_BIND_SERVICE"} {
		if !strings.Contains(string(unit), want) {
			t.Errorf("unit lacks %q", want)
		}
	}
	path := filepath.Join(t.TempDir(), "clavis-telemetry.service")
	if err := os.WriteFile(path, []byte(strings.ReplaceAll(string(unit), "/usr/local/bin/clavis-telemetry", bin)), 0o644); err != nil {
		t.Fatal(err)
	}
	out, err := exec.Command(analyze, "verify", path).CombinedOutput()
	if err != nil || strings.Contains(string(out), "clavis-telemetry.service:") {
		t.Errorf("systemd-analyze verify: %v\n%s", err, out)
	}
	out, _ = exec.Command(analyze, "security", "--offline=yes", path).CombinedOutput()
	m := regexp.MustCompile(`Overall exposure level for \S+: ([0-9.]+)`).FindSubmatch(out)
	if m == nil {
		t.Fatalf("no exposure level in systemd-analyze security output:\n%s", out)
	}
	if score, _ := strconv.ParseFloat(string(m[1]), 64); score > 2.5 {
		t.Errorf("exposure level %.1f, want at most 2.5 (sandboxing regressed)\n%s", score, out)
	}
}

// TestDockerfileBuildsStaticCommercialBinary runs the Dockerfile's own go
// build line (no Docker engine is needed for that) and checks the result is
// a static commercial-edition binary, then checks the run stage is non-root
// and shell-less.
func TestDockerfileBuildsStaticCommercialBinary(t *testing.T) {
	t.Parallel()
	root := e2eutil.RepoRoot(t)
	df, err := os.ReadFile(filepath.Join(root, "Dockerfile"))
	if err != nil {
		t.Fatal(err)
	}
	text := strings.ReplaceAll(string(df), "\\\n", " ")
	m := regexp.MustCompile(`RUN (CGO_ENABLED=0 go build [^&\n]*)`).FindStringSubmatch(text)
	if m == nil {
		t.Fatal("Dockerfile has no 'RUN CGO_ENABLED=0 go build' line")
	}
	out := filepath.Join(t.TempDir(), "clavis-telemetry")
	line := strings.NewReplacer("${VERSION}", "test", "${REVISION}", "test", "/out/clavis-telemetry", out).Replace(m[1])
	cmd := exec.Command("sh", "-c", line)
	cmd.Dir = root
	if b, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("%s: %v\n%s", line, err, b)
	}
	f, err := elf.Open(out)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	for _, p := range f.Progs {
		if p.Type == elf.PT_INTERP {
			t.Error("binary is dynamically linked (has PT_INTERP)")
		}
	}
	v, err := exec.Command(out, "--version").CombinedOutput()
	if err != nil || !strings.Contains(string(v), "tags:             commercial") && !strings.Contains(string(v), "commercial") {
		t.Errorf("--version does not show the commercial build: %v\n%s", err, v)
	}
	for _, want := range []string{"USER 65532", "distroless/static", "-tags commercial"} {
		if !strings.Contains(string(df), want) {
			t.Errorf("Dockerfile lacks %q", want)
		}
	}
}
