package store

import "sync"

// broadcast wakes every waiter at once: wait returns a channel that the
// next fire closes. The zero value is ready to use.
type broadcast struct {
	mu sync.Mutex
	ch chan struct{}
}

func (b *broadcast) wait() <-chan struct{} {
	b.mu.Lock()
	defer b.mu.Unlock()
	if b.ch == nil {
		b.ch = make(chan struct{})
	}
	return b.ch
}

func (b *broadcast) fire() {
	b.mu.Lock()
	defer b.mu.Unlock()
	if b.ch != nil {
		close(b.ch)
		b.ch = nil
	}
}

// StepsChanged returns a channel closed at the next change this DB
// commits to a step (started, output appended, finished) or to a
// deployment's end. A live log in the same process follows a deployment
// as each change lands rather than at its next poll; changes made by
// another process or node are seen only by polling.
func (db *DB) StepsChanged() <-chan struct{} {
	return db.stepsChanged.wait()
}
