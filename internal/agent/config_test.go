package agent

import (
	"errors"
	"fmt"
	"log/slog"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// configEnv is a directory with a shared volume and a token file, so test configs
// can refer to real files.
type configEnv struct {
	dir, volume, tokenFile, program string
}

func newConfigEnv(t *testing.T) configEnv {
	t.Helper()
	dir := t.TempDir()
	e := configEnv{dir: dir, volume: filepath.Join(dir, "shared"), tokenFile: filepath.Join(dir, "agent.token"), program: "/bin/true"}
	if err := os.MkdirAll(filepath.Join(e.volume, "apps", "web"), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(e.tokenFile, []byte("  0123456789abcdef0123456789abcdef\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	return e
}

// render fills {{volume}}, {{token}}, {{dir}} and {{prog}} in a config template.
func (e configEnv) render(tmpl string) string {
	return strings.NewReplacer("{{volume}}", e.volume, "{{token}}", e.tokenFile, "{{dir}}", e.dir, "{{prog}}", e.program).Replace(tmpl)
}

const validConfig = `node          = "node-1"
listen        = "127.0.0.1:0"
shared_volume = "{{volume}}"
state_dir     = "{{dir}}/state"
token_file    = "{{token}}"
log_level     = "debug"

workload "web" {
  driver = "exec"
  paths  = ["apps/web", "apps/./web-logs"]
  exec {
    status   = ["{{prog}}", "status"]
    start    = ["{{prog}}", "start"]
    stop     = ["{{prog}}", "stop"]
    timeout  = "10s"
    timeouts = { status = "2s", quiesce = "1m" }
    env      = { GREETING = "hello" }
  }
}
`

func TestParseConfigValid(t *testing.T) {
	e := newConfigEnv(t)
	cfg, err := ParseConfig("agent.hcl", []byte(e.render(validConfig)))
	if err != nil {
		t.Fatalf("valid config refused: %v", err)
	}
	if cfg.Node != "node-1" || cfg.Listen != "127.0.0.1:0" || cfg.SharedVolume != e.volume || cfg.StateDir != filepath.Join(e.dir, "state") {
		t.Errorf("unexpected top-level fields: %+v", cfg)
	}
	if cfg.Token.Reveal() != "0123456789abcdef0123456789abcdef" {
		t.Errorf("token not trimmed: %q", cfg.Token.Reveal())
	}
	if got := fmt.Sprintf("%v %+v %#v", cfg.Token, cfg.Token, cfg.Token); strings.Contains(got, "0123") {
		t.Errorf("token printed: %s", got)
	}
	if cfg.LogLevel != slog.LevelDebug {
		t.Errorf("log level = %v", cfg.LogLevel)
	}
	if len(cfg.Workloads) != 1 {
		t.Fatalf("workloads = %+v", cfg.Workloads)
	}
	w := cfg.Workloads[0]
	if w.Name != "web" || w.Driver != "exec" {
		t.Errorf("workload = %+v", w)
	}
	if want := []string{"apps/web", "apps/web-logs"}; strings.Join(w.Paths, ",") != strings.Join(want, ",") {
		t.Errorf("paths = %v, want %v", w.Paths, want)
	}
	if w.AbsPaths[0] != filepath.Join(e.volume, "apps", "web") {
		t.Errorf("abs paths = %v", w.AbsPaths)
	}
	x := w.Exec
	if x == nil || len(x.Commands) != 3 || x.Commands[ActionStatus][1] != "status" {
		t.Fatalf("exec commands = %+v", x)
	}
	if x.Timeout != 10*time.Second || x.Timeouts[ActionStatus] != 2*time.Second || x.Timeouts[ActionQuiesce] != time.Minute {
		t.Errorf("timeouts = %v %v", x.Timeout, x.Timeouts)
	}
	if x.Env["GREETING"] != "hello" {
		t.Errorf("env = %v", x.Env)
	}
	if len(cfg.Warnings) != 0 {
		t.Errorf("unexpected warnings: %v", cfg.Warnings)
	}
}

func TestParseConfigDefaults(t *testing.T) {
	e := newConfigEnv(t)
	src := e.render(`node = "n2"
listen = "127.0.0.1:7420"
shared_volume = "{{volume}}"
token_file = "{{token}}"
`)
	cfg, err := ParseConfig("agent.hcl", []byte(src))
	if err != nil {
		t.Fatal(err)
	}
	cache, err := os.UserCacheDir()
	if err != nil {
		t.Skip("no user cache dir on this machine")
	}
	if want := filepath.Join(cache, "clusterguard", "agent", "n2"); cfg.StateDir != want {
		t.Errorf("state dir = %q, want %q", cfg.StateDir, want)
	}
	if cfg.LogLevel != slog.LevelInfo || cfg.TLS != nil || len(cfg.Workloads) != 0 {
		t.Errorf("defaults = %+v", cfg)
	}
}

func TestParseConfigPostgres(t *testing.T) {
	e := newConfigEnv(t)
	src := e.render(`node = "n2"
listen = "127.0.0.1:7420"
shared_volume = "{{volume}}"
token_file = "{{token}}"

workload "db" {
  driver = "postgresql"
  paths  = ["db/data"]
  postgresql {
    port          = 5433
    user          = "root"
    database_user = "app"
    timeout       = "2m"
  }
}
`)
	cfg, err := ParseConfig("agent.hcl", []byte(src))
	if err != nil {
		t.Fatal(err)
	}
	w := cfg.Workloads[0]
	if w.Postgres == nil || w.Postgres.Port != 5433 || w.Postgres.User != "root" || w.Postgres.DatabaseUser != "app" || w.Postgres.Timeout != 2*time.Minute || w.Exec != nil {
		t.Fatalf("postgresql workload = %+v, settings %+v", w, w.Postgres)
	}
	if w.AbsPaths[0] != filepath.Join(e.volume, "db", "data") {
		t.Errorf("data directory = %q", w.AbsPaths[0])
	}
}

func TestParseConfigQEMU(t *testing.T) {
	if _, err := exec.LookPath("qemu-system-x86_64"); err != nil {
		t.Fatal("qemu-system-x86_64 not found: install QEMU (Debian packages qemu-system-x86 and qemu-utils; .ci/run does)")
	}
	e := newConfigEnv(t)
	src := e.render(`node = "n2"
listen = "127.0.0.1:7420"
shared_volume = "{{volume}}"
token_file = "{{token}}"

workload "vm" {
  driver = "qemu"
  paths  = ["vms/vm"]
  qemu {
    disks            = ["root.qcow2", "data.img"]
    memory           = "1G"
    cpus             = 2
    extra_args       = ["-nic", "none"]
    shutdown_timeout = "2m"
  }
}
`)
	cfg, err := ParseConfig("agent.hcl", []byte(src))
	if err != nil {
		t.Fatal(err)
	}
	q := cfg.Workloads[0].QEMU
	if q == nil || strings.Join(q.Disks, ",") != "root.qcow2,data.img" || q.Memory != "1G" || q.CPUs != 2 ||
		strings.Join(q.ExtraArgs, " ") != "-nic none" || q.ShutdownTimeout != 2*time.Minute || q.Binary != "qemu-system-x86_64" {
		t.Fatalf("qemu settings = %+v", q)
	}
}

func TestParseConfigInvalid(t *testing.T) {
	cases := []struct {
		name    string
		old     string // replaced in validConfig ...
		new     string // ... by this
		setup   func(t *testing.T, e configEnv)
		wantPos string // file:line:col of the first problem
		want    string // part of the message saying what to fix
	}{
		{name: "missing node", old: `node          = "node-1"`, new: ``,
			wantPos: "agent.hcl:1:", want: `The argument "node" is required`},
		{name: "bad node name", old: `"node-1"`, new: `"node 1"`,
			wantPos: "agent.hcl:1:17", want: "not a usable node name"},
		{name: "bad listen address", old: `"127.0.0.1:0"`, new: `"localhost"`,
			wantPos: "agent.hcl:2:17", want: `use e.g. "127.0.0.1:7420"`},
		{name: "listen port out of range", old: `"127.0.0.1:0"`, new: `"127.0.0.1:70000"`,
			wantPos: "agent.hcl:2:17", want: "from 0 to 65535"},
		{name: "missing token file", old: `"{{token}}"`, new: `"{{dir}}/nope.token"`,
			wantPos: "agent.hcl:5:17", want: "openssl rand -hex 32"},
		{name: "token too short", setup: func(t *testing.T, e configEnv) { writeFile(t, e.tokenFile, "short\n") },
			wantPos: "agent.hcl:5:17", want: "at least 16 characters"},
		{name: "relative shared volume", old: `"{{volume}}"`, new: `"shared"`,
			wantPos: "agent.hcl:3:17", want: "is relative; give the absolute path"},
		{name: "shared volume missing", old: `"{{volume}}"`, new: `"{{dir}}/missing"`,
			wantPos: "agent.hcl:3:17", want: "does not exist"},
		{name: "shared volume is a file", old: `"{{volume}}"`, new: `"{{token}}"`,
			wantPos: "agent.hcl:3:17", want: "is not a directory"},
		{name: "relative state dir", old: `"{{dir}}/state"`, new: `"state"`,
			wantPos: "agent.hcl:4:17", want: "give an absolute node-local directory"},
		{name: "bad log level", old: `"debug"`, new: `"verbose"`,
			wantPos: "agent.hcl:6:17", want: "use one of debug, info, warn, error"},
		{name: "bad duration", old: `timeout  = "10s"`, new: `timeout  = "10 seconds"`,
			wantPos: "agent.hcl:15:16", want: `write it like "5s"`},
		{name: "negative duration", old: `timeout  = "10s"`, new: `timeout  = "-1s"`,
			wantPos: "agent.hcl:15:16", want: "not a positive duration"},
		{name: "bad per-command duration", old: `quiesce = "1m"`, new: `quiesce = "soon"`,
			wantPos: "agent.hcl:16:43", want: `timeouts.quiesce = "soon"`},
		{name: "unknown command in timeouts", old: `quiesce = "1m"`, new: `freeze = "1m"`,
			wantPos: "agent.hcl:16:33", want: "use status, start, stop, quiesce, thaw, pause or resume"},
		{name: "unknown driver", old: `driver = "exec"`, new: `driver = "docker"`,
			wantPos: "agent.hcl:9:12", want: `use one of: exec, postgresql, qemu`},
		{name: "qemu without its block", old: "", new: "workload \"vm\" {\n  driver = \"qemu\"\n  paths = [\"vms/vm\"]\n}\n",
			wantPos: "agent.hcl:20:1", want: `add a qemu block with at least its disk images`},
		{name: "qemu disk escaping", old: "", new: "workload \"vm\" {\n  driver = \"qemu\"\n  paths = [\"vms/vm\"]\n  qemu { disks = [\"../other.qcow2\"] }\n}\n",
			wantPos: "agent.hcl:23:18", want: `must be relative to the workload's first path and stay inside it`},
		{name: "qemu binary missing", old: "", new: "workload \"vm\" {\n  driver = \"qemu\"\n  paths = [\"vms/vm\"]\n  qemu {\n    disks = [\"d.qcow2\"]\n    binary = \"/no/qemu\"\n  }\n}\n",
			wantPos: "agent.hcl:25:14", want: `install QEMU`},
		{name: "postgresql without its block", old: "", new: "workload \"db\" {\n  driver = \"postgresql\"\n  paths = [\"db/data\"]\n}\n",
			wantPos: "agent.hcl:20:1", want: `add a postgresql block with at least the server's port`},
		{name: "postgresql with an exec block", old: "", new: "workload \"db\" {\n  driver = \"postgresql\"\n  paths = [\"db/data\"]\n  postgresql { port = 5432 }\n  exec { status = [\"/bin/true\"] }\n}\n",
			wantPos: "agent.hcl:24:3", want: `exec settings only apply to driver "exec"`},
		{name: "postgresql bad port", old: "", new: "workload \"db\" {\n  driver = \"postgresql\"\n  paths = [\"db/data\"]\n  postgresql { port = 99999 }\n}\n",
			wantPos: "agent.hcl:23:23", want: `not a TCP port`},
		{name: "postgresql bad bin_dir", old: "", new: "workload \"db\" {\n  driver = \"postgresql\"\n  paths = [\"db/data\"]\n  postgresql {\n    port = 5432\n    bin_dir = \"/nonexistent\"\n  }\n}\n",
			wantPos: "agent.hcl:25:15", want: `holds no pg_ctl`},
		{name: "escaping path", old: `"apps/./web-logs"`, new: `"apps/../../etc"`,
			wantPos: "agent.hcl:10:25", want: `climbs out of the shared volume`},
		{name: "absolute path", old: `"apps/web", `, new: `"/etc", `,
			wantPos: "agent.hcl:10:13", want: "is absolute"},
		{name: "path escaping through a symlink", old: `"apps/./web-logs"`, new: `"apps/link/data"`,
			setup: func(t *testing.T, e configEnv) {
				if err := os.Symlink(e.dir, filepath.Join(e.volume, "apps", "link")); err != nil {
					t.Fatal(err)
				}
			},
			wantPos: "agent.hcl:10:25", want: "through a symlink"},
		{name: "no paths", old: `["apps/web", "apps/./web-logs"]`, new: `[]`,
			wantPos: "agent.hcl:10:12", want: "needs at least one data path"},
		{name: "duplicate path", old: `"apps/./web-logs"`, new: `"apps/./web"`,
			wantPos: "agent.hcl:10:25", want: "listed twice"},
		{name: "duplicate workload names", old: "", new: "workload \"web\" {\n  driver = \"exec\"\n  paths = [\"apps/web\"]\n  exec { status = [\"/bin/true\"] }\n}\n",
			wantPos: "agent.hcl:20:10", want: `workload "web" is already defined at agent.hcl:8`},
		{name: "missing status command", old: `status   = ["{{prog}}", "status"]`, new: ``,
			wantPos: "agent.hcl:11:3", want: "add e.g. status ="},
		{name: "missing exec block", old: "  exec {", new: "  other {",
			wantPos: "agent.hcl:11:3", want: `Unsupported block type`},
		{name: "empty command", old: `["{{prog}}", "start"]`, new: `[]`,
			wantPos: "agent.hcl:13:16", want: "argv list with the program first"},
		{name: "command not found", old: `["{{prog}}", "start"]`, new: `["/no/such/program"]`,
			wantPos: "agent.hcl:13:16", want: "install it or give its absolute path"},
		{name: "reserved env", old: `GREETING`, new: `CLUSTERGUARD_NODE`,
			wantPos: "agent.hcl:17:18", want: "the agent sets CLUSTERGUARD_NODE itself"},
		{name: "typo in attribute", old: `log_level`, new: `loglevel `,
			wantPos: "agent.hcl:6:1", want: `Unsupported argument`},
		{name: "tls files missing", old: "log_level", new: "tls {\n  cert_file = \"{{dir}}/c.pem\"\n  key_file = \"{{dir}}/k.pem\"\n}\nlog_level",
			wantPos: "agent.hcl:7:15", want: "give a PEM certificate"},
		{name: "wrong type", old: `["apps/web", "apps/./web-logs"]`, new: `"apps/web"`,
			wantPos: "agent.hcl:10:12", want: "paths is a list"},
		{name: "syntax error", old: `node          = "node-1"`, new: `node = "node-1`,
			wantPos: "agent.hcl:1:", want: "Unterminated"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			e := newConfigEnv(t)
			if tc.setup != nil {
				tc.setup(t, e)
			}
			src := validConfig
			if tc.old == "" {
				src += tc.new
			} else {
				if !strings.Contains(src, tc.old) {
					t.Fatalf("test bug: %q not in the valid config", tc.old)
				}
				src = strings.Replace(src, tc.old, tc.new, 1)
			}
			_, err := ParseConfig("agent.hcl", []byte(e.render(src)))
			if err == nil {
				t.Fatal("invalid config accepted")
			}
			var cerr *ConfigError
			if !errors.As(err, &cerr) {
				t.Fatalf("error is %T, want *ConfigError: %v", err, err)
			}
			msg := err.Error()
			if !strings.Contains(msg, tc.wantPos) || !strings.Contains(msg, tc.want) {
				t.Errorf("error does not point at %s with %q:\n%s", tc.wantPos, tc.want, msg)
			}
			if strings.Contains(msg, "0123456789abcdef") {
				t.Errorf("error reveals the token:\n%s", msg)
			}
		})
	}
}

func TestLoadConfigMissingFile(t *testing.T) {
	_, err := LoadConfig(filepath.Join(t.TempDir(), "agent.hcl"))
	if err == nil || !strings.Contains(err.Error(), "--config") {
		t.Fatalf("err = %v, want a hint about --config", err)
	}
}

func writeFile(t *testing.T, path, content string) {
	t.Helper()
	if err := os.WriteFile(path, []byte(content), 0o600); err != nil {
		t.Fatal(err)
	}
}

func TestOwnershipBlock(t *testing.T) {
	e := newAgentEnv(t)
	base := fmt.Sprintf("node = \"node-1\"\nlisten = \"127.0.0.1:0\"\nshared_volume = %q\ntoken_file = %q\nstate_dir = %q\n", e.volume, e.tokenFile, filepath.Join(e.dir, "state"))
	cfg, err := ParseConfig("agent.hcl", []byte(base))
	if err != nil || cfg.ownershipOrDefault() != DefaultOwnershipConfig() {
		t.Fatalf("without a block: %+v, %v; want the defaults", cfg, err)
	}
	cfg, err = ParseConfig("agent.hcl", []byte(base+"ownership {\n  renew_interval = \"100ms\"\n  expiry = \"1s\"\n  clock_skew_margin = \"50ms\"\n}\n"))
	if err != nil {
		t.Fatal(err)
	}
	if got := cfg.ownershipOrDefault(); got != (OwnershipConfig{RenewInterval: 100 * time.Millisecond, Expiry: time.Second, ClockSkewMargin: 50 * time.Millisecond}) {
		t.Fatalf("ownership = %+v", got)
	}
	_, err = ParseConfig("agent.hcl", []byte(base+"ownership {\n  renew_interval = \"1s\"\n  expiry = \"2s\"\n}\n"))
	if err == nil || !strings.Contains(err.Error(), "agent.hcl:6:1: Ownership expiry too short") {
		t.Fatalf("expiry below three renewals: %v, want an error at the block", err)
	}
}
