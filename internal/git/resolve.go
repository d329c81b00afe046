package git

import (
	"context"
	"fmt"
	"slices"
	"strconv"
	"strings"
)

// RefKind says what a name given to Resolve turned out to be.
type RefKind string

const (
	RefBranch RefKind = "branch"
	RefTag    RefKind = "tag"
	RefCommit RefKind = "commit"
)

// minAbbrev is the shortest SHA prefix Resolve accepts: shorter ones
// collide too easily to name a release.
const minAbbrev = 7

// Resolve turns a name into the full SHA of the commit it leads to
// (annotated tags peeled), reading the mirror only: Fetch first to see the
// remote's latest state. What a name may be depends on its shape, so that
// no ref anyone can push decides what another name means:
//
//   - a full SHA is an object name and nothing else: it resolves only as
//     <sha>^{commit}, even when a branch or tag is named like it;
//   - a name starting with refs/ is exactly that ref (refs/heads/...,
//     refs/tags/..., or a pull request head FetchRef brought);
//   - any other name is a branch or a tag of that name, refused as
//     ambiguous when both exist and lead to different commits; a name of
//     at least 7 hex digits may also be a commit prefix, and when it names
//     both a ref and another commit it is refused as ambiguous too.
//
// An unknown name, a ref that does not lead to a commit and an ambiguous
// prefix give ErrRefNotFound.
func (r *Repo) Resolve(ctx context.Context, ref string) (string, RefKind, error) {
	if err := ValidateRef(ref); err != nil {
		return "", "", fmt.Errorf("resolve: %w", err)
	}
	unlock, err := lockDir(ctx, r.dir, false)
	if err != nil {
		return "", "", fmt.Errorf("resolve %s: %w", ref, err)
	}
	defer unlock()
	var sha string
	var kind RefKind
	switch {
	case IsSHA(ref):
		sha, kind, err = r.resolveSHA(ctx, ref)
	case strings.HasPrefix(ref, "refs/"):
		sha, kind, err = r.resolveFullRef(ctx, ref)
	default:
		sha, kind, err = r.resolveName(ctx, ref)
	}
	if err != nil {
		return "", "", fmt.Errorf("resolve %s: %w", ref, err)
	}
	r.rememberCommit(sha)
	return sha, kind, nil
}

// resolveSHA peels a full object name to its commit.
func (r *Repo) resolveSHA(ctx context.Context, sha string) (string, RefKind, error) {
	// Asked unpeeled as well: git reads a name of the other hash's length
	// (64 hex digits in a SHA-1 repository) as a ref name, and only an
	// object whose own id is sha may answer.
	answers, err := batchCheck(ctx, r.git(), []string{sha, sha + "^{commit}"})
	if err != nil {
		return "", "", err
	}
	if obj, a := answers[0], answers[1]; obj.sha == sha && a.typ == "commit" && IsSHA(a.sha) {
		return a.sha, RefCommit, nil
	}
	return "", "", fmt.Errorf("no such commit: %w", ErrRefNotFound)
}

// resolveFullRef resolves a ref spelled out in full, and only that ref.
func (r *Repo) resolveFullRef(ctx context.Context, ref string) (string, RefKind, error) {
	name, kind := ref, RefBranch
	switch {
	case strings.HasPrefix(ref, "refs/heads/"):
	case strings.HasPrefix(ref, "refs/tags/"):
		kind = RefTag
	case PullRequestRefOf(ref) == ref:
		// Only what FetchRef brought: a branch pushed under the name
		// refs/pull/7/head must not stand in for the pull request. Its
		// head moves like a branch's.
		name = mirrorName(ref)
	default:
		return "", "", fmt.Errorf("only refs/heads/..., refs/tags/... and pull request heads deploy: %w", ErrRefNotFound)
	}
	tips, err := refCommits(ctx, r.git(), []string{name})
	if err != nil {
		return "", "", err
	}
	if sha := tips[name]; sha != "" {
		return sha, kind, nil
	}
	return "", "", fmt.Errorf("no such %s, or it leads to no commit: %w", kind, ErrRefNotFound)
}

// resolveName resolves a short name: a branch, else a tag, else a commit
// prefix; a prefix that also names a ref leading elsewhere is ambiguous.
func (r *Repo) resolveName(ctx context.Context, ref string) (string, RefKind, error) {
	branch, tag := "refs/heads/"+ref, "refs/tags/"+ref
	tips, err := refCommits(ctx, r.git(), []string{branch, tag})
	if err != nil {
		return "", "", err
	}
	sha, kind := tips[branch], RefBranch
	switch {
	case sha == "":
		sha, kind = tips[tag], RefTag
	case tips[tag] != "" && tips[tag] != sha:
		// Whoever may push a branch must not make a tag of that name
		// (protected, maybe) mean their branch.
		return "", "", fmt.Errorf("names both branch %s (%s) and tag %s (%s): say refs/heads/%s or refs/tags/%s: %w",
			ref, short(sha), ref, short(tips[tag]), ref, ref, ErrRefNotFound)
	}
	prefix := strings.ToLower(ref)
	if len(prefix) < minAbbrev || len(prefix) > 64 || !isLowerHex(prefix) {
		if sha == "" {
			return "", "", fmt.Errorf("no such branch, tag or commit: %w", ErrRefNotFound)
		}
		return sha, kind, nil
	}
	commits, err := commitsWithPrefix(ctx, r.git(), prefix)
	if err != nil {
		return "", "", err
	}
	if len(commits) > 1 {
		return "", "", fmt.Errorf("prefix matches several objects: %w", ErrRefNotFound)
	}
	commit := ""
	if len(commits) == 1 {
		commit = commits[0]
	}
	switch {
	case sha != "" && commit != "" && commit != sha:
		return "", "", fmt.Errorf("names both %s %s (%s) and commit %s: say refs/heads/%s, refs/tags/%s or the full SHA: %w",
			kind, ref, short(sha), short(commit), ref, ref, ErrRefNotFound)
	case sha != "":
		return sha, kind, nil
	case commit != "":
		return commit, RefCommit, nil
	}
	return "", "", fmt.Errorf("no such branch, tag or commit: %w", ErrRefNotFound)
}

// commitsWithPrefix lists the commits whose SHA begins with prefix. git's
// usual lookup would take a ref of that name first; --disambiguate lists
// objects only.
func commitsWithPrefix(ctx context.Context, g runner, prefix string) ([]string, error) {
	out, err := g.run(ctx, call{args: []string{"rev-parse", "--disambiguate=" + prefix}})
	if err != nil {
		return nil, err
	}
	var objects []string
	for _, line := range strings.Split(out, "\n") {
		if IsSHA(line) && strings.HasPrefix(line, prefix) {
			objects = append(objects, line)
		}
	}
	if len(objects) == 0 {
		return nil, nil
	}
	answers, err := batchCheck(ctx, g, objects)
	if err != nil {
		return nil, err
	}
	var commits []string
	for _, a := range answers {
		if a.typ == "commit" {
			commits = append(commits, a.sha)
		}
	}
	return commits, nil
}

// RefCommit returns the commit the full ref name (refs/heads/main,
// refs/tags/v1, or a pull request head FetchRef brought) leads to in the
// mirror, and only that ref: no other ref of a similar name stands in for
// it. ErrRefNotFound when there is no such ref or it leads to no commit.
func (r *Repo) RefCommit(ctx context.Context, ref string) (string, error) {
	if err := ValidateRef(ref); err != nil {
		return "", fmt.Errorf("ref commit: %w", err)
	}
	if !strings.HasPrefix(ref, "refs/") {
		return "", fmt.Errorf("ref commit %q: not a full ref name: %w", clip(ref), ErrInvalid)
	}
	unlock, err := lockDir(ctx, r.dir, false)
	if err != nil {
		return "", fmt.Errorf("ref commit %s: %w", ref, err)
	}
	defer unlock()
	sha, _, err := r.resolveFullRef(ctx, ref)
	if err != nil {
		return "", fmt.Errorf("ref commit %s: %w", ref, err)
	}
	return sha, nil
}

// refCommits returns, for each of names (full ref names) that exists
// exactly as named, the commit it leads to. git's usual lookup would try
// other spellings of a missing name (refs/heads/refs/heads/main for
// refs/heads/main): for-each-ref matches names literally instead, and
// peels a tag one level itself; only a tag of a tag costs a second process.
func refCommits(ctx context.Context, g runner, names []string) (map[string]string, error) {
	args := []string{"for-each-ref", "--format=%(objectname) %(objecttype) %(*objectname) %(*objecttype) %(refname)", "--end-of-options"}
	out, err := g.run(ctx, call{args: append(args, names...)})
	if err != nil {
		return nil, err
	}
	tips := map[string]string{}
	var deeper []string // tags of tags, to peel further
	for _, line := range strings.Split(out, "\n") {
		// A tag has five fields; anything else has blanks for the
		// dereferenced two.
		f := strings.Fields(line)
		name := ""
		switch {
		case len(f) == 3 && IsSHA(f[0]) && f[1] == "commit":
			name = f[2]
			if slices.Contains(names, name) {
				tips[name] = f[0]
			}
		case len(f) == 5 && IsSHA(f[0]) && f[1] == "tag" && IsSHA(f[2]):
			name = f[4]
			if !slices.Contains(names, name) {
				continue
			}
			if f[3] == "commit" {
				tips[name] = f[2]
			} else {
				deeper = append(deeper, name, f[2])
			}
		}
	}
	if len(deeper) == 0 {
		return tips, nil
	}
	var peel []string
	for i := 1; i < len(deeper); i += 2 {
		peel = append(peel, deeper[i]+"^{commit}")
	}
	answers, err := batchCheck(ctx, g, peel)
	if err != nil {
		return nil, err
	}
	for i, a := range answers {
		if a.typ == "commit" && IsSHA(a.sha) {
			tips[deeper[2*i]] = a.sha
		}
	}
	return tips, nil
}

// HasCommit reports whether the mirror holds commit sha (a full SHA).
func (r *Repo) HasCommit(ctx context.Context, sha string) (bool, error) {
	if err := validateSHA(sha); err != nil {
		return false, fmt.Errorf("has commit: %w", err)
	}
	unlock, err := lockDir(ctx, r.dir, false)
	if err != nil {
		return false, fmt.Errorf("has commit %s: %w", sha, err)
	}
	defer unlock()
	ok, err := hasCommit(ctx, r.git(), sha)
	if err != nil {
		return false, fmt.Errorf("has commit %s: %w", sha, err)
	}
	if ok {
		r.rememberCommit(sha)
	}
	return ok, nil
}

func hasCommit(ctx context.Context, g runner, sha string) (bool, error) {
	answers, err := batchCheck(ctx, g, []string{sha})
	if err != nil {
		return false, err
	}
	return answers[0].sha == sha && answers[0].typ == "commit", nil
}

type objectInfo struct {
	sha, typ  string // empty when missing
	ambiguous bool
}

// batchCheck asks git cat-file about several object names in one process.
// Names must not contain whitespace (validated refs and hex never do).
func batchCheck(ctx context.Context, g runner, names []string) ([]objectInfo, error) {
	stdin := strings.Join(names, "\n") + "\n"
	out, err := g.run(ctx, call{args: []string{"cat-file", "--batch-check"}, stdin: strings.NewReader(stdin)})
	if err != nil {
		return nil, err
	}
	// One line per name, in order. stdout and stderr arrive mixed, so
	// anything that is not an answer (a warning, a trace) is skipped.
	answers := make([]objectInfo, 0, len(names))
	for _, line := range strings.Split(out, "\n") {
		if len(answers) == len(names) {
			break
		}
		f := strings.Fields(line)
		switch {
		case len(f) == 3 && IsSHA(f[0]) && isNumber(f[2]):
			answers = append(answers, objectInfo{sha: f[0], typ: f[1]})
		case len(f) == 2 && f[0] == names[len(answers)] && f[1] == "missing":
			answers = append(answers, objectInfo{})
		case len(f) == 2 && f[0] == names[len(answers)] && f[1] == "ambiguous":
			answers = append(answers, objectInfo{ambiguous: true})
		}
	}
	if len(answers) != len(names) {
		return nil, fmt.Errorf("cat-file: unexpected output %q", clip(out))
	}
	return answers, nil
}

func isNumber(s string) bool {
	_, err := strconv.ParseUint(s, 10, 64)
	return err == nil
}

func short(sha string) string {
	if len(sha) > 12 {
		return sha[:12]
	}
	return sha
}
