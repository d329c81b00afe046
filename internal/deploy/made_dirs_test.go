package deploy

import (
	"context"
	"io"
	"os"
	"path/filepath"
	"testing"

	"github.com/fraiseql/fraisier/internal/store"
)

// TestDeployChecksTheDirectoriesItMakes: a first deployment checks the
// path to app_path before it starts and makes what is missing later,
// after the fetch. Under a world-writable sticky directory (/tmp, /srv
// made so), another user may make a missing directory first, in between:
// the deployment checks what it made, and what it found made, before it
// writes anything there, so that no release lands in an app_path another
// user made.
func TestDeployChecksTheDirectoriesItMakes(t *testing.T) {
	aboveApp := func(t *testing.T, f *treeFixture) { mkdirOwned(t, filepath.Dir(f.app), nobody, 0o755) }
	for _, tc := range []struct {
		name, extra string
		// plant is what the other user makes while the deployment fetches.
		plant func(t *testing.T, f *treeFixture)
		want  func(f *treeFixture) []string
	}{
		{"app_path", "", func(t *testing.T, f *treeFixture) {
			mkdirOwned(t, f.app, nobody, 0o755)
		}, func(f *treeFixture) []string { return []string{f.app, "owned by uid 65534"} }},
		{"a directory above app_path", "", aboveApp,
			func(f *treeFixture) []string { return []string{filepath.Dir(f.app), "owned by uid 65534"} }},
		{"a directory above an inplace checkout", "        layout: inplace\n", aboveApp,
			func(f *treeFixture) []string { return []string{filepath.Dir(f.app), "owned by uid 65534"} }},
	} {
		t.Run(tc.name, func(t *testing.T) {
			f := newTreeFixture(t)
			sticky := filepath.Join(f.root, "sticky")
			mkdirOwned(t, sticky, 0, 0o777|os.ModeSticky)
			f.app = filepath.Join(sticky, "srv", "hello")
			env := f.env("", tc.extra)
			// The other user's move, made while fraisier fetches: after
			// the checks every deployment starts with.
			collab := RealCollaborators(nil)
			open := collab.OpenSource
			collab.OpenSource = func(ctx context.Context, dir, remote string, out io.Writer) (Source, error) {
				tc.plant(t, f)
				return open(ctx, dir, remote, out)
			}
			res, err := f.engine().Deploy(context.Background(), collab, Request{Env: env, Trigger: store.TriggerCLI, Actor: "test"})
			if err != nil {
				t.Fatal(err)
			}
			f.refused(res, tc.want(f)...)
			filepath.Walk(filepath.Join(sticky, "srv"), func(p string, fi os.FileInfo, err error) error {
				if err == nil && fi.Mode().IsRegular() {
					t.Errorf("the refused deployment wrote %s", p)
				}
				if err == nil && fi.Name() == releasesDir {
					t.Errorf("the refused deployment made %s", p)
				}
				return nil
			})
		})
	}
}
