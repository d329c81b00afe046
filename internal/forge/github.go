package forge

import (
	"cmp"
	"strings"
)

// GitHub's payloads, which Gitea and Forgejo copied.

type ghUser struct {
	Login    string `json:"login"`
	Username string `json:"username"` // Gitea
	Name     string `json:"name"`     // GitHub's pusher
}

func (u *ghUser) name() string {
	if u == nil {
		return ""
	}
	return cmp.Or(u.Login, u.Username, u.Name)
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

func (p *ghPayload) about(EventType) (Repository, string, error) {
	var repo Repository
	if r := p.Repository; r != nil {
		repo = Repository{FullName: r.FullName, CloneURLs: cloneURLs(r.CloneURL, r.SSHURL), WebURL: r.HTMLURL}
	}
	return repo, cmp.Or(p.Sender.name(), p.Pusher.name()), nil
}

func (p *ghPayload) changes() ([]RefChange, error) {
	if p.Ref == "" {
		return nil, missing("ref")
	}
	c, err := refChange(p.Ref, p.Before, p.After, p.Deleted)
	if err != nil {
		return nil, err
	}
	return []RefChange{c}, nil
}

func (p *ghPayload) pullRequest() (*PullRequestInfo, error) {
	pr := p.PullRequest
	if pr == nil {
		return nil, missing("pull_request object")
	}
	info, err := prInfo(cmp.Or(p.Number, pr.Number), p.Action, pr.Head.Ref, pr.Base.Ref, pr.Head.SHA, pr.Title)
	if err != nil {
		return nil, err
	}
	h, b := pr.Head.Repo, pr.Base.Repo
	info.SameRepository = h != nil && b != nil && h.FullName != "" && strings.EqualFold(h.FullName, b.FullName)
	return info, nil
}
