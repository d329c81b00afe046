package forge

import (
	"fmt"
	"strings"
)

// checkInvariants states what every Event Parse returns must satisfy,
// independently of how the parsers reach it; the fuzz targets hold Parse to
// it on arbitrary input.
func checkInvariants(ev Event) error {
	if !validKind(ev.Forge) {
		return fmt.Errorf("forge %q", ev.Forge)
	}
	if ev.DeliveryID != "" && !printableASCII(ev.DeliveryID, MaxDeliveryIDLen) {
		return fmt.Errorf("delivery id %q", ev.DeliveryID)
	}
	if !validEventHeader(ev.EventType) {
		return fmt.Errorf("event type %q", ev.EventType)
	}
	switch ev.Type {
	case Push, Ping, PullRequest, Check, Other:
	default:
		return fmt.Errorf("type %q", ev.Type)
	}
	r := ev.Repository
	if !validText(r.FullName, MaxNameLen) {
		return fmt.Errorf("repository %q", r.FullName)
	}
	if (ev.Type == Push || ev.Type == PullRequest || ev.Type == Check) && r.FullName == "" {
		return fmt.Errorf("%s without repository", ev.Type)
	}
	for _, u := range r.CloneURLs {
		if !validURL(u) || strings.HasPrefix(u, "-") {
			return fmt.Errorf("clone URL %q", u)
		}
	}
	if r.WebURL != "" && !validWebURL(r.WebURL) {
		return fmt.Errorf("web URL %q", r.WebURL)
	}
	if !validText(ev.Sender, MaxNameLen) {
		return fmt.Errorf("sender %q", ev.Sender)
	}
	if ev.Type != Push && len(ev.Changes) > 0 {
		return fmt.Errorf("%s with changes", ev.Type)
	}
	for _, c := range ev.Changes {
		if err := checkChange(c); err != nil {
			return err
		}
	}
	if (ev.Type == PullRequest) != (ev.PullRequest != nil) {
		return fmt.Errorf("type %s with pull request %v", ev.Type, ev.PullRequest)
	}
	if err := checkCheck(ev); err != nil {
		return err
	}
	if pr := ev.PullRequest; pr != nil {
		if pr.Number <= 0 {
			return fmt.Errorf("pull request number %d", pr.Number)
		}
		if pr.Action != "" && !validAction(pr.Action) {
			return fmt.Errorf("action %q", pr.Action)
		}
		if !validBranch(pr.SourceBranch) || !validBranch(pr.TargetBranch) {
			return fmt.Errorf("branches %q %q", pr.SourceBranch, pr.TargetBranch)
		}
		if pr.HeadSHA != "" && !fullLowerSHA(pr.HeadSHA) {
			return fmt.Errorf("head SHA %q", pr.HeadSHA)
		}
		if len(pr.Title) > MaxTitleLen || !validText(pr.Title, MaxTitleLen) {
			return fmt.Errorf("title %q", pr.Title)
		}
	}
	return nil
}

// checkCheck states what a check result must be.
func checkCheck(ev Event) error {
	if (ev.Type == Check) != (ev.Check != nil) {
		return fmt.Errorf("type %s with check %v", ev.Type, ev.Check)
	}
	c := ev.Check
	if c == nil {
		return nil
	}
	if !fullLowerSHA(c.SHA) {
		return fmt.Errorf("check SHA %q", c.SHA)
	}
	if c.Branch != "" && !validBranch(c.Branch) {
		return fmt.Errorf("check branch %q", c.Branch)
	}
	if !validText(c.Name, MaxTitleLen) {
		return fmt.Errorf("check name %q", c.Name)
	}
	if c.Conclusion != "" && !validAction(c.Conclusion) {
		return fmt.Errorf("check conclusion %q", c.Conclusion)
	}
	switch c.Verdict {
	case CheckPassed, CheckFailed, CheckNone:
	default:
		return fmt.Errorf("check verdict %q", c.Verdict)
	}
	return nil
}

func checkChange(c RefChange) error {
	if !validRefName(c.Ref) || len(c.Ref) > MaxRefLen {
		return fmt.Errorf("ref %q", c.Ref)
	}
	for _, b := range []byte(c.Ref) {
		if strings.IndexByte("$`;|&<>'\"() ", b) >= 0 || b < 0x20 || b == 0x7f {
			return fmt.Errorf("ref %q holds %q", c.Ref, b)
		}
	}
	switch {
	case strings.HasPrefix(c.Ref, "refs/heads/"):
		if c.IsTag || c.Name != c.Ref[len("refs/heads/"):] {
			return fmt.Errorf("branch %+v", c)
		}
	case strings.HasPrefix(c.Ref, "refs/tags/"):
		if !c.IsTag || c.Name != c.Ref[len("refs/tags/"):] {
			return fmt.Errorf("tag %+v", c)
		}
	default:
		return fmt.Errorf("ref %q outside heads and tags", c.Ref)
	}
	if c.Name == "" || c.Name[0] == '-' {
		return fmt.Errorf("name %q", c.Name)
	}
	if c.Before != "" && (!fullLowerSHA(c.Before) || isZeroSHA(c.Before)) {
		return fmt.Errorf("before %q", c.Before)
	}
	if c.Deleted != (c.After == "") {
		return fmt.Errorf("deleted %v with after %q", c.Deleted, c.After)
	}
	if c.After != "" && (!fullLowerSHA(c.After) || isZeroSHA(c.After)) {
		return fmt.Errorf("after %q", c.After)
	}
	return nil
}

func fullLowerSHA(s string) bool {
	if len(s) != 40 && len(s) != 64 {
		return false
	}
	for i := 0; i < len(s); i++ {
		if c := s[i]; !('0' <= c && c <= '9' || 'a' <= c && c <= 'f') {
			return false
		}
	}
	return true
}
