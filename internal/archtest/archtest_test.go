package archtest

import (
	"bytes"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"testing"
)

const module = "github.com/fraiseql/fraisier"

// testSupport packages exist for tests only; production code must not import them.
var testSupport = []string{
	"internal/testenv",
	"internal/store/storetest",
}

// TestDependencyDirection checks the code against ARCHITECTURE.md: every
// package has a row in its layer table, imports only packages of a lower
// layer (or of its own row), and imports exactly what the imports table
// says its row imports.
func TestDependencyDirection(t *testing.T) {
	doc := readArchitecture(t)
	got := map[string]map[string]bool{} // row → internal packages its packages import
	for pkg, imports := range listImports(t) {
		if isTestSupport(pkg) {
			continue
		}
		row, ok := doc.rowOf(pkg)
		if !ok {
			t.Errorf("package %s has no row in ARCHITECTURE.md's layer table", pkg)
			continue
		}
		if got[row] == nil {
			got[row] = map[string]bool{}
		}
		for _, dep := range imports {
			// Only the demo and the benchmarks, which stand up real parts as
			// the tests do, may use test support outside tests.
			if isTestSupport(dep) && doc.layer[row] != doc.top() {
				t.Errorf("%s imports test-only package %s", pkg, dep)
			}
			depRow, ok := doc.rowOf(dep)
			if ok && depRow == row {
				continue // a package's own sub-packages
			}
			got[row][rowName(doc, dep)] = true
			if ok && doc.layer[depRow] >= doc.layer[row] {
				t.Errorf("%s (layer %d) imports %s (layer %d): dependencies point down only",
					pkg, doc.layer[row], dep, doc.layer[depRow])
			}
		}
	}
	for _, row := range doc.rows {
		var have []string
		for dep := range got[row] {
			have = append(have, dep)
		}
		slices.Sort(have)
		want := slices.Sorted(slices.Values(doc.imports[row]))
		if !slices.Equal(have, want) {
			t.Errorf("ARCHITECTURE.md says %s imports %s; the code imports %s",
				row, listOrNothing(want), listOrNothing(have))
		}
	}
}

// rowName names an imported package as the imports table does: by its row
// in the layer table, or as itself for test support.
func rowName(doc *architecture, pkg string) string {
	if isTestSupport(pkg) {
		return pkg
	}
	if row, ok := doc.rowOf(pkg); ok && !strings.Contains(row, ",") {
		return strings.TrimSuffix(row, "/...")
	}
	return pkg
}

func listOrNothing(pkgs []string) string {
	if len(pkgs) == 0 {
		return "nothing"
	}
	return strings.Join(pkgs, ", ")
}

// listImports maps each package of the module to the module's packages it
// imports, test files aside.
func listImports(t *testing.T) map[string][]string {
	t.Helper()
	out, err := exec.Command("go", "list", "-f", `{{.ImportPath}}{{range .Imports}} {{.}}{{end}}`, module+"/...").Output()
	if err != nil {
		t.Fatalf("go list: %v", err)
	}
	imports := map[string][]string{}
	for _, line := range strings.Split(string(bytes.TrimSpace(out)), "\n") {
		fields := strings.Fields(line)
		pkg := strings.TrimPrefix(fields[0], module+"/")
		imports[pkg] = nil
		for _, imp := range fields[1:] {
			if dep, ok := strings.CutPrefix(imp, module+"/"); ok {
				imports[pkg] = append(imports[pkg], dep)
			}
		}
	}
	return imports
}

func isTestSupport(pkg string) bool {
	for _, p := range testSupport {
		if pkg == p || strings.HasPrefix(pkg, p+"/") {
			return true
		}
	}
	return false
}

// TestEveryPackageHasDoc keeps the promise that each package says in its
// doc.go what it is for.
func TestEveryPackageHasDoc(t *testing.T) {
	out, err := exec.Command("go", "list", "-f", `{{.Dir}} {{.ImportPath}}`, module+"/...").Output()
	if err != nil {
		t.Fatalf("go list: %v", err)
	}
	for _, line := range strings.Split(string(bytes.TrimSpace(out)), "\n") {
		dir, pkg, _ := strings.Cut(line, " ")
		if strings.HasPrefix(pkg, module+"/cmd/") {
			continue // main packages document themselves in main.go
		}
		if _, err := os.Stat(filepath.Join(dir, "doc.go")); err != nil {
			t.Errorf("package %s has no doc.go", pkg)
		}
	}
}

func readArchitecture(t *testing.T) *architecture {
	t.Helper()
	text, err := os.ReadFile(filepath.Join("..", "..", "ARCHITECTURE.md"))
	if err != nil {
		t.Fatalf("read ARCHITECTURE.md: %v", err)
	}
	doc, err := parseArchitecture(string(text))
	if err != nil {
		t.Fatalf("ARCHITECTURE.md: %v", err)
	}
	return doc
}
