package provider

// Diagnostics of backup schedules and agent registrations, worded as in
// diagnostics.go: a title-case summary, then what failed, what to do, and
// the original error.

import (
	"fmt"
	"strings"
	"time"

	"github.com/hashicorp/terraform-plugin-framework/diag"
	"github.com/hashicorp/terraform-plugin-framework/path"

	"github.com/clusterguard/terraform-provider-clusterguard/internal/engine"
)

func diagSchedulesNotRunning(seenAt time.Time) diag.Diagnostic {
	last := "No engine daemon is running on this catalog (none has a heartbeat record; a daemon removes its record when it stops)"
	if !seenAt.IsZero() {
		last = fmt.Sprintf("The last engine daemon heartbeat was at %s, more than %s ago", seenAt.UTC().Format(time.RFC3339), engine.DaemonSeenWithin)
	}
	return diag.NewWarningDiagnostic("Schedules Are Not Running",
		detail(last+", so backup schedules in it are not running: applying records the schedule, but no backup will start by itself.",
			"Schedules are not running: start `terraform-provider-clusterguard engine serve --config FILE` with this catalog "+
				"(see examples/systemd/clusterguard-engine.service), and check its /health endpoint.", nil))
}

func diagLastRunFailed(schedule string, run *engine.ScheduleRun, consecutive int) diag.Diagnostic {
	errs := "no error was recorded"
	if len(run.Errors) > 0 {
		errs = strings.Join(run.Errors, "; ")
	}
	return diag.NewAttributeWarningDiagnostic(path.Root("last_run"), "Last Scheduled Backup Failed",
		detail(fmt.Sprintf("The last run of schedule %q (slot %s, run %q) ended %s (%d in a row): %s.",
			schedule, run.Slot.UTC().Format(time.RFC3339), run.RunID, run.Status, consecutive, errs),
			"Fix the cause named above (see also the engine daemon's log); the next slot retries. A clusterguard_backup_run protects the group now.", nil))
}

func diagRPOUnmetBySchedule(group string, c engine.ScheduleCheck) diag.Diagnostic {
	return diag.NewAttributeWarningDiagnostic(path.Root("protection_group"), "Schedule Cannot Meet RPO",
		detail(fmt.Sprintf("The group's rpo of %s cannot be met by a schedule whose slots are up to %s apart: protection group %q will be past its RPO before the next scheduled backup.",
			shortDuration(c.GroupRPO), shortDuration(c.MaxGap), group),
			fmt.Sprintf("Schedule slots at most %s apart (a shorter interval, or a cron expression without long gaps such as weekends), or raise the group's rpo to at least %s.",
				shortDuration(c.GroupRPO), shortDuration(c.MaxGap)), nil))
}

func diagScheduleNotPlannable(name string, err error) diag.Diagnostic {
	return diag.NewWarningDiagnostic("Schedule Not Running",
		detail(fmt.Sprintf("Backup schedule %q is in the catalog but cannot be planned, so the engine daemon skips it.", name),
			"Correct the attribute named below in the configuration and apply: the plan shows the change.", err))
}

func diagSchedule(name, during string, err error) diag.Diagnostics {
	if _, ok := engine.AsValidation(err); ok {
		return diagValidation(err)
	}
	var diags diag.Diagnostics
	diags.AddError("Backup Schedule Error", detail(fmt.Sprintf("Failed %s backup schedule %q.", during, name),
		"Check that the catalog is reachable and writable, then retry.", err))
	return diags
}

func diagScheduleAlreadyRegistered(name string) diag.Diagnostic {
	return diag.NewAttributeErrorDiagnostic(path.Root("name"), "Backup Schedule Already Registered",
		detail(fmt.Sprintf("A backup schedule named %q is already in the engine's catalog.", name),
			fmt.Sprintf("Import it instead (terraform import <address> %s), or choose another name.", name), nil))
}

func diagNodeRegisteredUndeclared(cluster string, r engine.RegisteredNode) diag.Diagnostic {
	return diag.NewAttributeWarningDiagnostic(path.Root("nodes"), "Registered Node Not Declared",
		detail(fmt.Sprintf("Node %q (%s, agent %s) announced itself for cluster %q at %s but is not in nodes, so nothing of it is protected.",
			r.Node, r.Endpoint, r.Version, cluster, r.SeenAt.UTC().Format(time.RFC3339)),
			"Add it to nodes (the endpoint above), or remove the engine block from that agent's configuration if it does not belong to this cluster.", nil))
}

func diagNodeRegistrationStale(cluster string, r engine.RegisteredNode) diag.Diagnostic {
	return diag.NewAttributeWarningDiagnostic(path.Root("nodes").AtMapKey(r.Node), "Node Stopped Announcing",
		detail(fmt.Sprintf("Node %q of cluster %q last announced itself at %s, more than %s ago: its agent may be stopped or cannot reach the engine daemon.",
			r.Node, cluster, r.SeenAt.UTC().Format(time.RFC3339), engine.StaleRegistrationAfter),
			"Check that the agent runs on the node and that its engine block points at a running engine daemon (terraform-provider-clusterguard engine serve).", nil))
}
