package forge

import "cmp"

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

const gitLabSystemHook = "System Hook"

// gitLabType returns the event type a GitLab hook header names and the
// object_kind its body must then carry. A system hook's header is the same
// for every kind: its type is Other until the body says more.
func gitLabType(event string) (EventType, string) {
	switch event {
	case "Push Hook":
		return Push, "push"
	case "Tag Push Hook":
		return Push, "tag_push"
	case "Merge Request Hook":
		return PullRequest, "merge_request"
	}
	return Other, ""
}

// decodeGitLab sets ev.Type and decodes body. The header names the hook and
// object_kind must agree with it; a system hook is typed by its
// object_kind, and then decoded again strictly, now that its shape is known.
func decodeGitLab(ev *Event, body []byte) (payload, error) {
	var wantKind string
	ev.Type, wantKind = gitLabType(ev.EventType)
	p := new(glPayload)
	if err := decode(body, p, ev.Type == Other); err != nil {
		return nil, err
	}
	if ev.EventType != gitLabSystemHook {
		if wantKind != "" && p.ObjectKind != wantKind {
			return nil, bad("object_kind", p.ObjectKind, "does not match the event header (want "+wantKind+")")
		}
		return p, nil
	}
	switch p.ObjectKind {
	case "push", "tag_push":
		ev.Type = Push
	case "merge_request":
		ev.Type = PullRequest
	default:
		return p, nil
	}
	*p = glPayload{}
	return p, decode(body, p, false)
}

func (p *glPayload) about(EventType) (Repository, string, error) {
	var repo Repository
	if pr := p.Project; pr != nil {
		repo = Repository{FullName: pr.PathWithNamespace, CloneURLs: cloneURLs(pr.GitHTTPURL, pr.GitSSHURL), WebURL: pr.WebURL}
	}
	sender := p.UserUsername
	if p.User != nil {
		sender = cmp.Or(sender, p.User.Username)
	}
	return repo, sender, nil
}

func (p *glPayload) changes() ([]RefChange, error) {
	if p.Ref == "" {
		return nil, missing("ref")
	}
	c, err := refChange(p.Ref, p.Before, p.After, false)
	if err != nil {
		return nil, err
	}
	// checkout_sha is null on deletion; when present it must be a valid
	// object name like any other hash.
	if cs := p.CheckoutSHA; cs != nil && *cs != "" {
		if _, ok := normSHA(*cs); !ok {
			return nil, bad("checkout_sha", *cs, "is not 40 or 64 hex digits")
		}
	}
	return []RefChange{c}, nil
}

func (p *glPayload) pullRequest() (*PullRequestInfo, error) {
	oa := p.ObjectAttributes
	if oa == nil {
		return nil, missing("object_attributes")
	}
	head := ""
	if oa.LastCommit != nil {
		head = oa.LastCommit.ID
	}
	info, err := prInfo(oa.IID, oa.Action, oa.SourceBranch, oa.TargetBranch, head, oa.Title)
	if err != nil {
		return nil, err
	}
	info.SameRepository = oa.SourceProjectID > 0 && oa.SourceProjectID == oa.TargetProjectID
	return info, nil
}
