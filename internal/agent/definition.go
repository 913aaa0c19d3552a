package agent

import (
	"encoding/json"
	"maps"
	"slices"
	"sort"
	"time"

	"github.com/clusterguard/terraform-provider-clusterguard/internal/agent/api"
)

// describingLabels returns the labels a snapshot is stored with: the
// engine's, plus what lets the repository describe itself on a day the
// catalog is gone (the extract mode, the agent's version and each
// workload's definition without its secrets). The engine's labels win.
func (s *Server) describingLabels(req map[string]string, extractAt string, wls ...*workload) map[string]string {
	out := map[string]string{api.LabelExtractAt: extractAt, api.LabelAgentVersion: s.version}
	for _, wl := range wls {
		if raw, err := json.Marshal(definitionOf(wl.cfg)); err == nil {
			out[api.LabelDefinitionPrefix+wl.cfg.Name] = string(raw)
		}
	}
	maps.Copy(out, req)
	return out
}

// definitionOf is the workload's definition without secrets: exec
// environment values are left out (only their names are kept), and command
// arguments and QEMU extra arguments that look like secrets are replaced
// by api.Redacted.
func definitionOf(c WorkloadConfig) *api.WorkloadDefinition {
	d := &api.WorkloadDefinition{Name: c.Name, Driver: c.Driver, Paths: slices.Clone(c.Paths)}
	dur := func(v time.Duration) string {
		if v == 0 {
			return ""
		}
		return v.String()
	}
	if e := c.Exec; e != nil {
		x := &api.ExecDefinition{Commands: map[string][]string{}, Timeout: dur(e.Timeout), User: e.User}
		for k, v := range e.Commands {
			argv := slices.Clone(v)
			for i, a := range argv {
				if api.LooksSecret(a) {
					argv[i] = api.Redacted // a password on a command line is still a password
				}
			}
			x.Commands[k] = argv
		}
		if len(e.Timeouts) > 0 {
			x.Timeouts = map[string]string{}
			for k, v := range e.Timeouts {
				x.Timeouts[k] = v.String()
			}
		}
		for k := range e.Env {
			x.EnvNames = append(x.EnvNames, k)
		}
		sort.Strings(x.EnvNames)
		d.Exec = x
	}
	if p := c.Postgres; p != nil {
		d.Postgres = &api.PostgresDefinition{Port: p.Port, BinDir: p.BinDir, ListenAddresses: p.ListenAddresses, User: p.User,
			DatabaseUser: p.DatabaseUser, Timeout: dur(p.Timeout)}
	}
	if q := c.QEMU; q != nil {
		x := &api.QEMUDefinition{Disks: slices.Clone(q.Disks), Binary: q.Binary, Memory: q.Memory, CPUs: q.CPUs, Accel: q.Accel,
			ShutdownTimeout: dur(q.ShutdownTimeout), Timeout: dur(q.Timeout), User: q.User}
		for _, a := range q.ExtraArgs {
			if api.LooksSecret(a) {
				a = api.Redacted
			}
			x.ExtraArgs = append(x.ExtraArgs, a)
		}
		d.QEMU = x
	}
	return d
}
