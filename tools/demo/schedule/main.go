// Command schedule puts a backup schedule into a demo catalog and waits for
// its first scheduled recovery point, for `make demo` until the
// clusterguard_backup_schedule resource declares schedules in Terraform.
//
//	go run ./tools/demo/schedule -catalog build/demo/catalog.db -group all -cron '* * * * *'
package main

import (
	"context"
	"flag"
	"fmt"
	"os"
	"time"

	"github.com/clusterguard/terraform-provider-clusterguard/internal/catalog"
	"github.com/clusterguard/terraform-provider-clusterguard/internal/engine/catalogopen"
)

func main() {
	where := flag.String("catalog", "", "SQLite catalog of the demo (its key beside it)")
	name := flag.String("name", "every-minute", "schedule name")
	group := flag.String("group", "all", "protection group")
	cron := flag.String("cron", "* * * * *", "cron expression (UTC)")
	wait := flag.Duration("wait", 3*time.Minute, "how long to wait for a scheduled recovery point")
	flag.Parse()
	if err := run(*where, *name, *group, *cron, *wait); err != nil {
		fmt.Fprintln(os.Stderr, "schedule:", err)
		os.Exit(1)
	}
}

func run(where, name, group, cron string, wait time.Duration) error {
	ctx := context.Background()
	store, err := catalogopen.Open(ctx, where, catalogopen.Options{})
	if err != nil {
		return err
	}
	defer store.Close()
	now := time.Now().UTC()
	s := catalog.Schedule{Name: name, Group: group, Cron: cron, CatchUp: catalog.CatchUpLatest, Tags: []string{"scheduled"},
		CreatedAt: now, UpdatedAt: now}
	if err := store.PutSchedule(ctx, s); err != nil {
		return fmt.Errorf("put schedule %s: %w", name, err)
	}
	fmt.Printf("schedule %q (cron %q) on group %q put into the catalog; waiting for its first slot...\n", name, cron, group)
	deadline := time.Now().Add(wait)
	seen := map[time.Time]bool{}
	for {
		slots, err := store.ListSlots(ctx, name, 5)
		if err != nil {
			return err
		}
		for _, sl := range slots {
			if sl.State == catalog.SlotSucceeded || sl.State == catalog.SlotPartial {
				fmt.Printf("slot %s: %s by daemon %s (run %s, %s after the slot)\n", sl.Slot.Format(time.RFC3339), sl.State, sl.Daemon, sl.RunID, sl.FinishedAt.Sub(sl.Slot).Round(time.Second))
				points, err := store.RecoveryPoints(ctx, catalog.RecoveryPointFilter{Group: group})
				if err != nil {
					return err
				}
				for _, p := range points {
					if p.RunID == sl.RunID {
						fmt.Printf("  scheduled recovery point %s of %s on %s at %s\n", p.ID, p.Workload, p.Node, p.CreatedAt.Format(time.RFC3339))
					}
				}
				return nil
			}
			if sl.State == catalog.SlotFailed {
				return fmt.Errorf("slot %s failed: %s", sl.Slot.Format(time.RFC3339), sl.Reason)
			}
			if sl.State == catalog.SlotMissed && !seen[sl.Slot] {
				// A slot due before the schedule existed or a daemon led is recorded, not run; wait for the next.
				seen[sl.Slot] = true
				fmt.Printf("slot %s missed (%s); waiting for the next one\n", sl.Slot.Format(time.RFC3339), sl.Reason)
			}
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("no scheduled run finished within %s; see the daemon log", wait)
		}
		time.Sleep(time.Second)
	}
}
