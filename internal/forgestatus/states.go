package forgestatus

import "github.com/fraiseql/fraisier/internal/forge"

// The columns of stateTable.
const (
	colGitHubDeployment = iota
	colGitHubStatus
	colGitLab
	colGitea
	colBitbucket
	colBitbucketServer
)

// stateTable maps each fraisier state to each forge's. A commit that ends
// deployed (succeeded, or skipped because it already runs) is a success; one
// that does not run (failed, rolled back, superseded) is a failure; one that
// leaves the environment in doubt (rollback_failed, interrupted) is an
// error where the forge has one. docs/forge-status.md gives the reasons.
var stateTable = map[State][6]string{
	Queued:         {"queued", "pending", "pending", "pending", "INPROGRESS", "INPROGRESS"},
	Running:        {"in_progress", "pending", "running", "pending", "INPROGRESS", "INPROGRESS"},
	Succeeded:      {"success", "success", "success", "success", "SUCCESSFUL", "SUCCESSFUL"},
	Failed:         {"failure", "failure", "failed", "failure", "FAILED", "FAILED"},
	RolledBack:     {"failure", "failure", "failed", "failure", "FAILED", "FAILED"},
	RollbackFailed: {"error", "error", "failed", "error", "FAILED", "FAILED"},
	Interrupted:    {"error", "error", "failed", "error", "FAILED", "FAILED"},
	Skipped:        {"success", "success", "success", "success", "SUCCESSFUL", "SUCCESSFUL"},
	Superseded:     {"inactive", "failure", "canceled", "failure", "STOPPED", "FAILED"},
}

// ForgeState is the state forge k is sent for s, "" for a state fraisier
// does not know. On GitHub, via says which API: ViaDeployment gives a
// deployment status's state, anything else a commit status's.
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
