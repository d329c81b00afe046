package store

import (
	"context"
	"errors"
	"io/fs"
	"math/rand/v2"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"

	"github.com/fraiseql/fraisier/internal/testenv"
	"github.com/google/go-cmp/cmp"
)

func TestDefaultPath(t *testing.T) {
	for _, tc := range []struct {
		name string
		euid int
		env  map[string]string
		want string
	}{
		{"root", 0, map[string]string{"HOME": "/root", "XDG_STATE_HOME": "/x"}, "/var/lib/fraisier/fraisier.db"},
		{"xdg", 1000, map[string]string{"HOME": "/home/a", "XDG_STATE_HOME": "/home/a/st"}, "/home/a/st/fraisier/fraisier.db"},
		{"relative xdg is ignored", 1000, map[string]string{"HOME": "/home/a", "XDG_STATE_HOME": "st"}, "/home/a/.local/state/fraisier/fraisier.db"},
		{"home", 1000, map[string]string{"HOME": "/home/a"}, "/home/a/.local/state/fraisier/fraisier.db"},
		{"nothing", 1000, nil, ""},
	} {
		lookup := func(k string) (string, bool) { v, ok := tc.env[k]; return v, ok }
		if got := DefaultPath(tc.euid, lookup); got != tc.want {
			t.Errorf("%s: DefaultPath = %q, want %q", tc.name, got, tc.want)
		}
	}
}

func TestOpenOptions(t *testing.T) {
	ctx := context.Background()
	if _, err := Open(ctx, Options{}); err == nil {
		t.Error("opened without a path or URL")
	}
	if _, err := Open(ctx, Options{Path: "a.db", URL: "postgres://x"}); err == nil {
		t.Error("opened with both a path and a URL")
	}
	missing := filepath.Join(t.TempDir(), "none.db")
	if _, err := Open(ctx, Options{Path: missing, ReadOnly: true}); !errors.Is(err, fs.ErrNotExist) {
		t.Errorf("read-only open of a missing file: %v, want ErrNotExist", err)
	}
	_, err := Open(ctx, Options{URL: "postgres://fraisier:s3cret@%zz/db"})
	if err == nil || strings.Contains(err.Error(), "s3cret") {
		t.Errorf("bad URL: %v (must fail without showing the password)", err)
	}
	// A path with URI metacharacters is a path, not parameters.
	odd := filepath.Join(t.TempDir(), "a?b#c%d", "state.db")
	db, err := Open(ctx, Options{Path: odd})
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	if got := db.Options().Path; got != odd {
		t.Errorf("Options().Path = %q", got)
	}
	fi, err := os.Stat(odd)
	if err != nil || fi.Mode().Perm() != 0o600 {
		t.Fatalf("database file: %v; want mode 0600", err)
	}
	if dir, err := os.Stat(filepath.Dir(odd)); err != nil || dir.Mode().Perm() != 0o700 {
		t.Errorf("database directory: %v; want mode 0700", err)
	}
}

func TestDurationBuckets(t *testing.T) {
	b := durationBounds
	for i := 1; i < len(b); i++ {
		if b[i] <= b[i-1] {
			t.Fatalf("bounds not ascending at %d: %d, %d", i, b[i-1], b[i])
		}
		// A bucket holds b[i-1]+1 .. b[i]; reporting b[i] errs by at most
		// b[i]/(b[i-1]+1) - 1.
		if rel := float64(b[i])/float64(b[i-1]+1) - 1; rel > PercentileRelError {
			t.Fatalf("bucket (%d, %d] is %.2f%% wide", b[i-1], b[i], rel*100)
		}
	}
	for _, ms := range []int64{-5, 0, 1, 63, 64, 65, 1000, 59_999, 3_600_000, 1e13} {
		got := durationBucket(ms)
		if ms > 0 && ms < b[len(b)-1] && (got < ms || float64(got) > float64(ms)*(1+PercentileRelError)) {
			t.Errorf("durationBucket(%d) = %d", ms, got)
		}
	}
	if durationBucket(63) != 63 || durationBucket(0) != 0 {
		t.Error("small durations are not exact")
	}
}

func TestHistEncoding(t *testing.T) {
	rng := rand.New(rand.NewPCG(1, 2))
	for range 50 {
		h := newHist()
		for range rng.IntN(30) {
			h[bucketIndex(rng.Int64N(1e7))] += 1 + rng.Int64N(1000)
		}
		enc := encodeHist(h)
		got := newHist()
		if err := got.addEncoded([]byte(enc), 1); err != nil {
			t.Fatalf("decode %q: %v", enc, err)
		}
		if diff := cmp.Diff(h, got); diff != "" {
			t.Fatalf("round trip of %q (-want +got):\n%s", enc, diff)
		}
		if err := got.addEncoded([]byte(enc), -1); err != nil || !cmp.Equal(got, newHist()) {
			t.Fatalf("subtracting %q from itself: %v", enc, err)
		}
	}
	h := newHist()
	h[bucketIndex(70)], h[bucketIndex(5)] = 2, 1
	if enc := encodeHist(h); enc != "[[5,1],[70,2]]" {
		t.Errorf("encoding %q", enc)
	}
	if enc := encodeHist(newHist()); enc != "[]" {
		t.Errorf("empty encoding %q", enc)
	}
	// As PostgreSQL's jsonb would print it.
	got := newHist()
	if err := got.addEncoded([]byte(" [[5, 1], [70, 2]] "), 1); err != nil || !cmp.Equal(got, h) {
		t.Errorf("spaced: %v", err)
	}
	for _, bad := range []string{"", "[", "[[1,2]", "[[1,2],]", "[[1]]", "[[a,1]]", "[[1,2]]x", "[[-1,2]]",
		"[[99999999999999999999,1]]", "[[101,1]]" /* not a bucket bound */} {
		if err := newHist().addEncoded([]byte(bad), 1); err == nil {
			t.Errorf("decoded corrupt %q", bad)
		}
	}
}

func TestRebindDollar(t *testing.T) {
	got := rebindDollar("SELECT a FROM t WHERE b = ? AND c = '?' AND d IN (?, ?)")
	want := "SELECT a FROM t WHERE b = $1 AND c = '?' AND d IN ($2, $3)"
	if got != want {
		t.Errorf("rebind:\n got %s\nwant %s", got, want)
	}
}

func TestKeepTail(t *testing.T) {
	in := []byte("aé€😀z") // 1, 2, 3, 4 and 1 bytes
	for limit := 0; limit <= len(in)+1; limit++ {
		got, cut := keepTail(append([]byte(nil), in...), limit)
		if cut != (len(in) > limit) || len(got) > limit || !strings.HasSuffix(string(in), string(got)) {
			t.Errorf("keepTail(%d) = %q, %v", limit, got, cut)
		}
		if cut && len(got) > 0 && got[0]&0xC0 == 0x80 {
			t.Errorf("keepTail(%d) = %q starts inside a character", limit, got)
		}
	}
}

// TestRootCreatesTheDirectoryOwnersDatabase: root's first command in
// another user's state directory leaves that user a database, -wal and
// -shm it can write.
func TestRootCreatesTheDirectoryOwnersDatabase(t *testing.T) {
	if os.Geteuid() != 0 {
		testenv.Unavailable(t, "creating a file for another user needs root")
	}
	const owner = 65534
	dir := filepath.Join(t.TempDir(), "state")
	if err := os.Mkdir(dir, 0o750); err != nil {
		t.Fatal(err)
	}
	if err := os.Chown(dir, owner, owner); err != nil {
		t.Fatal(err)
	}
	path := filepath.Join(dir, "fraisier.db")
	db, err := Open(context.Background(), Options{Path: path})
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	if err := db.Ping(context.Background()); err != nil {
		t.Fatal(err)
	}
	files, _ := filepath.Glob(path + "*")
	if len(files) < 2 {
		t.Fatalf("files %v, want the database and its WAL", files)
	}
	for _, f := range files {
		var st syscall.Stat_t
		if err := syscall.Stat(f, &st); err != nil {
			t.Fatal(err)
		}
		if st.Uid != owner || st.Gid != owner || st.Mode&0o777 != 0o600 {
			t.Errorf("%s: owner %d:%d mode %o, want %d:%d 600", f, st.Uid, st.Gid, st.Mode&0o777, owner, owner)
		}
	}
}
