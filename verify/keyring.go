package verify

import (
	"errors"
	"slices"
	"strings"
)

// Errors of KeyRing.Verify, besides ErrBadSignature.
var (
	// ErrWrongDevice: no key that may sign for the sample's device_name produced its signature, in
	// a project with device-bound keys — the signature may well be another device's.
	ErrWrongDevice = errors.New("signature key is not valid for device")
	// ErrUnboundKey: the sample is signed with a key bound to no device, and the project requires
	// device-bound keys.
	ErrUnboundKey = errors.New("signed with an HMAC key that is not bound to devices")
)

// RingKey is one HMAC key as a KeyRing needs it.
type RingKey struct {
	ID     int64
	Secret []byte
	// Devices is the key's binding: exact device names, or prefixes ending in '*'. Empty: any device.
	Devices []string
}

// group is the keys one lookup yields, secrets and ids side by side so Sample.Verify can take the
// secrets as they are.
type group struct {
	secrets [][]byte
	ids     []int64
}

func (g *group) add(k RingKey) {
	g.secrets = append(g.secrets, k.Secret)
	g.ids = append(g.ids, k.ID)
}

// KeyRing holds a project's HMAC keys indexed by the devices they are bound to, so that verifying a
// sample tries only the keys that may sign for its device_name: one map lookup for exact bindings,
// one per distinct prefix length for prefix bindings, then the unbound keys. A project with 10,000
// device keys verifies a sample at the cost of one with a single key. It is built once per cache
// fill and read concurrently; it is never changed after NewKeyRing.
type KeyRing struct {
	exact      map[string]*group
	prefix     map[string]*group
	prefixLens []int // distinct prefix lengths, ascending
	unbound    group
	bound      int
	all        [][]byte // every secret, in the order given
}

// NewKeyRing indexes keys; the order of keys is the order in which unbound keys are tried (put the
// development key first: it is the one most samples are signed with).
func NewKeyRing(keys []RingKey) *KeyRing {
	r := &KeyRing{exact: map[string]*group{}, prefix: map[string]*group{}}
	for _, k := range keys {
		r.all = append(r.all, k.Secret)
		if len(k.Devices) == 0 {
			r.unbound.add(k)
			continue
		}
		r.bound++
		for _, d := range k.Devices {
			m, name := r.exact, d
			if p, ok := strings.CutSuffix(d, "*"); ok {
				m, name = r.prefix, p
				if !slices.Contains(r.prefixLens, len(p)) {
					r.prefixLens = append(r.prefixLens, len(p))
				}
			}
			g := m[name]
			if g == nil {
				g = &group{}
				m[name] = g
			}
			g.add(k)
		}
	}
	slices.Sort(r.prefixLens)
	return r
}

// Len is the number of keys in the ring.
func (r *KeyRing) Len() int {
	if r == nil {
		return 0
	}
	return r.bound + len(r.unbound.ids)
}

// Secrets returns every secret in the ring in the order NewKeyRing was given them (shared: do not
// change them). For tests and diagnostics: verification goes through Verify.
func (r *KeyRing) Secrets() [][]byte {
	if r == nil {
		return nil
	}
	return r.all
}

// Bound reports whether any key is bound to devices: only then does a sample's device_name decide
// which keys may sign it (and must be read with ParseFull).
func (r *KeyRing) Bound() bool { return r != nil && r.bound > 0 }

// Match says which key signed a sample.
type Match struct {
	KeyID int64
	// Bound reports whether that key is bound to devices (the sample's device is then proven).
	Bound bool
}

// Verify finds the key that signed s among those that may sign for s.DeviceName: the keys bound
// to it (exactly or by prefix), then the unbound keys. With requireBound, a signature by an unbound
// key is ErrUnboundKey. When no candidate matches it returns ErrWrongDevice if the project has keys
// bound to devices (no key valid for this device signed it; it may be another device's key, which
// keygate never tries every key to find out, so that the cost stays flat), ErrBadSignature otherwise.
func (r *KeyRing) Verify(s *Sample, body []byte, requireBound bool) (Match, error) {
	if r == nil {
		return Match{}, ErrBadSignature
	}
	if r.bound > 0 {
		name := s.DeviceName
		if g := r.exact[name]; g != nil {
			if i, err := s.Verify(body, g.secrets); err == nil {
				return Match{KeyID: g.ids[i], Bound: true}, nil
			} else if !errors.Is(err, ErrBadSignature) {
				return Match{}, err
			}
		}
		for _, n := range r.prefixLens {
			if n > len(name) {
				break
			}
			if g := r.prefix[name[:n]]; g != nil {
				if i, err := s.Verify(body, g.secrets); err == nil {
					return Match{KeyID: g.ids[i], Bound: true}, nil
				} else if !errors.Is(err, ErrBadSignature) {
					return Match{}, err
				}
			}
		}
	}
	if len(r.unbound.ids) > 0 {
		i, err := s.Verify(body, r.unbound.secrets)
		switch {
		case err == nil && requireBound:
			return Match{KeyID: r.unbound.ids[i]}, ErrUnboundKey
		case err == nil:
			return Match{KeyID: r.unbound.ids[i]}, nil
		case !errors.Is(err, ErrBadSignature):
			return Match{}, err
		}
	}
	if r.bound > 0 {
		return Match{}, ErrWrongDevice
	}
	return Match{}, ErrBadSignature
}
