package config

import (
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"
)

// A valid api fraise; lines 1-6, the environment body starts on line 7.
func apiWith(env string) string {
	return "fraises:\n  api:\n    type: api\n    repository: https://github.com/acme/api.git\n    environments:\n      production:\n" + indent(env, 8)
}

// base is the body of a valid environment.
const base = "branch: main\napp_path: /srv/api\n"

func indent(s string, n int) string {
	pad := strings.Repeat(" ", n)
	lines := strings.Split(strings.TrimSuffix(s, "\n"), "\n")
	for i, l := range lines {
		if l != "" {
			lines[i] = pad + l
		}
	}
	return strings.Join(lines, "\n") + "\n"
}

// scheduledWith is a scheduled fraise whose environment body is env.
func scheduledWith(env string) string {
	return "fraises:\n  cron:\n    type: scheduled\n    repository: https://github.com/acme/cron.git\n    environments:\n      production:\n" + indent(env, 8)
}

const job = "jobs:\n  - name: nightly\n    schedule: \"0 3 * * *\"\n    command: [bin/nightly]\n"

// etlWith adds an etl fraise to the valid api fraise.
func etlWith(env string) string {
	return apiWith(base+"systemd_service: api\n") + "  etl:\n    type: etl\n    repository: acme/api\n    environments:\n      production:\n" + indent(env, 8)
}

type ruleCase struct {
	name string
	yaml string
	env  map[string]string
	// paths are the problems expected, in report order; the golden file
	// testdata/rules/NAME.golden holds the full report.
	paths []string
}

const prod = "fraises.api.environments.production"

var ruleCases = []ruleCase{
	// The decoder: syntax, keys, types.
	{name: "syntax_error", yaml: "fraises:\n  api: [1, 2\n  x: 3\n", paths: []string{""}},
	{name: "syntax_tab", yaml: strings.Replace(apiWith(base), "    type: api", "\ttype: api", 1), paths: []string{""}},
	{name: "syntax_indent_column", yaml: apiWith("branch: main\n") + "       app_path: /srv/api\n", paths: []string{""}},
	{name: "syntax_indent_under_value", yaml: apiWith("branch: main\n  app_path: /srv/api\n"), paths: []string{""}},
	{name: "syntax_env_in_flow_mapping", yaml: apiWith(base) + "      staging: {branch: dev, app_path: ${APP_ROOT}/api-staging}\n", paths: []string{""}},
	{name: "syntax_env_in_flow_sequence", yaml: apiWith(base + "shared: [.env, ${SHARED_DIR}]\n"), paths: []string{""}},
	{name: "syntax_colon_in_value", yaml: strings.Replace(apiWith(base), "    type: api\n", "    type: api\n    description: api: the public one\n", 1), paths: []string{""}},
	{name: "multiple_documents", yaml: apiWith(base) + "---\nfraises: {}\n", paths: []string{""}},
	{name: "empty_file", yaml: "# nothing yet\n", paths: []string{"fraises"}},
	{name: "top_level_list", yaml: "- fraises\n", paths: []string{""}},
	{name: "unknown_key_typo", yaml: apiWith("brnach: main\napp_path: /srv/api\n"), paths: []string{prod + ".branch", prod + ".brnach"}},
	{name: "unknown_key_far", yaml: apiWith(base + "colour: blue\n"), paths: []string{prod + ".colour"}},
	{name: "unknown_top_level_key", yaml: "servers: {}\n" + apiWith(base), paths: []string{"servers"}},
	{name: "duplicate_key", yaml: apiWith(base + "branch: develop\n"), paths: []string{prod + ".branch"}},
	{name: "missing_type", yaml: "fraises:\n  api:\n    repository: https://github.com/acme/api.git\n    environments:\n      production: {branch: main, app_path: /srv/api}\n", paths: []string{"fraises.api.type"}},
	{name: "empty_environment", yaml: apiWith("") + "", paths: []string{prod + ".app_path", prod + ".branch"}},
	{name: "string_given_number", yaml: apiWith("branch: 1.10\napp_path: /srv/api\n"), paths: []string{prod + ".branch"}},
	{name: "int_given_string", yaml: apiWith(base + "keep_releases: five\n"), paths: []string{prod + ".keep_releases"}},
	{name: "int_out_of_range", yaml: apiWith(base + "keep_releases: 99999999999999999999\n"), paths: []string{prod + ".keep_releases"}},
	{name: "bool_given_string", yaml: apiWith(base + "auto_deploy: \"yes\"\n"), paths: []string{prod + ".auto_deploy"}},
	{name: "list_given_string", yaml: apiWith(base + "shared: .env\n"), paths: []string{prod + ".shared"}},
	{name: "command_given_string", yaml: apiWith(base + "install:\n  command: uv sync\n"), paths: []string{prod + ".install.command"}},
	{name: "mapping_given_list", yaml: apiWith(base + "install: [uv, sync]\n"), paths: []string{prod + ".install"}},
	{name: "enum", yaml: apiWith(base + "layout: release\nscope: root\n"), paths: []string{prod + ".layout", prod + ".scope"}},
	{name: "duration_words", yaml: apiWith(base + "timeouts:\n  fetch: 5 minutes\n  install: 1.5\n"), paths: []string{prod + ".timeouts.fetch", prod + ".timeouts.install"}},
	{name: "duration_negative", yaml: apiWith(base + "timeouts:\n  fetch: -5s\n"), paths: []string{prod + ".timeouts.fetch"}},
	{name: "unknown_alias", yaml: apiWith(base + "install: *setup\n"), paths: []string{""}},
	{name: "merge_not_mapping", yaml: apiWith("<<: [1]\n" + base), paths: []string{prod}},
	{name: "empty_list_item", yaml: apiWith(base + "shared: [.env, ~]\n"), paths: []string{prod + ".shared[1]"}},

	// ${VAR} expansion.
	{name: "env_unset", yaml: apiWith("branch: main\napp_path: ${APP_ROOT}/api\n"), paths: []string{prod + ".app_path"}},
	{name: "env_required_message", yaml: apiWith("branch: main\napp_path: \"${APP_ROOT:?set APP_ROOT to the deploy root}\"\n"), env: map[string]string{"APP_ROOT": ""}, paths: []string{prod + ".app_path"}},
	{name: "env_missing_braces", yaml: apiWith("branch: main\napp_path: $HOME/api\n"), paths: []string{prod + ".app_path"}},
	{name: "env_unterminated", yaml: apiWith("branch: main\napp_path: ${HOME\n"), paths: []string{prod + ".app_path"}},
	{name: "env_not_a_number", yaml: apiWith(base + "keep_releases: ${KEEP}\n"), env: map[string]string{"KEEP": "many"}, paths: []string{prod + ".keep_releases"}},

	// Names.
	{name: "name_fraise", yaml: strings.Replace(apiWith(base), "  api:", "  My API:", 1), paths: []string{"fraises.My API"}},
	{name: "name_environment", yaml: strings.Replace(apiWith(base), "production:", "Prod:", 1), paths: []string{"fraises.api.environments.Prod"}},
	{name: "name_too_long", yaml: strings.Replace(apiWith(base), "production:", strings.Repeat("p", 65)+":", 1), paths: []string{"fraises.api.environments." + strings.Repeat("p", 65)}},
	{name: "name_job", yaml: scheduledWith(base + strings.Replace(job, "nightly", "Nightly Run", 1)), paths: []string{"fraises.cron.environments.production.jobs[0].name"}},
	{name: "name_database", yaml: apiWith(base + "database: {tool: alembic, name: \"hello; drop\"}\n"), paths: []string{prod + ".database.name"}},

	// Paths.
	{name: "app_path_relative", yaml: apiWith("branch: main\napp_path: srv/api\n"), paths: []string{prod + ".app_path"}},
	{name: "app_path_dotdot", yaml: apiWith("branch: main\napp_path: /srv/../etc\n"), paths: []string{prod + ".app_path"}},
	{name: "app_path_missing", yaml: apiWith("branch: main\n"), paths: []string{prod + ".app_path"}},
	{name: "state_path_relative", yaml: "state:\n  path: fraisier.db\n" + apiWith(base), paths: []string{"state.path"}},
	{name: "state_dir_relative", yaml: "state:\n  dir: var/fraisier\n" + apiWith(base), paths: []string{"state.dir"}},
	{name: "backup_dir_relative", yaml: apiWith(base + "database: {tool: alembic, backup_dir: backups}\n"), paths: []string{prod + ".database.backup_dir"}},
	{name: "shared_leaves_release", yaml: apiWith(base + "shared: [../etc/passwd, /etc/hosts, \"\"]\n"), paths: []string{prod + ".shared[0]", prod + ".shared[1]", prod + ".shared[2]"}},

	// Repositories.
	{name: "git_repo_owner_name_only", yaml: strings.Replace(apiWith(base), "https://github.com/acme/api.git", "acme/api", 1), paths: []string{prod + ".git_repo"}},
	{name: "git_repo_no_repository", yaml: strings.Replace(apiWith(base), "    repository: https://github.com/acme/api.git\n", "", 1), paths: []string{prod + ".git_repo"}},
	{name: "git_repo_not_clonable", yaml: apiWith(base + "git_repo: acme/api\n"), paths: []string{prod + ".git_repo"}},
	{name: "repository_invalid", yaml: strings.Replace(apiWith(base+"git_repo: /srv/git/api.git\n"), "https://github.com/acme/api.git", "not a repo", 1), paths: []string{"fraises.api.repository"}},

	// Units.
	{name: "unit_bad_characters", yaml: apiWith(base + "systemd_service: hello world.service\n"), paths: []string{prod + ".systemd_service"}},
	{name: "unit_slash", yaml: apiWith(base + "systemd_service: [ok, system/hello.service]\n"), paths: []string{prod + ".systemd_service[1]"}},
	{name: "unit_wrong_type", yaml: apiWith(base + "systemd_service: hello.socket\n"), paths: []string{prod + ".systemd_service"}},
	{name: "unit_template", yaml: apiWith(base + "systemd_service: hello@.service\n"), paths: []string{prod + ".systemd_service"}},
	{name: "unit_twice", yaml: apiWith(base + "systemd_service: [hello, hello.service]\n"), paths: []string{prod + ".systemd_service[1]"}},
	{name: "job_timer_suffix", yaml: scheduledWith(base + job + "    systemd_timer: nightly.service\n"), paths: []string{"fraises.cron.environments.production.jobs[0].systemd_timer"}},

	// Branches and tags.
	{name: "branch_space", yaml: apiWith("branch: my branch\napp_path: /srv/api\n"), paths: []string{prod + ".branch"}},
	{name: "branch_dash", yaml: apiWith("branch: \"-f\"\napp_path: /srv/api\n"), paths: []string{prod + ".branch"}},
	{name: "branch_dotdot", yaml: apiWith("branch: main..dev\napp_path: /srv/api\n"), paths: []string{prod + ".branch"}},
	{name: "branch_full_ref", yaml: apiWith("branch: refs/heads/main\napp_path: /srv/api\n"), paths: []string{prod + ".branch"}},
	{name: "branch_control", yaml: apiWith("branch: \"ma\\tin\"\napp_path: /srv/api\n"), paths: []string{prod + ".branch"}},
	{name: "branch_bad_glob", yaml: apiWith("branch: \"release/[0-9\"\napp_path: /srv/api\n"), paths: []string{prod + ".branch"}},
	{name: "tags_bad", yaml: apiWith(base + "tags: \"v* \"\n"), paths: []string{prod + ".tags"}},

	// Commands.
	{name: "argv_empty", yaml: apiWith(base + "install: {command: []}\n"), paths: []string{prod + ".install.command"}},
	{name: "argv_empty_program", yaml: apiWith(base + "install: {command: [\"\", sync]}\n"), paths: []string{prod + ".install.command[0]"}},
	{name: "argv_option_program", yaml: apiWith(base + "install: {command: [--frozen]}\n"), paths: []string{prod + ".install.command[0]"}},
	{name: "argv_shell_line", yaml: apiWith(base + "install: {command: [\"uv sync --frozen\"]}\n"), paths: []string{prod + ".install.command[0]"}},
	{name: "argv_everywhere", yaml: apiWith(base + "database:\n  tool: command\n  up: [\"-x\"]\n  down: []\n  backup: {command: [\"\"]}\nhealth_check: {command: [\"-v\"]}\n"),
		paths: []string{prod + ".database.up[0]", prod + ".database.down", prod + ".database.backup.command[0]", prod + ".health_check.command[0]"}},
	{name: "command_dir_and_env", yaml: apiWith(base + "install:\n  command: [make]\n  dir: ../build\n  env: {1BAD: x}\n"), paths: []string{prod + ".install.dir", prod + ".install.env.1BAD"}},
	{name: "command_required", yaml: apiWith(base + "install: {timeout: 5m}\n"), paths: []string{prod + ".install.command"}},

	// Health checks.
	{name: "health_no_target", yaml: apiWith(base + "health_check: {timeout: 5s}\n"), paths: []string{prod + ".health_check"}},
	{name: "health_two_targets", yaml: apiWith(base + "health_check: {url: \"http://127.0.0.1/\", tcp: \"127.0.0.1:80\"}\n"), paths: []string{prod + ".health_check.tcp"}},
	{name: "health_url_scheme", yaml: apiWith(base + "health_check: {url: \"ftp://127.0.0.1/\"}\n"), paths: []string{prod + ".health_check.url"}},
	{name: "health_url_no_host", yaml: apiWith(base + "health_check: {url: \"http:///health\"}\n"), paths: []string{prod + ".health_check.url"}},
	{name: "health_tcp", yaml: apiWith(base + "health_check: {tcp: localhost}\n"), paths: []string{prod + ".health_check.tcp"}},
	{name: "health_tcp_port", yaml: apiWith(base + "health_check: {tcp: \"localhost:99999\"}\n"), paths: []string{prod + ".health_check.tcp"}},
	{name: "health_tuning", yaml: apiWith(base + "health_check:\n  url: http://127.0.0.1:8000/\n  timeout: 0\n  interval: 0s\n  retries: -1\n  expect_status: 700\n"),
		paths: []string{prod + ".health_check.timeout", prod + ".health_check.interval", prod + ".health_check.retries", prod + ".health_check.expect_status"}},
	{name: "health_status_without_url", yaml: apiWith(base + "health_check: {tcp: \"127.0.0.1:80\", expect_status: 204}\n"), paths: []string{prod + ".health_check.expect_status"}},
	{name: "health_unit_without_units", yaml: apiWith(base + "health_check: {unit: true}\n"), paths: []string{prod + ".health_check.unit"}},
	{name: "health_defaults_two_targets", yaml: "defaults:\n  health_check: {unit: true, tcp: \"127.0.0.1:80\"}\n" + apiWith(base+"systemd_service: api\n"), paths: []string{"defaults.health_check.unit"}},

	// Databases.
	{name: "database_sql_needs_dir", yaml: apiWith(base + "database: {tool: sql}\n"), paths: []string{prod + ".database.dir"}},
	{name: "database_command_needs_up", yaml: apiWith(base + "database: {tool: command}\n"), paths: []string{prod + ".database.up"}},
	{name: "database_up_for_alembic", yaml: apiWith(base + "database: {tool: alembic, up: [make, migrate]}\n"), paths: []string{prod + ".database.up"}},
	{name: "database_tool_required", yaml: apiWith(base + "database: {dir: db}\n"), paths: []string{prod + ".database.tool"}},
	{name: "database_rebuild_protected", yaml: apiWith(base + "database: {tool: alembic, strategy: rebuild}\n"), paths: []string{prod + ".database.strategy"}},
	{name: "database_rebuild_prod", yaml: strings.Replace(apiWith(base+"protected: true\ndatabase: {tool: alembic, strategy: rebuild}\n"), "production:", "qa:", 1),
		paths: []string{"fraises.api.environments.qa.database.strategy"}},
	{name: "database_confiture_rebuild_needs_config", yaml: apiWith(base + "protected: false\ndatabase: {tool: confiture, strategy: rebuild}\n"), paths: []string{prod + ".database.config"}},
	{name: "database_program_other_tools", yaml: apiWith(base+"database: {tool: django, program: .venv/bin/django-admin}\n") + "      staging: {branch: dev, app_path: /srv/api-staging, database: {tool: sql, dir: db, program: /usr/bin/psql}}\n",
		paths: []string{prod + ".database.program", "fraises.api.environments.staging.database.program"}},
	{name: "database_python_unused", yaml: apiWith(base+"database: {tool: alembic, program: .venv/bin/alembic, python: .venv/bin/python}\n") + "      staging: {branch: dev, app_path: /srv/api-staging, database: {tool: confiture, python: python3}}\n",
		paths: []string{prod + ".database.python", "fraises.api.environments.staging.database.python"}},
	{name: "database_program_paths", yaml: apiWith(base+"database: {tool: alembic, program: ../shared/bin/alembic}\n") + "      qa: {branch: qa, app_path: /srv/api-qa, database: {tool: confiture, program: \"-x\"}}\n" +
		"      staging: {branch: dev, app_path: /srv/api-staging, database: {tool: django, python: \"python3 -X dev\"}}\n",
		paths: []string{prod + ".database.program", "fraises.api.environments.qa.database.program", "fraises.api.environments.staging.database.python"}},
	{name: "database_url_and_file", yaml: apiWith(base + "database: {tool: alembic, url: x, url_file: /run/db-url}\n"), paths: []string{prod + ".database.url_file"}},

	// Scheduled fraises.
	{name: "scheduled_no_jobs", yaml: scheduledWith(base), paths: []string{"fraises.cron.environments.production.jobs"}},
	{name: "job_schedule_and_calendar", yaml: scheduledWith(base + job + "    on_calendar: daily\n"), paths: []string{"fraises.cron.environments.production.jobs[0].on_calendar"}},
	{name: "job_no_schedule", yaml: scheduledWith(base + "jobs:\n  - name: nightly\n    command: [bin/nightly]\n"), paths: []string{"fraises.cron.environments.production.jobs[0]"}},
	{name: "job_bad_cron", yaml: scheduledWith(base + "jobs:\n  - {name: a, schedule: \"0 3 * * * *\", command: [a]}\n  - {name: b, schedule: \"61 * * * *\", command: [b]}\n  - {name: c, schedule: \"0 0 1 * mon\", command: [c]}\n"),
		paths: []string{"fraises.cron.environments.production.jobs[0].schedule", "fraises.cron.environments.production.jobs[1].schedule", "fraises.cron.environments.production.jobs[2].schedule"}},
	{name: "job_names_unique", yaml: scheduledWith(base + job + "  - {name: nightly, on_calendar: daily, command: [x]}\n"), paths: []string{"fraises.cron.environments.production.jobs[1].name"}},
	{name: "job_command_required", yaml: scheduledWith(base + "jobs: [{name: a, on_calendar: daily}]\n"), paths: []string{"fraises.cron.environments.production.jobs[0].command"}},

	// Fields for other fraise types.
	{name: "jobs_on_api", yaml: apiWith(base + job), paths: []string{prod + ".jobs"}},
	{name: "etl_fields_on_api", yaml: apiWith(base + "scripts: [a.py]\nrun_after_deploy: {command: [a]}\n"), paths: []string{prod + ".scripts", prod + ".run_after_deploy"}},
	{name: "service_fields_on_scheduled", yaml: scheduledWith(base + "systemd_service: cron\nhealth_check: {unit: true}\n" + job),
		paths: []string{"fraises.cron.environments.production.systemd_service", "fraises.cron.environments.production.health_check"}},

	// etl and shared code.
	{name: "etl_scripts", yaml: etlWith("branch: main\nshares_code_with: api/production\nscripts: [/usr/bin/x, ../x.py]\n"),
		paths: []string{"fraises.etl.environments.production.scripts[0]", "fraises.etl.environments.production.scripts[1]"}},
	{name: "shares_code_format", yaml: etlWith("branch: main\nshares_code_with: api\n"), paths: []string{"fraises.etl.environments.production.shares_code_with"}},
	{name: "shares_code_missing", yaml: etlWith("branch: main\nshares_code_with: api/staging\n"), paths: []string{"fraises.etl.environments.production.shares_code_with"}},
	{name: "shares_code_itself", yaml: etlWith("branch: main\nshares_code_with: etl/production\n"), paths: []string{"fraises.etl.environments.production.shares_code_with"}},
	{name: "shares_code_with_scheduled", yaml: scheduledWith(base+job) + "  etl:\n    type: etl\n    environments:\n      production: {branch: main, shares_code_with: cron/production}\n",
		paths: []string{"fraises.etl.environments.production.shares_code_with"}},
	{name: "shares_code_chain", yaml: etlWith("branch: main\nshares_code_with: api/production\n") + "      second: {branch: dev, shares_code_with: etl/production}\n",
		paths: []string{"fraises.etl.environments.second.shares_code_with"}},
	// The release belongs to the account of the environment that deploys
	// it: an environment sharing it must run as that account.
	{name: "shares_code_without_its_user", yaml: apiWith(base+"user: deploy\n") + "  etl:\n    type: etl\n    environments:\n      production: {branch: main, shares_code_with: api/production}\n",
		paths: []string{"fraises.etl.environments.production.shares_code_with"}},
	{name: "shares_code_other_group", yaml: apiWith(base+"user: deploy\ngroup: www-data\n") + "  etl:\n    type: etl\n    environments:\n      production: {branch: main, shares_code_with: api/production, user: deploy}\n",
		paths: []string{"fraises.etl.environments.production.shares_code_with"}},
	{name: "shares_code_user_of_its_own", yaml: etlWith("branch: main\nshares_code_with: api/production\nuser: etl\n"),
		paths: []string{"fraises.etl.environments.production.shares_code_with"}},
	{name: "shares_code_and_app_path", yaml: etlWith("branch: main\nshares_code_with: api/production\napp_path: /srv/etl\n"), paths: []string{"fraises.etl.environments.production.app_path"}},

	// Order: after: names environments that exist, not itself, once, and
	// with shares_code_with makes no cycle.
	{name: "after_format", yaml: apiWith(base + "after: [api, api/production/x, /production]\n"), paths: []string{prod + ".after[0]", prod + ".after[1]", prod + ".after[2]"}},
	{name: "after_unknown", yaml: apiWith(base + "after: [api/staging, web/production]\n"), paths: []string{prod + ".after[0]", prod + ".after[1]"}},
	{name: "after_itself", yaml: apiWith(base + "after: [api/production]\n"), paths: []string{prod + ".after[0]"}},
	{name: "after_twice", yaml: apiWith(base) + "      staging: {branch: dev, app_path: /srv/api-staging, after: [api/production, api/production]}\n",
		paths: []string{"fraises.api.environments.staging.after[1]"}},
	{name: "after_cycle", yaml: apiWith(base+"after: [api/staging]\n") + "      qa: {branch: qa, app_path: /srv/api-qa, after: [api/production]}\n      staging: {branch: dev, app_path: /srv/api-staging, after: [api/qa]}\n",
		paths: []string{"fraises.api.environments.qa.after[0]"}},
	{name: "after_self_loop_shared_code", yaml: strings.Replace(etlWith("branch: main\nshares_code_with: api/production\n"), "systemd_service: api\n", "systemd_service: api\n        after: [etl/production]\n", 1),
		paths: []string{"fraises.etl.environments.production.shares_code_with"}},

	// Users and groups.
	{name: "user_group_syntax", yaml: apiWith(base+"user: \"deploy user\"\ngroup: \"-wheel\"\n") + "      staging: {branch: dev, app_path: /srv/api-staging, user: \"4294967295\", group: " + strings.Repeat("g", 33) + "}\n",
		paths: []string{prod + ".user", prod + ".group", "fraises.api.environments.staging.user", "fraises.api.environments.staging.group"}},

	// Numbers and state.
	{name: "keep_releases_zero", yaml: apiWith(base + "keep_releases: 0\n"), paths: []string{prod + ".keep_releases"}},
	{name: "body_limit_bounds", yaml: "server: {body_limit: 100}\n" + apiWith(base), paths: []string{"server.body_limit"}},
	{name: "body_limit_too_big", yaml: "server: {body_limit: 104857600}\n" + apiWith(base), paths: []string{"server.body_limit"}},
	{name: "max_concurrent_zero", yaml: "server: {max_concurrent_deploys: 0}\n" + apiWith(base), paths: []string{"server.max_concurrent_deploys"}},
	{name: "server_listen", yaml: "server:\n  listen: \"8080\"\n  trusted_proxies: [10.0.0.0/8, not-an-ip]\n" + apiWith(base), paths: []string{"server.listen", "server.trusted_proxies[1]"}},
	{name: "state_two_places", yaml: "state: {path: /var/lib/fraisier/db, url: \"postgres://x\"}\n" + apiWith(base), paths: []string{"state.url"}},
	{name: "state_url_scheme", yaml: "state: {url: \"mysql://user:hunter2@db/fraisier\"}\n" + apiWith(base), paths: []string{"state.url"}},
	{name: "api_token_twice", yaml: "server: {api_token: api-token-0123456789, api_token_file: /run/token}\n" + apiWith(base), paths: []string{"server.api_token_file"}},

	// Forges and secrets.
	{name: "forge_without_secret", yaml: "git:\n  github: {}\n  gitlab: {secret: \"${GITLAB_SECRET:-}\"}\n" + apiWith(base), paths: []string{"git.github", "git.gitlab"}},
	{name: "forge_empty_secret", yaml: "git:\n  gitea: {secrets: [gitea-secret-0123456789, \"\"]}\n" + apiWith(base), paths: []string{"git.gitea.secrets[1]"}},
	{name: "allow_unsigned_true", yaml: "git:\n  gitea: {secret: a-gitea-secret-of-length, allow_unsigned: true}\n" + apiWith(base), paths: []string{"git.gitea.allow_unsigned"}},
	{name: "forge_unknown", yaml: strings.Replace(apiWith(base), "    repository:", "    forge: sourcehut\n    repository:", 1), paths: []string{"fraises.api.forge"}},
	{name: "forge_untellable", yaml: "git:\n  github: {secret: github-secret-0123456789}\n  gitlab: {secret: gitlab-token-0123456789}\n" + strings.Replace(apiWith(base+"git_repo: /srv/git/api.git\n"), "https://github.com/acme/api.git", "acme/api", 1),
		paths: []string{"fraises.api.forge"}},
	{name: "allow_unsigned_empty", yaml: "git:\n  gitea: {secret: gitea-secret-0123456789, allow_unsigned: {}}\n" + apiWith(base), paths: []string{"git.gitea.allow_unsigned"}},
	{name: "allow_unsigned_names", yaml: "git:\n  gitea:\n    allow_unsigned: {fraises: [api, nope], from: [10.0.0.0/8, not-an-address]}\n" + apiWith(base),
		paths: []string{"git.gitea.allow_unsigned.fraises[0]", "git.gitea.allow_unsigned.fraises[1]", "git.gitea.allow_unsigned.from[1]"}},
	{name: "secret_short", yaml: "git:\n  github: {secret: s3cret, secrets: [github-secret-0123456789, short]}\nserver: {api_token: abc}\n" +
		strings.Replace(apiWith(base), "    environments:", "    webhook: {secret: tiny}\n    environments:", 1),
		paths: []string{"git.github.secret", "git.github.secrets[1]", "server.api_token", "fraises.api.webhook.secret"}},
	{name: "secret_signing_key_short", yaml: "git:\n  gitlab: {secrets: [\"whsec_c2hvcnQta2V5\", \"whsec_!!!\", \"whsec_MDEyMzQ1Njc4OWFiY2RlZg==\"]}\n" + strings.Replace(apiWith(base), "    repository:", "    forge: gitlab\n    repository:", 1),
		paths: []string{"git.gitlab.secrets[0]", "git.gitlab.secrets[1]"}},
	{name: "secret_file_relative", yaml: "git:\n  github: {secret_file: github-webhook}\n" + apiWith(base), paths: []string{"git.github.secret_file"}},

	// Routing.
	{name: "route_same_branch", yaml: apiWith(base) + "      staging: {branch: main, app_path: /srv/api-staging}\n", paths: []string{"fraises.api.environments.staging.branch"}},
	{name: "route_glob_overlap", yaml: apiWith(base) + "      preview: {branch: \"*\", app_path: /srv/api-preview}\n", paths: []string{"fraises.api.environments.preview.branch"}},
	{name: "pull_requests_bad_glob", yaml: apiWith(base + "pull_requests: \"release/[0-9\"\nprotected: false\n"), paths: []string{prod + ".pull_requests"}},
	{name: "pull_requests_shell", yaml: apiWith(base + "pull_requests: \"ma;in\"\nprotected: false\n"), paths: []string{prod + ".pull_requests"}},
	{name: "pull_requests_inplace", yaml: apiWith(base + "pull_requests: develop\nlayout: inplace\nprotected: false\n"), paths: []string{prod + ".pull_requests"}},
	{name: "pull_requests_protected", yaml: apiWith(base + "pull_requests: \"release/*\"\n"), paths: []string{prod + ".pull_requests"}},
	{name: "pull_requests_protected_by_hand", yaml: strings.Replace(apiWith(base+"protected: true\npull_requests: develop\n"), "production:", "live:", 1),
		paths: []string{"fraises.api.environments.live.pull_requests"}},
	{name: "pull_requests_own_branch", yaml: strings.Replace(apiWith(base+"pull_requests: \"ma*\"\n"), "production:", "staging:", 1),
		paths: []string{"fraises.api.environments.staging.pull_requests"}},
	{name: "pull_requests_own_branch_glob", yaml: strings.Replace(apiWith("branch: \"release/*\"\napp_path: /srv/api\npull_requests: release/2\n"), "production:", "staging:", 1),
		paths: []string{"fraises.api.environments.staging.pull_requests"}},
	{name: "pull_requests_overlap", yaml: apiWith(base+"pull_requests: release/1\nprotected: false\n") + "      preview: {branch: preview, pull_requests: \"release/*\", app_path: /srv/api-preview}\n",
		paths: []string{"fraises.api.environments.preview.pull_requests"}},
	{name: "pull_requests_shares_code", yaml: etlWith("branch: main\nshares_code_with: api/production\npull_requests: main\n"), paths: []string{"fraises.etl.environments.production.pull_requests"}},
	{name: "route_tags_overlap", yaml: apiWith(base+"tags: \"v*\"\n") + "      staging: {branch: dev, tags: v1.0, app_path: /srv/api-staging}\n", paths: []string{"fraises.api.environments.staging.tags"}},
	{name: "route_same_app_path", yaml: apiWith(base) + "  other:\n    type: api\n    repository: https://github.com/acme/other.git\n    environments:\n      production: {branch: main, app_path: /srv/api/}\n",
		paths: []string{"fraises.other.environments.production.app_path"}},
	{name: "route_nested_app_path", yaml: apiWith(base) + "      staging: {branch: dev, app_path: /srv/api/staging}\n", paths: []string{"fraises.api.environments.staging.app_path"}},
	{name: "route_same_unit", yaml: apiWith(base+"systemd_service: api\n") + "      staging: {branch: dev, app_path: /srv/api-staging, systemd_service: api.service}\n",
		paths: []string{"fraises.api.environments.staging.systemd_service"}},
}

func TestRules(t *testing.T) {
	runRuleCases(t, ruleCases)
}

// runRuleCases checks each case's problem paths and its golden report.
func runRuleCases(t *testing.T, cases []ruleCase) {
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			_, err := Parse("fraises.yaml", []byte(tc.yaml), Options{
				LookupEnv: mapEnv(tc.env),
				ReadFile:  noFiles,
			})
			var cerr *Error
			if !errors.As(err, &cerr) {
				t.Fatalf("got error %v, want *Error; input:\n%s", err, tc.yaml)
			}
			var paths []string
			for _, p := range cerr.Problems {
				paths = append(paths, p.Path)
			}
			if diff := cmp.Diff(tc.paths, paths); diff != "" {
				t.Errorf("problem paths (-want +got):\n%s\nreport:\n%s\ninput:\n%s", diff, err, tc.yaml)
			}
			golden(t, filepath.Join("testdata", "rules", tc.name+".golden"), err.Error()+"\n")
		})
	}
}

// golden compares got with the file, or rewrites the file with -update.
func golden(t *testing.T, file, got string) {
	t.Helper()
	if *update {
		if err := os.MkdirAll(filepath.Dir(file), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(file, []byte(got), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	want, err := os.ReadFile(file)
	if err != nil {
		t.Fatalf("%v (run go test -update to create it)", err)
	}
	if diff := cmp.Diff(string(want), got); diff != "" {
		t.Errorf("%s differs (-golden +got):\n%s", file, diff)
	}
}

func mapEnv(m map[string]string) func(string) (string, bool) {
	return func(k string) (string, bool) {
		v, ok := m[k]
		return v, ok
	}
}

func noFiles(name string) ([]byte, error) {
	return nil, &os.PathError{Op: "open", Path: name, Err: os.ErrNotExist}
}

// TestValid lists configurations that are right, including the edge of
// every rule above.
func TestValid(t *testing.T) {
	cases := []struct{ name, yaml string }{
		{"minimal", apiWith(base)},
		{"bare_unit_name", apiWith(base + "systemd_service: [api, api-worker.service, api@1]\n")},
		{"glob_branches", apiWith("branch: \"release/*\"\napp_path: /srv/api\n") + "      staging: {branch: main, app_path: /srv/api-staging}\n"},
		{"same_branch_manual", apiWith(base) + "      staging: {branch: main, auto_deploy: false, app_path: /srv/api-staging}\n"},
		{"rebuild_unprotected", apiWith(base + "protected: false\ndatabase: {tool: alembic, strategy: rebuild}\n")},
		{"rebuild_staging", strings.Replace(apiWith(base+"database: {tool: django, strategy: rebuild}\n"), "production:", "staging:", 1)},
		{"null_sections", "git:\nserver:\n" + apiWith(base+"database:\nhealth_check:\n")},
		{"x_keys", "x-anything: {whatever: [1, 2]}\n" + apiWith(base)},
		{"durations", apiWith(base + "timeouts: {fetch: 90, install: 5m, migrate: \"1h30m\", deploy: \"${DEPLOY_TIMEOUT:-600}\"}\n")},
		{"health_retries_zero", apiWith(base + "health_check: {tcp: \"127.0.0.1:5432\", retries: 0}\n")},
		{"command_database", apiWith(base + "database: {tool: command, up: [bin/migrate, up], down: [bin/migrate, down, \"{revision}\"], current: [bin/migrate, current]}\n")},
		{"unsigned_forge", "git:\n  gitea: {allow_unsigned: {from: [10.0.0.0/8, 192.0.2.1]}}\n" + apiWith(base)},
		{"run_as_user", apiWith(base+"user: deploy\ngroup: www-data\n") + "      staging: {branch: dev, app_path: /srv/api-staging, user: \"1001\", group: \"1001\"}\n"},
		{"own_directory", "state: {path: /var/lib/fraisier/state.db, dir: /var/lib/fraisier}\n" + apiWith(base)},
		{"explicit_forge", strings.Replace(apiWith(base), "    repository:", "    forge: gitlab\n    repository:", 1)},
		{"pull_request_preview", apiWith(base) + "      preview: {branch: preview, pull_requests: main, app_path: /srv/api-preview}\n"},
		{"open_api_and_metrics", "server: {listen: \"0.0.0.0:8080\", open_api: true, open_metrics: true}\n" + apiWith(base)},
		{"shares_code_same_user", apiWith(base+"user: deploy\ngroup: www-data\n") + "  etl:\n    type: etl\n    environments:\n      production: {branch: main, shares_code_with: api/production, user: deploy, group: www-data}\n"},
		{"scheduled_shares_code", apiWith(base) + "  cron:\n    type: scheduled\n    environments:\n      production:\n        branch: main\n        shares_code_with: api/production\n" + indent(job, 8)},
		{"cron_macros", scheduledWith(base + "jobs:\n  - {name: a, schedule: \"@daily\", command: [a]}\n  - {name: b, schedule: \"*/15 9-17 * * mon-fri\", command: [b]}\n")},
		{"different_scopes_same_unit", apiWith(base+"systemd_service: api\n") + "      staging: {branch: dev, scope: user, app_path: /srv/api-staging, systemd_service: api}\n"},
		{"after_chain", etlWith("branch: main\nshares_code_with: api/production\nafter: [api/production]\n") + "  web:\n    type: api\n    repository: acme/web\n    environments:\n      production: {branch: main, git_repo: /srv/git/web.git, app_path: /srv/web, after: [etl/production, api/production]}\n"},
		{"confiture_rebuild", apiWith(base + "protected: false\ndatabase: {tool: confiture, strategy: rebuild, config: db/environments/production.yaml}\n")},
		{"migration_programs", apiWith(base+"database: {tool: alembic, program: .venv/bin/alembic}\n") + "      qa: {branch: qa, app_path: /srv/api-qa, protected: false, database: {tool: confiture, strategy: rebuild, config: db/environments/qa.yaml, program: /opt/confiture/bin/confiture}}\n" +
			"      staging: {branch: dev, app_path: /srv/api-staging, database: {tool: django, python: venv/bin/python3}}\n"},
		{"literal_dollar", apiWith(base + "install: {command: [sh, -c, \"echo $$HOME costs $5\"]}\n")},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			if _, err := Parse("fraises.yaml", []byte(tc.yaml), Options{LookupEnv: mapEnv(nil), ReadFile: noFiles}); err != nil {
				t.Errorf("unexpected problems:\n%v\ninput:\n%s", err, tc.yaml)
			}
		})
	}
}
