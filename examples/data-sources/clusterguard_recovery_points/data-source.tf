# Recovery points of one workload from the last week, newest first.
data "clusterguard_recovery_points" "db" {
  cluster  = clusterguard_cluster.prod.name
  workload = "db-orders"
  from     = "2026-11-15T00:00:00Z"
}

output "db_latest" {
  value = data.clusterguard_recovery_points.db.latest
}
