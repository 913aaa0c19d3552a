package api

import (
	"encoding/json"
	"fmt"
	"slices"
	"sort"
	"strings"
)

// Snapshot labels that make a repository describe itself, so a lost
// catalog can be rebuilt from it and a workload recreated on a new
// cluster (disaster day).
const (
	// LabelDefinitionPrefix + a workload's name holds the workload's
	// definition as the agent had it, as JSON (WorkloadDefinition).
	LabelDefinitionPrefix = "definition."
	// LabelExtractAt says how the snapshot was taken: ExtractAtBackup (one
	// snapshot per workload) or ExtractAtRestore (a node view).
	LabelExtractAt = "extract_at"
	// LabelAgentVersion is the version of the agent that took the snapshot.
	LabelAgentVersion = "agent_version"
)

// Extract modes recorded in LabelExtractAt.
const (
	ExtractAtBackup  = "backup"
	ExtractAtRestore = "restore"
)

// WorkloadDefinition is a workload's definition without its secrets: the
// driver and its settings, enough to write the agent config block again.
// Environment values of exec commands are never recorded (only their
// names), and command arguments that look like they carry a secret are
// recorded as Redacted.
type WorkloadDefinition struct {
	Name   string   `json:"name"`
	Driver string   `json:"driver"`
	Paths  []string `json:"paths"`

	Exec     *ExecDefinition     `json:"exec,omitempty"`
	Postgres *PostgresDefinition `json:"postgresql,omitempty"`
	QEMU     *QEMUDefinition     `json:"qemu,omitempty"`
}

// ExecDefinition is the exec driver's settings.
type ExecDefinition struct {
	Commands map[string][]string `json:"commands,omitempty"`
	Timeout  string              `json:"timeout,omitempty"`
	Timeouts map[string]string   `json:"timeouts,omitempty"`
	EnvNames []string            `json:"env_names,omitempty"` // values are not recorded
	User     string              `json:"user,omitempty"`
}

// PostgresDefinition is the postgresql driver's settings.
type PostgresDefinition struct {
	Port            int    `json:"port"`
	BinDir          string `json:"bin_dir,omitempty"`
	ListenAddresses string `json:"listen_addresses,omitempty"`
	User            string `json:"user,omitempty"`
	DatabaseUser    string `json:"database_user,omitempty"`
	Timeout         string `json:"timeout,omitempty"`
}

// QEMUDefinition is the qemu driver's settings.
type QEMUDefinition struct {
	Disks           []string `json:"disks"`
	Binary          string   `json:"binary,omitempty"`
	Memory          string   `json:"memory,omitempty"`
	CPUs            int      `json:"cpus,omitempty"`
	Accel           string   `json:"accel,omitempty"`
	ExtraArgs       []string `json:"extra_args,omitempty"`
	ShutdownTimeout string   `json:"shutdown_timeout,omitempty"`
	Timeout         string   `json:"timeout,omitempty"`
	User            string   `json:"user,omitempty"`
}

// Redacted stands in for a recorded command argument that looked like a secret.
const Redacted = "(redacted)"

// LooksSecret reports whether a command-line argument seems to carry a
// secret (password=, secret, token, key=...), so it is not recorded.
func LooksSecret(arg string) bool {
	a := strings.ToLower(arg)
	for _, w := range []string{"pass", "secret", "token", "key=", "keyid=", "credential", "auth"} {
		if strings.Contains(a, w) {
			return true
		}
	}
	return false
}

// DefinitionFromLabels decodes the recorded definition of workload from
// snapshot labels; ok is false when the snapshot has none (taken by an
// older agent).
func DefinitionFromLabels(labels map[string]string, workload string) (WorkloadDefinition, bool, error) {
	raw, ok := labels[LabelDefinitionPrefix+workload]
	if !ok {
		return WorkloadDefinition{}, false, nil
	}
	var d WorkloadDefinition
	if err := json.Unmarshal([]byte(raw), &d); err != nil {
		return d, false, fmt.Errorf("recorded definition of workload %q: %w", workload, err)
	}
	return d, true, nil
}

// DefinitionDiff lists how b differs from a, in words; empty when they
// are the same.
func DefinitionDiff(a, b WorkloadDefinition) []string {
	var out []string
	if a.Driver != b.Driver {
		out = append(out, fmt.Sprintf("driver %q, recorded %q", b.Driver, a.Driver))
	}
	if !slices.Equal(a.Paths, b.Paths) {
		out = append(out, fmt.Sprintf("paths [%s], recorded [%s]", strings.Join(b.Paths, ", "), strings.Join(a.Paths, ", ")))
	}
	ja, _ := json.Marshal(struct {
		E *ExecDefinition
		P *PostgresDefinition
		Q *QEMUDefinition
	}{a.Exec, a.Postgres, a.QEMU})
	jb, _ := json.Marshal(struct {
		E *ExecDefinition
		P *PostgresDefinition
		Q *QEMUDefinition
	}{b.Exec, b.Postgres, b.QEMU})
	if a.Driver == b.Driver && string(ja) != string(jb) {
		out = append(out, fieldDiffs(a, b)...)
	}
	return out
}

// fieldDiffs names the driver settings that differ.
func fieldDiffs(a, b WorkloadDefinition) []string {
	flat := func(d WorkloadDefinition) map[string]string {
		m := map[string]string{}
		var v any
		switch {
		case d.Exec != nil:
			v = d.Exec
		case d.Postgres != nil:
			v = d.Postgres
		case d.QEMU != nil:
			v = d.QEMU
		default:
			return m
		}
		raw, _ := json.Marshal(v)
		var fields map[string]json.RawMessage
		_ = json.Unmarshal(raw, &fields)
		for k, f := range fields {
			m[k] = string(f)
		}
		return m
	}
	fa, fb := flat(a), flat(b)
	keys := map[string]bool{}
	for k := range fa {
		keys[k] = true
	}
	for k := range fb {
		keys[k] = true
	}
	var names []string
	for k := range keys {
		if fa[k] != fb[k] {
			names = append(names, k)
		}
	}
	sort.Strings(names)
	var out []string
	for _, k := range names {
		out = append(out, fmt.Sprintf("%s %s, recorded %s", a.Driver+"."+k, orNone(fb[k]), orNone(fa[k])))
	}
	return out
}

func orNone(s string) string {
	if s == "" {
		return "(unset)"
	}
	return s
}
