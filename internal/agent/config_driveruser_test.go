package agent

import (
	"strings"
	"testing"
)

func TestParseConfigDriverUser(t *testing.T) {
	e := newConfigEnv(t)
	src := strings.Replace(e.render(validConfig), `env      = { GREETING = "hello" }`, `env      = { GREETING = "hello" }
    user     = "nobody"`, 1)
	cfg, err := ParseConfig("agent.hcl", []byte(src))
	if err != nil {
		t.Fatalf("config with an exec user refused: %v", err)
	}
	if got := cfg.Workloads[0].Exec.User; got != "nobody" {
		t.Fatalf("exec user = %q, want nobody", got)
	}
	_, err = ParseConfig("agent.hcl", []byte(strings.Replace(src, `"nobody"`, `"no-such-user-cg"`, 1)))
	if err == nil || !strings.Contains(err.Error(), "Unknown user") || !strings.Contains(err.Error(), "agent.hcl:") {
		t.Fatalf("config with an unknown exec user: %v, want an Unknown user error with its position", err)
	}
}

func TestParseConfigQEMUUser(t *testing.T) {
	e := newConfigEnv(t)
	src := e.render(`node = "n2"
listen = "127.0.0.1:7420"
shared_volume = "{{volume}}"
token_file = "{{token}}"

workload "vm" {
  driver = "qemu"
  paths  = ["vms/vm"]
  qemu {
    disks = ["root.qcow2"]
    user  = "nobody"
  }
}
`)
	cfg, err := ParseConfig("agent.hcl", []byte(src))
	if err != nil {
		t.Fatal(err)
	}
	if got := cfg.Workloads[0].QEMU.User; got != "nobody" {
		t.Fatalf("qemu user = %q, want nobody", got)
	}
	_, err = ParseConfig("agent.hcl", []byte(strings.Replace(src, `"nobody"`, `""`, 1)))
	if err == nil || !strings.Contains(err.Error(), "Empty user") {
		t.Fatalf("config with an empty qemu user: %v, want an Empty user error", err)
	}
}
