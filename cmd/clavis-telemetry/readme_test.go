package main

// The README documents every flag and every metric of clavis-telemetry in
// tables. These tests hold the tables to the code: a flag or metric (or a
// metric's label) that is in one and not in the other fails them, for each
// edition. Flags are compared with the kingpin model of this build's
// edition (the default-tag e2e test runs the same test for the other two
// editions); metrics with a real scrape of the built binaries
// (edition_e2e_test.go).

import (
	"io"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"testing"

	"github.com/clavitor/clavis-telemetry/internal/e2eutil"
)

// readmeTable is one markdown table of the README.
type readmeTable struct {
	section string   // the "## " heading it is under
	header  []string // lower-cased column names
	rows    [][]string
}

func (t readmeTable) column(name string) int { return slices.Index(t.header, name) }

// readmeTables parses every table of README.md.
func readmeTables(t *testing.T) []readmeTable {
	t.Helper()
	b, err := os.ReadFile(filepath.Join(e2eutil.RepoRoot(t), "README.md"))
	if err != nil {
		t.Fatal(err)
	}
	var tables []readmeTable
	var cur *readmeTable
	section := ""
	for _, line := range strings.Split(string(b), "\n") {
		if strings.HasPrefix(line, "## ") {
			section = strings.TrimSpace(strings.TrimPrefix(line, "## "))
		}
		if !strings.HasPrefix(line, "|") {
			cur = nil
			continue
		}
		cells := splitRow(line)
		switch {
		case cur == nil:
			tables = append(tables, readmeTable{section: section})
			cur = &tables[len(tables)-1]
			for _, c := range cells {
				cur.header = append(cur.header, strings.ToLower(c))
			}
		case strings.Trim(strings.Join(cells, ""), "-: ") == "":
			// the |---|---| line
		default:
			cur.rows = append(cur.rows, cells)
		}
	}
	return tables
}

// splitRow cuts a table row into cells; `\|` is a pipe inside a cell.
func splitRow(line string) []string {
	line = strings.TrimSpace(line)
	line = strings.TrimPrefix(strings.TrimSuffix(line, "|"), "|")
	var cells []string
	var cur strings.Builder
	for i := 0; i < len(line); i++ {
		switch {
		case line[i] == '\\' && i+1 < len(line) && line[i+1] == '|':
			cur.WriteByte('|')
			i++
		case line[i] == '|':
			cells = append(cells, strings.TrimSpace(cur.String()))
			cur.Reset()
		default:
			cur.WriteByte(line[i])
		}
	}
	return append(cells, strings.TrimSpace(cur.String()))
}

var backticked = regexp.MustCompile("`([^`]+)`")

// readmeFlags returns the flags the README documents for edition, with the
// section each comes from. A table with an "editions" column says per row
// where a flag exists ("all" or a list); the collector tables under "Metrics
// reference" are telemetry-edition flags; every other table documents flags
// of all editions. The alertbridge section documents another binary.
// `--collector.<name>` stands for every collector's switch (names taken from
// the model) and `--no-x` for the negation of the boolean `--x`.
func readmeFlags(t *testing.T, edition string, collectorNames []string) map[string]string {
	t.Helper()
	out := map[string]string{}
	for _, tab := range readmeTables(t) {
		if tab.section == "alertbridge" || tab.column("flag") != 0 {
			continue
		}
		ed := tab.column("editions")
		for _, row := range tab.rows {
			editions := "all"
			if tab.section == "Metrics reference" {
				editions = "telemetry, commercial"
			}
			if ed >= 0 && ed < len(row) {
				editions = row[ed]
			}
			if editions != "all" && !slices.Contains(strings.Split(strings.ReplaceAll(editions, " ", ""), ","), edition) {
				continue
			}
			for _, m := range backticked.FindAllStringSubmatch(row[0], -1) {
				name, ok := strings.CutPrefix(m[1], "--")
				if !ok {
					continue
				}
				name, _, _ = strings.Cut(name, "=")
				name = strings.TrimPrefix(name, "no-")
				if strings.Contains(name, "<name>") {
					for _, c := range collectorNames {
						out[strings.ReplaceAll(name, "<name>", c)] = tab.section
					}
					continue
				}
				out[name] = tab.section
			}
		}
	}
	return out
}

// kingpinBuiltins are the flags kingpin itself adds; --help is not a flag
// of ours to document (--version is, in the table).
var kingpinBuiltins = []string{"help", "help-long", "help-man", "completion-bash", "completion-script-bash", "completion-script-zsh"}

// TestREADMEFlagsMatchKingpin compares the README's flag tables with the
// flags this edition's kingpin application declares.
func TestREADMEFlagsMatchKingpin(t *testing.T) {
	app, _ := newApp(io.Discard)
	model := app.Model()
	declared := map[string]bool{}
	var collectorNames []string
	for _, f := range model.Flags {
		if f.Hidden || slices.Contains(kingpinBuiltins, f.Name) {
			continue
		}
		declared[f.Name] = true
		if c, ok := strings.CutPrefix(f.Name, "collector."); ok && !strings.Contains(c, ".") && f.IsBoolFlag() &&
			c != "disable-defaults" {
			collectorNames = append(collectorNames, c)
		}
	}
	documented := readmeFlags(t, edition, collectorNames)
	for name := range declared {
		if _, ok := documented[name]; !ok {
			t.Errorf("%s edition: flag --%s is not in the README's flag tables (or not marked for this edition)", edition, name)
		}
	}
	for name, section := range documented {
		if !declared[name] {
			t.Errorf("%s edition: the README (%s) documents --%s, which this edition does not have", edition, section, name)
		}
	}
	if len(declared) < 10 {
		t.Fatalf("only %d flags in the model: the test reads the wrong application", len(declared))
	}
	t.Logf("%s edition: %d flags checked", edition, len(declared))
}

// readmeMetrics returns the metric families of the README's metric tables
// (a "metric" column, names in backticks, several to a cell) with the label
// names of their "labels" column: the names before any parenthesised list of
// values.
// readmeEditionHasMetrics reports what the README's Editions table says of
// an edition's telemetry: false when its row says telemetry is "not in the
// binary" (the community edition), true otherwise. An edition without a row
// fails the test.
func readmeEditionHasMetrics(t *testing.T, edition string) bool {
	t.Helper()
	for _, tab := range readmeTables(t) {
		ec, tc := tab.column("edition"), tab.column("telemetry")
		if tab.section != "Editions" || ec < 0 || tc < 0 {
			continue
		}
		for _, row := range tab.rows {
			if strings.TrimSpace(row[ec]) == edition {
				return !strings.Contains(row[tc], "not in the binary")
			}
		}
	}
	t.Fatalf("the README's Editions table has no row for the %q edition", edition)
	return false
}

func readmeMetrics(t *testing.T) map[string][]string {
	t.Helper()
	out := map[string][]string{}
	for _, tab := range readmeTables(t) {
		mc, lc := tab.column("metric"), tab.column("labels")
		if mc < 0 || lc < 0 || tab.section == "alertbridge" {
			continue
		}
		for _, row := range tab.rows {
			labels := []string{}
			cell := row[lc]
			for {
				open := strings.IndexByte(cell, '(')
				if open < 0 {
					break
				}
				end := strings.IndexByte(cell[open:], ')')
				if end < 0 {
					break
				}
				cell = cell[:open] + cell[open+end+1:]
			}
			for _, l := range strings.Split(cell, ",") {
				if l = strings.Trim(strings.TrimSpace(l), "`"); l != "" {
					labels = append(labels, l)
				}
			}
			slices.Sort(labels)
			for _, m := range backticked.FindAllStringSubmatch(row[mc], -1) {
				if strings.HasPrefix(m[1], "clavis_") {
					out[m[1]] = labels
				}
			}
		}
	}
	return out
}
