package git

import (
	"context"
	"errors"
	"testing"
)

// TestFetchPullRequestHead: a commit reachable only through a pull request
// ref (a fork's, as forges keep it in the target repository) is brought by
// FetchRef and resolves by SHA and by that ref; Fetch alone does not.
func TestFetchPullRequestHead(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	o := newOrigin(t)
	base := o.commit("base", map[string]file{"a": {content: "1"}})
	o.push("main")
	o.git(o.work, "checkout", "--quiet", "-b", "fork-work")
	head := o.commit("from a fork", map[string]file{"a": {content: "fork"}})
	o.git(o.work, "push", "--quiet", "origin", "HEAD:refs/pull/7/head")
	o.git(o.work, "checkout", "--quiet", "main")

	r := o.mirror(ctx)
	if got := mustResolve(t, r, "main"); got != base {
		t.Fatalf("main = %s, want %s", got, base)
	}
	if _, _, err := r.Resolve(ctx, head); !errors.Is(err, ErrRefNotFound) {
		t.Fatalf("before FetchRef, Resolve(fork commit) = %v, want ErrRefNotFound", err)
	}
	if err := r.FetchRef(ctx, "refs/pull/7/head"); err != nil {
		t.Fatal(err)
	}
	for _, ref := range []string{head, "refs/pull/7/head"} {
		if got := mustResolve(t, r, ref); got != head {
			t.Errorf("Resolve(%s) = %s, want %s", ref, got, head)
		}
	}
	// A branch named like the pull request ref does not stand in for it.
	o.git(o.work, "push", "--quiet", "origin", base+":refs/heads/refs/pull/7/head")
	if err := r.Fetch(ctx); err != nil {
		t.Fatal(err)
	}
	if got := mustResolve(t, r, "refs/pull/7/head"); got != head {
		t.Errorf("Resolve(refs/pull/7/head) with a branch of that name = %s, want the pull request's %s", got, head)
	}
	// A later Fetch (which prunes branches and tags) keeps it.
	if err := r.Fetch(ctx); err != nil {
		t.Fatal(err)
	}
	if got := mustResolve(t, r, head); got != head {
		t.Errorf("after Fetch, Resolve(fork commit) = %s", got)
	}
	if err := r.FetchRef(ctx, "refs/pull/8/head"); err == nil {
		t.Error("FetchRef of a pull request the remote does not have: no error")
	}
	for _, bad := range []string{"refs/heads/main", "refs/pull/0/head", "refs/pull/7/merge", "refs/pull/7/head:refs/heads/main",
		"+refs/pull/7/head", "refs/pull/7/head/../x", "--upload-pack=x", ""} {
		if err := r.FetchRef(ctx, bad); !errors.Is(err, ErrInvalid) {
			t.Errorf("FetchRef(%q) = %v, want ErrInvalid", bad, err)
		}
	}
}

func TestPullRequestRefOf(t *testing.T) {
	for in, want := range map[string]string{
		"refs/pull/7/head":                         "refs/pull/7/head",
		"refs/pull/7/head@0123456789ab":            "refs/pull/7/head",
		"refs/merge-requests/12/head":              "refs/merge-requests/12/head",
		"refs/pull-requests/3/from@abc":            "refs/pull-requests/3/from",
		"refs/heads/main@0123456789ab":             "",
		"refs/pull/07/head":                        "",
		"refs/pull/7/merge":                        "",
		"refs/pull/12345678901/head":               "",
		"refs/pull/7/head\n":                       "",
		"0123456789abcdef0123456789abcdef01234567": "",
	} {
		if got := PullRequestRefOf(in); got != want {
			t.Errorf("PullRequestRefOf(%q) = %q, want %q", in, got, want)
		}
	}
}
