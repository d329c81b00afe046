package main

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"time"

	"github.com/jackc/pgx/v5"
)

// cpuTimes is the CPU time used so far by PostgreSQL (the postmaster's
// processes, ended ones included), by this process (the nodes' Go side
// and the benchmark's), and by this process's children (git, run by the
// engines).
type cpuTimes struct{ pg, nodes, git time.Duration }

func (a cpuTimes) sub(b cpuTimes) cpuTimes {
	return cpuTimes{pg: a.pg - b.pg, nodes: a.nodes - b.nodes, git: a.git - b.git}
}

// clockTick is the unit of /proc's CPU times (USER_HZ, 100 on Linux).
const clockTick = 10 * time.Millisecond

// postmasterOf returns the PID of the postmaster of conn's server (the
// parent of conn's backend): the server runs on this machine.
func postmasterOf(ctx context.Context, conn *pgx.Conn) (int, error) {
	var backend int
	if err := conn.QueryRow(ctx, "SELECT pg_backend_pid()").Scan(&backend); err != nil {
		return 0, err
	}
	f, err := procStat(backend)
	if err != nil {
		return 0, err
	}
	return strconv.Atoi(f[1])
}

// procStat returns the fields of /proc/pid/stat after the command's name:
// state is [0], ppid [1], utime [11], stime [12], cutime [13], cstime [14].
func procStat(pid int) ([]string, error) {
	b, err := os.ReadFile(filepath.Join("/proc", strconv.Itoa(pid), "stat"))
	if err != nil {
		return nil, err
	}
	i := strings.LastIndexByte(string(b), ')')
	if i < 0 {
		return nil, fmt.Errorf("/proc/%d/stat: no command name", pid)
	}
	f := strings.Fields(string(b[i+1:]))
	if len(f) < 15 {
		return nil, fmt.Errorf("/proc/%d/stat: %d fields", pid, len(f))
	}
	return f, nil
}

func ticks(f []string, fields ...int) time.Duration {
	var n int64
	for _, i := range fields {
		v, _ := strconv.ParseInt(f[i], 10, 64)
		n += v
	}
	return time.Duration(n) * clockTick
}

// cpuNow reads the CPU times; postmaster 0 leaves PostgreSQL's out.
func cpuNow(postmaster int) cpuTimes {
	var t cpuTimes
	if postmaster > 0 {
		if f, err := procStat(postmaster); err == nil {
			t.pg = ticks(f, 11, 12, 13, 14)
		}
		procs, _ := filepath.Glob("/proc/[0-9]*/stat")
		for _, p := range procs {
			pid, _ := strconv.Atoi(filepath.Base(filepath.Dir(p)))
			f, err := procStat(pid)
			if err == nil && f[1] == strconv.Itoa(postmaster) {
				t.pg += ticks(f, 11, 12)
			}
		}
	}
	var self, children syscall.Rusage
	if syscall.Getrusage(syscall.RUSAGE_SELF, &self) == nil {
		t.nodes = time.Duration(self.Utime.Nano() + self.Stime.Nano())
	}
	if syscall.Getrusage(syscall.RUSAGE_CHILDREN, &children) == nil {
		t.git = time.Duration(children.Utime.Nano() + children.Stime.Nano())
	}
	return t
}
