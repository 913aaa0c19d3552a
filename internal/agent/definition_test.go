package agent

import (
	"encoding/json"
	"strings"
	"testing"

	"github.com/clusterguard/terraform-provider-clusterguard/internal/agent/api"
)

// A recorded definition keeps the driver settings needed to recreate the
// workload and none of its secrets: environment values, password-looking
// command arguments and QEMU extra arguments.
func TestDefinitionOfLeavesSecretsOut(t *testing.T) {
	t.Parallel()
	const secret = "hunter2-very-secret"
	exec := WorkloadConfig{Name: "app", Driver: "exec", Paths: []string{"apps/app"}, Exec: &ExecSettings{
		Commands: map[string][]string{"status": {"/bin/app", "status"}, "start": {"/bin/app", "start", "--password=" + secret}},
		Env:      map[string]string{"APP_TOKEN": secret, "APP_MODE": "prod"}, User: "app"}}
	qemu := WorkloadConfig{Name: "vm", Driver: "qemu", Paths: []string{"vms/vm"}, QEMU: &QEMUSettings{Disks: []string{"root.qcow2"},
		Memory: "4G", CPUs: 2, ExtraArgs: []string{"-object", "secret,id=sec0,data=" + secret, "-vga", "none"}}}
	pg := WorkloadConfig{Name: "db", Driver: "postgresql", Paths: []string{"db/data"}, Postgres: &PostgresSettings{Port: 5433, User: "postgres"}}
	for _, c := range []WorkloadConfig{exec, qemu, pg} {
		d := definitionOf(c)
		raw, _ := json.Marshal(d)
		if strings.Contains(string(raw), secret) {
			t.Fatalf("%s: recorded definition holds the secret: %s", c.Name, raw)
		}
		if d.Driver != c.Driver || d.Paths[0] != c.Paths[0] {
			t.Fatalf("%s: definition %s", c.Name, raw)
		}
	}
	e := definitionOf(exec).Exec
	if strings.Join(e.Commands["start"], " ") != "/bin/app start "+api.Redacted || strings.Join(e.EnvNames, ",") != "APP_MODE,APP_TOKEN" || e.User != "app" {
		t.Fatalf("exec definition %+v", e)
	}
	q := definitionOf(qemu).QEMU
	if q.Memory != "4G" || q.CPUs != 2 || q.Disks[0] != "root.qcow2" || strings.Join(q.ExtraArgs, " ") != "-object "+api.Redacted+" -vga none" {
		t.Fatalf("qemu definition %+v", q)
	}
	if p := definitionOf(pg).Postgres; p.Port != 5433 || p.User != "postgres" {
		t.Fatalf("postgresql definition %+v", p)
	}
}
