package forge

import (
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"strings"
)

// ErrMalformed means the delivery cannot be understood: answer 400. It is
// always wrapped with what was wrong.
var ErrMalformed = errors.New("malformed payload")

// Parse reads an authenticated delivery from forge k. Call Authenticate
// first: Parse trusts nothing, but it is not a defence against forgery.
//
// Pushes, pings and pull requests are decoded and validated strictly: a bad
// ref, SHA, name or URL is an error wrapping ErrMalformed. Any other event
// type parses to an Event of Type Other, with the repository and sender kept
// only if they are valid, so that a forge adding fields or events never
// makes fraisier answer 400 to something it ignores anyway. The body must
// still be well-formed JSON in valid UTF-8.
func Parse(k Kind, h http.Header, body []byte) (Event, error) {
	if !validKind(k) {
		return Event{}, fmt.Errorf("parse delivery: forge %q: %w", k, ErrUnknownForge)
	}
	raw := eventHeader(k, h)
	if raw == "" {
		return Event{}, fmt.Errorf("parse %s delivery: no event header: %w", k, ErrMalformed)
	}
	if !validEventHeader(raw) {
		return Event{}, fmt.Errorf("parse %s delivery: event header %.64q is not printable ASCII of at most 128 bytes: %w", k, raw, ErrMalformed)
	}
	ev := Event{Forge: k, DeliveryID: DeliveryID(k, h), EventType: raw}
	if k == GitHub || k == Gitea {
		if t := gitHubType(raw); t == Push || t == Ping {
			var p ghPayload
			if decodeGitHubPush(body, &p) {
				ev.Type = t
				if err := finishGitHub(&ev, &p); err != nil {
					return Event{}, fmt.Errorf("parse %s %s: %w", k, raw, err)
				}
				return ev, nil
			}
		}
	}
	if msg, ok := checkJSON(body); !ok {
		return Event{}, fmt.Errorf("parse %s %s: %s: %w", k, raw, msg, ErrMalformed)
	}
	var err error
	switch k {
	case GitHub, Gitea:
		err = parseGitHub(&ev, body)
	case GitLab:
		err = parseGitLab(&ev, body)
	case Bitbucket:
		err = parseBitbucket(&ev, body)
	case BitbucketServer:
		err = parseBitbucketServer(&ev, body)
	}
	if err != nil {
		return Event{}, fmt.Errorf("parse %s %s: %w", k, raw, err)
	}
	return ev, nil
}

// bad builds the error for an invalid field; the value is quoted and cut
// short so that a hostile payload cannot flood or forge log lines.
func bad(field, value, rule string) error {
	return fmt.Errorf("%s %.80q %s: %w", field, value, rule, ErrMalformed)
}

func missing(field string) error {
	return fmt.Errorf("no %s: %w", field, ErrMalformed)
}

// decode unmarshals body into v. For events of Type Other a field of an
// unexpected type is not an error: the field is left empty and dropped
// later if invalid.
func decode(body []byte, v any, lenient bool) error {
	err := json.Unmarshal(body, v)
	if err == nil {
		return nil
	}
	var te *json.UnmarshalTypeError
	if lenient && errors.As(err, &te) {
		return nil
	}
	return fmt.Errorf("%w: %w", ErrMalformed, err)
}

// finishOther keeps, for an Other event, only what is valid.
func finishOther(ev *Event) {
	r := &ev.Repository
	if !validText(r.FullName, MaxNameLen) {
		*r = Repository{}
	}
	urls := r.CloneURLs[:0]
	for _, u := range r.CloneURLs {
		if validURL(u) {
			urls = append(urls, u)
		}
	}
	if len(urls) == 0 {
		urls = nil
	}
	r.CloneURLs = urls
	if r.WebURL != "" && !validWebURL(r.WebURL) {
		r.WebURL = ""
	}
	if !validText(ev.Sender, MaxNameLen) {
		ev.Sender = ""
	}
}

// checkRepo validates the repository and sender of a push, ping or pull
// request. required says whether the repository must be named (org-level
// pings carry none).
func checkRepo(ev *Event, required bool) error {
	r := &ev.Repository
	if r.FullName == "" {
		if required {
			return missing("repository name")
		}
	} else if !validText(r.FullName, MaxNameLen) {
		return bad("repository name", r.FullName, "is not valid UTF-8 without control characters of at most 256 bytes")
	}
	for _, u := range r.CloneURLs {
		if !validURL(u) {
			return bad("clone URL", u, "is not an http(s), ssh, git or scp-like URL")
		}
	}
	if r.WebURL != "" && !validWebURL(r.WebURL) {
		return bad("web URL", r.WebURL, "is not an http(s) URL")
	}
	if !validText(ev.Sender, MaxNameLen) {
		return bad("sender", ev.Sender, "is not valid UTF-8 without control characters of at most 256 bytes")
	}
	return nil
}

// cloneURLs builds the CloneURLs slice from the non-empty values given,
// without allocating when there are none.
func cloneURLs(httpURL, sshURL string) []string {
	switch {
	case httpURL != "" && sshURL != "":
		return []string{httpURL, sshURL}
	case httpURL != "":
		return []string{httpURL}
	case sshURL != "":
		return []string{sshURL}
	}
	return nil
}

// refChange builds a validated RefChange from a full ref and the before and
// after hashes as the forge sent them ("" or all zeros for none).
func refChange(ref, before, after string, deleted bool) (RefChange, error) {
	name, isTag, ok := splitPushRef(ref)
	if !ok {
		return RefChange{}, bad("ref", ref, "is not a valid refs/heads/ or refs/tags/ ref")
	}
	c := RefChange{Ref: ref, Name: name, IsTag: isTag}
	if before != "" && !isZeroSHA(before) {
		if c.Before, ok = normSHA(before); !ok {
			return RefChange{}, bad("before SHA", before, "is not 40 or 64 hex digits")
		}
	}
	if deleted || isZeroSHA(after) {
		// A deletion carries no commit: After stays empty so that nothing
		// downstream can mistake the zero hash for something to deploy.
		if after != "" && !isZeroSHA(after) {
			if _, ok := normSHA(after); !ok {
				return RefChange{}, bad("after SHA", after, "is not 40 or 64 hex digits")
			}
		}
		c.Deleted = true
		return c, nil
	}
	if after == "" {
		return RefChange{}, missing("after SHA")
	}
	if c.After, ok = normSHA(after); !ok {
		return RefChange{}, bad("after SHA", after, "is not 40 or 64 hex digits")
	}
	return c, nil
}

// prInfo validates the parts common to every forge's pull request.
func prInfo(number int64, action, source, target, head, title string) (*PullRequestInfo, error) {
	if number <= 0 {
		return nil, fmt.Errorf("pull request number %d is not positive: %w", number, ErrMalformed)
	}
	if action != "" && !validAction(action) {
		return nil, bad("pull request action", action, "is not printable ASCII of at most 64 bytes")
	}
	if !validBranch(source) {
		return nil, bad("source branch", source, "is not a valid branch name")
	}
	if !validBranch(target) {
		return nil, bad("target branch", target, "is not a valid branch name")
	}
	pr := &PullRequestInfo{Number: number, Action: action, SourceBranch: source, TargetBranch: target, Title: cleanTitle(title)}
	if head != "" {
		var ok bool
		if pr.HeadSHA, ok = normSHA(head); !ok {
			return nil, bad("head SHA", head, "is not 40 or 64 hex digits")
		}
	}
	return pr, nil
}

// ---- GitHub and Gitea/Forgejo, which copied GitHub's payloads ----

type ghUser struct {
	Login    string `json:"login"`
	Username string `json:"username"` // Gitea
	Name     string `json:"name"`     // GitHub's pusher
}

func (u *ghUser) name() string {
	switch {
	case u == nil:
		return ""
	case u.Login != "":
		return u.Login
	case u.Username != "":
		return u.Username
	}
	return u.Name
}

type ghRepo struct {
	FullName string `json:"full_name"`
	CloneURL string `json:"clone_url"`
	SSHURL   string `json:"ssh_url"`
	HTMLURL  string `json:"html_url"`
}

type ghPayload struct {
	Ref         string  `json:"ref"`
	Before      string  `json:"before"`
	After       string  `json:"after"`
	Deleted     bool    `json:"deleted"`
	Action      string  `json:"action"`
	Number      int64   `json:"number"`
	Repository  *ghRepo `json:"repository"`
	Sender      *ghUser `json:"sender"`
	Pusher      *ghUser `json:"pusher"`
	PullRequest *struct {
		Number int64  `json:"number"`
		Title  string `json:"title"`
		Head   struct {
			Ref  string  `json:"ref"`
			SHA  string  `json:"sha"`
			Repo *ghRepo `json:"repo"`
		} `json:"head"`
		Base struct {
			Ref  string  `json:"ref"`
			Repo *ghRepo `json:"repo"`
		} `json:"base"`
	} `json:"pull_request"`
}

func gitHubType(event string) EventType {
	switch event {
	case "push":
		return Push
	case "ping":
		// GitHub's; Gitea and Forgejo have none (their test delivery is a push).
		return Ping
	case "pull_request":
		return PullRequest
	}
	return Other
}

func parseGitHub(ev *Event, body []byte) error {
	ev.Type = gitHubType(ev.EventType)
	var p ghPayload
	if err := decode(body, &p, ev.Type == Other); err != nil {
		return err
	}
	return finishGitHub(ev, &p)
}

// finishGitHub fills ev from a decoded GitHub or Gitea payload.
func finishGitHub(ev *Event, p *ghPayload) error {
	if r := p.Repository; r != nil {
		ev.Repository = Repository{FullName: r.FullName, CloneURLs: cloneURLs(r.CloneURL, r.SSHURL), WebURL: r.HTMLURL}
	}
	ev.Sender = p.Sender.name()
	if ev.Sender == "" {
		ev.Sender = p.Pusher.name()
	}
	switch ev.Type {
	case Other:
		finishOther(ev)
		return nil
	case Ping:
		return checkRepo(ev, false)
	case Push:
		if p.Ref == "" {
			return missing("ref")
		}
		c, err := refChange(p.Ref, p.Before, p.After, p.Deleted)
		if err != nil {
			return err
		}
		ev.Changes = []RefChange{c}
		return checkRepo(ev, true)
	}
	// Pull request.
	pr := p.PullRequest
	if pr == nil {
		return missing("pull_request object")
	}
	n := p.Number
	if n == 0 {
		n = pr.Number
	}
	info, err := prInfo(n, p.Action, pr.Head.Ref, pr.Base.Ref, pr.Head.SHA, pr.Title)
	if err != nil {
		return err
	}
	h, b := pr.Head.Repo, pr.Base.Repo
	info.SameRepository = h != nil && b != nil && h.FullName != "" && strings.EqualFold(h.FullName, b.FullName)
	ev.PullRequest = info
	return checkRepo(ev, true)
}

// ---- GitLab ----

type glPayload struct {
	ObjectKind   string  `json:"object_kind"`
	Ref          string  `json:"ref"`
	Before       string  `json:"before"`
	After        string  `json:"after"`
	CheckoutSHA  *string `json:"checkout_sha"`
	UserUsername string  `json:"user_username"`
	User         *struct {
		Username string `json:"username"`
	} `json:"user"`
	Project *struct {
		PathWithNamespace string `json:"path_with_namespace"`
		GitHTTPURL        string `json:"git_http_url"`
		GitSSHURL         string `json:"git_ssh_url"`
		WebURL            string `json:"web_url"`
	} `json:"project"`
	ObjectAttributes *struct {
		IID          int64  `json:"iid"`
		Action       string `json:"action"`
		SourceBranch string `json:"source_branch"`
		TargetBranch string `json:"target_branch"`
		Title        string `json:"title"`
		LastCommit   *struct {
			ID string `json:"id"`
		} `json:"last_commit"`
		SourceProjectID int64 `json:"source_project_id"`
		TargetProjectID int64 `json:"target_project_id"`
	} `json:"object_attributes"`
}

func parseGitLab(ev *Event, body []byte) error {
	// The header names the hook; object_kind must agree with it, except
	// for system hooks, whose header is the same for every kind.
	var wantKind string
	switch ev.EventType {
	case "Push Hook":
		ev.Type, wantKind = Push, "push"
	case "Tag Push Hook":
		ev.Type, wantKind = Push, "tag_push"
	case "Merge Request Hook":
		ev.Type, wantKind = PullRequest, "merge_request"
	case "System Hook":
		ev.Type = Other // decided by object_kind below
	default:
		ev.Type = Other
	}
	var p glPayload
	if err := decode(body, &p, ev.Type == Other); err != nil {
		return err
	}
	if ev.EventType == "System Hook" {
		switch p.ObjectKind {
		case "push", "tag_push":
			ev.Type = Push
		case "merge_request":
			ev.Type = PullRequest
		}
		if ev.Type != Other {
			// Decode again strictly, now that the shape is known.
			p = glPayload{}
			if err := decode(body, &p, false); err != nil {
				return err
			}
		}
	} else if wantKind != "" && p.ObjectKind != wantKind {
		return bad("object_kind", p.ObjectKind, "does not match the event header (want "+wantKind+")")
	}
	if pr := p.Project; pr != nil {
		ev.Repository = Repository{FullName: pr.PathWithNamespace, CloneURLs: cloneURLs(pr.GitHTTPURL, pr.GitSSHURL), WebURL: pr.WebURL}
	}
	ev.Sender = p.UserUsername
	if ev.Sender == "" && p.User != nil {
		ev.Sender = p.User.Username
	}
	switch ev.Type {
	case Other:
		finishOther(ev)
		return nil
	case Push:
		if p.Ref == "" {
			return missing("ref")
		}
		c, err := refChange(p.Ref, p.Before, p.After, false)
		if err != nil {
			return err
		}
		// checkout_sha is null on deletion; when present it must be a
		// valid object name like any other hash.
		if cs := p.CheckoutSHA; cs != nil && *cs != "" {
			if _, ok := normSHA(*cs); !ok {
				return bad("checkout_sha", *cs, "is not 40 or 64 hex digits")
			}
		}
		ev.Changes = []RefChange{c}
		return checkRepo(ev, true)
	}
	oa := p.ObjectAttributes
	if oa == nil {
		return missing("object_attributes")
	}
	head := ""
	if oa.LastCommit != nil {
		head = oa.LastCommit.ID
	}
	info, err := prInfo(oa.IID, oa.Action, oa.SourceBranch, oa.TargetBranch, head, oa.Title)
	if err != nil {
		return err
	}
	info.SameRepository = oa.SourceProjectID > 0 && oa.SourceProjectID == oa.TargetProjectID
	ev.PullRequest = info
	return checkRepo(ev, true)
}

// ---- Bitbucket Cloud ----

type bbRef struct {
	Type   string `json:"type"`
	Name   string `json:"name"`
	Target struct {
		Hash string `json:"hash"`
	} `json:"target"`
}

type bbPayload struct {
	Actor *struct {
		Nickname    string `json:"nickname"`
		DisplayName string `json:"display_name"`
	} `json:"actor"`
	Repository *struct {
		FullName string `json:"full_name"`
		Links    struct {
			HTML struct {
				Href string `json:"href"`
			} `json:"html"`
		} `json:"links"`
	} `json:"repository"`
	Push *struct {
		Changes []struct {
			New *bbRef `json:"new"`
			Old *bbRef `json:"old"`
		} `json:"changes"`
	} `json:"push"`
	PullRequest *struct {
		ID     int64  `json:"id"`
		Title  string `json:"title"`
		Source struct {
			Branch struct {
				Name string `json:"name"`
			} `json:"branch"`
			Commit *struct {
				Hash string `json:"hash"`
			} `json:"commit"`
		} `json:"source"`
		Destination struct {
			Branch struct {
				Name string `json:"name"`
			} `json:"branch"`
		} `json:"destination"`
	} `json:"pullrequest"`
}

func parseBitbucket(ev *Event, body []byte) error {
	action, isPR := strings.CutPrefix(ev.EventType, "pullrequest:")
	switch {
	case ev.EventType == "repo:push":
		ev.Type = Push
	case isPR:
		ev.Type = PullRequest
	default:
		ev.Type = Other // Bitbucket Cloud has no ping
	}
	var p bbPayload
	if err := decode(body, &p, ev.Type == Other); err != nil {
		return err
	}
	if r := p.Repository; r != nil {
		ev.Repository = Repository{FullName: r.FullName, WebURL: r.Links.HTML.Href}
		ev.Repository.CloneURLs = bitbucketCloneURLs(r.FullName, r.Links.HTML.Href)
	}
	if a := p.Actor; a != nil {
		ev.Sender = a.Nickname
		if ev.Sender == "" {
			ev.Sender = a.DisplayName
		}
	}
	switch ev.Type {
	case Other:
		finishOther(ev)
		return nil
	case Push:
		if p.Push == nil {
			return missing("push object")
		}
		ev.Changes = make([]RefChange, 0, len(p.Push.Changes))
		for i, ch := range p.Push.Changes {
			ref := ch.New
			if ref == nil {
				ref = ch.Old // a deletion: new is null
			}
			if ref == nil {
				return fmt.Errorf("push change %d has neither new nor old: %w", i, ErrMalformed)
			}
			var prefix string
			switch ref.Type {
			case "branch":
				prefix = headsPrefix
			case "tag", "annotated_tag":
				prefix = tagsPrefix
			default:
				return bad("ref type", ref.Type, "is neither branch nor tag")
			}
			var before, after string
			if ch.Old != nil {
				before = ch.Old.Target.Hash
			}
			if ch.New != nil {
				after = ch.New.Target.Hash
			}
			c, err := refChange(prefix+ref.Name, before, after, ch.New == nil)
			if err != nil {
				return fmt.Errorf("push change %d: %w", i, err)
			}
			ev.Changes = append(ev.Changes, c)
		}
		return checkRepo(ev, true)
	}
	pr := p.PullRequest
	if pr == nil {
		return missing("pullrequest object")
	}
	head := ""
	if pr.Source.Commit != nil {
		head = pr.Source.Commit.Hash
		// Pull request payloads carry abbreviated hashes: an abbreviation
		// is not a name the deploy engine may use, so it is dropped.
		if len(head) != 40 && len(head) != 64 && isHex(head) {
			head = ""
		}
	}
	info, err := prInfo(pr.ID, action, pr.Source.Branch.Name, pr.Destination.Branch.Name, head, pr.Title)
	if err != nil {
		return err
	}
	ev.PullRequest = info
	return checkRepo(ev, true)
}

// bitbucketCloneURLs derives the clone URLs Bitbucket Cloud does not send
// from the repository's web URL (https://bitbucket.org/owner/name): the
// same URL with .git, and git@host:owner/name.git. It derives nothing from
// a web URL of another shape.
func bitbucketCloneURLs(fullName, web string) []string {
	rest, ok := strings.CutPrefix(web, "https://")
	if !ok || fullName == "" {
		return nil
	}
	host, path, ok := strings.Cut(rest, "/")
	if !ok || host == "" || path != fullName {
		return nil
	}
	return []string{web + ".git", "git@" + host + ":" + fullName + ".git"}
}

// ---- Bitbucket Data Center / Server ----

type bsPayload struct {
	Actor *struct {
		Name string `json:"name"`
		Slug string `json:"slug"`
	} `json:"actor"`
	Repository *bsRepo `json:"repository"`
	Changes    []struct {
		Ref struct {
			ID string `json:"id"`
		} `json:"ref"`
		RefID    string `json:"refId"`
		FromHash string `json:"fromHash"`
		ToHash   string `json:"toHash"`
		Type     string `json:"type"`
	} `json:"changes"`
	PullRequest *struct {
		ID      int64  `json:"id"`
		Title   string `json:"title"`
		FromRef struct {
			ID           string  `json:"id"`
			DisplayID    string  `json:"displayId"`
			LatestCommit string  `json:"latestCommit"`
			Repository   *bsRepo `json:"repository"`
		} `json:"fromRef"`
		ToRef struct {
			ID         string  `json:"id"`
			DisplayID  string  `json:"displayId"`
			Repository *bsRepo `json:"repository"`
		} `json:"toRef"`
	} `json:"pullRequest"`
}

type bsRepo struct {
	Slug    string `json:"slug"`
	Project struct {
		Key string `json:"key"`
	} `json:"project"`
	Links struct {
		Clone []struct {
			Href string `json:"href"`
			Name string `json:"name"`
		} `json:"clone"`
		Self []struct {
			Href string `json:"href"`
		} `json:"self"`
	} `json:"links"`
}

func parseBitbucketServer(ev *Event, body []byte) error {
	action, isPR := strings.CutPrefix(ev.EventType, "pr:")
	switch {
	case ev.EventType == "repo:refs_changed":
		ev.Type = Push
	case ev.EventType == "diagnostics:ping":
		ev.Type = Ping
	case isPR:
		ev.Type = PullRequest
	default:
		ev.Type = Other
	}
	var p bsPayload
	if err := decode(body, &p, ev.Type == Other); err != nil {
		return err
	}
	r := p.Repository
	if r == nil && p.PullRequest != nil {
		// Pull request payloads name the repository only inside their refs;
		// the target's is the one the webhook belongs to.
		r = p.PullRequest.ToRef.Repository
	}
	if r != nil {
		if strings.Contains(r.Project.Key, "/") || strings.Contains(r.Slug, "/") {
			if ev.Type != Other {
				return bad("repository", r.Project.Key+"/"+r.Slug, "has a project key or slug containing /")
			}
		} else if r.Project.Key != "" && r.Slug != "" {
			ev.Repository.FullName = r.Project.Key + "/" + r.Slug
		} else if ev.Type != Other && ev.Type != Ping {
			return missing("repository project key and slug")
		}
		var httpURL, sshURL string
		for _, c := range r.Links.Clone {
			switch c.Name {
			case "http", "https":
				httpURL = c.Href
			case "ssh":
				sshURL = c.Href
			}
		}
		ev.Repository.CloneURLs = cloneURLs(httpURL, sshURL)
		if len(r.Links.Self) > 0 {
			ev.Repository.WebURL = r.Links.Self[0].Href
		}
	}
	if a := p.Actor; a != nil {
		ev.Sender = a.Name
		if ev.Sender == "" {
			ev.Sender = a.Slug
		}
	}
	switch ev.Type {
	case Other:
		finishOther(ev)
		return nil
	case Ping:
		// diagnostics:ping names no repository.
		return checkRepo(ev, false)
	case Push:
		ev.Changes = make([]RefChange, 0, len(p.Changes))
		for i, ch := range p.Changes {
			ref := ch.Ref.ID
			if ref == "" {
				ref = ch.RefID
			}
			if ref == "" {
				return fmt.Errorf("change %d: %w", i, missing("ref id"))
			}
			switch ch.Type {
			case "ADD", "UPDATE", "DELETE":
			default:
				return fmt.Errorf("change %d: %w", i, bad("type", ch.Type, "is not ADD, UPDATE or DELETE"))
			}
			c, err := refChange(ref, ch.FromHash, ch.ToHash, ch.Type == "DELETE")
			if err != nil {
				return fmt.Errorf("change %d: %w", i, err)
			}
			ev.Changes = append(ev.Changes, c)
		}
		return checkRepo(ev, true)
	}
	pr := p.PullRequest
	if pr == nil {
		return missing("pullRequest object")
	}
	info, err := prInfo(pr.ID, action, branchOf(pr.FromRef.ID, pr.FromRef.DisplayID), branchOf(pr.ToRef.ID, pr.ToRef.DisplayID), pr.FromRef.LatestCommit, pr.Title)
	if err != nil {
		return err
	}
	f, t := pr.FromRef.Repository, pr.ToRef.Repository
	info.SameRepository = f != nil && t != nil && f.Slug != "" && strings.EqualFold(f.Slug, t.Slug) && strings.EqualFold(f.Project.Key, t.Project.Key)
	ev.PullRequest = info
	return checkRepo(ev, true)
}

// branchOf returns the branch name of a Data Center ref: its id without
// refs/heads/, or its display id when the id is not a branch ref.
func branchOf(id, display string) string {
	if name, ok := strings.CutPrefix(id, headsPrefix); ok {
		return name
	}
	return display
}
