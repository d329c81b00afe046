package server

import (
	"context"
	"errors"
	"sync"
	"sync/atomic"
	"time"

	"github.com/fraiseql/fraisier/internal/store"
)

// errQueueFull is returned by submit when more deliveries wait to be
// recorded than the writer holds.
var errQueueFull = errors.New("intake queue full")

// intakeLinger bounds how long the writer waits for deliveries being
// received before it writes a batch: a commit has a fixed cost, and a
// writer that commits whatever has arrived writes small batches whose
// fixed costs take the CPU the handlers need. A delivery alone is never
// held: the writer waits only while others are being received, or while
// the server is busy (below).
const intakeLinger = 2 * time.Millisecond

// Gathering under load. Senders whose delivery was just answered send
// their next one while the writer commits, so the deliveries being
// received are not all those coming. While deliveries arrive faster than
// gatherRate a second (counted over rateWindow or more, an idle pause
// included), a batch that follows a commit of several waits up to
// intakeGather for gatherBatch deliveries; below that rate nothing waits,
// as waiting would only add latency.
const (
	intakeGather = time.Millisecond
	gatherBatch  = 16
	gatherRate   = 2000
	// rateWindow is how long the arrival rate is counted over.
	rateWindow = 100 * time.Millisecond
)

// intakeWriter is the single writer of deliveries. It commits everything
// waiting in one transaction (store.RecordIntake), so that under load each
// commit carries many deliveries instead of each paying for its own: with
// a transaction per delivery the intake falls well below what its
// handlers can take. It only groups deliveries; what a newer push does to
// a request waiting for the same target, in the same batch or not, is the
// store's queue rule (see package store and RecordIntake).
type intakeWriter struct {
	store    Store
	mu       sync.RWMutex
	closed   bool
	in       chan *pendingIntake
	maxBatch int
	// gather, gatherBatch and gatherRate are the group commit's (the
	// constants of those names, but in tests).
	gather      time.Duration
	gatherBatch int
	gatherRate  float64
	// coming counts the deliveries being received that will be submitted:
	// past the forge's detection, not yet handed to the writer.
	coming atomic.Int64
	wake   func()
	log    interface {
		Error(msg string, args ...any)
	}
}

type pendingIntake struct {
	item  store.Intake
	reply chan intakeReply
}

type intakeReply struct {
	res store.IntakeResult
	err error
}

var pendingPool = sync.Pool{New: func() any { return &pendingIntake{reply: make(chan intakeReply, 1)} }}

func (w *intakeWriter) submit(ctx context.Context, it store.Intake) (store.IntakeResult, error) {
	// Off the count before the send: after it, the writer could see a
	// delivery it already holds as one still on its way, and wait for it.
	w.coming.Add(-1)
	p := pendingPool.Get().(*pendingIntake)
	p.item = it
	// Read-locked so that close cannot close in while a handler that
	// outlived the shutdown's deadline sends on it.
	w.mu.RLock()
	if w.closed {
		w.mu.RUnlock()
		pendingPool.Put(p)
		return store.IntakeResult{}, errClosed
	}
	select {
	case w.in <- p:
		w.mu.RUnlock()
	default:
		w.mu.RUnlock()
		pendingPool.Put(p)
		return store.IntakeResult{}, errQueueFull
	}
	// The writer always replies, even if the client went away: the
	// delivery may be recorded, and the reply channel is reused.
	r := <-p.reply
	p.item = store.Intake{}
	pendingPool.Put(p)
	return r.res, r.err
}

// errClosed is returned by submit once the server is shutting down.
var errClosed = errors.New("the server is shutting down")

// close stops taking deliveries; run returns once the ones taken are
// written.
func (w *intakeWriter) close() {
	w.mu.Lock()
	defer w.mu.Unlock()
	if !w.closed {
		w.closed = true
		close(w.in)
	}
}

// run writes until in is closed and drained.
func (w *intakeWriter) run() {
	batch := make([]*pendingIntake, 0, w.maxBatch)
	items := make([]store.Intake, 0, w.maxBatch)
	linger := time.NewTimer(time.Hour)
	linger.Stop()
	var (
		// The arrival rate, deliveries a second, counted over windows of
		// at least rateWindow.
		rate        float64
		windowStart = time.Now()
		windowCount int
		lastBatch   int
	)
	for p := range w.in {
		batch, items = append(batch[:0], p), append(items[:0], p.item)
		// Counted as the batch begins, so that an idle pause since the
		// last one lowers the rate before it decides anything.
		if d := time.Since(windowStart); d >= rateWindow {
			rate = float64(windowCount) / d.Seconds()
			windowStart, windowCount = time.Now(), 0
		}
		busy := lastBatch > 1 && rate >= w.gatherRate
		waiting := false
	more:
		for len(batch) < w.maxBatch {
			select {
			case p, ok := <-w.in:
				if !ok {
					break more
				}
				batch, items = append(batch, p), append(items, p.item)
				continue
			default:
			}
			// Nothing more has arrived: wait, a little, for the
			// deliveries being received and, when busy, for a batch
			// worth a commit.
			receiving := w.coming.Load() > 0
			gathering := busy && len(batch) < w.gatherBatch
			if !receiving && !gathering {
				break
			}
			if !waiting {
				// One deadline per batch: the longer wait of those that
				// apply now.
				waiting = true
				var wait time.Duration
				if receiving {
					wait = intakeLinger
				}
				if gathering {
					wait = max(wait, w.gather)
				}
				linger.Reset(wait)
			}
			select {
			case p, ok := <-w.in:
				if !ok {
					break more
				}
				batch, items = append(batch, p), append(items, p.item)
			case <-linger.C:
				waiting = false
				break more
			}
		}
		if waiting {
			linger.Stop() // since Go 1.23, no stale tick is left behind
		}
		lastBatch = len(batch)
		windowCount += len(batch)
		w.write(batch, items)
	}
}

func (w *intakeWriter) write(batch []*pendingIntake, items []store.Intake) {
	// The records must be written even while the server shuts down: the
	// deliveries were received and their senders wait for the answer.
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	res, err := w.store.RecordIntake(ctx, items)
	// One bad item fails the whole transaction: write them one by one so
	// that only that one fails. Not when the database itself failed (busy
	// past its timeout, unreachable, out of time): each item would wait as
	// long again, and the writer would stall for the batch's size times
	// that, with every sender waiting behind it.
	if err != nil && len(batch) > 1 && !store.IsUnavailable(err) && ctx.Err() == nil {
		for _, p := range batch {
			w.write([]*pendingIntake{p}, []store.Intake{p.item})
		}
		return
	}
	queued := false
	for i, p := range batch {
		if err != nil {
			p.reply <- intakeReply{err: err}
			continue
		}
		if len(res[i].Queued) > 0 && !res[i].Duplicate {
			queued = true
		}
		p.reply <- intakeReply{res: res[i]}
	}
	if queued && w.wake != nil {
		w.wake()
	}
}
