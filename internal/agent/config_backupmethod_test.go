package agent

import (
	"strings"
	"testing"
)

// backup_method picks how a PostgreSQL workload's application-consistent
// copies are taken; anything but "online" or "freeze" is refused where it
// is written.
func TestParseConfigPostgresBackupMethod(t *testing.T) {
	e := newConfigEnv(t)
	conf := func(method string) string {
		return e.render(`node = "n2"
listen = "127.0.0.1:7420"
shared_volume = "{{volume}}"
token_file = "{{token}}"

workload "db" {
  driver = "postgresql"
  paths  = ["db/data"]
  postgresql {
    port          = 5433
` + method + `
  }
}
`)
	}
	for method, want := range map[string]string{"": "", `backup_method = "online"`: "online", `backup_method = "freeze"`: "freeze"} {
		cfg, err := ParseConfig("agent.hcl", []byte(conf(method)))
		if err != nil {
			t.Fatalf("%s: %v", method, err)
		}
		if got := cfg.Workloads[0].Postgres.BackupMethod; got != want {
			t.Errorf("%q: backup method %q, want %q", method, got, want)
		}
	}
	_, err := ParseConfig("agent.hcl", []byte(conf(`backup_method = "snapshot"`)))
	if err == nil || !strings.Contains(err.Error(), "agent.hcl:11:") || !strings.Contains(err.Error(), `use "online"`) {
		t.Fatalf("backup_method = \"snapshot\": %v, want an error at its line naming the choices", err)
	}
}
