package accesslog

import "testing"

// TestCaddyDurationUnits: with --accesslog.caddy-duration-format set, a
// number is read in that unit whether zap wrote it whole (12) or not, a
// Go duration string is read in every unit, and auto keeps reading whole
// numbers as nanoseconds and fractions as seconds. Caddy's ms is the case
// auto cannot read: 12 (ms) would be 12 ns, 1.5 (ms) 1.5 s.
func TestCaddyDurationUnits(t *testing.T) {
	t.Parallel()
	const none = -1.0
	for _, tc := range []struct {
		unit DurationUnit
		dur  string
		want float64
	}{
		{DurationMillis, `12`, 0.012},
		{DurationMillis, `1.5`, 0.0015},
		{DurationMillis, `0.929675`, 0.000929675},
		{DurationMillis, `0`, 0},
		{DurationMillis, `"12"`, 0.012},
		{DurationMillis, `1.2e3`, 1.2},
		{DurationMillis, `"250ms"`, 0.25},
		{DurationMillis, `999999999`, 999999.999},
		{DurationMillis, `1000000000`, none}, // a million seconds
		{DurationMillis, `-1`, none},
		{DurationSeconds, `1`, 1},
		{DurationSeconds, `0.000929675`, 0.000929675},
		{DurationSeconds, `929675`, 929675},
		{DurationSeconds, `"1.5s"`, 1.5},
		{DurationSeconds, `1000000`, none},
		{DurationNanos, `929675`, 0.000929675},
		{DurationNanos, `929675.0`, 0.000929675},
		{DurationNanos, `1500000000`, 1.5},
		{DurationNanos, `"929.675µs"`, 0.000929675},
		{DurationNanos, `1000000000000000`, none},
		{DurationString, `"929.675µs"`, 0.000929675},
		{DurationString, `"2m3.5s"`, 123.5},
		{DurationString, `"0s"`, 0},
		{DurationString, `12`, none},
		{DurationString, `0.5`, none},
		{DurationAuto, `12`, 12e-9},
		{DurationAuto, `1.5`, 1.5},
		{DurationAuto, `"12ms"`, 0.012},
	} {
		line := caddyLine(`1764669600.5`, tc.dur)
		console := "2026/12/02 10:00:00.500\tINFO\thttp.log.access.log0\thandled request\t" + consoleFields("200", tc.dur)
		for _, p := range []struct {
			name  string
			parse func([]byte, *Record, DurationUnit) error
			line  string
		}{{"json", parseJSON, line}, {"console", parseCaddyConsole, console}} {
			var r Record
			if err := p.parse([]byte(p.line), &r, tc.unit); err != nil {
				t.Errorf("%s unit %d duration %s: %v", p.name, tc.unit, tc.dur, err)
				continue
			}
			if r.Status != 200 || r.Size != 10900 {
				t.Errorf("%s unit %d duration %s: %+v", p.name, tc.unit, tc.dur, r)
			}
			if tc.want == none {
				if r.HasDuration {
					t.Errorf("%s unit %d duration %s: %v, want none", p.name, tc.unit, tc.dur, r.Duration)
				}
				continue
			}
			if !r.HasDuration || r.Duration < tc.want*(1-1e-12) || r.Duration > tc.want*(1+1e-12) {
				t.Errorf("%s unit %d duration %s: %v/%v, want %v", p.name, tc.unit, tc.dur, r.Duration, r.HasDuration, tc.want)
			}
		}
	}
}

// TestCaddyDurationUnitLeavesOthers: the unit is Caddy's "duration" only;
// nginx's request_time stays seconds and Traefik's Duration nanoseconds.
func TestCaddyDurationUnitLeavesOthers(t *testing.T) {
	t.Parallel()
	for _, unit := range []DurationUnit{DurationAuto, DurationSeconds, DurationMillis, DurationNanos, DurationString} {
		for line, want := range map[string]float64{
			`{"status":200,"request_time":0.250}`:         0.25,
			`{"status":200,"request_time":"2"}`:           2,
			`{"DownstreamStatus":200,"Duration":1500000}`: 0.0015,
		} {
			var r Record
			if err := parseJSON([]byte(line), &r, unit); err != nil || !r.HasDuration || r.Duration != want {
				t.Errorf("unit %d %s: %v/%v (%v), want %v", unit, line, r.Duration, r.HasDuration, err, want)
			}
		}
	}
}

func TestParseDurationUnit(t *testing.T) {
	t.Parallel()
	for s, want := range map[string]DurationUnit{
		"auto": DurationAuto,
		"s":    DurationSeconds, "second": DurationSeconds, "seconds": DurationSeconds,
		"ms": DurationMillis, "milli": DurationMillis, "millis": DurationMillis,
		"ns": DurationNanos, "nano": DurationNanos, "nanos": DurationNanos,
		"string": DurationString,
	} {
		if got, err := ParseDurationUnit(s); err != nil || got != want {
			t.Errorf("%q: %d, %v; want %d", s, got, err, want)
		}
	}
	for _, s := range []string{"", "MS", "milliseconds", "us", "sec", " ms"} {
		if _, err := ParseDurationUnit(s); err == nil {
			t.Errorf("%q accepted", s)
		}
	}
	if _, err := NewCounter(Options{CaddyDuration: DurationString + 1}); err == nil {
		t.Error("NewCounter took an unknown duration unit")
	}
}

// TestCounterCaddyDurationMillis: the Counter reads Caddy's duration in
// Options.CaddyDuration, in JSON and console lines, under json and auto.
func TestCounterCaddyDurationMillis(t *testing.T) {
	t.Parallel()
	log := caddyLine(`1764669600.5`, `12`) + "\n" + caddyLine(`1764669600.6`, `1.5`) + "\n" +
		"2026/12/02 10:00:00.500\tINFO\thttp.log.access.log0\thandled request\t" + consoleFields("200", "2500") + "\n"
	for _, format := range []Format{FormatAuto, FormatJSON} {
		c := newTestCounter(t, Options{Format: format, CaddyDuration: DurationMillis})
		if _, err := c.NewStream().Write([]byte(log)); err != nil {
			t.Fatal(err)
		}
		s := c.Snapshot(testNow)
		if len(s.Durations) != 1 {
			t.Fatalf("format %d: durations %+v", format, s.Durations)
		}
		h := s.Durations[0]
		if want := 0.012 + 0.0015 + 2.5; h.Count != 3 || h.Sum < want-1e-9 || h.Sum > want+1e-9 {
			t.Errorf("format %d: count %d sum %v, want 3 and %v", format, h.Count, h.Sum, want)
		}
	}
}

// TestCaddyDurationUnitsDoNotAllocate: the parser stays allocation-free
// in every unit, a Go duration string included.
func TestCaddyDurationUnitsDoNotAllocate(t *testing.T) {
	lines := [][]byte{[]byte(caddyLine(`1764669600.5`, `12`)), []byte(caddyLine(`1764669600.5`, `0.929675`)), []byte(caddyLine(`1764669600.5`, `"929.675µs"`))}
	for unit := DurationAuto; unit <= DurationString; unit++ {
		var r Record
		if n := testing.AllocsPerRun(100, func() {
			for _, l := range lines {
				parseJSON(l, &r, unit)
			}
		}); n != 0 {
			t.Errorf("unit %d: %.1f allocations", unit, n)
		}
	}
}
