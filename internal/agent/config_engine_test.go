package agent

import (
	"strings"
	"testing"
	"time"
)

func TestEngineBlock(t *testing.T) {
	e := newConfigEnv(t)
	reg := e.dir + "/registration.token"
	writeFile(t, reg, "registration-token-0123456789\n")
	src := validConfig + "\nengine {\n  url = \"http://127.0.0.1:7430\"\n  token_file = \"" + reg + "\"\n  interval = \"5s\"\n  cluster = \"prod\"\n}\n"
	cfg, err := ParseConfig("agent.hcl", []byte(e.render(src)))
	if err != nil {
		t.Fatal(err)
	}
	en := cfg.Engine
	if en == nil || en.URL != "http://127.0.0.1:7430" || en.Token.Reveal() != "registration-token-0123456789" || en.Interval != 5*time.Second || en.Cluster != "prod" {
		t.Fatalf("engine block: %+v", en)
	}
	if got := cfg.advertised("127.0.0.1:4711"); got != "http://127.0.0.1:4711" {
		t.Errorf("advertised URL from the bound address = %s", got)
	}
}

func TestEngineBlockInvalid(t *testing.T) {
	cases := []struct {
		name, engine, extra string
		wantPos, want       string
	}{
		{"bad url", `url = "ftp://daemon"` + "\n  token_file = \"{{reg}}\"", "", "agent.hcl:22:", "not the base URL of an engine daemon"},
		{"plain HTTP off loopback", `url = "http://daemon.example:7430"` + "\n  token_file = \"{{reg}}\"", "", "agent.hcl:21:", "registration token would cross the network in clear text"},
		{"agent token as registration token", `url = "https://daemon:7430"` + "\n  token_file = \"{{token}}\"", "", "agent.hcl:23:", "Registration token equals the agent token"},
		{"interval too short", `url = "https://daemon:7430"` + "\n  token_file = \"{{reg}}\"\n  interval = \"10ms\"", "", "agent.hcl:24:", "give 1s to 1h0m0s"},
		{"missing token_file", `url = "https://daemon:7430"`, "", "agent.hcl:21:", `"token_file" is required`},
		{"wildcard listen without advertise_url", `url = "https://daemon:7430"` + "\n  token_file = \"{{reg}}\"", "insecure_plaintext = true\n", "agent.hcl:21:", "set advertise_url"},
		{"bad advertise_url", `url = "https://daemon:7430"` + "\n  token_file = \"{{reg}}\"", "advertise_url = \"node-1:7420\"\n", "agent.hcl:25:", "Invalid advertise_url"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			e := newConfigEnv(t)
			reg := e.dir + "/registration.token"
			writeFile(t, reg, "registration-token-0123456789\n")
			src := validConfig + "\nengine {\n  " + strings.ReplaceAll(tc.engine, "{{reg}}", reg) + "\n}\n" + tc.extra
			if tc.name == "wildcard listen without advertise_url" {
				src = strings.Replace(src, `"127.0.0.1:0"`, `"0.0.0.0:7420"`, 1)
			}
			_, err := ParseConfig("agent.hcl", []byte(e.render(src)))
			if err == nil {
				t.Fatal("invalid config accepted")
			}
			msg := err.Error()
			if !strings.Contains(msg, tc.wantPos) || !strings.Contains(msg, tc.want) {
				t.Errorf("error does not point at %s with %q:\n%s", tc.wantPos, tc.want, msg)
			}
			if strings.Contains(msg, "registration-token-0123456789") || strings.Contains(msg, "0123456789abcdef") {
				t.Errorf("error reveals a token:\n%s", msg)
			}
		})
	}
}
