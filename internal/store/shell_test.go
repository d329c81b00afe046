package store_test

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"math"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"github.com/fraiseql/fraisier/bench/grow"
	"github.com/fraiseql/fraisier/internal/store"
	"github.com/fraiseql/fraisier/internal/testenv"
)

// TestViewsReadTheSameInTheSQLiteShell: the v_* views are for users, who
// read them with the sqlite3 program their system has (Debian's, which
// scripts/test-deps.sh installs), often older than the SQLite built into
// fraisier. Every view, read by that program, gives the rows fraisier's
// own SQLite gives, NULLs included.
func TestViewsReadTheSameInTheSQLiteShell(t *testing.T) {
	bin, err := exec.LookPath("sqlite3")
	if err != nil {
		testenv.Unavailable(t, "sqlite3 not installed (apt-get install sqlite3): %v", err)
	}
	ctx := context.Background()
	path := filepath.Join(t.TempDir(), "fraisier.db")
	db, err := store.Open(ctx, store.Options{Path: path})
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	if err := grow.Populate(ctx, db, 2000, 3000, 1); err != nil {
		t.Fatal(err)
	}
	version, err := exec.CommandContext(ctx, bin, "--version").Output()
	if err != nil {
		t.Fatalf("%s --version: %v", bin, err)
	}
	t.Logf("%s %s", bin, bytes.TrimSpace(version))
	views := viewNames(t, db)
	if len(views) == 0 {
		t.Fatal("no views")
	}
	for _, v := range views {
		t.Run(v, func(t *testing.T) {
			query := "SELECT * FROM " + v + " ORDER BY 1, 2, 3"
			want := storeRows(t, db, query)
			out, err := exec.CommandContext(ctx, bin, "-readonly", "-json", path, query).CombinedOutput()
			if err != nil {
				t.Fatalf("sqlite3 %s: %v\n%s", query, err, out)
			}
			var got []map[string]any
			if len(bytes.TrimSpace(out)) > 0 {
				if err := json.Unmarshal(out, &got); err != nil {
					t.Fatalf("sqlite3's JSON: %v\n%s", err, out)
				}
			}
			if len(got) != len(want) {
				t.Fatalf("sqlite3 read %d rows, fraisier %d", len(got), len(want))
			}
			for i := range want {
				for col, w := range want[i] {
					if g := got[i][col]; !sameValue(w, g) {
						t.Errorf("row %d, %s: sqlite3 read %v, fraisier %v", i, col, g, w)
					}
				}
			}
		})
	}
}

func viewNames(t *testing.T, db *store.DB) []string {
	t.Helper()
	rows, err := db.SQL().Query("SELECT name FROM sqlite_master WHERE type = 'view' ORDER BY name")
	if err != nil {
		t.Fatal(err)
	}
	defer rows.Close()
	var names []string
	for rows.Next() {
		var n string
		if err := rows.Scan(&n); err != nil {
			t.Fatal(err)
		}
		names = append(names, n)
	}
	if err := rows.Err(); err != nil {
		t.Fatal(err)
	}
	return names
}

// storeRows reads query through the store's connection, a map per row.
func storeRows(t *testing.T, db *store.DB, query string) []map[string]any {
	t.Helper()
	rows, err := db.SQL().Query(query)
	if err != nil {
		t.Fatal(err)
	}
	defer rows.Close()
	cols, err := rows.Columns()
	if err != nil {
		t.Fatal(err)
	}
	var out []map[string]any
	for rows.Next() {
		vals := make([]any, len(cols))
		ptrs := make([]any, len(cols))
		for i := range vals {
			ptrs[i] = &vals[i]
		}
		if err := rows.Scan(ptrs...); err != nil {
			t.Fatal(err)
		}
		row := map[string]any{}
		for i, c := range cols {
			row[c] = vals[i]
		}
		out = append(out, row)
	}
	if err := rows.Err(); err != nil {
		t.Fatal(err)
	}
	return out
}

// sameValue compares a value the store read with one sqlite3 printed as
// JSON: numbers within a millionth (a view's "now" is read a little later
// by one than by the other), the rest as text.
func sameValue(want, got any) bool {
	if want == nil || got == nil {
		return want == nil && got == nil
	}
	if g, ok := got.(float64); ok {
		var w float64
		switch x := want.(type) {
		case int64:
			w = float64(x)
		case float64:
			w = x
		default:
			return false
		}
		return math.Abs(w-g) <= 1e-6*math.Max(1, math.Abs(w))
	}
	return strings.TrimSpace(fmt.Sprint(want)) == strings.TrimSpace(fmt.Sprint(got))
}
