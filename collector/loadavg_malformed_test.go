package collector

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// TestLoadavgMalformedFailsWhole: /proc/loadavg is one line, so it is not
// salvaged: a malformed one exports nothing, and the error names the file,
// says what is wrong and quotes none of it; an unreadable file keeps the
// operating system's error, which names the path and the errno.
func TestLoadavgMalformedFailsWhole(t *testing.T) {
	t.Parallel()
	for _, content := range []string{
		"",
		"\n",
		"0.5 0.4\n",
		"0.5 alice 0.3 1/2 3\n",
		"0.5 0.4 /home/alice 1/2 3\n",
	} {
		proc := t.TempDir()
		if err := os.WriteFile(filepath.Join(proc, "loadavg"), []byte(content), 0o644); err != nil {
			t.Fatal(err)
		}
		ms, err := collectAll(newLoadavgCollector(mustProcFS(t, proc)))
		if err == nil || err.Error() != "reading loadavg: malformed content" {
			t.Errorf("loadavg %q: error %v, want %q", content, err, "reading loadavg: malformed content")
		}
		if len(ms) != 0 {
			t.Errorf("loadavg %q: %d series exported, want none", content, len(ms))
		}
	}
	proc := t.TempDir()
	if err := os.Mkdir(filepath.Join(proc, "loadavg"), 0o755); err != nil {
		t.Fatal(err)
	}
	ms, err := collectAll(newLoadavgCollector(mustProcFS(t, proc)))
	if err == nil || !strings.HasPrefix(err.Error(), "reading loadavg: ") || !strings.Contains(err.Error(), filepath.Join(proc, "loadavg")) || len(ms) != 0 {
		t.Errorf("unreadable loadavg: error %v and %d series, want the OS error naming the file and none", err, len(ms))
	}
}
