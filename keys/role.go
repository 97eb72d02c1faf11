package keys

import (
	"fmt"
	"strings"
)

// Role is what an API key may do. The zero value is not a role: a Principal that was never filled
// in grants nothing.
type Role uint8

// The four roles of docs/protocol.md §2.2, from most to least privileged.
const (
	RoleInvalid             Role = iota
	RoleAdmin                    // admin: everything
	RoleIngestionDeployment      // ingestion_deployment: read, add data, remote management, deploy
	RoleIngestion                // ingestiononly: read, add data, remote management
	RoleReadOnly                 // readonly: read
)

var roleWire = [...]string{"", "admin", "ingestion_deployment", "ingestiononly", "readonly"}
var roleLabel = [...]string{"", "Admin (full access)", "Ingestion + deployment", "Ingestion", "Read-only"}
var roleDescription = [...]string{
	"",
	"Full access to the project: data, training, deployment, settings and keys.",
	"Add data, connect devices to remote management and deploy models; read everything.",
	"Add data and connect devices to remote management; read everything.",
	"Read data and impulse state; change nothing.",
}

// Roles lists the valid roles in the order the Studio shows them.
var Roles = []Role{RoleAdmin, RoleIngestionDeployment, RoleIngestion, RoleReadOnly}

// ParseRole accepts exactly the wire names; anything else (including labels or other casing) is an error,
// because a typo must never silently become a different permission set.
func ParseRole(s string) (Role, error) {
	for r := RoleAdmin; r <= RoleReadOnly; r++ {
		if roleWire[r] == s {
			return r, nil
		}
	}
	return RoleInvalid, fmt.Errorf("unknown role %q (want one of %s)", s, strings.Join(roleWire[1:], ", "))
}

// Valid reports whether r is one of the four roles.
func (r Role) Valid() bool { return r >= RoleAdmin && r <= RoleReadOnly }

// String is the wire name (admin, ingestion_deployment, ingestiononly, readonly).
func (r Role) String() string {
	if !r.Valid() {
		return "invalid"
	}
	return roleWire[r]
}

// Label is the human name the Studio shows, e.g. "Ingestion + deployment".
func (r Role) Label() string {
	if !r.Valid() {
		return "Invalid"
	}
	return roleLabel[r]
}

// Description says in one sentence what the role allows.
func (r Role) Description() string {
	if !r.Valid() {
		return ""
	}
	return roleDescription[r]
}

// MarshalText writes the wire name.
func (r Role) MarshalText() ([]byte, error) {
	if !r.Valid() {
		return nil, fmt.Errorf("marshal role: invalid role %d", uint8(r))
	}
	return []byte(roleWire[r]), nil
}

// UnmarshalText parses the wire name.
func (r *Role) UnmarshalText(b []byte) error {
	v, err := ParseRole(string(b))
	if err != nil {
		return err
	}
	*r = v
	return nil
}
