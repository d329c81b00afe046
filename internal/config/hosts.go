package config

// HostSep joins an environment and one of its hosts into the name of the
// per-host target a rollout deploys (production@web-1).
const HostSep = "@"

// Rollout is how a push goes through an environment's hosts.
type Rollout struct {
	Canary       bool     `yaml:"canary" json:"canary,omitempty" doc:"the first host (the migration host) deploys alone first"`
	CanaryWait   string   `yaml:"canary_wait" json:"canary_wait,omitempty" doc:"after the canary succeeded: a duration to wait before its node checks its health again and the rollout goes on, or manual to wait for fraisier rollout resume"`
	Batch        int      `yaml:"batch" json:"batch,omitempty" min:"1" doc:"hosts deployed at once after the first (default 1)"`
	Pause        Duration `yaml:"pause" json:"pause,omitempty" doc:"wait between two batches (default 0)"`
	MigrateOn    string   `yaml:"migrate_on" json:"migrate_on,omitempty" doc:"the host that runs migrations, once per rollout, before any other host switches (default the first host)"`
	NodeTimeout  Duration `yaml:"node_timeout" json:"node_timeout,omitempty" doc:"a node whose heartbeat is older is dead (default 30s, at least 3s)"`
	ClaimTimeout Duration `yaml:"claim_timeout" json:"claim_timeout,omitempty" doc:"a host step no live node claimed within this fails (default 2m)"`
}
