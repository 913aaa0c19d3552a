# Nodes whose agents announced themselves to the engine daemon for cluster
# prod; stale ones stopped announcing.
data "clusterguard_registered_nodes" "prod" {
  cluster = "prod"
}

output "stale_nodes" {
  value = [for n in data.clusterguard_registered_nodes.prod.nodes : n.node if n.stale]
}
