package main

// BLUE/GREEN: the place to fill in once restart: blue_green is merged.
//
// prepareBlueGreen must, for the environment named "blue_green":
//   - write the template unit (app@.service, or app@blue and app@green on
//     two ports) with w.serviceUnit's [Unit] settings, and the proxy's
//     configuration (nginx or Caddy, as fraisier's blue/green expects);
//   - set m.front to the proxy: its port is where the load goes, its
//     app_path and unit what w.environment writes for the environment
//     (extend w.environment with the environment's proxy lines);
//   - leave m.skip empty.
//
// Until then it marks the mode as not measured, saying why: fraisier's
// own refusal while its configuration does not know restart: blue_green.
func (w *world) prepareBlueGreen(m *mode) error {
	probe := side{app: w.root + "/srv/blue_green", unit: w.mgr.Unit("blue_green.service"), port: 1}
	if why := w.restartUnknown("blue_green", probe); why != "" {
		m.skip = "fraisier's config does not know restart: blue_green yet (" + why + ")"
		return nil
	}
	m.skip = "fraisier knows restart: blue_green, but zdbench's blue/green setup (its units and proxy, bench/zdbench/bluegreen.go) is not written yet"
	return nil
}
