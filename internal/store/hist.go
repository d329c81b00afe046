package store

import (
	"fmt"
	"sort"
	"strconv"
)

// PercentileRelError bounds the relative error of the median and p95 that
// Stats and v_deployment_stats report: durations are counted in buckets no
// wider than 2% and a percentile is reported as its bucket's upper bound.
const PercentileRelError = 0.02

// durationBounds are the histogram buckets' upper bounds in ms, ascending.
// Below 64 ms every millisecond has its own bucket; from there each bound
// is the previous one times 1.02, rounded down, so a bucket (prev, bound]
// never spans more than 2% of its values. The last bucket (about 31 years)
// also takes anything longer.
var durationBounds = func() []int64 {
	var b []int64
	for v := int64(0); v < 64; v++ {
		b = append(b, v)
	}
	for v := int64(64); v < 1e12; {
		b = append(b, v)
		next := v * 102 / 100
		if next <= v {
			next = v + 1
		}
		v = next
	}
	return b
}()

// bucketIndex is the position in durationBounds of a duration's bucket.
func bucketIndex(ms int64) int {
	if ms <= 0 {
		return 0
	}
	i := sort.Search(len(durationBounds), func(i int) bool { return durationBounds[i] >= ms })
	return min(i, len(durationBounds)-1)
}

// durationBucket is the histogram bucket of a duration: its upper bound.
func durationBucket(ms int64) int64 { return durationBounds[bucketIndex(ms)] }

// hist is a duration histogram: hist[i] counts the durations in the bucket
// durationBounds[i]. Dense, because merging and walking a thousand slots is
// cheaper than a map of the few hundred in use.
type hist []int64

func newHist() hist { return make(hist, len(durationBounds)) }

// addEncoded adds sign times an encoded histogram to h.
func (h hist) addEncoded(buf []byte, sign int64) error {
	i, unknown := 0, int64(-1)
	err := decodeHist(buf, func(b, n int64) {
		// Buckets come in ascending order: the index only moves forward.
		for i < len(durationBounds) && durationBounds[i] < b {
			i++
		}
		if i == len(durationBounds) || durationBounds[i] != b {
			unknown = b
			return
		}
		h[i] += sign * n
	})
	if err == nil && unknown >= 0 {
		err = fmt.Errorf("duration histogram has an unknown bucket %d ms (rebuild the stats)", unknown)
	}
	return err
}

// encodeHist encodes a duration histogram (bucket upper bound in ms →
// count) the way tb_stats_cumulative stores it, as a JSON array of
// [bucket, count] pairs in ascending bucket order: [[63,1],[1040,2]]. A
// column rather than a row per bucket keeps a stats query to a few rows per
// target, and JSON keeps it readable in SQL: v_deployment_stats unpacks it
// with json_each.
func encodeHist(h hist) string {
	buf := make([]byte, 0, 512)
	buf = append(buf, '[')
	for i, n := range h {
		if n == 0 {
			continue
		}
		if len(buf) > 1 {
			buf = append(buf, ',')
		}
		buf = append(buf, '[')
		buf = strconv.AppendInt(buf, durationBounds[i], 10)
		buf = append(buf, ',')
		buf = strconv.AppendInt(buf, n, 10)
		buf = append(buf, ']')
	}
	return string(append(buf, ']'))
}

// decodeHist calls add for every (bucket, count) of an encoded histogram.
// It reads exactly what encodeHist writes, give or take whitespace (which
// PostgreSQL's JSON functions would add), without a general JSON decoder:
// a 30-day window decodes tens of thousands of pairs.
func decodeHist(buf []byte, add func(bucket, n int64)) error {
	d := histDecoder{buf: buf}
	if !d.expect('[') {
		return d.corrupt()
	}
	if d.expect(']') {
		return d.end()
	}
	for {
		if !d.expect('[') {
			return d.corrupt()
		}
		b, ok := d.num()
		if !ok || !d.expect(',') {
			return d.corrupt()
		}
		n, ok := d.num()
		if !ok || !d.expect(']') {
			return d.corrupt()
		}
		add(b, n)
		if d.expect(']') {
			return d.end()
		}
		if !d.expect(',') {
			return d.corrupt()
		}
	}
}

type histDecoder struct {
	buf []byte
	i   int
}

func (d *histDecoder) skipSpace() {
	for d.i < len(d.buf) {
		switch d.buf[d.i] {
		case ' ', '\n', '\t', '\r':
			d.i++
		default:
			return
		}
	}
}

func (d *histDecoder) expect(c byte) bool {
	d.skipSpace()
	if d.i < len(d.buf) && d.buf[d.i] == c {
		d.i++
		return true
	}
	return false
}

// num reads a non-negative integer of at most 18 digits, which cannot
// overflow.
func (d *histDecoder) num() (int64, bool) {
	d.skipSpace()
	start := d.i
	var v int64
	for d.i < len(d.buf) && d.buf[d.i] >= '0' && d.buf[d.i] <= '9' && d.i-start < 18 {
		v = v*10 + int64(d.buf[d.i]-'0')
		d.i++
	}
	if d.i < len(d.buf) && d.buf[d.i] >= '0' && d.buf[d.i] <= '9' {
		return 0, false
	}
	return v, d.i > start
}

func (d *histDecoder) end() error {
	d.skipSpace()
	if d.i != len(d.buf) {
		return d.corrupt()
	}
	return nil
}

func (d *histDecoder) corrupt() error {
	return fmt.Errorf("corrupt duration histogram %.80q", d.buf)
}
