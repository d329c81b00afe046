// Package polkit is what fraisier says to and asks of polkit for the
// system-units privilege model: the rule that lets one unprivileged user
// restart, stop and reset exactly the system units fraises.yaml names
// (rendered from the configuration, written atomically), and whether this
// process may restart a unit, asked without restarting it.
//
// polkit does not let an unprivileged process ask it about a unit
// directly (CheckAuthorization refuses details from untrusted callers), so
// the question goes to systemd on the system bus, which asks polkit as the
// action's owner; see MayRestart.
package polkit
