package cliflag

import (
	"io"
	"os"
	"strings"
	"syscall"
	"testing"

	"github.com/alecthomas/kingpin/v2"
)

func testApp() *kingpin.Application {
	app := kingpin.New("t", "")
	app.Terminate(nil)
	app.UsageWriter(io.Discard)
	app.ErrorWriter(io.Discard)
	app.Flag("count", "").Default("1").Int()
	app.Flag("wait", "").Default("1s").Duration()
	app.Flag("mode", "").Default("a").Enum("a", "b")
	app.Flag("on", "").Bool()
	app.Flag("level", "").Envar("CLIFLAG_TEST_LEVEL").Default("1").Int()
	return app
}

// TestNameError: kingpin's own error names no flag; NameError finds the
// one that fails, from the command line or from its environment variable.
func TestNameError(t *testing.T) {
	t.Setenv("CLIFLAG_TEST_LEVEL", "")
	for _, tc := range []struct {
		args []string
		env  string
		want string
	}{
		{[]string{"--count=abc"}, "", `--count="abc": strconv.ParseFloat`},
		{[]string{"--wait=9999999h"}, "", `--wait="9999999h": time: invalid duration`},
		{[]string{"--count=2", "--mode=c"}, "", `--mode="c": enum value must be one of a,b`},
		{[]string{"--on=false"}, "", `--on=false: a switch takes no value; use --on or --no-on`},
		{nil, "xyz", `--level (from $CLIFLAG_TEST_LEVEL)`},
	} {
		os.Setenv("CLIFLAG_TEST_LEVEL", tc.env)
		app := testApp()
		_, err := app.Parse(tc.args)
		if err == nil {
			t.Fatalf("%v: kingpin took it", tc.args)
		}
		if got := NameError(app, tc.args, err).Error(); !strings.HasPrefix(got, tc.want) {
			t.Errorf("%v %s: %q, want it to start %q", tc.args, tc.env, got, tc.want)
		}
	}
	os.Setenv("CLIFLAG_TEST_LEVEL", "")
	app := testApp()
	_, err := app.Parse([]string{"--nope"})
	if got := NameError(app, []string{"--nope"}, err); got != err {
		t.Errorf("an error naming its flag was changed: %v", got)
	}
}

// TestCheckWholeNumbers: kingpin truncates 3.9 to 3 and wraps 1e30.
func TestCheckWholeNumbers(t *testing.T) {
	for args, ok := range map[string]bool{"--count=3": true, "--count=-7": true, "--count=3.9": false, "--count=1e30": false, "--wait=1.5s": true} {
		app := testApp()
		if _, err := app.Parse([]string{args}); err != nil {
			t.Fatalf("%s: %v", args, err)
		}
		err := CheckWholeNumbers(app, []string{args})
		if (err == nil) != ok || (err != nil && !strings.Contains(err.Error(), "--count")) {
			t.Errorf("%s: %v, want ok=%v", args, err, ok)
		}
	}
}

func TestDescribeMode(t *testing.T) {
	dir := t.TempDir()
	fifo := dir + "/fifo"
	if err := syscall.Mkfifo(fifo, 0o600); err != nil {
		t.Fatal(err)
	}
	for path, want := range map[string]string{dir: "a directory", fifo: "a named pipe (FIFO)", "/dev/null": "a character device"} {
		fi, err := os.Stat(path)
		if err != nil {
			t.Fatal(err)
		}
		if got := DescribeMode(fi.Mode()); got != want {
			t.Errorf("%s: %q, want %q", path, got, want)
		}
	}
}

func TestHtpasswdHint(t *testing.T) {
	const line = "prometheus:$2y$10$abcdefghijklmnopqrstuv"
	if h := HtpasswdHint("prometheus", line); !strings.Contains(h, `drop the leading "prometheus:"`) || strings.Contains(h, "$2y$") {
		t.Errorf("htpasswd's whole line: hint %q, want it to say to drop the user and not to repeat the value", h)
	}
	if h := HtpasswdHint("prometheus", "s3cret"); !strings.Contains(h, `htpasswd -nBC 10 "prometheus"`) ||
		!strings.Contains(h, `after "prometheus:"`) || strings.Contains(h, "s3cret") {
		t.Errorf("plain password: hint %q, want how to make a hash and what of htpasswd's output to keep", h)
	}
}
