provider "clusterguard" {
  # The engine's catalog: an embedded SQLite file (default under ~/.local/share/clusterguard).
  catalog = "/var/lib/clusterguard/catalog.db"

  # Token of the node agents; prefer the CLUSTERGUARD_AGENT_TOKEN environment variable.
  # agent_token = var.agent_token

  # CA that signed the agents' TLS certificates, for https:// endpoints.
  ca_file = "/etc/clusterguard/ca.pem"

  # Client certificate for agents whose tls block sets client_ca_file (mutual TLS).
  client_cert_file = "/etc/clusterguard/engine.pem"
  client_key_file  = "/etc/clusterguard/engine-key.pem"

  request_timeout = "30s"
}
