package migrate

import (
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"strconv"
	"strings"
)

// sqlMigration is one NNN_name pair of files.
type sqlMigration struct {
	version  int64
	name     string // "002_add_x", the files' common stem
	up       string // contents of the .up.sql file
	checksum string // sha256 of up, hex
	downPath string // "" when there is no down file: irreversible
}

func (s *sqlMigration) upFile() string { return s.name + ".up.sql" }

var sqlFileRE = regexp.MustCompile(`^([0-9]+)_([^/]+)\.(up|down)\.sql$`)

// loadSQLDir reads a migrations directory. It is strict, because a file it
// skipped silently would be a migration that never runs: every *.sql file
// must be NNN_name.up.sql or NNN_name.down.sql, a version appears once, and
// a down file needs its up file. Other files (README) are ignored.
func loadSQLDir(dir string) ([]*sqlMigration, error) {
	entries, err := os.ReadDir(dir)
	if err != nil {
		return nil, fmt.Errorf("read migrations: %w", err)
	}
	byVersion := map[int64]*sqlMigration{}
	downs := map[int64]string{} // version -> file name
	for _, e := range entries {
		name := e.Name()
		if e.IsDir() || !strings.HasSuffix(strings.ToLower(name), ".sql") {
			continue
		}
		mm := sqlFileRE.FindStringSubmatch(name)
		if mm == nil {
			return nil, fmt.Errorf("migration file %s: want NNN_name.up.sql or NNN_name.down.sql", name)
		}
		v, err := strconv.ParseInt(mm[1], 10, 64)
		if err != nil {
			return nil, fmt.Errorf("migration file %s: version %s out of range", name, mm[1])
		}
		stem := mm[1] + "_" + mm[2]
		if mm[3] == "down" {
			if prev, dup := downs[v]; dup {
				return nil, fmt.Errorf("migration files %s and %s share version %d", prev, name, v)
			}
			downs[v] = name
			continue
		}
		if prev, dup := byVersion[v]; dup {
			return nil, fmt.Errorf("migration files %s and %s share version %d", prev.upFile(), name, v)
		}
		b, err := os.ReadFile(filepath.Join(dir, name))
		if err != nil {
			return nil, fmt.Errorf("read migration: %w", err)
		}
		sum := sha256.Sum256(b)
		byVersion[v] = &sqlMigration{version: v, name: stem, up: string(b), checksum: hex.EncodeToString(sum[:])}
	}
	for v, down := range downs {
		m, ok := byVersion[v]
		if !ok {
			return nil, fmt.Errorf("migration file %s has no .up.sql", down)
		}
		if down != m.name+".down.sql" {
			return nil, fmt.Errorf("migration files %s and %s share version %d but not a name", m.upFile(), down, v)
		}
		m.downPath = filepath.Join(dir, down)
	}
	migs := make([]*sqlMigration, 0, len(byVersion))
	for _, m := range byVersion {
		migs = append(migs, m)
	}
	slices.SortFunc(migs, func(a, b *sqlMigration) int { return cmpInt(a.version, b.version) })
	return migs, nil
}

func cmpInt(a, b int64) int {
	switch {
	case a < b:
		return -1
	case a > b:
		return 1
	}
	return 0
}

// sqlRevision is how the sql tool spells a version as a Revision.
func sqlRevision(v int64) Revision { return Revision(strconv.FormatInt(v, 10)) }

// parseSQLRevision reads a target for Down: "" (everything down, -1) or a
// version number.
func parseSQLRevision(r Revision) (int64, error) {
	if r == "" {
		return -1, nil
	}
	v, err := strconv.ParseInt(string(r), 10, 64)
	if err != nil || v < 0 {
		return 0, fmt.Errorf("%w %s: the sql tool's revisions are version numbers", ErrBadRevision, showRevision(r))
	}
	return v, nil
}
