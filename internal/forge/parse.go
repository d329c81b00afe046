package forge

import (
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
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
	p, err := decodePayload(&ev, body)
	if err == nil {
		err = fill(&ev, p)
	}
	if err != nil {
		return Event{}, fmt.Errorf("parse %s %s: %w", k, raw, err)
	}
	return ev, nil
}

// A payload is one forge's decoded delivery, read in the terms every forge
// shares. fill calls changes only for a push and pullRequest only for a
// pull request.
type payload interface {
	// about returns the repository and the sender's name; t is the
	// event's type, for checks that only some types need.
	about(t EventType) (Repository, string, error)
	changes() ([]RefChange, error)
	pullRequest() (*PullRequestInfo, error)
}

// decodePayload sets ev.Type from the event header (and, for GitLab's
// system hooks, the body) and decodes the body into the forge's payload.
func decodePayload(ev *Event, body []byte) (payload, error) {
	if isCheckEvent(ev.Forge, ev.EventType) {
		return decodeCheck(ev, body)
	}
	switch ev.Forge {
	case GitHub, Gitea:
		ev.Type = gitHubType(ev.EventType)
		p := new(ghPayload)
		if (ev.Type == Push || ev.Type == Ping) && decodeGitHubPush(body, p) {
			return p, nil
		}
		*p = ghPayload{}
		return decodeAs(ev, body, p)
	case GitLab:
		return decodeGitLab(ev, body)
	case Bitbucket:
		p := new(bbPayload)
		ev.Type, p.action = bitbucketType(ev.EventType, bitbucketCloudKeys)
		return decodeAs(ev, body, p)
	}
	p := new(bsPayload)
	ev.Type, p.action = bitbucketType(ev.EventType, bitbucketServerKeys)
	return decodeAs(ev, body, p)
}

// decodeAs decodes body into p, leniently for an event of Type Other.
func decodeAs(ev *Event, body []byte, p payload) (payload, error) {
	return p, decode(body, p, ev.Type == Other)
}

// fill completes ev from its decoded payload: an Other event keeps what is
// valid, a ping needs no repository, and a push or pull request is
// validated in full.
func fill(ev *Event, p payload) error {
	repo, sender, err := p.about(ev.Type)
	if err != nil {
		return err
	}
	ev.Repository, ev.Sender = repo, sender
	switch ev.Type {
	case Other:
		finishOther(ev)
		return nil
	case Ping:
		return checkRepo(ev, false)
	case Push:
		ev.Changes, err = p.changes()
	case PullRequest:
		ev.PullRequest, err = p.pullRequest()
	case Check:
		ev.Check, err = p.(checker).check()
	}
	if err != nil {
		return err
	}
	return checkRepo(ev, true)
}

// bad builds the error for an invalid field; the value is quoted and cut
// short so that a hostile payload cannot flood or forge log lines.
func bad(field, value, rule string) error {
	return fmt.Errorf("%s %.80q %s: %w", field, value, rule, ErrMalformed)
}

func missing(field string) error {
	return fmt.Errorf("no %s: %w", field, ErrMalformed)
}

// decode unmarshals body into v, once checkJSON has accepted it. For
// events of Type Other a field of an unexpected type is not an error: the
// field is left empty and dropped later if invalid.
func decode(body []byte, v any, lenient bool) error {
	if msg, ok := checkJSON(body); !ok {
		return fmt.Errorf("%s: %w", msg, ErrMalformed)
	}
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
