package alertbridge

import (
	"fmt"
	"maps"
	"slices"
	"sort"
	"testing"
	"time"

	"pgregory.net/rapid"
)

// TestKumaStateIncrementalMatchesRescan: after any sequence of firings
// (new, refreshed, renamed), resolutions, expiries and reloads, the kept
// smallest names and earliest expiry give the same summary and the same
// expiries as a state rebuilt from Firing alone.
func TestKumaStateIncrementalMatchesRescan(t *testing.T) {
	t.Parallel()
	rapid.Check(t, func(t *rapid.T) {
		st := newKumaState()
		base := time.Unix(1_800_000_000, 0)
		now := base
		fps := rapid.IntRange(1, 80).Draw(t, "fingerprints")
		names := rapid.IntRange(1, 60).Draw(t, "names")
		steps := rapid.IntRange(1, 300).Draw(t, "steps")
		for i := 0; i < steps; i++ {
			fp := fmt.Sprintf("fp%02d", rapid.IntRange(0, fps-1).Draw(t, "fp"))
			switch rapid.IntRange(0, 9).Draw(t, "op") {
			case 0, 1, 2, 3, 4:
				exp := time.Time{} // an older version's record: never expires
				if rapid.IntRange(0, 9).Draw(t, "expires") > 0 {
					exp = now.Add(time.Duration(rapid.IntRange(1, 600).Draw(t, "ttl")) * time.Second)
				}
				st.setFiring(fp, kumaAlert{Name: fmt.Sprintf("PopDown pop%02d", rapid.IntRange(0, names-1).Draw(t, "name")), Expires: exp})
			case 5, 6:
				st.delFiring(fp)
			case 7, 8:
				now = now.Add(time.Duration(rapid.IntRange(0, 300).Draw(t, "advance")) * time.Second)
				got := st.expire(now)
				for k, a := range st.Firing {
					if !a.Expires.IsZero() && !a.Expires.After(now) {
						t.Fatalf("%s expired at %s still firing at %s", k, a.Expires, now)
					}
				}
				if want := earliestExpiry(st.Firing); !got.IsZero() && got.After(want) && !want.IsZero() {
					t.Fatalf("expire says next %s, but %s expires first", got, want)
				} else if got.IsZero() && !want.IsZero() {
					t.Fatalf("expire says none left, but one expires at %s", want)
				}
			case 9:
				_, _ = st.summary()
			}
			fresh := newKumaState()
			for k, a := range st.Firing {
				fresh.setFiring(k, a)
			}
			if !maps.Equal(st.names, fresh.names) {
				t.Fatalf("names %v, rebuilt %v", st.names, fresh.names)
			}
			want := sortedNames(fresh.names)
			if got := st.smallestNames(); !slices.Equal(got, want) {
				t.Fatalf("smallest names %v, want %v", got, want)
			}
			s1, m1 := st.summary()
			s2, m2 := fresh.summary()
			if s1 != s2 || m1 != m2 {
				t.Fatalf("summary %s %q, rebuilt %s %q", s1, m1, s2, m2)
			}
		}
	})
}

func earliestExpiry(f map[string]kumaAlert) (min time.Time) {
	for _, a := range f {
		if !a.Expires.IsZero() && (min.IsZero() || a.Expires.Before(min)) {
			min = a.Expires
		}
	}
	return min
}

func sortedNames(m map[string]int) []string {
	out := make([]string, 0, len(m))
	for n := range m {
		out = append(out, n)
	}
	sort.Strings(out)
	if len(out) > summaryNames {
		out = out[:summaryNames]
	}
	return out
}
