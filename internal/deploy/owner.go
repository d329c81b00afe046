package deploy

import (
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"os"
	"strconv"
	"strings"
	"syscall"
)

// Owner identifies one deploying process in the lock table. The process
// start time is part of it because a pid alone is reused: a lock whose pid
// now belongs to another process must still be recognised as abandoned.
type Owner struct {
	Host      string
	PID       int
	StartTick uint64 // /proc/<pid>/stat field 22, in clock ticks since boot
	Nonce     string
}

// String is the owner column of the lock: host, pid, start tick and a nonce
// that keeps two engines inside one process apart.
func (o Owner) String() string {
	return fmt.Sprintf("%s/%d/%d/%s", o.Host, o.PID, o.StartTick, o.Nonce)
}

// CurrentOwner describes this process.
func CurrentOwner() (Owner, error) {
	host, err := os.Hostname()
	if err != nil {
		return Owner{}, fmt.Errorf("lock owner: %w", err)
	}
	pid := os.Getpid()
	tick, err := processStartTick(pid)
	if err != nil {
		return Owner{}, fmt.Errorf("lock owner: %w", err)
	}
	nonce := make([]byte, 4)
	if _, err := rand.Read(nonce); err != nil {
		return Owner{}, fmt.Errorf("lock owner: %w", err)
	}
	return Owner{Host: host, PID: pid, StartTick: tick, Nonce: hex.EncodeToString(nonce)}, nil
}

// ParseOwner reads what String wrote.
func ParseOwner(s string) (Owner, error) {
	parts := strings.Split(s, "/")
	if len(parts) != 4 {
		return Owner{}, fmt.Errorf("lock owner %q: not host/pid/start/nonce", s)
	}
	pid, err := strconv.Atoi(parts[1])
	if err != nil {
		return Owner{}, fmt.Errorf("lock owner %q: %w", s, err)
	}
	tick, err := strconv.ParseUint(parts[2], 10, 64)
	if err != nil {
		return Owner{}, fmt.Errorf("lock owner %q: %w", s, err)
	}
	return Owner{Host: parts[0], PID: pid, StartTick: tick, Nonce: parts[3]}, nil
}

// HolderDead reports whether the process that wrote owner is certainly gone.
// Only a holder on this host can be judged; one elsewhere is alive until its
// lock expires.
func HolderDead(owner string, thisHost string) bool {
	o, err := ParseOwner(owner)
	if err != nil || o.Host != thisHost {
		return false
	}
	if err := syscall.Kill(o.PID, 0); errors.Is(err, syscall.ESRCH) {
		return true
	}
	tick, err := processStartTick(o.PID)
	if err != nil {
		// Exited between the two looks.
		return errors.Is(err, os.ErrNotExist)
	}
	return tick != o.StartTick
}

// processStartTick reads a process's start time from /proc, the one value
// that tells a pid's current process from an earlier one.
func processStartTick(pid int) (uint64, error) {
	b, err := os.ReadFile("/proc/" + strconv.Itoa(pid) + "/stat")
	if err != nil {
		return 0, err
	}
	// The command name (field 2) may contain spaces and parentheses; the
	// fields after the last ')' are fixed.
	s := string(b)
	i := strings.LastIndexByte(s, ')')
	if i < 0 {
		return 0, fmt.Errorf("parse /proc/%d/stat", pid)
	}
	fields := strings.Fields(s[i+1:])
	// fields[0] is field 3 (state); starttime is field 22.
	const startField = 22 - 3
	if len(fields) <= startField {
		return 0, fmt.Errorf("parse /proc/%d/stat: %d fields", pid, len(fields))
	}
	return strconv.ParseUint(fields[startField], 10, 64)
}
