package git

import (
	"context"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"
)

// releaseTree is a tree with every kind of entry a release can hold, and
// content that checkout conversions would alter if they ran.
var releaseTree = map[string]file{
	"README.md":               {content: "hello\n"},
	"bin/start":               {content: "#!/bin/sh\nexec app\n", exec: true},
	"current-config":          {content: "config/prod.yaml", symlink: true},
	"config/prod.yaml":        {content: "a: 1\n"},
	"deep/er/and/deeper/x":    {content: "x"},
	"crlf.txt":                {content: "one\ntwo\n"},
	"keep.txt":                {content: "$Id$\n"},
	".gitattributes":          {content: "*.txt text eol=crlf ident\n"},
	"dangling":                {content: "../outside/nowhere", symlink: true},
	"empty":                   {content: ""},
	"name with spaces & ü.md": {content: "odd"},
}

func TestExport(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	o := newOrigin(t)
	sha := o.commit("release", releaseTree)
	o.push("main")
	r := o.mirror(ctx)

	parent := t.TempDir()
	dest := filepath.Join(parent, "release-1")
	if err := r.Export(ctx, sha, dest); err != nil {
		t.Fatal(err)
	}
	want := map[string]entry{
		"README.md":               {Kind: "file", Content: "hello\n"},
		"bin":                     {Kind: "dir"},
		"bin/start":               {Kind: "exec", Content: "#!/bin/sh\nexec app\n"},
		"current-config":          {Kind: "symlink", Content: "config/prod.yaml"},
		"config":                  {Kind: "dir"},
		"config/prod.yaml":        {Kind: "file", Content: "a: 1\n"},
		"deep":                    {Kind: "dir"},
		"deep/er":                 {Kind: "dir"},
		"deep/er/and":             {Kind: "dir"},
		"deep/er/and/deeper":      {Kind: "dir"},
		"deep/er/and/deeper/x":    {Kind: "file", Content: "x"},
		"crlf.txt":                {Kind: "file", Content: "one\ntwo\n"}, // not converted to CRLF
		"keep.txt":                {Kind: "file", Content: "$Id$\n"},     // not expanded
		".gitattributes":          {Kind: "file", Content: "*.txt text eol=crlf ident\n"},
		"dangling":                {Kind: "symlink", Content: "../outside/nowhere"},
		"empty":                   {Kind: "file", Content: ""},
		"name with spaces & ü.md": {Kind: "file", Content: "odd"},
	}
	if diff := cmp.Diff(want, snapshot(t, dest)); diff != "" {
		t.Errorf("exported tree (-want +got):\n%s", diff)
	}
	if fi, err := os.Stat(dest); err != nil || fi.Mode().Perm() != 0o755 {
		t.Errorf("dest mode = %v, %v; want 0755", fi.Mode(), err)
	}
	if got := leftovers(t, parent, "release-1"); len(got) > 0 {
		t.Errorf("left behind: %v", got)
	}

	// An existing dest is never touched.
	if err := os.WriteFile(filepath.Join(dest, "marker"), nil, 0o644); err != nil {
		t.Fatal(err)
	}
	if err := r.Export(ctx, sha, dest); !errors.Is(err, fs.ErrExist) {
		t.Errorf("Export onto an existing dir = %v, want fs.ErrExist", err)
	}
	if _, err := os.Stat(filepath.Join(dest, "marker")); err != nil {
		t.Errorf("existing dest was modified: %v", err)
	}
	emptyDest := filepath.Join(parent, "empty-dir")
	if err := os.Mkdir(emptyDest, 0o755); err != nil {
		t.Fatal(err)
	}
	if err := r.Export(ctx, sha, emptyDest); !errors.Is(err, fs.ErrExist) {
		t.Errorf("Export onto an existing empty dir = %v, want fs.ErrExist", err)
	}

	// Failures leave nothing behind.
	tests := []struct {
		name    string
		sha     string
		wantErr error
	}{
		{name: "unknown commit", sha: strings.Repeat("0", 40), wantErr: ErrRefNotFound},
		{name: "a tree, not a commit", sha: o.git(o.work, "rev-parse", "HEAD^{tree}"), wantErr: ErrRefNotFound},
		{name: "abbreviated", sha: sha[:12], wantErr: ErrInvalid},
		{name: "branch name", sha: "main", wantErr: ErrInvalid},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if err := r.Export(ctx, tt.sha, filepath.Join(parent, "bad")); !errors.Is(err, tt.wantErr) {
				t.Errorf("Export = %v, want %v", err, tt.wantErr)
			}
			if got := leftovers(t, parent, "release-1", "empty-dir"); len(got) > 0 {
				t.Errorf("left behind: %v", got)
			}
		})
	}
}

func TestExportIndependentOfMirror(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	o := newOrigin(t)
	sha := o.commit("release", map[string]file{"a": {content: "1"}})
	o.push("main")
	r := o.mirror(ctx)
	dest := filepath.Join(t.TempDir(), "rel")
	if err := r.Export(ctx, sha, dest); err != nil {
		t.Fatal(err)
	}
	if err := os.RemoveAll(r.Dir()); err != nil {
		t.Fatal(err)
	}
	if got := snapshot(t, dest); !cmp.Equal(got, map[string]entry{"a": {Kind: "file", Content: "1"}}) {
		t.Errorf("release after the mirror is gone: %v", got)
	}
}

func TestSubmodulesRefused(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	o := newOrigin(t)
	o.commit("before", map[string]file{"a": {content: "1"}})
	// A gitlink, as "git submodule add" would record it, without a
	// second repository: only the tree entry matters.
	o.git(o.work, "update-index", "--add", "--cacheinfo", "160000,"+strings.Repeat("1", 40)+",vendor/lib")
	o.tick++
	o.git(o.work, "commit", "--quiet", "-m", "add submodule")
	sha := o.git(o.work, "rev-parse", "HEAD")
	o.push("main")
	r := o.mirror(ctx)

	parent := t.TempDir()
	err := r.Export(ctx, sha, filepath.Join(parent, "rel"))
	if !errors.Is(err, ErrSubmodules) || !strings.Contains(err.Error(), "vendor/lib") {
		t.Errorf("Export = %v, want ErrSubmodules naming vendor/lib", err)
	}
	if got := leftovers(t, parent); len(got) > 0 {
		t.Errorf("left behind: %v", got)
	}
	app := filepath.Join(parent, "app")
	if err := CheckoutInPlace(ctx, t.TempDir(), app, o.bare, sha, Options{}); !errors.Is(err, ErrSubmodules) {
		t.Errorf("CheckoutInPlace = %v, want ErrSubmodules", err)
	}
	if got := leftovers(t, parent); len(got) > 0 {
		t.Errorf("left behind: %v", got)
	}
}

func BenchmarkExport(b *testing.B) {
	ctx := context.Background()
	o := newOrigin(b)
	files := map[string]file{}
	for k, v := range releaseTree {
		files[k] = v
	}
	// A small application: 100 files of a few KB in 10 directories.
	for i := range 100 {
		files[fmt.Sprintf("src/pkg%d/mod%d.py", i%10, i/10)] = file{content: strings.Repeat("print('fraisier')\n", 100+i)}
	}
	sha := o.commit("release", files)
	o.push("main")
	r := o.mirror(ctx)
	parent := b.TempDir()
	for i := 0; b.Loop(); i++ {
		dest := filepath.Join(parent, "rel-"+strconv.Itoa(i))
		if err := r.Export(ctx, sha, dest); err != nil {
			b.Fatal(err)
		}
	}
}
