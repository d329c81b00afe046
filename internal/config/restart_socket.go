package config

// Restart modes: how a new release takes over from the one serving.
const (
	// RestartPlain restarts the environment's units.
	RestartPlain = "plain"
	// RestartSocket restarts them while their systemd socket units keep
	// listening, so that new connections wait in the kernel's queue.
	RestartSocket = "socket"
)

// restartDefault gives e the plain restart unless it chose a mode.
func restartDefault(e *Environment) { setIfZero(&e.Restart, RestartPlain) }

// HandsOffSocket reports whether e's services keep their systemd socket
// listening across a restart (restart: socket).
func (e *Environment) HandsOffSocket() bool { return e.Restart == RestartSocket }

// validateRestartSocket checks restart: socket: a socket is handed to a
// service unit fraisier restarts (systemd_service, which holds .service
// units only), so the environment needs one.
func (l *loader) validateRestartSocket(path string, f *Fraise, e *Environment) {
	if e.Restart != RestartSocket {
		return
	}
	at := path + ".restart"
	if !l.has(at) {
		at = path
	}
	switch {
	case f.Type == TypeScheduled:
		l.report(at, "restart: socket is for api and etl fraises: a scheduled fraise restarts no service",
			"remove restart: socket")
	case len(e.SystemdService) == 0:
		l.report(at, "restart: socket keeps a service's socket listening while fraisier restarts it, and this environment names no systemd_service",
			"add systemd_service: the service its NAME.socket unit starts, or remove restart: socket")
	}
}
