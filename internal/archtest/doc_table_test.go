package archtest

import (
	"fmt"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"testing"
)

// architecture is what ARCHITECTURE.md's two tables say: the rows of the
// layer table (a row names one or more packages), each row's layer, and
// what each row's packages import of the module.
type architecture struct {
	rows    []string
	members map[string][]string
	layer   map[string]int
	imports map[string][]string
}

var backticked = regexp.MustCompile("`([^`]+)`")

// parseArchitecture reads the table headed "| package | owns | layer |" and
// the one headed "| package | imports |".
func parseArchitecture(text string) (*architecture, error) {
	a := &architecture{members: map[string][]string{}, layer: map[string]int{}, imports: map[string][]string{}}
	layers, err := table(text, "| package | owns | layer |")
	if err != nil {
		return nil, err
	}
	for _, cells := range layers {
		row := strings.Join(names(cells[0]), ", ")
		if row == "" {
			return nil, fmt.Errorf("layer table: a row names no package: %q", cells[0])
		}
		n, err := strconv.Atoi(strings.TrimSpace(cells[len(cells)-1]))
		if err != nil {
			return nil, fmt.Errorf("layer table: %s: layer %q is not a number", row, cells[len(cells)-1])
		}
		a.rows = append(a.rows, row)
		a.members[row] = names(cells[0])
		a.layer[row] = n
	}
	imports, err := table(text, "| package | imports |")
	if err != nil {
		return nil, err
	}
	for _, cells := range imports {
		row := strings.Join(names(cells[0]), ", ")
		if _, ok := a.layer[row]; !ok {
			return nil, fmt.Errorf("imports table: %s is not a row of the layer table", row)
		}
		a.imports[row] = names(cells[1])
		if len(a.imports[row]) == 0 && strings.TrimSpace(cells[1]) != "nothing" {
			return nil, fmt.Errorf("imports table: %s: say `nothing` or name packages in backticks", row)
		}
	}
	for _, row := range a.rows {
		if _, ok := a.imports[row]; !ok {
			return nil, fmt.Errorf("imports table: no row for %s", row)
		}
	}
	return a, nil
}

// table returns the cells of the Markdown table whose header line is
// header, its separator line skipped.
func table(text, header string) ([][]string, error) {
	_, rest, ok := strings.Cut(text, header+"\n")
	if !ok {
		return nil, fmt.Errorf("no table headed %q", header)
	}
	var rows [][]string
	for i, line := range strings.Split(rest, "\n") {
		if !strings.HasPrefix(line, "|") {
			break
		}
		if i == 0 {
			continue // |---|---|
		}
		cells := strings.Split(strings.Trim(line, "|"), " | ")
		if len(cells) != strings.Count(header, " | ")+1 {
			return nil, fmt.Errorf("table %q: line %q has %d cells", header, line, len(cells))
		}
		rows = append(rows, cells)
	}
	if len(rows) == 0 {
		return nil, fmt.Errorf("table %q is empty", header)
	}
	return rows, nil
}

func names(cell string) []string {
	var out []string
	for _, m := range backticked.FindAllStringSubmatch(cell, -1) {
		out = append(out, m[1])
	}
	return out
}

// rowOf finds the row of pkg: the row naming it, or naming "<parent>/..."
// or its nearest listed parent, so that internal/store/sqlite shares
// internal/store's row.
func (a *architecture) rowOf(pkg string) (string, bool) {
	for p := pkg; p != ""; {
		for _, row := range a.rows {
			if slices.Contains(a.members[row], p) || slices.Contains(a.members[row], p+"/...") {
				return row, true
			}
		}
		i := strings.LastIndex(p, "/")
		if i < 0 {
			break
		}
		p = p[:i]
	}
	return "", false
}

// top is the highest layer, the one of programs that may stand up real
// parts with test support.
func (a *architecture) top() int {
	top := 0
	for _, n := range a.layer {
		top = max(top, n)
	}
	return top
}

func TestParseArchitecture(t *testing.T) {
	const good = "| package | owns | layer |\n|---|---|---|\n" +
		"| `cmd/x` | main | 2 |\n| `internal/a`, `internal/b` | leaves | 0 |\n\n" +
		"| package | imports |\n|---|---|\n" +
		"| `cmd/x` | `internal/a` |\n| `internal/a`, `internal/b` | nothing |\n"
	a, err := parseArchitecture(good)
	if err != nil {
		t.Fatal(err)
	}
	if row, _ := a.rowOf("internal/b/sub"); row != "internal/a, internal/b" || a.layer[row] != 0 {
		t.Errorf("internal/b/sub: row %q layer %d", row, a.layer[row])
	}
	if _, ok := a.rowOf("internal/c"); ok {
		t.Error("internal/c has a row")
	}
	for _, tc := range []struct{ name, text, want string }{
		{"no layer table", "nothing here", "no table headed"},
		{"layer not a number", strings.Replace(good, "| 2 |", "| two |", 1), "is not a number"},
		{"imports row unknown", strings.Replace(good, "| `cmd/x` | `internal/a` |", "| `cmd/y` | `internal/a` |", 1), "not a row of the layer table"},
		{"imports row missing", strings.Replace(good, "| `cmd/x` | `internal/a` |\n", "", 1), "no row for cmd/x"},
		{"imports cell empty", strings.Replace(good, "| nothing |", "| none |", 1), "say `nothing`"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, err := parseArchitecture(tc.text)
			if err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Errorf("error %v; want one containing %q", err, tc.want)
			}
		})
	}
}
