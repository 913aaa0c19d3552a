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

output "workload_locations" {
  value = { for w in data.clusterguard_workload_digest.all.workloads : w.name => w.node }
}
