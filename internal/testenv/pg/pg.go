package pg

import (
	"context"
	"errors"
	"fmt"
	"net/url"
	"os"
	"os/user"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/fraiseql/fraisier/internal/execx"
	"github.com/jackc/pgx/v5"
)

// ErrUnavailable reports that this machine cannot run a cluster: no server
// binaries, or root without a postgres user to run them as.
var ErrUnavailable = errors.New("PostgreSQL server unavailable")

// Cluster is a running throwaway cluster.
type Cluster struct {
	root   string // everything lives here; removed by Stop
	data   string
	socket string // the unix socket directory
	bin    string
	// asPostgres prefixes server commands when we are root: initdb refuses
	// to run as root.
	asPostgres []string
}

// findBin picks the newest installed server, e.g. /usr/lib/postgresql/15/bin.
func findBin() (string, error) {
	matches, _ := filepath.Glob("/usr/lib/postgresql/*/bin/initdb")
	if len(matches) == 0 {
		return "", fmt.Errorf("%w: no /usr/lib/postgresql/*/bin/initdb (apt-get install postgresql)", ErrUnavailable)
	}
	version := func(p string) int {
		v, _ := strconv.Atoi(filepath.Base(filepath.Dir(filepath.Dir(p))))
		return v
	}
	slices.SortFunc(matches, func(a, b string) int { return version(a) - version(b) })
	return filepath.Dir(matches[len(matches)-1]), nil
}

// Start creates and starts a cluster under os.TempDir(). Call Stop when done.
func Start(ctx context.Context) (*Cluster, error) {
	bin, err := findBin()
	if err != nil {
		return nil, err
	}
	root, err := os.MkdirTemp("", "fraisier-pgtest-")
	if err != nil {
		return nil, err
	}
	c := &Cluster{root: root, data: filepath.Join(root, "data"), socket: filepath.Join(root, "sock"), bin: bin}
	if err := os.Mkdir(c.socket, 0o700); err != nil {
		os.RemoveAll(root)
		return nil, err
	}
	if os.Geteuid() == 0 {
		u, err := user.Lookup("postgres")
		if err != nil {
			os.RemoveAll(root)
			return nil, fmt.Errorf("%w: running as root and %v", ErrUnavailable, err)
		}
		uid, _ := strconv.Atoi(u.Uid)
		gid, _ := strconv.Atoi(u.Gid)
		for _, p := range []string{root, c.socket} {
			if err := os.Chown(p, uid, gid); err != nil {
				os.RemoveAll(root)
				return nil, err
			}
		}
		c.asPostgres = []string{"runuser", "-u", "postgres", "--"}
	}
	if err := c.run(ctx, filepath.Join(bin, "initdb"), "-D", c.data, "--auth=trust", "--username=postgres",
		"--encoding=UTF8", "--locale=C", "--no-sync"); err != nil {
		os.RemoveAll(root)
		return nil, err
	}
	// Settings in the file rather than pg_ctl -o, whose string pg_ctl
	// hands to a shell. max_connections: the store's conformance suite
	// opens many connections at once (concurrent lockers and writers).
	conf := fmt.Sprintf("\nlisten_addresses = ''\nunix_socket_directories = '%s'\nport = 5432\nfsync = off\nsynchronous_commit = off\nfull_page_writes = off\nmax_connections = 300\n",
		strings.ReplaceAll(c.socket, "'", "''"))
	f, err := os.OpenFile(filepath.Join(c.data, "postgresql.conf"), os.O_APPEND|os.O_WRONLY, 0)
	if err == nil {
		_, err = f.WriteString(conf)
		if cerr := f.Close(); err == nil {
			err = cerr
		}
	}
	if err != nil {
		os.RemoveAll(root)
		return nil, fmt.Errorf("configure cluster: %w", err)
	}
	logFile := filepath.Join(root, "server.log")
	if err := c.run(ctx, filepath.Join(bin, "pg_ctl"), "-D", c.data, "-l", logFile, "-w", "-t", "60", "start"); err != nil {
		log, _ := os.ReadFile(logFile)
		c.Stop()
		return nil, fmt.Errorf("%w\nserver log:\n%s", err, log)
	}
	return c, nil
}

func (c *Cluster) run(ctx context.Context, argv ...string) error {
	_, err := execx.Run(ctx, execx.Cmd{Argv: append(slices.Clone(c.asPostgres), argv...), Dir: c.root, Timeout: 2 * time.Minute})
	if err != nil {
		return fmt.Errorf("pgtest: %w", err)
	}
	return nil
}

// Stop stops the server without a checkpoint (the data is thrown away) and
// removes everything Start created.
func (c *Cluster) Stop() {
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	if _, err := os.Stat(filepath.Join(c.data, "postmaster.pid")); err == nil {
		_ = c.run(ctx, filepath.Join(c.bin, "pg_ctl"), "-D", c.data, "-m", "immediate", "-w", "stop")
	}
	os.RemoveAll(c.root)
}

// SocketDir is the directory of the server's unix socket.
func (c *Cluster) SocketDir() string { return c.socket }

// URL is a postgres:// URL for database db as user postgres, reaching the
// server by its socket. The password is ignored (trust authentication), so
// tests may put a recognisable secret there and look for leaks.
func (c *Cluster) URL(db, password string) string {
	userinfo := url.User("postgres")
	if password != "" {
		userinfo = url.UserPassword("postgres", password)
	}
	return "postgres://" + userinfo.String() + "@/" + url.PathEscape(db) + "?host=" + url.QueryEscape(c.socket)
}

// CreateDatabase creates an empty database.
func (c *Cluster) CreateDatabase(ctx context.Context, name string) error {
	conn, err := pgx.Connect(ctx, c.URL("postgres", ""))
	if err != nil {
		return fmt.Errorf("pgtest: connect: %w", err)
	}
	defer conn.Close(context.WithoutCancel(ctx))
	if _, err := conn.Exec(ctx, `CREATE DATABASE `+pgx.Identifier{name}.Sanitize()); err != nil {
		return fmt.Errorf("pgtest: create database %s: %w", name, err)
	}
	return nil
}
