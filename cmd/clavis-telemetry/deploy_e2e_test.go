//go:build !telemetry && !commercial

package main

import (
	"crypto/tls"
	"debug/elf"
	"encoding/json"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"testing"
	"time"

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
		"ReadOnlyPaths=/proc /sys", "AmbientCapabilities=CAP_NET_BIND_SERVICE",
		// A first start without the web config fails once, clearly, and
		// a config error (exit 2) is not restarted in a loop.
		"AssertPathExists=/etc/clavis-telemetry/web.yml", "RestartPreventExitStatus=2",
		"LoadCredential=web.yml:/etc/clavis-telemetry/web.yml", "--web.config.file=%d/web.yml"} {
		if !strings.Contains(string(unit), want) {
			t.Errorf("unit lacks %q", want)
		}
	}
	// Directories that may be missing on a POP are optional ("-"), or the
	// unit fails to start (status 226/NAMESPACE) on such a POP.
	for _, line := range strings.Split(string(unit), "\n") {
		paths, ok := strings.CutPrefix(line, "ReadOnlyPaths=")
		if !ok {
			continue
		}
		for _, p := range strings.Fields(paths) {
			if p != "/proc" && p != "/sys" && !strings.HasPrefix(p, "-") {
				t.Errorf("ReadOnlyPaths entry %s is not optional (no - prefix)", p)
			}
		}
	}
	// The install steps, in the unit and in the README, create what the
	// unit needs.
	readme, err := os.ReadFile(filepath.Join(e2eutil.RepoRoot(t), "README.md"))
	if err != nil {
		t.Fatal(err)
	}
	for _, doc := range []struct{ name, text string }{{"unit", string(unit)}, {"README", string(readme)}} {
		for _, want := range []string{"/etc/clavis-telemetry/web.yml", "tls.key", "make commercial"} {
			if !strings.Contains(doc.text, want) {
				t.Errorf("%s install steps do not mention %s", doc.name, want)
			}
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

// TestCredentialDirectoryLayout serves TLS from a web config that names its
// certificate and key relative to itself, as the unit's credentials
// directory (%d) holds them.
func TestCredentialDirectoryLayout(t *testing.T) {
	t.Parallel()
	bin := e2eutil.BuildBinary(t, "./cmd/clavis-telemetry", "commercial")
	abs, pool := writeTLSConfig(t, "prometheus", "cred-scrape")
	src := filepath.Dir(abs)
	creds := t.TempDir()
	for _, name := range []string{"tls.crt", "tls.key"} {
		b, err := os.ReadFile(filepath.Join(src, name))
		if err != nil {
			t.Fatal(err)
		}
		os.WriteFile(filepath.Join(creds, name), b, 0o400)
	}
	b, err := os.ReadFile(abs)
	if err != nil {
		t.Fatal(err)
	}
	rel := strings.NewReplacer(filepath.Join(src, "tls.crt"), "tls.crt", filepath.Join(src, "tls.key"), "tls.key").Replace(string(b))
	if strings.Contains(rel, src) {
		t.Fatalf("web config still names %s:\n%s", src, rel)
	}
	os.WriteFile(filepath.Join(creds, "web.yml"), []byte(rel), 0o400)
	addr := e2eutil.FreeAddr(t, "")
	e2eutil.StartProcess(t, bin, "--web.listen-address="+addr, "--web.config.file="+filepath.Join(creds, "web.yml"), "--tarpit.log.file=")
	client := &http.Client{Timeout: 5 * time.Second, Transport: &http.Transport{TLSClientConfig: &tls.Config{RootCAs: pool}}}
	deadline := time.Now().Add(20 * time.Second)
	for {
		req, _ := http.NewRequest(http.MethodGet, "https://"+addr+"/metrics", nil)
		req.SetBasicAuth("prometheus", "cred-scrape")
		resp, err := client.Do(req)
		if err == nil {
			resp.Body.Close()
			if resp.StatusCode == 200 {
				return
			}
			t.Fatalf("scrape with the credentials layout: %s", resp.Status)
		}
		if time.Now().After(deadline) {
			t.Fatalf("TLS with relative cert_file/key_file never served: %v", err)
		}
		time.Sleep(100 * time.Millisecond)
	}
}

// dockerInstructions joins continuation lines and returns the Dockerfile's
// instructions (keyword, arguments), comments dropped.
func dockerInstructions(t *testing.T, text string) [][2]string {
	t.Helper()
	var out [][2]string
	var cur strings.Builder
	for _, line := range strings.Split(text, "\n") {
		trimmed := strings.TrimSpace(line)
		if cur.Len() == 0 && (trimmed == "" || strings.HasPrefix(trimmed, "#")) {
			continue
		}
		if strings.HasSuffix(trimmed, "\\") {
			cur.WriteString(strings.TrimSuffix(trimmed, "\\") + " ")
			continue
		}
		cur.WriteString(trimmed)
		kw, args, _ := strings.Cut(cur.String(), " ")
		out = append(out, [2]string{strings.ToUpper(kw), strings.TrimSpace(args)})
		cur.Reset()
	}
	return out
}

// TestDockerfileBuildsStaticCommercialBinary runs the Dockerfile's own build
// step (no Docker engine is needed for that: it is the Makefile's target,
// so its ldflags are the Makefile's) and checks the result is a static
// commercial-edition binary; then that the image's entry point keeps the
// scanner log and the web config whatever `docker run` adds, that the
// README's example adds nothing that clashes, and that .dockerignore keeps
// binaries and history out of the context.
func TestDockerfileBuildsStaticCommercialBinary(t *testing.T) {
	t.Parallel()
	e2eutil.RequireBinary(t, "make")
	root := e2eutil.RepoRoot(t)
	df, err := os.ReadFile(filepath.Join(root, "Dockerfile"))
	if err != nil {
		t.Fatal(err)
	}
	var build string
	var entrypoint []string
	for _, in := range dockerInstructions(t, string(df)) {
		switch in[0] {
		case "RUN":
			if strings.Contains(in[1], "go build") {
				t.Errorf("Dockerfile runs go build itself (%q): use the Makefile's target, or its flags drift", in[1])
			}
			if m := regexp.MustCompile(`make commercial [^&]*`).FindString(in[1]); m != "" {
				build = strings.TrimSpace(m)
			}
		case "ENTRYPOINT":
			if err := json.Unmarshal([]byte(in[1]), &entrypoint); err != nil {
				t.Fatalf("ENTRYPOINT is not exec form: %v", err)
			}
		case "CMD":
			if strings.Contains(in[1], "--") {
				t.Errorf("CMD %s carries flags that any docker run argument would replace", in[1])
			}
		}
	}
	if build == "" {
		t.Fatal("Dockerfile has no 'RUN make commercial' step")
	}
	outDir := t.TempDir()
	line := strings.NewReplacer("${VERSION}", "v9.9.9-test", "${REVISION}", "test", "BIN=/out", "BIN="+outDir).Replace(build)
	cmd := exec.Command("sh", "-c", line)
	cmd.Dir = root
	if b, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("%s: %v\n%s", line, err, b)
	}
	out := filepath.Join(outDir, "clavis-telemetry-commercial")
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
	if err != nil || !strings.Contains(string(v), "commercial") || !strings.Contains(string(v), "v9.9.9-test") {
		t.Errorf("--version does not show the commercial build with the given version: %v\n%s", err, v)
	}
	for _, want := range []string{"USER 65532", "distroless/static"} {
		if !strings.Contains(string(df), want) {
			t.Errorf("Dockerfile lacks %q", want)
		}
	}

	has := func(args []string, flag string) bool {
		for _, a := range args {
			if a == flag || strings.HasPrefix(a, flag+"=") {
				return true
			}
		}
		return false
	}
	for _, flag := range []string{"--tarpit.log.file", "--web.config.file"} {
		if !has(entrypoint, flag) {
			t.Errorf("ENTRYPOINT %v lacks %s: a docker run with arguments would lose it", entrypoint, flag)
		}
	}
	// The README's docker run example adds to the entry point: no flag in
	// both (kingpin refuses a repeated flag), and the web config mounted.
	readme, err := os.ReadFile(filepath.Join(root, "README.md"))
	if err != nil {
		t.Fatal(err)
	}
	text := strings.ReplaceAll(string(readme), "\\\n", " ")
	run := regexp.MustCompile(`(?m)^docker run .*$`).FindString(text)
	if run == "" {
		t.Fatal("README has no docker run example")
	}
	// The entry point reads /etc/clavis-telemetry/web.yml: some host
	// directory must be mounted there.
	if !regexp.MustCompile(`-v /\S+:/etc/clavis-telemetry:ro`).MatchString(run) {
		t.Errorf("README's docker run does not mount the web config directory: %s", run)
	}
	image := strings.Index(run, " clavis-telemetry ")
	if image < 0 {
		t.Fatalf("README's docker run names no clavis-telemetry image: %s", run)
	}
	for _, arg := range strings.Fields(run[image+len(" clavis-telemetry "):]) {
		name, _, _ := strings.Cut(arg, "=")
		if has(entrypoint, name) {
			t.Errorf("README's docker run passes %s, which the ENTRYPOINT already sets (kingpin: cannot be repeated)", name)
		}
	}
	// The image's arguments are valid together for the binary.
	args := append(append([]string{}, entrypoint[1:]...), strings.Fields(run[image+len(" clavis-telemetry "):])...)
	args = append(args, "--help")
	if b, err := exec.Command(out, args...).CombinedOutput(); err != nil {
		t.Errorf("%s %v: %v\n%s", out, args, err, b)
	}

	ignore, err := os.ReadFile(filepath.Join(root, ".dockerignore"))
	if err != nil {
		t.Fatal(".dockerignore missing: COPY . . ships bin/ and .git")
	}
	lines := map[string]bool{}
	for _, l := range strings.Split(string(ignore), "\n") {
		lines[strings.TrimSpace(l)] = true
	}
	for _, want := range []string{".git", "bin/"} {
		if !lines[want] {
			t.Errorf(".dockerignore does not exclude %s", want)
		}
	}
}

// TestMakeRunPrintsTheURL: make run prints a URL one can open, whatever
// LISTEN is, listens on loopback unless told otherwise, and the README
// says LISTEN exists.
func TestMakeRunPrintsTheURL(t *testing.T) {
	t.Parallel()
	makeBin := e2eutil.RequireBinary(t, "make")
	root := e2eutil.RepoRoot(t)
	for listen, want := range map[string]string{
		"":                "http://localhost:9745/metrics",
		"127.0.0.1:31745": "http://127.0.0.1:31745/metrics",
		":9999":           "http://localhost:9999/metrics",
		"0.0.0.0:9745":    "http://localhost:9745/metrics",
		"[::1]:9745":      "http://[::1]:9745/metrics",
	} {
		args := []string{"-n", "run"}
		if listen != "" {
			args = append(args, "LISTEN="+listen)
		}
		cmd := exec.Command(makeBin, args...)
		cmd.Dir = root
		out, err := cmd.CombinedOutput()
		if err != nil {
			t.Fatalf("make %v: %v\n%s", args, err, out)
		}
		if !strings.Contains(string(out), "serving "+want+" ") {
			t.Errorf("make run LISTEN=%s does not print %s:\n%s", listen, want, out)
		}
		// Plain HTTP without auth: by default for this machine only.
		if listen == "" && !strings.Contains(string(out), "--web.listen-address=localhost:9745") {
			t.Errorf("make run listens beyond this machine by default:\n%s", out)
		}
	}
	readme, err := os.ReadFile(filepath.Join(root, "README.md"))
	if err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(string(readme), "make run LISTEN=") {
		t.Error("README does not mention make run's LISTEN")
	}
}

// TestMakeLintRunsPromtool: make lint keeps the README's promise, promtool
// checks of the central config and of a real scrape; lint-promtool runs.
func TestMakeLintRunsPromtool(t *testing.T) {
	t.Parallel()
	makeBin := e2eutil.RequireBinary(t, "make")
	e2eutil.RequireBinary(t, "promtool", "amtool", "curl")
	root := e2eutil.RepoRoot(t)
	cmd := exec.Command(makeBin, "-n", "lint")
	cmd.Dir = root
	plan, err := cmd.CombinedOutput()
	if err != nil {
		t.Fatalf("make -n lint: %v\n%s", err, plan)
	}
	for _, want := range []string{"promtool check config", "promtool check rules", "amtool check-config", "promtool check metrics", "gofmt", "go vet"} {
		if !strings.Contains(string(plan), want) {
			t.Errorf("make lint does not run %s", want)
		}
	}
	cmd = exec.Command(makeBin, "-s", "lint-promtool", "BIN="+t.TempDir())
	cmd.Dir = root
	out, err := cmd.CombinedOutput()
	if err != nil || !strings.Contains(string(out), "promtool check metrics < http://127.0.0.1:") {
		t.Errorf("make lint-promtool: %v\n%s", err, out)
	}
}
