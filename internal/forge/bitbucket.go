package forge

import (
	"cmp"
	"fmt"
	"strings"
)

// What Bitbucket Cloud and Data Center share: both name the event in
// X-Event-Key, a pull request's action after a prefix.

// bitbucketKeys are the event keys of one Bitbucket product.
type bitbucketKeys struct {
	push, ping string // ping is "" for Cloud, which has none
	prPrefix   string
}

var (
	bitbucketCloudKeys  = bitbucketKeys{push: "repo:push", prPrefix: "pullrequest:"}
	bitbucketServerKeys = bitbucketKeys{push: "repo:refs_changed", ping: "diagnostics:ping", prPrefix: "pr:"}
)

// bitbucketType returns the event type an event key names and, for a pull
// request, its action (the key after the prefix).
func bitbucketType(event string, keys bitbucketKeys) (EventType, string) {
	if action, ok := strings.CutPrefix(event, keys.prPrefix); ok {
		return PullRequest, action
	}
	switch {
	case event == keys.push:
		return Push, ""
	case keys.ping != "" && event == keys.ping:
		return Ping, ""
	}
	return Other, ""
}

// Bitbucket Cloud.

type bbRef struct {
	Type   string `json:"type"`
	Name   string `json:"name"`
	Target struct {
		Hash string `json:"hash"`
	} `json:"target"`
}

type bbPayload struct {
	action string // from the event key
	Actor  *struct {
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

func (p *bbPayload) about(EventType) (Repository, string, error) {
	var repo Repository
	if r := p.Repository; r != nil {
		web := r.Links.HTML.Href
		repo = Repository{FullName: r.FullName, CloneURLs: bitbucketCloneURLs(r.FullName, web), WebURL: web}
	}
	var sender string
	if a := p.Actor; a != nil {
		sender = cmp.Or(a.Nickname, a.DisplayName)
	}
	return repo, sender, nil
}

// changes returns one RefChange per ref the push moved: a Cloud push
// names each by its type and short name, a deletion by its old ref alone.
func (p *bbPayload) changes() ([]RefChange, error) {
	if p.Push == nil {
		return nil, missing("push object")
	}
	out := make([]RefChange, 0, len(p.Push.Changes))
	for i, ch := range p.Push.Changes {
		ref := cmp.Or(ch.New, ch.Old) // a deletion: new is null
		if ref == nil {
			return nil, fmt.Errorf("push change %d has neither new nor old: %w", i, ErrMalformed)
		}
		var prefix string
		switch ref.Type {
		case "branch":
			prefix = headsPrefix
		case "tag", "annotated_tag":
			prefix = tagsPrefix
		default:
			return nil, bad("ref type", ref.Type, "is neither branch nor tag")
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
			return nil, fmt.Errorf("push change %d: %w", i, err)
		}
		out = append(out, c)
	}
	return out, nil
}

func (p *bbPayload) pullRequest() (*PullRequestInfo, error) {
	pr := p.PullRequest
	if pr == nil {
		return nil, missing("pullrequest object")
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
	return prInfo(pr.ID, p.action, pr.Source.Branch.Name, pr.Destination.Branch.Name, head, pr.Title)
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
