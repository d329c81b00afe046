package main

import (
	"bufio"
	"context"
	"fmt"
	"net/http"
	"os"
	"strconv"
	"strings"
	"text/tabwriter"
	"time"
)

// burstsResult is one fraisier process's memory over the bursts.
type burstsResult struct {
	name   string
	rates  []float64 // req/s of each burst
	p99s   []time.Duration
	hwm    int64 // VmHWM once the bursts are over
	goHeap int64 // the Go runtime's heap in use and all it holds from the OS, then
	goSys  int64
	idle   int64 // VmRSS after the idle time
}

// memory runs o.bursts bursts of load on one fraisier process per binary,
// on the grown database, and reports its VmHWM over them (the kernel's
// high-water mark of its resident memory) and its VmRSS once idle
// afterwards, next to the targets. The Go runtime's own figures, from
// /metrics, tell its memory from what SQLite and the rest hold.
func memory(ctx context.Context, o options, bins []string, w *work, b *bodies) error {
	fmt.Printf("\nmemory: %d bursts of %s (%.0f%% redelivered), %s apart, on one fraisier process, then %s idle\n",
		o.bursts, o.burst, 100*o.redeliver, o.pause, o.idle)
	var res []burstsResult
	for _, bin := range bins {
		r, err := bursts(ctx, o, bin, w, b)
		if err != nil {
			return err
		}
		res = append(res, r)
	}
	tw := tabwriter.NewWriter(os.Stdout, 0, 0, 2, ' ', tabwriter.AlignRight)
	fmt.Fprintf(tw, "server\treq/s of each burst\tp99 of each\tVmHWM\t< %d MB\tGo heap / Go total\tVmRSS idle\t< %d MB\t\n", o.t.hwm>>20, o.t.idleRSS>>20)
	for _, r := range res {
		var rates, p99s []string
		for i := range r.rates {
			rates, p99s = append(rates, fmt.Sprintf("%.0f", r.rates[i])), append(p99s, fmtMS(r.p99s[i]))
		}
		fmt.Fprintf(tw, "%s\t%s\t%s\t%.1f MB\t%s\t%.1f / %.1f MB\t%.1f MB\t%s\t\n", r.name, strings.Join(rates, " "), strings.Join(p99s, " "),
			mb(r.hwm), verdict(r.hwm < o.t.hwm), mb(r.goHeap), mb(r.goSys), mb(r.idle), verdict(r.idle < o.t.idleRSS))
	}
	return tw.Flush()
}

func bursts(ctx context.Context, o options, bin string, w *work, b *bodies) (burstsResult, error) {
	r := burstsResult{name: serverName(measuredServer{bin: bin}, o)}
	dir, err := os.MkdirTemp(w.root, "bursts-")
	if err != nil {
		return r, fmt.Errorf("bursts directory: %w", err)
	}
	f, err := startFraisier(ctx, bin, w, dir, b)
	if err != nil {
		return r, err
	}
	for i := range o.bursts {
		if i > 0 {
			time.Sleep(o.pause)
		}
		l := drive(f.addr, f.pid(), b, o.conns, 0, o.burst, o.redeliver)
		r.rates, r.p99s = append(r.rates, l.rate()), append(r.p99s, l.pct(99))
	}
	if r.hwm, err = procStatus(f.pid(), "VmHWM:"); err != nil {
		f.stop(60 * time.Second)
		return r, err
	}
	r.goHeap, r.goSys = goMemory(f.addr)
	time.Sleep(o.idle)
	if r.idle, err = procStatus(f.pid(), "VmRSS:"); err != nil {
		f.stop(60 * time.Second)
		return r, err
	}
	if err := f.stop(60 * time.Second); err != nil {
		return r, err
	}
	if !o.keep {
		_ = os.RemoveAll(dir)
	}
	return r, nil
}

// goMemory reads the Go runtime's heap in use and the memory it holds from
// the OS from fraisier's /metrics, 0 where it cannot.
func goMemory(addr string) (heap, sys int64) {
	hc := http.Client{Timeout: 5 * time.Second}
	resp, err := hc.Get("http://" + addr + "/metrics")
	if err != nil {
		return 0, 0
	}
	defer resp.Body.Close()
	sc := bufio.NewScanner(resp.Body)
	for sc.Scan() {
		name, value, ok := strings.Cut(sc.Text(), " ")
		if !ok {
			continue
		}
		v, err := strconv.ParseFloat(value, 64)
		if err != nil {
			continue
		}
		switch name {
		case "go_memstats_heap_inuse_bytes":
			heap = int64(v)
		case "go_memstats_sys_bytes":
			sys = int64(v)
		}
	}
	return heap, sys
}
