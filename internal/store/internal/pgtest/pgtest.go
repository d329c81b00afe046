package pgtest

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"os/user"
	"path/filepath"
	"sort"
	"strconv"
	"sync"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/fraiseql/fraisier/internal/testenv"
)

// Server is one test binary's PostgreSQL cluster. The zero value is ready:
// the cluster starts on the first Database call. Stop it from TestMain.
type Server struct {
	once        sync.Once
	c           *cluster
	err         error
	unavailable bool

	mu sync.Mutex
	n  int
}

// Database creates an empty database for t, dropped when t ends, and
// returns its URL.
func (s *Server) Database(t testing.TB) string {
	t.Helper()
	s.once.Do(func() { s.c, s.unavailable, s.err = start() })
	if s.err != nil {
		if s.unavailable {
			testenv.Unavailable(t, "PostgreSQL: %v", s.err)
		}
		t.Fatalf("start PostgreSQL: %v", s.err)
	}
	s.mu.Lock()
	s.n++
	name := fmt.Sprintf("fraisier_test_%d", s.n)
	s.mu.Unlock()
	if err := s.c.admin(fmt.Sprintf("CREATE DATABASE %s", name)); err != nil {
		t.Fatalf("create database: %v", err)
	}
	t.Cleanup(func() {
		if err := s.c.admin(fmt.Sprintf("DROP DATABASE IF EXISTS %s WITH (FORCE)", name)); err != nil {
			t.Errorf("drop database %s: %v", name, err)
		}
	})
	return s.c.url(name)
}

// Stop stops the cluster, if it started, and removes its files.
func (s *Server) Stop() {
	if s.c != nil {
		s.c.stop()
	}
}

type cluster struct {
	root string // holds data/, sock/ and the server log
	bin  string
	asPG bool // run the server's tools as the postgres user (we are root)
}

func (c *cluster) url(db string) string {
	return fmt.Sprintf("postgres://postgres@/%s?host=%s&sslmode=disable", db, filepath.Join(c.root, "sock"))
}

// admin runs one statement in the maintenance database.
func (c *cluster) admin(stmt string) error {
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	conn, err := pgx.Connect(ctx, c.url("postgres"))
	if err != nil {
		return err
	}
	defer conn.Close(ctx)
	_, err = conn.Exec(ctx, stmt)
	return err
}

// binDir finds the newest installed PostgreSQL's server binaries.
func binDir() (string, error) {
	dirs, _ := filepath.Glob("/usr/lib/postgresql/*/bin")
	sort.Slice(dirs, func(i, j int) bool {
		vi, _ := strconv.Atoi(filepath.Base(filepath.Dir(dirs[i])))
		vj, _ := strconv.Atoi(filepath.Base(filepath.Dir(dirs[j])))
		return vi > vj
	})
	for _, d := range dirs {
		if _, err := os.Stat(filepath.Join(d, "pg_ctl")); err == nil {
			return d, nil
		}
	}
	if p, err := exec.LookPath("pg_ctl"); err == nil {
		return filepath.Dir(p), nil
	}
	return "", errors.New("no PostgreSQL server binaries (initdb, pg_ctl) installed")
}

// start creates and starts a cluster. unavailable means PostgreSQL cannot
// run here at all, as opposed to failing to start.
func start() (c *cluster, unavailable bool, err error) {
	bin, err := binDir()
	if err != nil {
		return nil, true, err
	}
	c = &cluster{bin: bin, asPG: os.Geteuid() == 0}
	var uid, gid int
	if c.asPG {
		// initdb refuses to run as root.
		u, err := user.Lookup("postgres")
		if err != nil {
			return nil, true, fmt.Errorf("running as root and there is no postgres user to run the server as: %w", err)
		}
		if _, err := exec.LookPath("runuser"); err != nil {
			return nil, true, fmt.Errorf("running as root and runuser is missing: %w", err)
		}
		uid, _ = strconv.Atoi(u.Uid)
		gid, _ = strconv.Atoi(u.Gid)
	}
	// Not t.TempDir: its parents are private to root, and the server runs
	// as postgres.
	root, err := os.MkdirTemp("", "fraisier-pg-")
	if err != nil {
		return nil, false, err
	}
	c.root = root
	fail := func(err error) (*cluster, bool, error) {
		os.RemoveAll(root)
		return nil, false, err
	}
	if err := os.Chmod(root, 0o755); err != nil {
		return fail(err)
	}
	if err := os.Mkdir(filepath.Join(root, "sock"), 0o755); err != nil {
		return fail(err)
	}
	if c.asPG {
		for _, p := range []string{root, filepath.Join(root, "sock")} {
			if err := os.Chown(p, uid, gid); err != nil {
				return fail(err)
			}
		}
	}
	data := filepath.Join(root, "data")
	if err := c.run("initdb", "-D", data, "--auth=trust", "-U", "postgres", "--no-sync",
		"--locale=C", "--encoding=UTF8"); err != nil {
		return fail(err)
	}
	// Durability is worthless for a throwaway cluster and costs most of
	// the time of creating databases.
	opts := fmt.Sprintf("-k %s -c listen_addresses='' -c fsync=off -c synchronous_commit=off -c full_page_writes=off -c max_connections=300",
		filepath.Join(root, "sock"))
	if err := c.run("pg_ctl", "start", "-D", data, "-w", "-t", "60", "-l", filepath.Join(root, "server.log"), "-o", opts); err != nil {
		log, _ := os.ReadFile(filepath.Join(root, "server.log"))
		return fail(fmt.Errorf("%w\nserver log:\n%s", err, log))
	}
	return c, false, nil
}

func (c *cluster) run(tool string, args ...string) error {
	path := filepath.Join(c.bin, tool)
	var cmd *exec.Cmd
	if c.asPG {
		cmd = exec.Command("runuser", append([]string{"-u", "postgres", "--", path}, args...)...)
	} else {
		cmd = exec.Command(path, args...)
	}
	// The tools complain when they cannot return to a directory of root's.
	cmd.Dir = c.root
	var out bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &out
	if err := cmd.Run(); err != nil {
		return fmt.Errorf("%s: %w\n%s", tool, err, out.Bytes())
	}
	return nil
}

func (c *cluster) stop() {
	_ = c.run("pg_ctl", "stop", "-D", filepath.Join(c.root, "data"), "-m", "immediate", "-w")
	os.RemoveAll(c.root)
}
