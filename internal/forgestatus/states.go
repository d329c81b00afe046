package forgestatus

import "github.com/fraiseql/fraisier/internal/forge"

// The columns of stateTable.
const (
	colGitHubDeployment = iota
	colGitHubStatus
	colGitLab
	colGitLabDeployment
	colGitea
	colBitbucket
	colBitbucketServer
)

// stateTable maps each fraisier state to each forge's. A commit that ends
// deployed (succeeded, or skipped because it already runs) is a success; one
// that does not run (failed, rolled back, superseded) is a failure; one that
// leaves the environment in doubt (rollback_failed, interrupted) is an
// error where the forge has one. docs/forge-status.md gives the reasons.
var stateTable = map[State][7]string{
	Queued:         {"queued", "pending", "pending", "created", "pending", "INPROGRESS", "INPROGRESS"},
	Running:        {"in_progress", "pending", "running", "running", "pending", "INPROGRESS", "INPROGRESS"},
	Succeeded:      {"success", "success", "success", "success", "success", "SUCCESSFUL", "SUCCESSFUL"},
	Failed:         {"failure", "failure", "failed", "failed", "failure", "FAILED", "FAILED"},
	RolledBack:     {"failure", "failure", "failed", "failed", "failure", "FAILED", "FAILED"},
	RollbackFailed: {"error", "error", "failed", "failed", "error", "FAILED", "FAILED"},
	Interrupted:    {"error", "error", "failed", "failed", "error", "FAILED", "FAILED"},
	Skipped:        {"success", "success", "success", "success", "success", "SUCCESSFUL", "SUCCESSFUL"},
	Superseded:     {"inactive", "failure", "canceled", "canceled", "failure", "STOPPED", "FAILED"},
}

// ForgeState is the state forge k is sent for s, "" for a state fraisier
// does not know. On GitHub and GitLab, via says which API: ViaDeployment
// gives a deployment's state, anything else a commit status's.
func ForgeState(k forge.Kind, via string, s State) string {
	row, ok := stateTable[s]
	if !ok {
		return ""
	}
	switch k {
	case forge.GitHub:
		if via == ViaDeployment {
			return row[colGitHubDeployment]
		}
		return row[colGitHubStatus]
	case forge.GitLab:
		if via == ViaDeployment {
			return row[colGitLabDeployment]
		}
		return row[colGitLab]
	case forge.Gitea:
		return row[colGitea]
	case forge.Bitbucket:
		return row[colBitbucket]
	case forge.BitbucketServer:
		return row[colBitbucketServer]
	}
	return ""
}
