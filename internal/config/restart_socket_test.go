package config

import (
	"testing"
)

func TestRestartSocketRules(t *testing.T) {
	runRuleCases(t, []ruleCase{
		{name: "restart_socket_no_service", yaml: apiWith(base + "restart: socket\n"), paths: []string{prod + ".restart"}},
		{name: "restart_socket_scheduled", yaml: scheduledWith(base + "restart: socket\n" + job), paths: []string{"fraises.cron.environments.production.restart"}},
		{name: "restart_unknown_mode", yaml: apiWith(base + "restart: sockets\nsystemd_service: api\n"), paths: []string{prod + ".restart"}},
	})
}

func TestRestartSocketValid(t *testing.T) {
	for name, tc := range map[string]struct{ yaml, want string }{
		"default plain": {apiWith(base + "systemd_service: api\n"), RestartPlain},
		"socket":        {apiWith(base + "systemd_service: [api, worker.service]\nrestart: socket\n"), RestartSocket},
		"etl socket":    {etlWith("branch: main\nshares_code_with: api/production\nsystemd_service: etl\nrestart: socket\n"), RestartPlain},
	} {
		t.Run(name, func(t *testing.T) {
			cfg, err := Parse("fraises.yaml", []byte(tc.yaml), Options{LookupEnv: mapEnv(nil), ReadFile: noFiles})
			if err != nil {
				t.Fatalf("unexpected problems:\n%v\ninput:\n%s", err, tc.yaml)
			}
			if got := cfg.Fraises["api"].Environments["production"].Restart; got != tc.want {
				t.Errorf("api restart %q, want %q", got, tc.want)
			}
			if etl := cfg.Fraises["etl"]; etl != nil && !etl.Environments["production"].HandsOffSocket() {
				t.Errorf("etl restart %q, want socket", etl.Environments["production"].Restart)
			}
		})
	}
}
