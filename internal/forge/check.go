package forge

import (
	"cmp"
	"strings"
)

// Verdict is what a check result says of a commit.
type Verdict string

// Verdicts. CheckNone is a report that decides nothing: a check still
// running, or one that ended neither passed nor failed (neutral, skipped).
const (
	CheckPassed Verdict = "passed"
	CheckFailed Verdict = "failed"
	CheckNone   Verdict = "none"
)

// CheckInfo is a CI result a forge reports for one commit: a GitHub check
// suite, workflow run or commit status, a Gitea/Forgejo commit status or
// Actions run, a GitLab pipeline, a Bitbucket Cloud build status.
type CheckInfo struct {
	SHA string // the commit checked: 40 or 64 lower-case hex digits
	// Branch is the branch the forge says was checked, or "" when it did
	// not say or named no valid branch (a fork's, a tag).
	Branch string
	// Name identifies the check: the workflow's or pipeline's name, the
	// app of a check suite, a status's context or build key. Free text,
	// at most MaxTitleLen bytes, control characters replaced.
	Name string
	// Conclusion is the forge's own word for the result ("success",
	// "failure", "FAILED", ...): printable ASCII of at most 64 bytes, or "".
	Conclusion string
	Verdict    Verdict
}

// checker is a payload that carries a check result.
type checker interface {
	check() (*CheckInfo, error)
}

// isCheckEvent reports whether event, from forge k, reports a check result.
func isCheckEvent(k Kind, event string) bool {
	switch k {
	case GitHub:
		return event == "check_suite" || event == "workflow_run" || event == "status"
	case Gitea:
		return event == "status" || event == "workflow_run" || strings.HasPrefix(event, "action_run_")
	case GitLab:
		return event == "Pipeline Hook"
	case Bitbucket:
		return event == "repo:commit_status_created" || event == "repo:commit_status_updated"
	}
	return false
}

// decodeCheck decodes a check result strictly: unlike an event fraisier
// ignores, it may release a deployment.
func decodeCheck(ev *Event, body []byte) (payload, error) {
	ev.Type = Check
	var p payload
	switch ev.Forge {
	case GitHub, Gitea:
		p = &ghCheckPayload{event: ev.EventType}
	case GitLab:
		p = new(glPipelinePayload)
	default:
		p = new(bbStatusPayload)
	}
	if err := decode(body, p, false); err != nil {
		return nil, err
	}
	return p, nil
}

// newCheck validates what a forge said of a check.
func newCheck(sha, branch, name, conclusion string, v Verdict) (*CheckInfo, error) {
	if sha == "" {
		return nil, missing("commit SHA of the check")
	}
	c := &CheckInfo{Name: cleanTitle(name), Verdict: v}
	var ok bool
	if c.SHA, ok = normSHA(sha); !ok {
		return nil, bad("check commit SHA", sha, "is not 40 or 64 hex digits")
	}
	branch = strings.TrimPrefix(branch, headsPrefix)
	if branch != "" && validBranch(branch) {
		c.Branch = branch
	}
	if conclusion != "" {
		if !validAction(conclusion) {
			return nil, bad("check conclusion", conclusion, "is not printable ASCII of at most 64 bytes")
		}
		c.Conclusion = conclusion
	}
	return c, nil
}

// verdictOf maps a conclusion or state to a verdict, given the words that
// mean passed and failed; any other word decides nothing.
func verdictOf(word string, passed, failed []string) Verdict {
	for _, w := range passed {
		if strings.EqualFold(word, w) {
			return CheckPassed
		}
	}
	for _, w := range failed {
		if strings.EqualFold(word, w) {
			return CheckFailed
		}
	}
	return CheckNone
}

// GitHub's check suite and workflow run conclusions (Gitea's workflow runs
// use the same words). neutral and skipped decide nothing.
var (
	ghPassed = []string{"success"}
	ghFailed = []string{"failure", "cancelled", "timed_out", "action_required", "startup_failure", "stale"}
	// Commit statuses: GitHub's pending, success, failure, error; Gitea
	// adds warning, which decides nothing.
	statusFailed = []string{"failure", "error"}
)

// GitHub, Gitea and Forgejo.

type ghCheckPayload struct {
	ghPayload
	event string // the event header

	CheckSuite *struct {
		HeadSHA    string `json:"head_sha"`
		HeadBranch string `json:"head_branch"`
		Conclusion string `json:"conclusion"`
		App        *struct {
			Name string `json:"name"`
			Slug string `json:"slug"`
		} `json:"app"`
	} `json:"check_suite"`
	WorkflowRun *struct {
		Name       string `json:"name"`
		Path       string `json:"path"`
		HeadSHA    string `json:"head_sha"`
		HeadBranch string `json:"head_branch"`
		Conclusion string `json:"conclusion"`
	} `json:"workflow_run"`
	Workflow *struct {
		Name string `json:"name"`
	} `json:"workflow"`
	// A commit status (GitHub's and Gitea's status event).
	SHA     string `json:"sha"`
	State   string `json:"state"`
	Context string `json:"context"`
	// Run is Forgejo's Actions run (action_run_success, _failure, _recover).
	Run *struct {
		CommitSHA   string  `json:"commit_sha"`
		PrettyRef   string  `json:"prettyref"`
		Status      string  `json:"status"`
		WorkflowID  string  `json:"workflow_id"`
		Repo        *ghRepo `json:"repository"`
		TriggerUser *ghUser `json:"trigger_user"`
	} `json:"run"`
}

// about reads the repository where Forgejo's Actions events put it: in the
// run.
func (p *ghCheckPayload) about(t EventType) (Repository, string, error) {
	repo, sender, err := p.ghPayload.about(t)
	if r := p.Run; r != nil {
		if repo.FullName == "" && r.Repo != nil {
			repo = Repository{FullName: r.Repo.FullName, CloneURLs: cloneURLs(r.Repo.CloneURL, r.Repo.SSHURL), WebURL: r.Repo.HTMLURL}
		}
		sender = cmp.Or(sender, r.TriggerUser.name())
	}
	return repo, sender, err
}

func (p *ghCheckPayload) check() (*CheckInfo, error) {
	completed := p.Action == "completed"
	switch {
	case p.event == "check_suite":
		s := p.CheckSuite
		if s == nil {
			return nil, missing("check_suite object")
		}
		var name string
		if s.App != nil {
			name = cmp.Or(s.App.Name, s.App.Slug)
		}
		return newCheck(s.HeadSHA, s.HeadBranch, name, s.Conclusion, completedVerdict(completed, s.Conclusion))
	case p.event == "workflow_run":
		r := p.WorkflowRun
		if r == nil {
			return nil, missing("workflow_run object")
		}
		name := r.Name
		if p.Workflow != nil {
			// Gitea names the workflow only here.
			name = cmp.Or(name, p.Workflow.Name)
		}
		return newCheck(r.HeadSHA, r.HeadBranch, cmp.Or(name, r.Path), r.Conclusion, completedVerdict(completed, r.Conclusion))
	case p.event == "status":
		return newCheck(p.SHA, "", p.Context, p.State, verdictOf(p.State, ghPassed, statusFailed))
	}
	// Forgejo: the event says how the run ended; recover is a success
	// after a failure.
	r := p.Run
	if r == nil {
		return nil, missing("run object")
	}
	v := verdictOf(strings.TrimPrefix(p.event, "action_run_"), []string{"success", "recover"}, []string{"failure"})
	return newCheck(r.CommitSHA, r.PrettyRef, r.WorkflowID, cmp.Or(r.Status, p.Action), v)
}

// completedVerdict is the verdict of a check suite or workflow run: none
// until it has completed.
func completedVerdict(completed bool, conclusion string) Verdict {
	if !completed {
		return CheckNone
	}
	return verdictOf(conclusion, ghPassed, ghFailed)
}

// GitLab.

// glPipelinePayload is a Pipeline Hook; its object_attributes shadow the
// merge request's of the embedded payload.
type glPipelinePayload struct {
	glPayload
	ObjectAttributes *struct {
		Name   string `json:"name"`
		Ref    string `json:"ref"`
		Tag    bool   `json:"tag"`
		SHA    string `json:"sha"`
		Status string `json:"status"`
	} `json:"object_attributes"`
}

func (p *glPipelinePayload) check() (*CheckInfo, error) {
	if p.ObjectKind != "pipeline" {
		return nil, bad("object_kind", p.ObjectKind, "does not match the event header (want pipeline)")
	}
	oa := p.ObjectAttributes
	if oa == nil {
		return nil, missing("object_attributes")
	}
	branch := oa.Ref
	if oa.Tag {
		branch = ""
	}
	// success passes; failed and canceled fail; created, pending, running,
	// manual, scheduled, skipped... decide nothing.
	v := verdictOf(oa.Status, []string{"success"}, []string{"failed", "canceled"})
	return newCheck(oa.SHA, branch, cmp.Or(oa.Name, "pipeline"), oa.Status, v)
}

// Bitbucket Cloud.

type bbStatusPayload struct {
	bbPayload
	CommitStatus *struct {
		Key     string `json:"key"`
		Name    string `json:"name"`
		State   string `json:"state"`
		Refname string `json:"refname"`
		Commit  *struct {
			Hash string `json:"hash"`
		} `json:"commit"`
		Links struct {
			Commit struct {
				Href string `json:"href"`
			} `json:"commit"`
		} `json:"links"`
	} `json:"commit_status"`
}

func (p *bbStatusPayload) check() (*CheckInfo, error) {
	s := p.CommitStatus
	if s == nil {
		return nil, missing("commit_status object")
	}
	// The commit is commit.hash; payloads that lack it name it only as the
	// last element of links.commit.href.
	var sha string
	if s.Commit != nil {
		sha = s.Commit.Hash
	}
	if sha == "" {
		href := s.Links.Commit.Href
		sha = href[strings.LastIndexByte(href, '/')+1:]
	}
	v := verdictOf(s.State, []string{"SUCCESSFUL"}, []string{"FAILED", "STOPPED"})
	return newCheck(sha, s.Refname, cmp.Or(s.Key, s.Name), s.State, v)
}
