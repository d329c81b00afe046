package systemd

import "context"

// Reload asks units to reload their configuration (systemctl reload), as
// a proxy in front of a blue/green service does when its upstream moves.
func (m *Manager) Reload(ctx context.Context, units ...string) error {
	return m.job(ctx, "reload", nil, units)
}
