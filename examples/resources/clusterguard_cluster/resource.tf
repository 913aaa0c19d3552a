resource "clusterguard_cluster" "prod" {
  name          = "prod"
  shared_volume = "/srv/shared"

  nodes = {
    "node-1" = "https://10.0.0.11:7420"
    "node-2" = "https://10.0.0.12:7420"
    "node-3" = "https://10.0.0.13:7420"
  }

  # Verify (join) the nodes one at a time, in this order.
  join_order    = "sequential"
  join_sequence = ["node-1", "node-2", "node-3"]

  # Start backup runs on the node with the fewest agent failures per hour.
  master_policy = "lowest_failure_rate"
}
