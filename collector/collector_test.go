package collector

import (
	"github.com/prometheus/client_golang/prometheus"

	"context"
	"slices"
	"strings"
	"testing"

	"github.com/alecthomas/kingpin/v2"
)

// withSpecs swaps the registry for the duration of a test.
func withSpecs(t *testing.T, ss ...Spec) {
	t.Helper()
	saved := specs
	specs = map[string]Spec{}
	for _, s := range ss {
		Register(s)
	}
	t.Cleanup(func() { specs = saved })
}

func testSpec(name string, def, core bool) Spec {
	return Spec{Name: name, DefaultEnabled: def, Core: core, Setup: func(*kingpin.Application) Factory {
		return func(Env) (Collector, error) {
			return fakeCollector(func(context.Context, chan<- prometheus.Metric) error { return nil }), nil
		}
	}}
}

func parse(t *testing.T, args ...string) (*Set, error) {
	t.Helper()
	app := kingpin.New("test", "")
	s := NewSet(app)
	_, err := app.Parse(args)
	return s, err
}

func TestSetFlags(t *testing.T) {
	withSpecs(t, testSpec("a", true, true), testSpec("b", true, false), testSpec("c", false, false))
	cases := []struct {
		args []string
		want []string
	}{
		{nil, []string{"a", "b"}},
		{[]string{"--no-collector.b"}, []string{"a"}},
		{[]string{"--collector.c"}, []string{"a", "b", "c"}},
		{[]string{"--collector.disable-defaults", "--collector.c"}, []string{"c"}},
		{[]string{"--collector.disable-defaults"}, nil},
	}
	for _, c := range cases {
		s, err := parse(t, c.args...)
		if err != nil {
			t.Fatalf("%v: %v", c.args, err)
		}
		if got := s.Enabled(); !slices.Equal(got, c.want) {
			t.Errorf("%v: enabled %v, want %v", c.args, got, c.want)
		}
	}
}

func TestCheckEnforced(t *testing.T) {
	withSpecs(t, testSpec("core", true, true), testSpec("extra", true, false))
	for _, ok := range [][]string{nil, {"--no-collector.extra"}, {"--collector.disable-defaults", "--collector.core"}} {
		s, err := parse(t, ok...)
		if err != nil {
			t.Fatal(err)
		}
		if err := s.CheckEnforced(); err != nil {
			t.Errorf("%v: unexpected %v", ok, err)
		}
	}
	for _, bad := range [][]string{{"--no-collector.core"}, {"--collector.disable-defaults"}} {
		s, err := parse(t, bad...)
		if err != nil {
			t.Fatal(err)
		}
		err = s.CheckEnforced()
		if err == nil || !strings.Contains(err.Error(), "core") || !strings.Contains(err.Error(), "commercial") {
			t.Errorf("%v: got %v, want an error naming the core collector and the edition", bad, err)
		}
	}
}

func TestBuildPassesPaths(t *testing.T) {
	var got Paths
	withSpecs(t, Spec{Name: "p", DefaultEnabled: true, Setup: func(*kingpin.Application) Factory {
		return func(env Env) (Collector, error) {
			got = env.Paths
			return fakeCollector(func(context.Context, chan<- prometheus.Metric) error { return nil }), nil
		}
	}})
	s, err := parse(t, "--path.procfs=/x/proc", "--path.rootfs=/x")
	if err != nil {
		t.Fatal(err)
	}
	sc, err := s.Build(Env{})
	if err != nil {
		t.Fatal(err)
	}
	if got.ProcFS != "/x/proc" || got.SysFS != "/sys" || got.RootFS != "/x" {
		t.Errorf("paths = %+v", got)
	}
	if !slices.Equal(sc.Names(), []string{"p"}) {
		t.Errorf("scraper runs %v", sc.Names())
	}
}

func TestRegisterRejectsDuplicates(t *testing.T) {
	withSpecs(t, testSpec("dup", true, false))
	defer func() {
		if recover() == nil {
			t.Fatal("registering a name twice did not panic")
		}
	}()
	Register(testSpec("dup", true, false))
}
