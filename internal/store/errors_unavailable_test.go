package store

import (
	"context"
	"errors"
	"fmt"
	"net"
	"os"
	"syscall"
	"testing"
	"time"
)

// TestIsUnavailable: a database that cannot be reached is unavailable; a
// file error is not (a syscall.Errno is a net.Error too).
func TestIsUnavailable(t *testing.T) {
	_, notThere := os.Open("/nonexistent/fraisier.db")
	refused := func() error {
		l, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			t.Fatal(err)
		}
		addr := l.Addr().String()
		l.Close()
		_, err = net.DialTimeout("tcp", addr, time.Second)
		return err
	}()
	ctx, cancel := context.WithTimeout(context.Background(), time.Nanosecond)
	defer cancel()
	_, timedOut := (&net.Dialer{}).DialContext(ctx, "tcp", "127.0.0.1:9")
	for _, tc := range []struct {
		name string
		err  error
		want bool
	}{
		{"nil", nil, false},
		{"a file that is not there", notThere, false},
		{"permission denied", fmt.Errorf("open state: %w", &os.PathError{Op: "open", Path: "x", Err: syscall.EACCES}), false},
		{"read-only file system", fmt.Errorf("write: %w", syscall.EROFS), false},
		{"connection refused", refused, true},
		{"dial timeout", timedOut, true},
		{"connection reset", fmt.Errorf("query: %w", syscall.ECONNRESET), true},
		{"other", errors.New("syntax error"), false},
	} {
		if got := IsUnavailable(tc.err); got != tc.want {
			t.Errorf("%s: IsUnavailable(%v) = %v, want %v", tc.name, tc.err, got, tc.want)
		}
	}
}
