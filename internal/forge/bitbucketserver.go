package forge

import (
	"cmp"
	"fmt"
	"strings"
)

// Bitbucket Data Center (formerly Server).

type bsPayload struct {
	action string // from the event key
	Actor  *struct {
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

// about names the repository PROJECT/slug. A pull request payload names
// it only inside its refs: the target's is the one the webhook belongs to.
func (p *bsPayload) about(t EventType) (Repository, string, error) {
	var repo Repository
	r := p.Repository
	if r == nil && p.PullRequest != nil {
		r = p.PullRequest.ToRef.Repository
	}
	if r != nil {
		switch {
		case strings.Contains(r.Project.Key, "/") || strings.Contains(r.Slug, "/"):
			if t != Other {
				return Repository{}, "", bad("repository", r.Project.Key+"/"+r.Slug, "has a project key or slug containing /")
			}
		case r.Project.Key != "" && r.Slug != "":
			repo.FullName = r.Project.Key + "/" + r.Slug
		case t != Other && t != Ping:
			return Repository{}, "", missing("repository project key and slug")
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
		repo.CloneURLs = cloneURLs(httpURL, sshURL)
		if len(r.Links.Self) > 0 {
			repo.WebURL = r.Links.Self[0].Href
		}
	}
	var sender string
	if a := p.Actor; a != nil {
		sender = cmp.Or(a.Name, a.Slug)
	}
	return repo, sender, nil
}

// changes returns one RefChange per ref the push moved, each named by its
// full ref id.
func (p *bsPayload) changes() ([]RefChange, error) {
	out := make([]RefChange, 0, len(p.Changes))
	for i, ch := range p.Changes {
		ref := cmp.Or(ch.Ref.ID, ch.RefID)
		if ref == "" {
			return nil, fmt.Errorf("change %d: %w", i, missing("ref id"))
		}
		switch ch.Type {
		case "ADD", "UPDATE", "DELETE":
		default:
			return nil, fmt.Errorf("change %d: %w", i, bad("type", ch.Type, "is not ADD, UPDATE or DELETE"))
		}
		c, err := refChange(ref, ch.FromHash, ch.ToHash, ch.Type == "DELETE")
		if err != nil {
			return nil, fmt.Errorf("change %d: %w", i, err)
		}
		out = append(out, c)
	}
	return out, nil
}

func (p *bsPayload) pullRequest() (*PullRequestInfo, error) {
	pr := p.PullRequest
	if pr == nil {
		return nil, missing("pullRequest object")
	}
	from, to := pr.FromRef, pr.ToRef
	info, err := prInfo(pr.ID, p.action, branchOf(from.ID, from.DisplayID), branchOf(to.ID, to.DisplayID), from.LatestCommit, pr.Title)
	if err != nil {
		return nil, err
	}
	f, t := from.Repository, to.Repository
	info.SameRepository = f != nil && t != nil && f.Slug != "" && strings.EqualFold(f.Slug, t.Slug) && strings.EqualFold(f.Project.Key, t.Project.Key)
	return info, nil
}

// branchOf returns the branch name of a Data Center ref: its id without
// refs/heads/, or its display id when the id is not a branch ref.
func branchOf(id, display string) string {
	if name, ok := strings.CutPrefix(id, headsPrefix); ok {
		return name
	}
	return display
}
