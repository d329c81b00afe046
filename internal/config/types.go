package config

import (
	"strconv"
	"time"
)

// The structs below are the single description of fraises.yaml: the decoder,
// the validator and the JSON Schema generator all read them through their
// struct tags, so the three cannot drift apart.
//
// Tags understood by this package:
//
//	yaml:"key"          the key in the file (required on every field; "-" for fields set by the loader)
//	required:"true"     the key must be present
//	enum:"a|b|c"        allowed values of a string
//	doc:"..."           one-line description, copied into the JSON Schema
//	abs:"true"          a path that must be absolute and clean
//	name:"true"         a value that ends up in paths, unit names or SQL: ^[a-z0-9][a-z0-9_-]*$,
//	                    at most 64 characters; on a map it applies to the keys
//	min:"n" max:"n"     bounds of a number, checked when the key is present
//	account:"true"      a user or group: a name as useradd takes it, or a numeric id
//
// json tags only shape --json output; they repeat the yaml keys.
//
// Durations accept Go syntax ("90s", "5m") or a bare integer number of seconds,
// the form the Python fraisier used.

// Config is a whole fraises.yaml after expansion and validation.
type Config struct {
	Git      Git                `yaml:"git" json:"git" doc:"forges and their webhook secrets"`
	Defaults Defaults           `yaml:"defaults" json:"defaults" doc:"values every environment inherits unless it sets its own"`
	Server   Server             `yaml:"server" json:"server" doc:"settings of fraisier serve"`
	State    State              `yaml:"state" json:"state" doc:"where fraisier keeps its state database"`
	Notify   Notify             `yaml:"notify" json:"notify" doc:"messages about deployments and trouble: targets and routes (docs/notifications.md)"`
	Fraises  map[string]*Fraise `yaml:"fraises" json:"fraises" required:"true" name:"true" doc:"the services fraisier deploys, by name"`
	// HostGroups name lists of hosts that environments' hosts: may use.
	HostGroups map[string][]string `yaml:"host_groups" json:"host_groups,omitempty" name:"true" doc:"named lists of hosts, usable in an environment's hosts:"`

	// Path is the file the configuration was read from.
	Path string `yaml:"-" json:"path"`
	// Warnings are what loads but deserves the operator's attention
	// (deliveries accepted without a signature, say), in file order.
	Warnings []Problem `yaml:"-" json:"-"`
}

// Git holds one section per forge. A forge that is absent accepts no webhooks.
type Git struct {
	GitHub          *Forge `yaml:"github" json:"github,omitempty" doc:"GitHub and GitHub Enterprise"`
	GitLab          *Forge `yaml:"gitlab" json:"gitlab,omitempty" doc:"GitLab (X-Gitlab-Token or signed deliveries)"`
	Gitea           *Forge `yaml:"gitea" json:"gitea,omitempty" doc:"Gitea and Forgejo"`
	Bitbucket       *Forge `yaml:"bitbucket" json:"bitbucket,omitempty" doc:"Bitbucket Cloud"`
	BitbucketServer *Forge `yaml:"bitbucket_server" json:"bitbucket_server,omitempty" doc:"Bitbucket Data Center / Server"`
}

// Forge is how one forge authenticates its deliveries.
type Forge struct {
	// Secrets holds every accepted secret so that one can be rotated while
	// the old one is still in flight. Secret and SecretFile add to it; use
	// AcceptedSecrets rather than reading the three fields.
	Secret        Secret    `yaml:"secret" json:"secret,omitempty" doc:"webhook secret, at least 16 bytes (use ${VAR} or secret_file rather than a literal); for GitLab, the whsec_ signing token or a plain token"`
	SecretFile    string    `yaml:"secret_file" json:"secret_file,omitempty" doc:"file holding the secret; relative names are looked up in $CREDENTIALS_DIRECTORY"`
	Secrets       []Secret  `yaml:"secrets" json:"secrets,omitempty" doc:"several accepted secrets (at least 16 bytes each), for rotation"`
	AllowUnsigned *Unsigned `yaml:"allow_unsigned" json:"allow_unsigned,omitempty" doc:"accept deliveries without a signature for some fraises or from some addresses only"`

	// Status is how fraisier reports deployments on this forge.
	Status *ForgeStatus `yaml:"status" json:"status,omitempty" doc:"report each deployment on this forge: commit status, GitHub deployment, Bitbucket build status"`

	// FileSecret is the content of SecretFile, read when the file is loaded.
	FileSecret Secret `yaml:"-" json:"file_secret,omitempty"`
}

// Unsigned says which deliveries a forge accepts without a signature: those
// routed to the fraises named, those from the addresses given, or, when
// both are set, only those that are both. At least one is required.
type Unsigned struct {
	Fraises []string `yaml:"fraises" json:"fraises,omitempty" doc:"fraises (of this forge) an unsigned delivery may deploy; it deploys nothing elsewhere"`
	From    []string `yaml:"from" json:"from,omitempty" doc:"addresses or CIDRs an unsigned delivery must come from (after trusted_proxies); others are refused"`
}

// Secret is a string that is never printed: its String and JSON forms are redacted.
type Secret string

func (s Secret) String() string { return redacted(string(s)) }

// GoString keeps secrets out of %#v as well.
func (s Secret) GoString() string { return strconv.Quote(redacted(string(s))) }

// MarshalJSON keeps secrets out of every --json output.
func (s Secret) MarshalJSON() ([]byte, error) { return []byte(`"` + redacted(string(s)) + `"`), nil }

// Reveal returns the secret itself, for the code that must compare it.
func (s Secret) Reveal() string { return string(s) }

func redacted(s string) string {
	if s == "" {
		return ""
	}
	return "REDACTED"
}

// FraiseType is what a fraise deploys.
type FraiseType string

// Fraise types.
const (
	TypeAPI       FraiseType = "api"       // a web service: code, migrations, restart, health check
	TypeETL       FraiseType = "etl"       // scripts that share an app's code, verified before the switch
	TypeScheduled FraiseType = "scheduled" // jobs run by systemd timers
)

// Layout is how an environment keeps its code in app_path.
type Layout string

// Layouts.
const (
	LayoutReleases Layout = "releases" // releases/<name> and a current symlink
	LayoutInplace  Layout = "inplace"  // one checkout in app_path
)

// Defaults are inherited by every environment that does not set the field.
type Defaults struct {
	Layout       Layout       `yaml:"layout" json:"layout,omitempty" enum:"releases|inplace" doc:"releases (default): releases/ + current symlink; inplace: one checkout in app_path"`
	KeepReleases int          `yaml:"keep_releases" json:"keep_releases,omitempty" min:"1" doc:"how many releases to keep (default 5)"`
	Scope        string       `yaml:"scope" json:"scope,omitempty" enum:"system|user" doc:"systemd manager of the services (default system)"`
	Timeouts     Timeouts     `yaml:"timeouts" json:"timeouts"`
	HealthCheck  *HealthCheck `yaml:"health_check" json:"health_check,omitempty" doc:"an environment without a health check gets this one; one with its own inherits the tuning (timeout, retries, ...)"`
	Trigger      string       `yaml:"trigger" json:"trigger,omitempty" enum:"push|checks" doc:"push (default): a push deploys at once; checks: a push waits until the forge reports its commit's checks passed"`
	Checks       []string     `yaml:"checks" json:"checks,omitempty" doc:"with trigger: checks, the checks (workflow, pipeline, status context or build key names) that must all pass; empty: the first result reported decides"`
}

// Server configures fraisier serve.
type Server struct {
	Listen         string    `yaml:"listen" json:"listen" doc:"host:port, unix:/path, or systemd (socket activation); default 127.0.0.1:8080"`
	UIListen       string    `yaml:"ui_listen" json:"ui_listen,omitempty" doc:"serve the dashboard (/ui/) here instead of on listen: host:port, unix:/path, or systemd (the socket named ui); unset: /ui/ on listen"`
	BodyLimit      int64     `yaml:"body_limit" json:"body_limit" min:"1024" max:"26214400" doc:"largest accepted webhook body in bytes (default 1 MiB, at most 25 MiB)"`
	ReadTimeout    Duration  `yaml:"read_timeout" json:"read_timeout" doc:"default 10s"`
	WriteTimeout   Duration  `yaml:"write_timeout" json:"write_timeout" doc:"default 30s"`
	IdleTimeout    Duration  `yaml:"idle_timeout" json:"idle_timeout" doc:"default 2m"`
	TrustedProxies []string  `yaml:"trusted_proxies" json:"trusted_proxies,omitempty" doc:"CIDRs whose X-Forwarded-For is believed"`
	RateLimit      RateLimit `yaml:"rate_limit" json:"rate_limit"`
	MaxConcurrent  int       `yaml:"max_concurrent_deploys" json:"max_concurrent_deploys" min:"1" doc:"deployments running at once across all fraises (default 2)"`
	APIToken       Secret    `yaml:"api_token" json:"api_token,omitempty" doc:"bearer token for /api/*, /providers and /metrics (at least 16 bytes)"`
	APITokenFile   string    `yaml:"api_token_file" json:"api_token_file,omitempty" doc:"file holding the API token; relative names are looked up in $CREDENTIALS_DIRECTORY"`
	ShutdownGrace  Duration  `yaml:"shutdown_grace" json:"shutdown_grace" doc:"how long SIGTERM waits for running deployments (default 5m)"`
	OpenAPI        bool      `yaml:"open_api" json:"open_api" doc:"serve /api/* and /providers without a token on an address that is not loopback (an explicit opt-out)"`
	OpenMetrics    bool      `yaml:"open_metrics" json:"open_metrics" doc:"/metrics answers without the API token"`
	Node           string    `yaml:"node" json:"node,omitempty" doc:"this node's name among the nodes sharing the state database (default the machine's host name; --node and $FRAISIER_NODE override it)"`
}

// RateLimit bounds webhook intake.
type RateLimit struct {
	PerSource float64 `yaml:"per_source" json:"per_source" min:"0" doc:"requests per second per client address (default 20)"`
	Global    float64 `yaml:"global" json:"global" min:"0" doc:"requests per second in all (default 2000)"`
	Burst     int     `yaml:"burst" json:"burst" min:"1" doc:"requests a client may send at once above its rate (default 40)"`
}

// State says where the state database lives. Without it fraisier uses
// --state, $FRAISIER_STATE, or its default path.
type State struct {
	Path    string `yaml:"path" json:"path,omitempty" abs:"true" doc:"SQLite database file"`
	URL     Secret `yaml:"url" json:"url,omitempty" doc:"postgres:// URL of a shared PostgreSQL state database"`
	URLFile string `yaml:"url_file" json:"url_file,omitempty" doc:"file holding the postgres:// URL; relative names are looked up in $CREDENTIALS_DIRECTORY"`
	Dir     string `yaml:"dir" json:"dir,omitempty" abs:"true" doc:"fraisier's own directory (git mirrors live in <dir>/mirrors); default the directory of the SQLite state file"`
	// Retention bounds how long the state database keeps what grows with
	// every delivery and deployment.
	Retention Retention `yaml:"retention" json:"retention"`
}

// Retention says how long records are kept before fraisier serve (or
// fraisier prune) removes them. Zero keeps them forever.
type Retention struct {
	Events      Duration `yaml:"events" json:"events" doc:"webhook events older than this are removed (default 90d; 0 keeps them)"`
	StepOutput  Duration `yaml:"step_output" json:"step_output" doc:"deployments' step output older than this is removed, their summaries kept (default 90d; 0 keeps it)"`
	Deployments Duration `yaml:"deployments" json:"deployments" doc:"finished deployments older than this are removed, statistics kept exact (default 0: kept)"`
}

// Fraise is one deployable service.
type Fraise struct {
	Type         FraiseType              `yaml:"type" json:"type" required:"true" enum:"api|etl|scheduled" doc:"api: code, migrations, restart, health check; etl: scripts; scheduled: jobs run by systemd timers"`
	Description  string                  `yaml:"description" json:"description,omitempty"`
	Repository   string                  `yaml:"repository" json:"repository,omitempty" doc:"owner/name or clone URL; routes webhooks to this fraise"`
	Forge        string                  `yaml:"forge" json:"forge,omitempty" enum:"github|gitlab|gitea|bitbucket|bitbucket_server" doc:"the forge whose webhooks deploy this fraise (default: told from repository's host, else the only forge configured)"`
	Webhook      *FraiseWebhook          `yaml:"webhook" json:"webhook,omitempty" doc:"secrets for this fraise only"`
	Environments map[string]*Environment `yaml:"environments" json:"environments" required:"true" name:"true" doc:"where the fraise runs, by name (production, staging, ...)"`

	Name string `yaml:"-" json:"name"`
	// Config is the configuration the fraise belongs to.
	Config *Config `yaml:"-" json:"-"`
}

// FraiseWebhook holds secrets that apply to deliveries routed to one fraise.
type FraiseWebhook struct {
	Secret     Secret   `yaml:"secret" json:"secret,omitempty" doc:"a secret that covers this fraise only, at least 16 bytes"`
	SecretFile string   `yaml:"secret_file" json:"secret_file,omitempty" doc:"file holding the secret; relative names are looked up in $CREDENTIALS_DIRECTORY"`
	Secrets    []Secret `yaml:"secrets" json:"secrets,omitempty" doc:"several such secrets, for rotation"`

	// FileSecret is the content of SecretFile, read when the file is loaded.
	FileSecret Secret `yaml:"-" json:"file_secret,omitempty"`
}

// Environment is one place a fraise runs (production, staging, ...).
type Environment struct {
	Branch       string   `yaml:"branch" json:"branch" required:"true" doc:"branch deployed by default; a glob (release/*) routes several"`
	Tags         string   `yaml:"tags" json:"tags,omitempty" doc:"glob of tags whose pushes deploy here (tag pushes deploy nowhere by default)"`
	AutoDeploy   *bool    `yaml:"auto_deploy" json:"auto_deploy,omitempty" doc:"deploy on push (default true)"`
	PullRequests string   `yaml:"pull_requests" json:"pull_requests,omitempty" doc:"glob of target branches: the head of every pull or merge request opened, reopened or updated against one deploys here (a preview environment); pull requests deploy nowhere by default"`
	GitRepo      string   `yaml:"git_repo" json:"git_repo,omitempty" doc:"clone URL or local path; defaults to repository when that is one"`
	AppPath      string   `yaml:"app_path" json:"app_path,omitempty" abs:"true" doc:"where the fraise lives on this host"`
	Layout       Layout   `yaml:"layout" json:"layout,omitempty" enum:"releases|inplace"`
	KeepReleases int      `yaml:"keep_releases" json:"keep_releases,omitempty" min:"1"`
	Shared       []string `yaml:"shared" json:"shared,omitempty" doc:"files and directories linked into every release from app_path/shared"`
	// SystemdService accepts one unit name or a list.
	SystemdService StringList   `yaml:"systemd_service" json:"systemd_service,omitempty" doc:"unit(s) restarted after the switch; a name without a suffix gets .service"`
	Scope          string       `yaml:"scope" json:"scope,omitempty" enum:"system|user"`
	Install        *Command     `yaml:"install" json:"install,omitempty" doc:"argv run in the new release before migrations"`
	Database       *Database    `yaml:"database" json:"database,omitempty"`
	HealthCheck    *HealthCheck `yaml:"health_check" json:"health_check,omitempty"`
	Timeouts       Timeouts     `yaml:"timeouts" json:"timeouts"`
	Protected      *bool        `yaml:"protected" json:"protected,omitempty" doc:"forbid destructive strategies and pull request previews (default true for production and prod)"`
	User           string       `yaml:"user" json:"user,omitempty" account:"true" doc:"user that install, migrations, backups, scripts, run_after_deploy, a health check command and jobs run as (default fraisier's own); a name or a numeric id"`
	Group          string       `yaml:"group" json:"group,omitempty" account:"true" doc:"group they run as (default fraisier's own); a name or a numeric id"`
	Scripts        []string     `yaml:"scripts" json:"scripts,omitempty" doc:"etl: scripts that must exist and be executable in every release"`
	SharesCodeWith string       `yaml:"shares_code_with" json:"shares_code_with,omitempty" doc:"etl, scheduled: fraise/environment whose checkout this one uses instead of its own"`
	RunAfterDeploy *Command     `yaml:"run_after_deploy" json:"run_after_deploy,omitempty" doc:"etl: argv run once the release is current"`
	Jobs           []Job        `yaml:"jobs" json:"jobs,omitempty" doc:"scheduled: the jobs and their timers"`
	// After orders this environment's deployments behind those of other
	// environments queued by the same push (fraise/environment).
	After []string `yaml:"after" json:"after,omitempty" doc:"fraise/environment entries whose deployment queued by the same push runs first (shares_code_with implies its own)"`
	// Trigger and Checks: see Defaults.
	Trigger string   `yaml:"trigger" json:"trigger,omitempty" enum:"push|checks" doc:"push (default): a push deploys at once; checks: a push waits until the forge reports its commit's checks passed"`
	Checks  []string `yaml:"checks" json:"checks,omitempty" doc:"with trigger: checks, the checks (workflow, pipeline, status context or build key names) that must all pass; empty: the first result reported decides"`
	Restart string   `yaml:"restart" json:"restart,omitempty" enum:"plain|socket|blue_green" doc:"how a new release takes over: plain (default) restarts the units; socket keeps their systemd socket listening across the restart; blue_green starts the other colour, checks it, switches the proxy, drains and stops the old one"`

	// BlueGreen is restart: blue_green's setup (bluegreen.go).
	BlueGreen *BlueGreen `yaml:"blue_green" json:"blue_green,omitempty" doc:"restart: blue_green: the template unit, where each colour listens, the proxy to switch and the drain grace"`

	// Hosts and Rollout: several hosts sharing one PostgreSQL state
	// (hosts.go).
	Hosts   []string `yaml:"hosts" json:"hosts,omitempty" doc:"the hosts (node names) this environment runs on, or host_groups names; each push becomes a rollout across them (needs a PostgreSQL state)"`
	Rollout *Rollout `yaml:"rollout" json:"rollout,omitempty" doc:"how a rollout goes through the hosts: canary, batch size, pauses, the migration host, node liveness"`
	// Host is the host of a per-host copy of the environment that Lookup
	// returns for environment@host; HostOf is the environment it copies.
	Host   string       `yaml:"-" json:"host,omitempty"`
	HostOf *Environment `yaml:"-" json:"-"`

	Name   string  `yaml:"-" json:"name"`
	Fraise *Fraise `yaml:"-" json:"-"`
	// Code is the environment whose checkout this one runs: itself, or the
	// target of SharesCodeWith.
	Code *Environment `yaml:"-" json:"-"`
	// AfterEnvs are the environments After names, in its order (RunsAfter
	// adds Code's).
	AfterEnvs []*Environment `yaml:"-" json:"-"`
}

// StringList is a YAML scalar or sequence of strings.
type StringList []string

// Command is an argv with its limits. It is never given to a shell.
type Command struct {
	Argv    []string          `yaml:"command" json:"command" required:"true" doc:"program and arguments (never run through a shell)"`
	Timeout Duration          `yaml:"timeout" json:"timeout,omitempty"`
	Env     map[string]string `yaml:"env" json:"env,omitempty"`
	Dir     string            `yaml:"dir" json:"dir,omitempty" doc:"working directory relative to the release (default the release)"`
}

// Database describes the migrations of an environment.
type Database struct {
	Tool               string            `yaml:"tool" json:"tool" required:"true" enum:"alembic|django|confiture|sql|command" doc:"sql runs dir's NNN_name.up.sql files itself; command runs your up/down/current argv"`
	Strategy           string            `yaml:"strategy" json:"strategy" enum:"apply|rebuild" doc:"apply (default) migrates incrementally; rebuild drops and recreates"`
	URL                Secret            `yaml:"url" json:"url,omitempty" doc:"database URL handed to the tool"`
	URLFile            string            `yaml:"url_file" json:"url_file,omitempty" doc:"file holding the database URL; relative names are looked up in $CREDENTIALS_DIRECTORY"`
	Name               string            `yaml:"name" json:"name,omitempty" name:"true" doc:"database name, for tools that take one"`
	BackupBeforeDeploy bool              `yaml:"backup_before_deploy" json:"backup_before_deploy"`
	Backup             *Command          `yaml:"backup" json:"backup,omitempty" doc:"backup argv (default pg_dump for postgres URLs)"`
	BackupDir          string            `yaml:"backup_dir" json:"backup_dir,omitempty" abs:"true"`
	RollbackOnFailure  *bool             `yaml:"rollback_on_failure" json:"rollback_on_failure,omitempty" doc:"migrate down to the recorded revision when the deploy rolls back (default true)"`
	Dir                string            `yaml:"dir" json:"dir,omitempty" doc:"sql: directory of NNN_name.up.sql/down.sql, relative to the release"`
	Config             string            `yaml:"config" json:"config,omitempty" doc:"alembic: alembic.ini; confiture: its config file"`
	Manage             string            `yaml:"manage" json:"manage,omitempty" doc:"django: manage.py relative to the release (default manage.py)"`
	Settings           string            `yaml:"settings" json:"settings,omitempty" doc:"django: DJANGO_SETTINGS_MODULE"`
	Python             string            `yaml:"python" json:"python,omitempty" doc:"interpreter of django, and of alembic without program: an absolute path, relative to the release, or a name in PATH (default: the release's .venv/bin/python or venv/bin/python where it has one, else python3)"`
	Program            string            `yaml:"program" json:"program,omitempty" doc:"alembic, confiture: the tool's program, an absolute path, relative to the release, or a name in PATH (default: confiture from the release's .venv/bin or venv/bin where it has one, else PATH; alembic runs as python -m alembic)"`
	Up                 []string          `yaml:"up" json:"up,omitempty" doc:"command tool: argv that migrates up"`
	Down               []string          `yaml:"down" json:"down,omitempty" doc:"command tool: argv that migrates down; {revision} is replaced"`
	Current            []string          `yaml:"current" json:"current,omitempty" doc:"command tool: argv that prints the current revision"`
	Env                map[string]string `yaml:"env" json:"env,omitempty"`
}

// HealthCheck says how fraisier knows a release serves. Exactly one of URL,
// TCP, Command or Unit is set.
type HealthCheck struct {
	URL          string   `yaml:"url" json:"url,omitempty" doc:"http(s) URL that must answer"`
	TCP          string   `yaml:"tcp" json:"tcp,omitempty" doc:"host:port that must accept a connection"`
	Command      []string `yaml:"command" json:"command,omitempty" doc:"argv that must exit 0"`
	Unit         bool     `yaml:"unit" json:"unit,omitempty" doc:"the systemd unit(s) being active is enough"`
	ExpectStatus int      `yaml:"expect_status" json:"expect_status,omitempty" min:"100" max:"599" doc:"HTTP status expected (default 200)"`
	BodyContains string   `yaml:"body_contains" json:"body_contains,omitempty"`
	Timeout      Duration `yaml:"timeout" json:"timeout" doc:"per try (default 5s)"`
	Retries      int      `yaml:"retries" json:"retries" min:"0" doc:"tries after the first (default 10)"`
	Interval     Duration `yaml:"interval" json:"interval" doc:"between tries (default 1s)"`
	StartDelay   Duration `yaml:"start_delay" json:"start_delay" doc:"wait before the first try"`
	Deadline     Duration `yaml:"deadline" json:"deadline" doc:"overall limit for all tries (default 60s)"`
}

// Timeouts bound each deployment step and the whole deployment. Zero means
// the step has no limit of its own.
type Timeouts struct {
	Fetch   Duration `yaml:"fetch" json:"fetch,omitempty"`
	Install Duration `yaml:"install" json:"install,omitempty"`
	Migrate Duration `yaml:"migrate" json:"migrate,omitempty"`
	Restart Duration `yaml:"restart" json:"restart,omitempty"`
	Health  Duration `yaml:"health" json:"health,omitempty"`
	Deploy  Duration `yaml:"deploy" json:"deploy,omitempty" doc:"the whole deployment"`
}

// Job is one scheduled job of a scheduled fraise.
type Job struct {
	Name           string   `yaml:"name" json:"name" required:"true" name:"true"`
	Description    string   `yaml:"description" json:"description,omitempty"`
	Schedule       string   `yaml:"schedule" json:"schedule,omitempty" doc:"5-field cron expression, converted to OnCalendar"`
	OnCalendar     string   `yaml:"on_calendar" json:"on_calendar,omitempty" doc:"systemd OnCalendar expression, used as is"`
	Command        []string `yaml:"command" json:"command" required:"true" doc:"argv the service runs, relative to the release"`
	SystemdService string   `yaml:"systemd_service" json:"systemd_service" doc:"unit name (default fraisier-<fraise>-<env>-<job>.service)"`
	SystemdTimer   string   `yaml:"systemd_timer" json:"systemd_timer" doc:"unit name (default fraisier-<fraise>-<env>-<job>.timer)"`
	Timeout        Duration `yaml:"timeout" json:"timeout,omitempty"`
}

// Duration is a time.Duration read from "90s", "90d" (days) or a bare
// number of seconds.
type Duration time.Duration

// D returns the value as a time.Duration.
func (d Duration) D() time.Duration { return time.Duration(d) }

func (d Duration) String() string { return time.Duration(d).String() }

// MarshalJSON writes the Go form ("1m30s") that the file also accepts.
func (d Duration) MarshalJSON() ([]byte, error) {
	return []byte(strconv.Quote(time.Duration(d).String())), nil
}
