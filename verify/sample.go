// Package verify checks signed samples in the data acquisition format (docs/protocol.md §5): it finds the
// protected header and the signature in the received bytes — JSON or CBOR — without
// re-serialising anything, and verifies HMAC-SHA256 over those exact bytes with the signature's
// 64 characters taken as '0'. It is pure: no I/O, no storage.
package verify

import (
	"bytes"
	"crypto/hmac"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"strings"
)

// Format is how a sample is encoded.
type Format uint8

// Formats.
const (
	FormatUnknown Format = iota // not a data acquisition file (WAV, JPEG, CSV, …)
	FormatJSON
	FormatCBOR // also the binary variant: a CBOR header followed by raw samples
)

// String names the format for logs: json, cbor or other.
func (f Format) String() string {
	switch f {
	case FormatJSON:
		return "json"
	case FormatCBOR:
		return "cbor"
	}
	return "other"
}

// Errors callers branch on.
var (
	// ErrMalformed: the body claims to be a sample (or is JSON/CBOR) but cannot be read.
	ErrMalformed = errors.New("malformed sample")
	// ErrBadSignature: the signature matches none of the keys.
	ErrBadSignature = errors.New("signature does not match")
	// ErrNotSample: the body is not a data acquisition file.
	ErrNotSample = errors.New("not a data acquisition file")
)

// Algorithms of protected.alg.
const (
	AlgHS256 = "HS256"
	AlgNone  = "none"
)

// sigLen is the length of an HS256 signature in hex.
const sigLen = 64

var zeros = []byte(strings.Repeat("0", sigLen))

// Sample is what verification needs from a data acquisition file.
type Sample struct {
	Format Format
	// Ver is protected.ver ("v1").
	Ver string
	// Alg is protected.alg: HS256 or none.
	Alg string
	// HasIAT reports whether protected.iat is present; IAT is it, in seconds (integer or float).
	HasIAT bool
	IAT    float64
	// Signature is the signature string (64 lowercase hex characters for HS256).
	Signature string
	// DeviceName and DeviceType come from the payload when they precede its values.
	DeviceName string
	DeviceType string
	// sigOff is where the signature's 64 characters start in the body (HS256 only).
	sigOff int
	// valuesOff is where a JSON walk stopped at payload.values (0: it did not stop there).
	valuesOff int
}

// Signed reports whether the sample claims an HS256 signature.
func (s *Sample) Signed() bool { return s.Alg == AlgHS256 }

func malformed(format string, a ...any) error {
	return fmt.Errorf("%w: %s", ErrMalformed, fmt.Sprintf(format, a...))
}

// Parse reads what verification needs from body. For FormatUnknown it returns ErrNotSample.
func Parse(body []byte, f Format) (Sample, error) {
	return parse(body, f, false)
}

// ParseFull is Parse for a project whose keys are bound to devices, where DeviceName decides which
// keys may sign: it walks the whole file rather than stopping at the values, so a device_name after
// the values, a second device_name or a second payload — which the backend might read instead of
// the first — is refused as malformed. The binary CBOR variant (raw samples after the header) cannot
// be walked past its values; for it the header's device_name, which must precede them, is the one.
func ParseFull(body []byte, f Format) (Sample, error) {
	if f == FormatJSON {
		// Fast path: when nothing after the start of the values holds a '"', nothing there can be an
		// object key — no later device_name, no second payload — so the quick walk's answer is the
		// whole file's. A 10 MB array of numbers costs one memchr instead of a walk.
		if s, err := parse(body, f, false); err == nil && s.valuesOff > 0 && bytes.IndexByte(body[s.valuesOff:], '"') < 0 {
			return s, nil
		}
	}
	s, err := parse(body, f, true)
	if err != nil && f == FormatCBOR && errors.Is(err, ErrMalformed) {
		if qs, qerr := parse(body, f, false); qerr == nil && qs.DeviceName != "" && !cborWalkable(body) {
			return qs, nil
		}
	}
	return s, err
}

func parse(body []byte, f Format, full bool) (Sample, error) {
	var s Sample
	var err error
	switch f {
	case FormatJSON:
		s, err = parseJSON(body, full)
	case FormatCBOR:
		s, err = parseCBOR(body, full)
	default:
		return s, ErrNotSample
	}
	if err != nil {
		return s, err
	}
	s.Format = f
	return s, s.check()
}

func (s *Sample) check() error {
	if s.Ver != "v1" {
		return malformed("protected.ver must be \"v1\", got %q", s.Ver)
	}
	switch s.Alg {
	case AlgHS256:
		if len(s.Signature) != sigLen || !isLowerHex(s.Signature) {
			return malformed("an HS256 signature must be 64 lowercase hex characters")
		}
	case AlgNone:
	default:
		return malformed("protected.alg must be HS256 or none, got %q", s.Alg)
	}
	return nil
}

func isLowerHex(s string) bool {
	for i := 0; i < len(s); i++ {
		c := s[i]
		if (c < '0' || c > '9') && (c < 'a' || c > 'f') {
			return false
		}
	}
	return true
}

// MAC computes HMAC-SHA256 over body with the signature's bytes taken as 64 '0' characters,
// streaming the three pieces so the body is neither copied nor changed.
func (s *Sample) MAC(body []byte, key []byte) [32]byte {
	m := hmac.New(sha256.New, key)
	m.Write(body[:s.sigOff])
	m.Write(zeros)
	m.Write(body[s.sigOff+sigLen:])
	var out [32]byte
	m.Sum(out[:0])
	return out
}

// Verify checks an HS256 sample against each key in turn (a project may have several during a
// rotation) and returns the index of the key that matches, or ErrBadSignature. Comparison is
// constant-time.
func (s *Sample) Verify(body []byte, keys [][]byte) (int, error) {
	if !s.Signed() {
		return -1, fmt.Errorf("verify: sample is not HS256-signed")
	}
	var want [32]byte
	if _, err := hex.Decode(want[:], []byte(s.Signature)); err != nil {
		return -1, malformed("signature is not hex")
	}
	for i, k := range keys {
		got := s.MAC(body, k)
		if hmac.Equal(got[:], want[:]) {
			return i, nil
		}
	}
	return -1, ErrBadSignature
}
