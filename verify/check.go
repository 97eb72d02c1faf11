package verify

import (
	"errors"
	"fmt"
	"math"
	"time"
)

// Verdict is what Check found in one sample file.
type Verdict struct {
	// Signed is false for alg none (nothing else is checked then); Alg names the algorithm.
	Signed bool
	Alg    string
	// Valid: the signature matches Key (an index into the keys given to Check).
	Valid bool
	Key   int
	// SignedAt is protected.iat (zero when absent); Stale says it is outside the allowed skew.
	SignedAt time.Time
	Stale    bool
	// Device is the payload's device_name, when it precedes the values.
	Device string
}

// Check reads a sample file, verifies its signature against keys and, when skew > 0, that its iat
// is within skew of now. A malformed file is an error; an unsigned, invalid or stale one is a Verdict.
func Check(body []byte, f Format, keys [][]byte, now time.Time, skew time.Duration) (Verdict, error) {
	s, err := Parse(body, f)
	if err != nil {
		return Verdict{}, err
	}
	v := Verdict{Signed: s.Signed(), Alg: s.Alg, Device: s.DeviceName, Key: -1}
	if !v.Signed {
		return v, nil
	}
	v.Key, err = s.Verify(body, keys)
	if err != nil && !errors.Is(err, ErrBadSignature) {
		return Verdict{}, err
	}
	v.Valid = err == nil
	if s.HasIAT {
		v.SignedAt = time.Unix(int64(s.IAT), 0).UTC()
		v.Stale = skew > 0 && (math.IsNaN(s.IAT) || math.Abs(float64(now.Unix())-s.IAT) > skew.Seconds())
	}
	return v, nil
}

// Describe is the one line that says what Check found in the file called name, checked against
// nkeys keys (and skew, when it is set): what `keygate verify` prints.
func (v Verdict) Describe(name string, f Format, nkeys int, skew time.Duration) string {
	when := "no iat"
	if !v.SignedAt.IsZero() {
		when = "signed at " + v.SignedAt.Format(time.RFC3339)
	}
	switch {
	case !v.Signed:
		return fmt.Sprintf("%s: unsigned (alg %s)", name, v.Alg)
	case !v.Valid:
		return fmt.Sprintf("%s: INVALID: the signature matches none of the %d key(s)", name, nkeys)
	case v.Stale:
		return fmt.Sprintf("%s: valid signature (key %d) but STALE: %s is outside %s of now", name, v.Key+1, when, skew)
	}
	return fmt.Sprintf("%s: valid (%s, key %d, %s, device %q)", name, f, v.Key+1, when, v.Device)
}

// OK reports whether the verdict is a valid, fresh signature.
func (v Verdict) OK() bool { return v.Signed && v.Valid && !v.Stale }
