package main

import (
	"context"
	"crypto/tls"
	"errors"
	"io"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/clavitor/clavis-telemetry/internal/e2eutil"
	"golang.org/x/crypto/bcrypt"
)

// binary is the alertbridge under test; ALERTBRIDGE_BIN points the tests at
// another build (e.g. an older one, to see them fail).
func binary(t *testing.T) string {
	t.Helper()
	if b := os.Getenv("ALERTBRIDGE_BIN"); b != "" {
		return b
	}
	return e2eutil.BuildBinary(t, "./cmd/alertbridge")
}

// runBridge runs the binary until it exits (at most 15 s: a hang is a
// failure) and returns its exit code and output.
func runBridge(t *testing.T, env []string, args ...string) (int, string) {
	t.Helper()
	bin := binary(t) // built before the clock starts
	ctx, cancel := context.WithTimeout(context.Background(), 15*time.Second)
	defer cancel()
	cmd := exec.CommandContext(ctx, bin, args...)
	cmd.Env = append(os.Environ(), env...)
	out, err := cmd.CombinedOutput()
	if ctx.Err() != nil {
		t.Fatalf("%v: still running after 15 s (it should have refused to start)\n%s", args, out)
	}
	var ee *exec.ExitError
	switch {
	case err == nil:
		return 0, string(out)
	case errors.As(err, &ee):
		return ee.ExitCode(), string(out)
	}
	t.Fatalf("%v: %v", args, err)
	return -1, ""
}

// fixture is a directory with a valid token file and spool path, so each
// case differs from a working start-up in the one thing it tests.
type fixture struct{ dir, token, spool string }

func newFixture(t *testing.T) fixture {
	dir := t.TempDir()
	f := fixture{dir: dir, token: filepath.Join(dir, "webhook.token"), spool: filepath.Join(dir, "spool.db")}
	if err := os.WriteFile(f.token, []byte("s3cr3t-webhook\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	return f
}

func (f fixture) args(extra ...string) []string {
	// A port nobody listens on, in case a case is wrongly accepted.
	return append([]string{"--webhook.token-file=" + f.token, "--spool.path=" + f.spool, "--web.listen-address=127.0.0.1:0"}, extra...)
}

func (f fixture) write(t *testing.T, name, content string) string {
	p := filepath.Join(f.dir, name)
	if err := os.WriteFile(p, []byte(content), 0o600); err != nil {
		t.Fatal(err)
	}
	return p
}

// expectRefused wants exit 2, every one of want in the output, none of
// the secrets, and nothing saying it started or listened.
func expectRefused(t *testing.T, what string, code int, out string, want []string, secrets ...string) {
	t.Helper()
	if code != 2 {
		t.Errorf("%s: exit %d, want 2\n%s", what, code, out)
	}
	for _, w := range want {
		if !strings.Contains(out, w) {
			t.Errorf("%s: output does not say %q:\n%s", what, w, out)
		}
	}
	for _, s := range secrets {
		if strings.Contains(out, s) {
			t.Errorf("%s: output carries the secret %q:\n%s", what, s, out)
		}
	}
	for _, s := range []string{"Listening on", "starting alertbridge"} {
		if strings.Contains(out, s) {
			t.Errorf("%s: says %q before refusing:\n%s", what, s, out)
		}
	}
}

// TestFlagBounds: every duration, size and count flag has bounds; a value
// outside them (or one that does not parse) exits 2 naming the flag and
// its bounds, and --help shows them.
func TestFlagBounds(t *testing.T) {
	t.Parallel()
	f := newFixture(t)
	for _, c := range []struct{ arg, bounds string }{
		{"--spool.max-age=-1s", "between 1m and 720h"},
		{"--spool.max-age=0s", "between 1m and 720h"},
		{"--spool.max-age=abc", "between 1m and 720h"},
		{"--spool.dedup-retention=0s", "between 1h and 8760h"},
		{"--spool.compact-min-bytes=0", "between 1048576 and 68719476736"},
		{"--spool.compact-max-live-bytes=-5", "between 1048576 and 1073741824"},
		{"--webhook.max-body-bytes=0", "between 65536 and 1073741824"},
		{"--webhook.max-concurrent=-3", "between 1 and 1024"},
		{"--webhook.max-concurrent=x", "between 1 and 1024"},
		{"--delivery.timeout=0s", "between 1s and 5m"},
		{"--delivery.timeout=1h", "between 1s and 5m"},
		{"--delivery.backoff-min=0s", "between 10ms and 1m"},
		{"--delivery.backoff-max=2h", "between 10ms and 1h"},
		{"--delivery.max-retry-after=-1s", "between 1s and 24h"},
		{"--ntfy.default-priority=9", "between 1 and 5"},
		{"--ntfy.resolved-priority=-1", "between 1 and 5"},
		{"--ntfy.resolved-priority=0", "between 1 and 5"},
		{"--ntfy.max-per-minute=0", "between 1 and 100000"},
		{"--ntfy.concurrency=0", "between 1 and 64"},
		{"--ntfy.auth-error-backoff=0s", "between 1s and 1h"},
		{"--ntfy.repeat-timeout=-1m", "between 1s and 1h"},
		{"--ntfy.repeat-interval=1s", "0 (off) or between 1m and 168h"},
		{"--action.ttl=0s", "between 1m and 720h"},
		{"--action.silence-duration=1000h", "between 1m and 720h"},
		{"--kuma.config-error-backoff=0s", "between 1s and 1h"},
		{"--kuma.firing-ttl=1s", "between 1m and 720h"},
		{"--watchdog.interval=-1s", "0 (off) or between 10s and 24h"},
	} {
		name := strings.SplitN(c.arg, "=", 2)[0]
		code, out := runBridge(t, nil, f.args(c.arg)...)
		expectRefused(t, c.arg, code, out, []string{name, c.bounds})
	}
	code, out := runBridge(t, nil, f.args("--delivery.backoff-min=2s", "--delivery.backoff-max=1s")...)
	expectRefused(t, "backoff-max < backoff-min", code, out, []string{"--delivery.backoff-max", "--delivery.backoff-min"})

	code, out = runBridge(t, nil, "--help")
	if code != 0 {
		t.Fatalf("--help: exit %d\n%s", code, out)
	}
	out = strings.Join(strings.Fields(out), " ") // undo kingpin's wrapping
	for _, w := range []string{"Range: 1m to 720h.", "Range: 1s to 5m.", "Range: 0 or 10s to 24h.", "Range: 1 to 5.",
		"Range: 65536 to 1073741824 bytes (64 KiB to 1 GiB).",
		"info=2"} {
		if !strings.Contains(out, w) {
			t.Errorf("--help does not show %q", w)
		}
	}
	// The help said info=3 while the default mapping is info=2.
	if strings.Contains(out, "info=3") {
		t.Error("--help still says info=3")
	}
}

// TestValueErrorsNameTheFlag: kingpin's own value errors (enum, log level,
// map) name no flag; ours do.
func TestValueErrorsNameTheFlag(t *testing.T) {
	t.Parallel()
	f := newFixture(t)
	for _, arg := range []string{"--ntfy.info-groups=zz", "--log.level=loud", "--log.format=xml", "--ntfy.priority=novalue",
		"--spool.max-age=banana", "--webhook.insecure-no-auth=maybe"} {
		code, out := runBridge(t, nil, f.args(arg)...)
		expectRefused(t, arg, code, out, []string{strings.SplitN(arg, "=", 2)[0]})
	}
}

func TestListenAddressRefused(t *testing.T) {
	t.Parallel()
	f := newFixture(t)
	for _, addr := range []string{"", ":", "127.0.0.1:", "localhost"} {
		// f.args ends with a listen address; [:2] leaves it out.
		code, out := runBridge(t, nil, append(f.args()[:2], "--web.listen-address="+addr)...)
		expectRefused(t, "--web.listen-address="+addr, code, out, []string{"--web.listen-address"})
	}
}

// TestSpoolPathNotASpoolRefused: a directory or a text file at --spool.path
// exits 2 naming the flag, and stays as it was (it used to be renamed to
// *.corrupt-* and replaced by a fresh 4 MB spool).
func TestSpoolPathNotASpoolRefused(t *testing.T) {
	t.Parallel()
	f := newFixture(t)
	dir := filepath.Join(f.dir, "some-dir")
	os.Mkdir(dir, 0o750)
	conf := f.write(t, "important.conf", "do not touch\n")
	fifo := filepath.Join(f.dir, "fifo")
	if err := syscall.Mkfifo(fifo, 0o600); err != nil {
		t.Fatal(err)
	}
	for _, c := range []struct{ path, what string }{{dir, "a directory"}, {conf, "not a bbolt spool"}, {fifo, "named pipe"}} {
		code, out := runBridge(t, nil, "--webhook.token-file="+f.token, "--spool.path="+c.path, "--web.listen-address=127.0.0.1:0")
		expectRefused(t, c.path, code, out, []string{"--spool.path=" + c.path, c.what})
		if moved, _ := filepath.Glob(c.path + ".corrupt-*"); len(moved) > 0 {
			t.Errorf("%s moved aside: %v", c.path, moved)
		}
	}
	if fi, err := os.Stat(dir); err != nil || !fi.IsDir() {
		t.Errorf("directory gone: %v", err)
	}
	if b, _ := os.ReadFile(conf); string(b) != "do not touch\n" {
		t.Errorf("file changed: %q", b)
	}
}

// TestSecretsNotInStartupErrors: a bad URL or token is a configuration
// error (exit 2) naming the flag and environment variable, and no line
// carries the push token, the password or the token.
func TestSecretsNotInStartupErrors(t *testing.T) {
	t.Parallel()
	f := newFixture(t)
	for _, c := range []struct {
		env  []string
		want string
	}{
		{[]string{"KUMA_PUSH_URL=ftp://kuma/api/push/PUSHSECRET"}, "KUMA_PUSH_URL"},
		{[]string{"KUMA_PUSH_URL=https://kuma:port/api/push/PUSHSECRET"}, "KUMA_PUSH_URL"},
		{[]string{"NTFY_ALERT_URL=ftp://user:SECRETPW@ntfy.example/alerts"}, "NTFY_ALERT_URL"},
		{[]string{"NTFY_ALERT_URL=https://user:SECRETPW@ntfy.example:x/alerts"}, "NTFY_ALERT_URL"},
		{[]string{"NTFY_ALERT_URL=https://ntfy.example/alerts", "NTFY_ALERT_TOKEN=tk_SECRETPW\nmore"}, "NTFY_ALERT_TOKEN"},
	} {
		code, out := runBridge(t, c.env, f.args()...)
		expectRefused(t, strings.Join(c.env, " "), code, out, []string{c.want}, "PUSHSECRET", "SECRETPW")
	}
	code, out := runBridge(t, nil, f.args("--ntfy.url=https://ntfy.example/alerts", "--ntfy.token=tk_SECRETPW\r")...)
	expectRefused(t, "--ntfy.token with CR", code, out, []string{"--ntfy.token"}, "SECRETPW")
}

// TestTokenFiles: one trailing newline is a line end; a second line, a
// control character, an empty file or a FIFO (which used to hang start-up)
// is refused naming the flag, without echoing the token.
func TestTokenFiles(t *testing.T) {
	t.Parallel()
	f := newFixture(t)
	fifo := filepath.Join(f.dir, "token.fifo")
	if err := syscall.Mkfifo(fifo, 0o600); err != nil {
		t.Fatal(err)
	}
	for name, content := range map[string]string{
		"two-lines":  "SECRETTOK\nsecond\n",
		"tab":        "SECRET\tTOK\n",
		"nul":        "SECRET\x00TOK",
		"empty":      "",
		"only-space": "  \n",
	} {
		p := f.write(t, name, content)
		code, out := runBridge(t, nil, "--webhook.token-file="+p, "--spool.path="+f.spool, "--web.listen-address=127.0.0.1:0")
		expectRefused(t, name, code, out, []string{"--webhook.token-file=" + p}, "SECRET")
	}
	code, out := runBridge(t, nil, "--webhook.token-file="+fifo, "--spool.path="+f.spool, "--web.listen-address=127.0.0.1:0")
	expectRefused(t, "fifo", code, out, []string{"--webhook.token-file=" + fifo, "named pipe"})

	// White space around the token goes, as Alertmanager trims its
	// credentials_file: a file it takes works here too.
	for content, want := range map[string]string{"tok\n": "tok", "tok\r\n": "tok", "tok": "tok", " tok \n": "tok", "tok\n\n": "tok", "\ttok\n": "tok"} {
		p := f.write(t, "ok", content)
		got, err := readTokenFile("--webhook.token-file", p)
		if err != nil || got != want {
			t.Errorf("token file %q: %q, %v; want %q", content, got, err, want)
		}
	}
}

// TestWebConfigValidatedBeforeListening: a bad --web.config.file exits 2
// before anything says "Listening", naming the file (and the user of a bad
// password hash).
func TestWebConfigValidatedBeforeListening(t *testing.T) {
	t.Parallel()
	f := newFixture(t)
	for _, c := range []struct {
		name, content string
		want          []string
	}{
		{"bad-hash.yml", "basic_auth_users:\n  alertmanager: notabcrypthash\n", []string{`user \"alertmanager\"`, "bcrypt"}},
		{"bad-tls.yml", "tls_server_config:\n  cert_file: /nonexistent/tls.crt\n  key_file: /nonexistent/tls.key\n", []string{"/nonexistent/tls.crt"}},
		{"unknown-key.yml", "basic_auth_user:\n  a: b\n", []string{"basic_auth_user"}},
		{"not-yaml.yml", "basic_auth_users: [\n", nil},
	} {
		p := f.write(t, c.name, c.content)
		code, out := runBridge(t, nil, f.args("--web.config.file="+p)...)
		expectRefused(t, c.name, code, out, append(c.want, "--web.config.file="+p))
	}
	fifo := filepath.Join(f.dir, "web.fifo")
	if err := syscall.Mkfifo(fifo, 0o600); err != nil {
		t.Fatal(err)
	}
	code, out := runBridge(t, nil, f.args("--web.config.file="+fifo)...)
	expectRefused(t, "fifo", code, out, []string{"--web.config.file=" + fifo})
}

// TestPhoneActionsNameMissingFlags: with some but not all of the three phone
// action flags, the refusal names the ones missing, not only all three.
func TestPhoneActionsNameMissingFlags(t *testing.T) {
	t.Parallel()
	f := newFixture(t)
	secret := f.write(t, "action.secret", "0123456789abcdef0123\n")
	for _, c := range []struct {
		args []string
		want string
	}{
		{[]string{"--web.external-url=https://alertbridge.example"}, "missing: --action.secret-file, --alertmanager.url"},
		{[]string{"--action.secret-file=" + secret, "--alertmanager.url=http://127.0.0.1:9093"}, "missing: --web.external-url"},
	} {
		code, out := runBridge(t, nil, f.args(c.args...)...)
		expectRefused(t, strings.Join(c.args, " "), code, out, []string{c.want})
	}
}

// TestTokenAndBasicAuthRefused: with a webhook token and basic_auth_users
// both set, exporter-toolkit wants Basic and the webhook wants Bearer in
// the one Authorization header, so every webhook got 401 after a normal
// start. It is refused at start-up, naming both.
func TestTokenAndBasicAuthRefused(t *testing.T) {
	t.Parallel()
	f := newFixture(t)
	hash, err := bcrypt.GenerateFromPassword([]byte("am-password"), bcrypt.MinCost)
	if err != nil {
		t.Fatal(err)
	}
	p := f.write(t, "web.yml", "basic_auth_users:\n  alertmanager: "+string(hash)+"\n")
	code, out := runBridge(t, nil, f.args("--web.config.file="+p)...)
	expectRefused(t, "token and basic auth", code, out, []string{"--webhook.token-file", "basic_auth_users", "--web.config.file=" + p}, "s3cr3t-webhook")
}

// TestWebConfigBadHashQuotesNothing: a plain password pasted where the
// bcrypt hash belongs is refused without any of it in the output (bcrypt's
// own error quotes its first byte).
func TestWebConfigBadHashQuotesNothing(t *testing.T) {
	t.Parallel()
	f := newFixture(t)
	p := f.write(t, "plain.yml", "basic_auth_users:\n  alertmanager: Wplain-password-pasted-as-is-"+strings.Repeat("x", 40)+"\n")
	code, out := runBridge(t, nil, f.args("--web.config.file="+p)...)
	expectRefused(t, "plain password", code, out, []string{`user \"alertmanager\"`}, "'W'", "Wplain")
}

// TestStartupLogsSpoolPath: the start-up line names the spool's absolute
// path, since the default (data/alertbridge.db) is relative to the working
// directory.
func TestStartupLogsSpoolPath(t *testing.T) {
	t.Parallel()
	f := newFixture(t)
	bin := binary(t)
	cmd := exec.Command(bin, "--webhook.token-file="+f.token, "--spool.path=rel/spool.db", "--web.listen-address=127.0.0.1:0")
	cmd.Dir = f.dir
	stderr, err := cmd.StderrPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	defer func() { cmd.Process.Kill(); cmd.Wait() }()
	lines := make(chan string)
	go func() {
		b := make([]byte, 64<<10)
		var out []byte
		for {
			n, err := stderr.Read(b)
			out = append(out, b[:n]...)
			if strings.Contains(string(out), "Listening on") || err != nil {
				lines <- string(out)
				return
			}
		}
	}()
	select {
	case out := <-lines:
		if want := "spool=" + filepath.Join(f.dir, "rel", "spool.db"); !strings.Contains(out, want) {
			t.Errorf("start-up log does not say %s:\n%s", want, out)
		}
	case <-time.After(15 * time.Second):
		t.Fatal("not listening after 15 s")
	}
}

// TestServerLogCarriesNoClientAddress: with TLS on, plain HTTP and a
// refused handshake made net/http write "http: TLS handshake error from
// 127.0.0.1:59488: ..." to stderr, unformatted and with the client's
// address. It goes through the scrubbing logger (at debug level, where one
// client's connection errors belong), the address and the client's bytes
// out.
func TestServerLogCarriesNoClientAddress(t *testing.T) {
	t.Parallel()
	f := newFixture(t)
	certPath, keyPath, pool := e2eutil.SelfSignedCert(t, f.dir)
	web := f.write(t, "web.yml", "tls_server_config:\n  cert_file: "+certPath+"\n  key_file: "+keyPath+"\n")
	addr := e2eutil.FreeAddr(t, "127.0.0.1")
	logPath := filepath.Join(f.dir, "stderr.log")
	out, err := os.Create(logPath)
	if err != nil {
		t.Fatal(err)
	}
	cmd := exec.Command(binary(t), "--webhook.token-file="+f.token, "--spool.path="+f.spool, "--web.listen-address="+addr,
		"--web.config.file="+web, "--log.level=debug")
	cmd.Stdout, cmd.Stderr = out, out
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { cmd.Process.Kill(); cmd.Wait(); out.Close() })
	for deadline := time.Now().Add(15 * time.Second); ; time.Sleep(50 * time.Millisecond) {
		c, err := tls.Dial("tcp", addr, &tls.Config{RootCAs: pool})
		if err == nil {
			c.Close()
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("TLS listener never came up: %v", err)
		}
	}
	const attacker = "GET /GARBAGE-10.9.8.7-attacker-bytes HTTP/1.1\r\nHost: x\r\n\r\n"
	var clients []string
	for _, hello := range []string{attacker, "\x16\x03\x01\x00\x05GARBAGE-10.9.8.7"} {
		c, err := net.Dial("tcp", addr)
		if err != nil {
			t.Fatal(err)
		}
		clients = append(clients, c.LocalAddr().String())
		io.WriteString(c, hello)
		c.SetReadDeadline(time.Now().Add(10 * time.Second))
		io.Copy(io.Discard, c)
		c.Close()
	}
	var log string
	for deadline := time.Now().Add(15 * time.Second); ; time.Sleep(100 * time.Millisecond) {
		b, _ := os.ReadFile(logPath)
		log = string(b)
		if strings.Count(log, "TLS handshake error") >= 2 {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("log never reported the two failed handshakes:\n%s", log)
		}
	}
	rest := strings.ReplaceAll(log, "address="+addr, "") // its own listen address may appear
	for _, leak := range append(clients, "127.0.0.1", "GARBAGE", "10.9.8.7", "attacker-bytes") {
		if strings.Contains(rest, leak) {
			t.Errorf("log carries %q:\n%s", leak, log)
		}
	}
	for _, line := range strings.Split(strings.TrimSpace(log), "\n") {
		if strings.Contains(line, "TLS handshake error") && !strings.Contains(line, "level=DEBUG") {
			t.Errorf("net/http's line is not in the structured log at debug level: %s", line)
		}
	}
}
