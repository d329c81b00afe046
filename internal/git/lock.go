package git

import (
	"context"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"syscall"
	"time"
)

// lockName is the lock file inside a git directory. git ignores files it
// does not know there.
const lockName = "fraisier.lock"

// lockDir takes an flock on gitDir/fraisier.lock: exclusive for
// operations that write the repository, shared for those that only read
// it. flock (not a lock file that must be removed) is released by the
// kernel when a process dies, so a crash never leaves a stale lock.
// Waiting polls, because a blocked flock cannot be cancelled by ctx.
//
// A reader that may not create the lock file (fraisier status run by
// another user) goes ahead unlocked: git's own updates are atomic renames,
// so the shared lock only orders readers behind a writer.
func lockDir(ctx context.Context, gitDir string, exclusive bool) (unlock func(), err error) {
	path := gitDir + "/" + lockName
	f, err := os.OpenFile(path, os.O_RDONLY|os.O_CREATE, 0o644)
	if err != nil {
		if !exclusive && (errors.Is(err, fs.ErrPermission) || errors.Is(err, syscall.EROFS)) {
			return func() {}, nil
		}
		return nil, fmt.Errorf("lock %s: %w", path, err)
	}
	how := syscall.LOCK_SH
	if exclusive {
		how = syscall.LOCK_EX
	}
	delay := 5 * time.Millisecond
	for {
		err := syscall.Flock(int(f.Fd()), how|syscall.LOCK_NB)
		if err == nil {
			return func() { f.Close() }, nil
		}
		if !errors.Is(err, syscall.EWOULDBLOCK) && !errors.Is(err, syscall.EINTR) {
			f.Close()
			return nil, fmt.Errorf("lock %s: %w", path, err)
		}
		t := time.NewTimer(delay)
		select {
		case <-ctx.Done():
			t.Stop()
			f.Close()
			return nil, fmt.Errorf("lock %s: %w", path, context.Cause(ctx))
		case <-t.C:
		}
		delay = min(2*delay, 200*time.Millisecond)
	}
}
