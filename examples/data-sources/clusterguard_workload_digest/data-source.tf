# Every workload of the cluster, where it runs and in which state.
data "clusterguard_workload_digest" "all" {
  cluster = clusterguard_cluster.prod.name
}

# Only workloads that are active on two nodes at once.
data "clusterguard_workload_digest" "conflicts" {
  cluster = clusterguard_cluster.prod.name
  state   = "conflict"
}

# Database workloads on node-2.
data "clusterguard_workload_digest" "node2_db" {
  cluster    = clusterguard_cluster.prod.name
  node       = "node-2"
  name_regex = "^db-"
}

# The ones to worry about: no backup in a day, no restore rehearsed in 30
# days, or backups that fail in at least one run of four.
data "clusterguard_workload_digest" "stale_backup" {
  cluster           = clusterguard_cluster.prod.name
  backup_older_than = "24h"
}

data "clusterguard_workload_digest" "restore_not_rehearsed" {
  cluster            = clusterguard_cluster.prod.name
  restore_older_than = "720h"
}

data "clusterguard_workload_digest" "flaky_backups" {
  cluster                 = clusterguard_cluster.prod.name
  min_backup_failure_rate = 0.25
}

output "workload_locations" {
  value = { for w in data.clusterguard_workload_digest.all.workloads : w.name => w.node }
}

output "flaky_backups" {
  value = { for w in data.clusterguard_workload_digest.flaky_backups.workloads : w.name => w.backup_failure_rate }
}
