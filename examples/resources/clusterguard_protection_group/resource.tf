# Every PostgreSQL server on the cluster, application-consistent, backed up
# node by node with the node running the most of them first.
resource "clusterguard_protection_group" "databases" {
  name       = "databases"
  cluster    = clusterguard_cluster.prod.name
  repository = clusterguard_repository.nfs.name

  selector = {
    driver = "postgresql"
  }
  exclude = ["db-scratch"]

  consistency = "application" # postgresql: pg_backup_start/pg_backup_stop, never frozen
  node_order  = "most_workloads_first"
  extract_at  = "backup"

  retention = {
    keep_last   = 24
    keep_daily  = 14
    keep_within = "240h" # keep everything of the last 10 days
  }
  rpo = "1h"
}

# Two QEMU virtual machines, crash-consistent (vCPUs stopped for the copy).
resource "clusterguard_protection_group" "host2_vms" {
  name               = "host2-vms"
  cluster            = clusterguard_cluster.prod.name
  repository         = clusterguard_repository.nfs.name
  workloads          = ["vm-web", "vm-app"]
  consistency        = "crash"
  node_order         = "critical_first"
  critical_workloads = ["vm-app"]
}

output "unprotected_databases" {
  value = clusterguard_protection_group.databases.unprotected
}
