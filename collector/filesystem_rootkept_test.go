package collector

import (
	"regexp"
	"strings"
	"testing"
)

// TestCheckRootKeptNamesTheFlag: the commercial edition's refusal of a
// mount-point filter that leaves out "/" names the flag the operator set
// (an exclude used to be reported as an include that must match "/").
func TestCheckRootKeptNamesTheFlag(t *testing.T) {
	for _, c := range []struct {
		filter    deviceFilter
		want, not string
	}{
		{deviceFilter{include: regexp.MustCompile(`^$`)}, "--collector.filesystem.mount-points-include=^$ does not match", "mount-points-exclude"},
		{deviceFilter{exclude: regexp.MustCompile(`^/$`)}, "--collector.filesystem.mount-points-exclude=^/$ matches", "mount-points-include"},
	} {
		err := checkRootKept(c.filter)
		if err == nil {
			t.Fatalf("%+v: accepted", c.filter)
		}
		if msg := err.Error(); !strings.Contains(msg, c.want) || strings.Contains(msg, c.not) {
			t.Errorf("error %q: want it to say %q and not name %s", msg, c.want, c.not)
		}
	}
	if err := checkRootKept(deviceFilter{exclude: regexp.MustCompile(`^/(dev|proc)($|/)`)}); err != nil {
		t.Errorf("an exclude keeping / refused: %v", err)
	}
}
