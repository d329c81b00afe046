package config

import "time"

// The structs below are the single description of fraises.yaml: the decoder,
// the validator and the JSON Schema generator all read them through their
// struct tags, so the three cannot drift apart.
//
// Tags understood by this package:
//
//	yaml:"key"          the key in the file (required on every field)
//	required:"true"     the key must be present
//	enum:"a|b|c"        allowed values of a string
//	doc:"..."           one-line description, copied into the JSON Schema
//	abs:"true"          a path that must be absolute
//	name:"true"         a value that ends up in paths, unit names or SQL: [a-z0-9_-]
//
// Durations accept Go syntax ("90s", "5m") or a bare integer number of seconds,
// the form the Python fraisier used.

// Config is a whole fraises.yaml after expansion and validation.
type Config struct {
	Git      Git               `yaml:"git" doc:"forges and their webhook secrets"`
	Defaults Defaults          `yaml:"defaults" doc:"values every environment inherits unless it sets its own"`
	Server   Server            `yaml:"server" doc:"settings of fraisier serve"`
	State    State             `yaml:"state" doc:"where fraisier keeps its state database"`
	Fraises  map[string]*Fraise `yaml:"fraises" required:"true" doc:"the services fraisier deploys, by name"`

	// Path is the file the configuration was read from.
	Path string `yaml:"-"`
}

// Git holds one section per forge. A forge that is absent accepts no webhooks.
type Git struct {
	GitHub          *Forge `yaml:"github" doc:"GitHub and GitHub Enterprise"`
	GitLab          *Forge `yaml:"gitlab" doc:"GitLab (X-Gitlab-Token or signed deliveries)"`
	Gitea           *Forge `yaml:"gitea" doc:"Gitea and Forgejo"`
	Bitbucket       *Forge `yaml:"bitbucket" doc:"Bitbucket Cloud"`
	BitbucketServer *Forge `yaml:"bitbucket_server" doc:"Bitbucket Data Center / Server"`
}

// Forge is how one forge authenticates its deliveries.
type Forge struct {
	// Secrets holds every accepted secret so that one can be rotated while
	// the old one is still in flight. Secret and SecretFile add to it.
	Secret        Secret   `yaml:"secret" doc:"webhook secret (use ${VAR} or secret_file rather than a literal)"`
	SecretFile    string   `yaml:"secret_file" doc:"file holding the secret; relative names are looked up in $CREDENTIALS_DIRECTORY"`
	Secrets       []Secret `yaml:"secrets" doc:"several accepted secrets, for rotation"`
	AllowUnsigned bool     `yaml:"allow_unsigned" doc:"accept deliveries without a signature (never do this on a public address)"`
}

// Secret is a string that is never printed: its String and JSON forms are redacted.
type Secret string

func (s Secret) String() string { return redacted(string(s)) }

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

// Defaults are inherited by every environment that does not set the field.
type Defaults struct {
	Layout       string       `yaml:"layout" enum:"releases|inplace" doc:"releases (default): releases/ + current symlink; inplace: one checkout in app_path"`
	KeepReleases int          `yaml:"keep_releases" doc:"how many releases to keep (default 5)"`
	Scope        string       `yaml:"scope" enum:"system|user" doc:"systemd manager of the services (default system)"`
	Timeouts     Timeouts     `yaml:"timeouts"`
	HealthCheck  *HealthCheck `yaml:"health_check"`
}

// Server configures fraisier serve.
type Server struct {
	Listen          string    `yaml:"listen" doc:"host:port, unix:/path, or systemd (socket activation); default 127.0.0.1:8080"`
	BodyLimit       int64     `yaml:"body_limit" doc:"largest accepted webhook body in bytes (default 1 MiB, at most 25 MiB)"`
	ReadTimeout     Duration  `yaml:"read_timeout"`
	WriteTimeout    Duration  `yaml:"write_timeout"`
	IdleTimeout     Duration  `yaml:"idle_timeout"`
	TrustedProxies  []string  `yaml:"trusted_proxies" doc:"CIDRs whose X-Forwarded-For is believed"`
	RateLimit       RateLimit `yaml:"rate_limit"`
	MaxConcurrent   int       `yaml:"max_concurrent_deploys" doc:"deployments running at once across all fraises (default 2)"`
	APIToken        Secret    `yaml:"api_token" doc:"bearer token for /api/*; unset means the API is open"`
	APITokenFile    string    `yaml:"api_token_file"`
	ShutdownGrace   Duration  `yaml:"shutdown_grace" doc:"how long SIGTERM waits for running deployments (default 5m)"`
}

// RateLimit bounds webhook intake.
type RateLimit struct {
	PerSource float64 `yaml:"per_source" doc:"requests per second per client address (default 20)"`
	Global    float64 `yaml:"global" doc:"requests per second in all (default 2000)"`
	Burst     int     `yaml:"burst"`
}

// State says where the state database lives. Without it fraisier uses
// --state, $FRAISIER_STATE, or its default path.
type State struct {
	Path    string `yaml:"path" abs:"true" doc:"SQLite database file"`
	URL     Secret `yaml:"url" doc:"postgres:// URL of a shared PostgreSQL state database"`
	URLFile string `yaml:"url_file"`
}

// Fraise is one deployable service.
type Fraise struct {
	Type         string                  `yaml:"type" required:"true" enum:"api|etl|scheduled"`
	Description  string                  `yaml:"description"`
	Repository   string                  `yaml:"repository" doc:"owner/name or clone URL; routes webhooks to this fraise"`
	Webhook      *FraiseWebhook          `yaml:"webhook" doc:"secrets for this fraise only"`
	Environments map[string]*Environment `yaml:"environments" required:"true"`

	Name string `yaml:"-"`
}

// FraiseWebhook holds secrets that apply to deliveries routed to one fraise.
type FraiseWebhook struct {
	Secret     Secret   `yaml:"secret"`
	SecretFile string   `yaml:"secret_file"`
	Secrets    []Secret `yaml:"secrets"`
}

// Environment is one place a fraise runs (production, staging, ...).
type Environment struct {
	Branch       string   `yaml:"branch" required:"true" doc:"branch deployed by default; a glob (release/*) routes several"`
	Tags         string   `yaml:"tags" doc:"glob of tags whose pushes deploy here (tag pushes deploy nowhere by default)"`
	AutoDeploy   *bool    `yaml:"auto_deploy" doc:"deploy on push (default true)"`
	GitRepo      string   `yaml:"git_repo" doc:"clone URL or local path; defaults to repository"`
	AppPath      string   `yaml:"app_path" abs:"true" doc:"where the fraise lives on this host"`
	Layout       string   `yaml:"layout" enum:"releases|inplace"`
	KeepReleases int      `yaml:"keep_releases"`
	Shared       []string `yaml:"shared" doc:"files and directories linked into every release from app_path/shared"`
	// SystemdService accepts one unit name or a list.
	SystemdService StringList    `yaml:"systemd_service" doc:"unit(s) restarted after the switch"`
	Scope          string        `yaml:"scope" enum:"system|user"`
	Install        *Command      `yaml:"install" doc:"argv run in the new release before migrations"`
	Database       *Database     `yaml:"database"`
	HealthCheck    *HealthCheck  `yaml:"health_check"`
	Timeouts       Timeouts      `yaml:"timeouts"`
	Protected      *bool         `yaml:"protected" doc:"forbid destructive strategies (default true for production and prod)"`
	Scripts        []string      `yaml:"scripts" doc:"etl: scripts that must exist and be executable in every release"`
	SharesCodeWith string        `yaml:"shares_code_with" doc:"etl: fraise/environment whose checkout this one uses instead of its own"`
	RunAfterDeploy *Command      `yaml:"run_after_deploy" doc:"etl: argv run once the release is current"`
	Jobs           []Job         `yaml:"jobs" doc:"scheduled: the jobs and their timers"`

	Name   string  `yaml:"-"`
	Fraise *Fraise `yaml:"-"`
}

// StringList is a YAML scalar or sequence of strings.
type StringList []string

// Command is an argv with its limits. It is never given to a shell.
type Command struct {
	Argv    []string          `yaml:"command" required:"true" doc:"program and arguments (never run through a shell)"`
	Timeout Duration          `yaml:"timeout"`
	Env     map[string]string `yaml:"env"`
	Dir     string            `yaml:"dir" doc:"working directory relative to the release (default the release)"`
}

// Database describes the migrations of an environment.
type Database struct {
	Tool               string            `yaml:"tool" required:"true" enum:"alembic|django|confiture|sql|command"`
	Strategy           string            `yaml:"strategy" enum:"apply|rebuild" doc:"apply (default) migrates incrementally; rebuild drops and recreates"`
	URL                Secret            `yaml:"url" doc:"database URL handed to the tool"`
	URLFile            string            `yaml:"url_file"`
	Name               string            `yaml:"name" doc:"database name, for tools that take one"`
	BackupBeforeDeploy bool              `yaml:"backup_before_deploy"`
	Backup             *Command          `yaml:"backup" doc:"backup argv (default pg_dump for postgres URLs)"`
	BackupDir          string            `yaml:"backup_dir" abs:"true"`
	RollbackOnFailure  *bool             `yaml:"rollback_on_failure" doc:"migrate down to the recorded revision when the deploy rolls back (default true)"`
	Dir                string            `yaml:"dir" doc:"sql: directory of NNN_name.up.sql/down.sql, relative to the release"`
	Config             string            `yaml:"config" doc:"alembic: alembic.ini; confiture: its config file"`
	Manage             string            `yaml:"manage" doc:"django: manage.py relative to the release (default manage.py)"`
	Settings           string            `yaml:"settings" doc:"django: DJANGO_SETTINGS_MODULE"`
	Python             string            `yaml:"python" doc:"interpreter for alembic/django (default python3)"`
	Up                 []string          `yaml:"up" doc:"command tool: argv that migrates up"`
	Down               []string          `yaml:"down" doc:"command tool: argv that migrates down; {revision} is replaced"`
	Current            []string          `yaml:"current" doc:"command tool: argv that prints the current revision"`
	Env                map[string]string `yaml:"env"`
}

// HealthCheck says how fraisier knows a release serves. Exactly one of URL,
// TCP, Command or Unit is set.
type HealthCheck struct {
	URL          string   `yaml:"url" doc:"http(s) URL that must answer"`
	TCP          string   `yaml:"tcp" doc:"host:port that must accept a connection"`
	Command      []string `yaml:"command" doc:"argv that must exit 0"`
	Unit         bool     `yaml:"unit" doc:"the systemd unit(s) being active is enough"`
	ExpectStatus int      `yaml:"expect_status" doc:"HTTP status expected (default 200)"`
	BodyContains string   `yaml:"body_contains"`
	Timeout      Duration `yaml:"timeout" doc:"per try (default 5s)"`
	Retries      int      `yaml:"retries" doc:"tries after the first (default 10)"`
	Interval     Duration `yaml:"interval" doc:"between tries (default 1s)"`
	StartDelay   Duration `yaml:"start_delay" doc:"wait before the first try"`
	Deadline     Duration `yaml:"deadline" doc:"overall limit for all tries (default 60s)"`
}

// Timeouts bound each deployment step and the whole deployment.
type Timeouts struct {
	Fetch    Duration `yaml:"fetch"`
	Install  Duration `yaml:"install"`
	Migrate  Duration `yaml:"migrate"`
	Restart  Duration `yaml:"restart"`
	Health   Duration `yaml:"health"`
	Deploy   Duration `yaml:"deploy" doc:"the whole deployment"`
}

// Job is one scheduled job of a scheduled fraise.
type Job struct {
	Name          string   `yaml:"name" required:"true" name:"true"`
	Description   string   `yaml:"description"`
	Schedule      string   `yaml:"schedule" doc:"5-field cron expression, converted to OnCalendar"`
	OnCalendar    string   `yaml:"on_calendar" doc:"systemd OnCalendar expression, used as is"`
	Command       []string `yaml:"command" doc:"argv the service runs, relative to the release"`
	SystemdService string  `yaml:"systemd_service" doc:"unit name (default fraisier-<fraise>-<env>-<job>.service)"`
	SystemdTimer  string   `yaml:"systemd_timer"`
	Timeout       Duration `yaml:"timeout"`
}

// Duration is a time.Duration read from "90s" or a bare number of seconds.
type Duration time.Duration

// D returns the value as a time.Duration.
func (d Duration) D() time.Duration { return time.Duration(d) }
