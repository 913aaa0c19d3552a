# Nightly backups at 02:30 Berlin time, kept as dailies for a week; the
# engine daemon (terraform-provider-clusterguard engine serve) runs them.
resource "clusterguard_backup_schedule" "nightly" {
  name             = "databases-nightly"
  protection_group = clusterguard_protection_group.databases.name

  cron              = "30 2 * * *"
  time_zone         = "Europe/Berlin"
  start_window      = "1h"  # a slot that cannot start by 03:30 is recorded as missed
  completion_window = "4h"  # a run still going after 4h is cancelled
  jitter            = "10m" # spread schedules due at the same time
  catch_up          = "latest"

  tags      = ["daily"]
  retention = { keep_daily = 7, keep_weekly = 4 }

  verify_every = "168h"
}

# Every 15 minutes, for a group whose rpo is 30m.
resource "clusterguard_backup_schedule" "frequent" {
  name             = "databases-15m"
  protection_group = clusterguard_protection_group.databases.name
  interval         = "15m"
  tags             = ["frequent"]
  retention        = { keep_last = 8 }
}

output "next_nightly_backup" {
  value = clusterguard_backup_schedule.nightly.next_run_at
}
