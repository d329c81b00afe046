package forge

// EventType is what fraisier does with a delivery.
type EventType string

// Event types. Anything a forge sends that is not a push, a ping, a pull
// request or a check result is Other: the intake records it and does
// nothing else.
const (
	Push        EventType = "push"
	Ping        EventType = "ping"
	PullRequest EventType = "pull_request"
	Check       EventType = "check"
	Other       EventType = "other"
)

// Event is one parsed, validated delivery.
type Event struct {
	Forge      Kind
	DeliveryID string // "" when the forge sent none (or an unusable one)
	// EventType is the raw event header value, e.g. "push", "Push Hook",
	// "repo:push"; printable ASCII, at most 128 bytes.
	EventType  string
	Type       EventType
	Repository Repository
	// Sender is the forge user name of whoever caused the event (login,
	// username or nickname as the forge names it), or "".
	Sender string
	// Changes is set for pushes: one per ref the push moved (several on
	// Bitbucket, one elsewhere).
	Changes []RefChange
	// PullRequest is set when Type is PullRequest.
	PullRequest *PullRequestInfo
	// Check is set when Type is Check.
	Check *CheckInfo
}

// Repository identifies the repository an event is about.
type Repository struct {
	// FullName is "owner/name" (GitHub, Gitea, Bitbucket Cloud), GitLab's
	// path_with_namespace ("group/subgroup/name"), or "PROJECT/slug" on
	// Bitbucket Data Center.
	FullName string
	// CloneURLs holds the http(s) URL first, then the ssh one, when known.
	// Bitbucket Cloud sends none: they are derived from the web URL.
	CloneURLs []string
	WebURL    string
}

// RefChange is one ref moved by a push.
type RefChange struct {
	Ref   string // full ref: refs/heads/x or refs/tags/x
	Name  string // Ref without refs/heads/ or refs/tags/
	IsTag bool
	// Before is "" when the push created the ref; After is "" when it
	// deleted it (and Deleted is then true). Both are otherwise 40 or 64
	// lower-case hex digits.
	Before, After string
	Deleted       bool
}

// PullRequestInfo describes the pull (merge) request of a PullRequest event.
type PullRequestInfo struct {
	Number int64
	// Action is what happened, in the forge's words: "opened",
	// "synchronize" (GitHub), "open"/"update"/"merge" (GitLab),
	// "created"/"fulfilled" (Bitbucket Cloud, from pullrequest:<action>),
	// "opened"/"from_ref_updated" (Data Center, from pr:<action>).
	Action       string
	SourceBranch string // branch name, without refs/heads/
	TargetBranch string
	// HeadSHA is the source branch head, or "" when the forge sent only an
	// abbreviated hash (Bitbucket Cloud) or none.
	HeadSHA string
	Title   string // at most MaxTitleLen bytes, control characters replaced
	// SameRepository: the forge says the head branch is in the target
	// repository itself, not in a fork. False when it comes from a fork,
	// and when the forge did not say (Bitbucket Cloud, a payload without
	// the head's repository): a fork's code is anyone's.
	SameRepository bool
}
