// Package policy makes keygate's decisions without I/O: which route a request is (face, endpoint
// class, project), and whether a principal's role and project allow it (docs/protocol.md §2.2's role matrix).
package policy

import (
	"fmt"

	"github.com/keygate/keygate/keys"
)

// Class is what an endpoint does, the columns of docs/protocol.md §2.2's role matrix.
type Class uint8

// Endpoint classes, from least to most privileged.
const (
	ClassRead    Class = iota + 1 // read data and impulse state
	ClassAddData                  // ingestion, sample and device writes
	ClassRemote                   // remote management (device websocket)
	ClassDeploy                   // build and deploy models
	ClassAdmin                    // everything else: training, settings, keys
)

var classNames = [...]string{"", "read", "add data", "remote management", "deploy", "admin"}
var classLabels = [...]string{"", "read", "add_data", "remote", "deploy", "admin"}

// String is the human name used in error messages ("add data").
func (c Class) String() string {
	if c < ClassRead || c > ClassAdmin {
		return "unknown"
	}
	return classNames[c]
}

// Label is the metric label ("add_data").
func (c Class) Label() string {
	if c < ClassRead || c > ClassAdmin {
		return "unknown"
	}
	return classLabels[c]
}

// Classes lists every class, for metrics and docs.
var Classes = []Class{ClassRead, ClassAddData, ClassRemote, ClassDeploy, ClassAdmin}

// matrix[role][class]: docs/protocol.md §2.2, verbatim.
var matrix = [...][6]bool{
	keys.RoleAdmin:               {false, true, true, true, true, true},
	keys.RoleIngestionDeployment: {false, true, true, true, true, false},
	keys.RoleIngestion:           {false, true, true, true, false, false},
	keys.RoleReadOnly:            {false, true, false, false, false, false},
}

// RoleAllows reports whether role may use endpoints of class c. Invalid roles and classes allow nothing.
func RoleAllows(r keys.Role, c Class) bool {
	if !r.Valid() || c < ClassRead || c > ClassAdmin {
		return false
	}
	return matrix[r][c]
}

// Denied is a refusal with a reason that is safe to show the caller.
type Denied struct {
	Reason string
}

// Error implements error.
func (d *Denied) Error() string { return d.Reason }

// Allow decides whether p may use route r: the key's project must be the route's (when the path
// names one), and its role must allow the route's class.
func Allow(p keys.Principal, r Route) error {
	if r.ProjectID != 0 && r.ProjectID != p.ProjectID {
		return &Denied{Reason: fmt.Sprintf("this API key belongs to project %d, not project %d", p.ProjectID, r.ProjectID)}
	}
	if !RoleAllows(p.Role, r.Class) {
		return &Denied{Reason: fmt.Sprintf("the %s role may not %s (this endpoint needs the %q permission)",
			p.Role.Label(), classVerb(r.Class), r.Class.String())}
	}
	return nil
}

func classVerb(c Class) string {
	switch c {
	case ClassRead:
		return "read project data"
	case ClassAddData:
		return "add data"
	case ClassRemote:
		return "connect to remote management"
	case ClassDeploy:
		return "deploy models"
	default:
		return "change training, settings or keys"
	}
}
