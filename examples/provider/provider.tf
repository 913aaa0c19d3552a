provider "clusterguard" {
  # The engine's catalog: an embedded SQLite file (default under ~/.local/share/clusterguard).
  catalog = "/var/lib/clusterguard/catalog.db"

  # Token of the node agents; prefer the CLUSTERGUARD_AGENT_TOKEN environment variable.
  # agent_token = var.agent_token

  # CA that signed the agents' TLS certificates, for https:// endpoints.
  ca_file = "/etc/clusterguard/ca.pem"

  request_timeout = "30s"
}
