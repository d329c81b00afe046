// Package config reads fraises.yaml: it finds the file, expands ${VAR}
// references in scalar values, decodes it strictly and validates it,
// reporting every problem at once with its file:line:col.
//
// # Loading
//
// Find picks the file (--config, $FRAISIER_CONFIG, ./fraises.yaml,
// /etc/fraisier/fraises.yaml) and Load reads it in five passes:
//
//  1. parse the YAML into an AST (anchors, aliases and << merge keys work,
//     and top-level keys starting with x- are ignored so that they can hold
//     anchors for the rest of the file);
//  2. decode the AST into the structs of types.go, driven by their tags,
//     expanding ${VAR}, ${VAR:-default}, ${VAR:?message} and $$ in scalar
//     values only, never in keys, and only after parsing, so that a
//     variable can never add keys or structure;
//  3. read the *_file secrets (relative names are systemd credentials in
//     $CREDENTIALS_DIRECTORY, or, outside the unit, in the directory it
//     loads them from: Options.Credentials);
//  4. apply the defaults section, then the built-in defaults;
//  5. validate.
//
// All problems of all passes come back together in an *Error.
//
// # Webhook routing
//
// A push routes to every environment whose fraise is on the forge that
// delivered it (Fraise.ForgeKind), whose fraise's repository (or, when
// the fraise names none, whose git_repo) is the pushed repository, whose
// auto_deploy is on, and whose branch pattern matches the pushed branch
// (or, for a tag push, whose tags pattern matches the tag; tag pushes
// deploy nowhere else). Repositories are compared after
// NormalizeRepository: host, owner and name in lower case, without scheme,
// user, port or .git, so https://, ssh:// and git@host: forms are equal; a
// bare owner/name matches that owner/name on any host. Patterns are
// path.Match globs, in which * does not cross /.
//
// Several fraises may deploy from one push (an api and an etl built from
// the same repository); that is what the rule is for. Two things are
// errors, because no push could then mean one thing:
//
//   - two auto-deploy environments of the same fraise whose branch (or tags)
//     patterns overlap: equal patterns, or a literal name that the other's
//     glob matches (staging and production both on main). Two different
//     globs are not compared;
//   - two environments, of any fraises, whose app_path is the same or one
//     inside the other: they would overwrite each other. An etl or
//     scheduled environment that needs another's code says so with
//     shares_code_with: fraise/environment and has no app_path of its own.
//
// Two environments restarting the same systemd unit (in the same scope)
// are refused for the same reason. Config.Match applies this rule; the
// webhook router uses it rather than re-implementing it.
//
// # Unit names
//
// systemd_service takes unit names as systemctl does: a name without a
// unit-type suffix gets .service (jobs' systemd_timer gets .timer), and the
// stored value always carries the suffix. Any other suffix is an error.
package config
