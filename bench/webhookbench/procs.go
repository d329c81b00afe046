package main

import (
	"bufio"
	"bytes"
	"fmt"
	"net/http"
	"os"
	"os/exec"
	"runtime"
	"strconv"
	"sync"
	"syscall"
	"time"
)

// child is a server process started by the benchmark.
type child struct {
	cmd  *exec.Cmd
	log  string
	done chan struct{}
	err  error // of Wait, once done is closed
}

// startChild starts a server process with its output in logPath and waits
// until readyURL answers 200.
func startChild(cmd *exec.Cmd, logPath, readyURL string) (*child, error) {
	logf, err := os.Create(logPath)
	if err != nil {
		return nil, fmt.Errorf("server log: %w", err)
	}
	defer logf.Close() // the child holds its own descriptor
	cmd.Stdout, cmd.Stderr = logf, logf
	if err := cmd.Start(); err != nil {
		return nil, fmt.Errorf("start %s: %w", cmd.Path, err)
	}
	c := &child{cmd: cmd, log: logPath, done: make(chan struct{})}
	go func() { c.err = cmd.Wait(); close(c.done) }()
	hc := http.Client{Timeout: time.Second}
	deadline := time.Now().Add(30 * time.Second)
	for time.Now().Before(deadline) {
		select {
		case <-c.done:
			return nil, fmt.Errorf("%s exited before it was ready (%v); log %s:\n%s", cmd.Path, c.err, logPath, tail(logPath))
		default:
		}
		if resp, err := hc.Get(readyURL); err == nil {
			resp.Body.Close()
			if resp.StatusCode == http.StatusOK {
				return c, nil
			}
		}
		time.Sleep(20 * time.Millisecond)
	}
	c.kill()
	return nil, fmt.Errorf("%s not ready after 30s; log %s:\n%s", readyURL, logPath, tail(logPath))
}

func (c *child) pid() int { return c.cmd.Process.Pid }

func (c *child) kill() {
	c.cmd.Process.Kill()
	<-c.done
}

// stop sends SIGTERM and waits up to grace for a clean exit.
func (c *child) stop(grace time.Duration) error {
	if err := c.cmd.Process.Signal(syscall.SIGTERM); err != nil {
		return fmt.Errorf("stop pid %d: %w", c.pid(), err)
	}
	select {
	case <-c.done:
		if c.err != nil {
			return fmt.Errorf("pid %d after SIGTERM: %w; log %s:\n%s", c.pid(), c.err, c.log, tail(c.log))
		}
		return nil
	case <-time.After(grace):
		c.kill()
		return fmt.Errorf("pid %d still running %s after SIGTERM: killed", c.pid(), grace)
	}
}

// rssSampler reads a process's VmRSS every interval until stopped.
type rssSampler struct {
	pid  int
	stop chan struct{}
	wg   sync.WaitGroup
	max  int64
}

func sampleRSS(pid int, every time.Duration) *rssSampler {
	s := &rssSampler{pid: pid, stop: make(chan struct{})}
	s.wg.Add(1)
	go func() {
		defer s.wg.Done()
		t := time.NewTicker(every)
		defer t.Stop()
		for {
			if v, err := procStatus(pid, "VmRSS:"); err == nil && v > s.max {
				s.max = v
			}
			select {
			case <-s.stop:
				return
			case <-t.C:
			}
		}
	}()
	return s
}

// finish stops sampling and returns the largest VmRSS seen and the
// kernel's own high-water mark (VmHWM), in bytes.
func (s *rssSampler) finish() (max, hwm int64) {
	close(s.stop)
	s.wg.Wait()
	if v, err := procStatus(s.pid, "VmRSS:"); err == nil && v > s.max {
		s.max = v
	}
	hwm, _ = procStatus(s.pid, "VmHWM:")
	return s.max, hwm
}

// procStatus reads one kB field of /proc/<pid>/status, in bytes.
func procStatus(pid int, field string) (int64, error) {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/status", pid))
	if err != nil {
		return 0, fmt.Errorf("read /proc/%d/status: %w", pid, err)
	}
	sc := bufio.NewScanner(bytes.NewReader(b))
	for sc.Scan() {
		line := sc.Bytes()
		if !bytes.HasPrefix(line, []byte(field)) {
			continue
		}
		f := bytes.Fields(line[len(field):])
		if len(f) < 1 {
			break
		}
		kb, err := strconv.ParseInt(string(f[0]), 10, 64)
		if err != nil {
			return 0, fmt.Errorf("/proc/%d/status %s: %w", pid, field, err)
		}
		return kb << 10, nil
	}
	return 0, fmt.Errorf("/proc/%d/status has no %s", pid, field)
}

func numCPU() int { return runtime.GOMAXPROCS(0) }
