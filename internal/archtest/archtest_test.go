package archtest

import (
	"bytes"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
)

const module = "github.com/fraiseql/fraisier"

// layer gives every package its place: a package may import only packages
// of a strictly lower layer. Keep this table and ARCHITECTURE.md in step;
// a package missing here fails the test so that nobody adds one silently.
var layer = map[string]int{
	"bench":             8,
	"demo":              8,
	"cmd/fraisier":      7,
	"internal/cli":      6,
	"internal/server":   5,
	"internal/queue":    4,
	"internal/deploy":   3,
	"internal/forge":    2,
	"internal/git":      2,
	"internal/systemd":  2,
	"internal/health":   2,
	"internal/migrate":  2,
	"internal/store":    2,
	"internal/config":   2,
	"internal/execx":    1,
	"internal/version":  0,
	"internal/archtest": 0,
}

// testSupport packages exist for tests only; production code must not import them.
var testSupport = []string{
	"internal/testenv",
	"internal/store/storetest",
}

func TestDependencyDirection(t *testing.T) {
	out, err := exec.Command("go", "list", "-f", `{{.ImportPath}}{{range .Imports}} {{.}}{{end}}`, module+"/...").Output()
	if err != nil {
		t.Fatalf("go list: %v", err)
	}
	for _, line := range strings.Split(string(bytes.TrimSpace(out)), "\n") {
		fields := strings.Fields(line)
		pkg := strings.TrimPrefix(fields[0], module+"/")
		if isTestSupport(pkg) {
			continue
		}
		from, ok := layerOf(pkg)
		if !ok {
			t.Errorf("package %s has no layer: add it to ARCHITECTURE.md and to the table in this test", pkg)
			continue
		}
		for _, imp := range fields[1:] {
			if !strings.HasPrefix(imp, module+"/") {
				continue
			}
			dep := strings.TrimPrefix(imp, module+"/")
			// Only the demo and the benchmarks, which stand up real parts as
			// the tests do, may use test support outside tests.
			if isTestSupport(dep) && pkg != "demo" && !strings.HasPrefix(pkg, "bench/") {
				t.Errorf("%s imports test-only package %s", pkg, dep)
				continue
			}
			to, ok := layerOf(dep)
			if !ok {
				continue // reported when dep itself is listed
			}
			if to >= from {
				t.Errorf("%s (layer %d) imports %s (layer %d): dependencies point down only", pkg, from, dep, to)
			}
		}
	}
}

// layerOf finds the layer of pkg or of the nearest listed parent, so that
// internal/store/sqlite shares internal/store's place.
func layerOf(pkg string) (int, bool) {
	for p := pkg; p != "." && p != ""; {
		if l, ok := layer[p]; ok {
			return l, true
		}
		i := strings.LastIndex(p, "/")
		if i < 0 {
			break
		}
		p = p[:i]
	}
	return 0, false
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
