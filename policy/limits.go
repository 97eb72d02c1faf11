package policy

import "github.com/keygate/keygate/keys"

// Limits are the configured rate-limit defaults. A zero keys.Limit means "no limit". Per-project and
// per-key overrides kept in the store (keys.ProjectSettings) take precedence.
type Limits struct {
	// IngestionKey is the per-key limit on the ingestion face, by role.
	IngestionKey map[keys.Role]keys.Limit
	// IngestionProject is the limit for all keys of a project together on the ingestion face.
	IngestionProject keys.Limit
	// IngestionDevice is the per-device limit on the ingestion face (device_name of a verified
	// sample, else the x-device-id / x-device-type headers).
	IngestionDevice keys.Limit
	// StudioKey is the per-key limit on the Studio face (off by default).
	StudioKey keys.Limit
}

// KeyLimit is the limit for one key on a face: the key's override, else the face's default.
func (l Limits) KeyLimit(face Face, p keys.Principal, s keys.ProjectSettings) keys.Limit {
	if o, ok := s.KeyLimits[p.KeyID]; ok && !o.IsZero() {
		return o
	}
	if face == FaceStudio {
		return l.StudioKey
	}
	return l.IngestionKey[p.Role]
}

// ProjectLimit is the limit for a project on a face: the project's override, else the default.
// The Studio face has no project limit.
func (l Limits) ProjectLimit(face Face, s keys.ProjectSettings) keys.Limit {
	if face != FaceIngestion {
		return keys.Limit{}
	}
	if !s.Limit.IsZero() {
		return s.Limit
	}
	return l.IngestionProject
}
