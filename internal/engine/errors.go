package engine

import (
	"errors"
	"fmt"
	"strings"

	"github.com/clusterguard/terraform-provider-clusterguard/internal/repository"
)

// NodeProblem classifies why a node failed a check, so callers can word a
// diagnostic and tests can assert without parsing text.
type NodeProblem string

const (
	ProblemUnreachable    NodeProblem = "unreachable"
	ProblemUnauthorized   NodeProblem = "unauthorized"
	ProblemNameMismatch   NodeProblem = "name_mismatch"
	ProblemVolumeMismatch NodeProblem = "volume_mismatch"
	ProblemAgentError     NodeProblem = "agent_error"
)

// NodeError is a failed check of one node.
type NodeError struct {
	Node     string
	Endpoint string
	Problem  NodeProblem
	Detail   string // what was observed and what to do
	Err      error
}

func (e *NodeError) Error() string {
	msg := fmt.Sprintf("node %q (%s): %s", e.Node, e.Endpoint, e.Detail)
	if e.Err != nil {
		msg += ": " + e.Err.Error()
	}
	return msg
}

func (e *NodeError) Unwrap() error { return e.Err }

// ClusterCheckError gathers every node that failed a cluster check.
type ClusterCheckError struct {
	Cluster string
	Nodes   []*NodeError
}

func (e *ClusterCheckError) Error() string {
	parts := make([]string, len(e.Nodes))
	for i, n := range e.Nodes {
		parts[i] = n.Error()
	}
	return fmt.Sprintf("cluster %q: %d node(s) failed verification: %s", e.Cluster, len(e.Nodes), strings.Join(parts, "; "))
}

// ValidationError is input the engine refuses before contacting anything.
type ValidationError struct {
	Field  string // attribute name
	Key    string // map key or list element within Field, if any
	Reason string // what is wrong and what to write instead
}

func (e *ValidationError) Error() string {
	if e.Key != "" {
		return fmt.Sprintf("%s[%q]: %s", e.Field, e.Key, e.Reason)
	}
	return e.Field + ": " + e.Reason
}

// ValidationErrors flattens err (possibly an errors.Join) into its
// ValidationErrors; anything else is returned in rest.
func ValidationErrors(err error) (verrs []*ValidationError, rest []error) {
	if err == nil {
		return nil, nil
	}
	if j, ok := err.(interface{ Unwrap() []error }); ok {
		for _, e := range j.Unwrap() {
			v, r := ValidationErrors(e)
			verrs, rest = append(verrs, v...), append(rest, r...)
		}
		return verrs, rest
	}
	if v, ok := AsValidation(err); ok {
		return []*ValidationError{v}, nil
	}
	return nil, []error{err}
}

// AsValidation reports whether err is a ValidationError.
func AsValidation(err error) (*ValidationError, bool) {
	var v *ValidationError
	ok := errors.As(err, &v)
	return v, ok
}

// ErrWrongPassword: a repository exists but the password does not open it.
var ErrWrongPassword = repository.ErrWrongPassword
