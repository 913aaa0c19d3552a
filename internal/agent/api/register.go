package api

// RegisterPath is the engine daemon's endpoint where agents announce
// themselves (POST, bearer registration token).
const RegisterPath = "/v1/nodes/register"

// MaxRegistrationBody bounds a registration request body; a node with
// hundreds of workloads stays far below it.
const MaxRegistrationBody = 64 << 10

// NodeRegistration is what an agent announces about itself to the engine
// daemon, at start and then at every interval of its engine block.
type NodeRegistration struct {
	Cluster   string   `json:"cluster"`   // "" when the agent's config does not name it
	Node      string   `json:"node"`      // the agent's node name
	Endpoint  string   `json:"endpoint"`  // URL the engine reaches the agent at
	VolumeID  string   `json:"volume_id"` // the shared volume's id (volume-id file)
	Version   string   `json:"version"`   // the agent's version
	Workloads []string `json:"workloads"` // workload names, sorted
}
