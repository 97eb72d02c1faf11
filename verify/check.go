package verify

import (
	"errors"
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
