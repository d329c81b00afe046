package testenv

import (
	"bytes"
	"crypto/rand"
	"encoding/hex"
	"os"
	"sync"
	"testing"
)

// SyncBuffer is a bytes.Buffer a test may read while a child process or
// another goroutine is still writing to it.
type SyncBuffer struct {
	mu  sync.Mutex
	buf bytes.Buffer
}

func (b *SyncBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.Write(p)
}

func (b *SyncBuffer) String() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.String()
}

// GitEnv is the environment a test's git runs in: the machine's global and
// system configuration ignored, and an identity to commit with.
func GitEnv() []string {
	return append(os.Environ(), "GIT_CONFIG_NOSYSTEM=1", "GIT_CONFIG_GLOBAL="+os.DevNull,
		"GIT_AUTHOR_NAME=test", "GIT_AUTHOR_EMAIL=test@example.com",
		"GIT_COMMITTER_NAME=test", "GIT_COMMITTER_EMAIL=test@example.com")
}

// Git runs git in dir with GitEnv and returns its trimmed output; a failure
// ends the test.
func Git(t testing.TB, dir string, args ...string) string {
	t.Helper()
	return gitIn(t, dir, nil, false, args...)
}

// RandomHex is n random bytes in hex: names and secrets no other test run
// shares.
func RandomHex(n int) string {
	b := make([]byte, n)
	if _, err := rand.Read(b); err != nil {
		panic(err)
	}
	return hex.EncodeToString(b)
}
