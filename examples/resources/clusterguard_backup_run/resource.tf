# A federated backup before a risky change: change the trigger to run again.
resource "clusterguard_backup_run" "pre_upgrade" {
  group = clusterguard_protection_group.databases.name
  tags  = ["pre-upgrade"]

  triggers = {
    release = var.release
  }

  timeouts = {
    create = "2h"
  }
}

variable "release" {
  type = string
}

output "recovery_points" {
  value = { for name, w in clusterguard_backup_run.pre_upgrade.workloads : name => w.recovery_point }
}
