package verify

import (
	"encoding/binary"
	"math"
	"strings"

	"github.com/fxamacker/cbor/v2"
)

// maxCBORDepth bounds nesting while walking CBOR.
const maxCBORDepth = 32

// decMode decodes the small items keygate reads (the protected map, strings) with limits that make
// hostile input cheap to refuse. Large items (the values array) are never decoded: the walker below
// only steps over their heads, without allocating, which fxamacker/cbor has no zero-copy call for.
var decMode = func() cbor.DecMode {
	dm, err := cbor.DecOptions{
		MaxNestedLevels:  8,
		MaxArrayElements: 1024,
		MaxMapPairs:      64,
		DupMapKey:        cbor.DupMapKeyEnforcedAPF,
		IndefLength:      cbor.IndefLengthAllowed,
	}.DecMode()
	if err != nil {
		panic(err)
	}
	return dm
}()

type cborWalker struct {
	b []byte
}

// head reads an item's initial byte and argument at off.
func (w *cborWalker) head(off int) (major byte, ai byte, val uint64, next int, err error) {
	if off >= len(w.b) {
		return 0, 0, 0, 0, malformed("unexpected end of CBOR")
	}
	ib := w.b[off]
	major, ai = ib>>5, ib&0x1f
	off++
	switch {
	case ai < 24:
		return major, ai, uint64(ai), off, nil
	case ai == 24:
		if off+1 > len(w.b) {
			break
		}
		return major, ai, uint64(w.b[off]), off + 1, nil
	case ai == 25:
		if off+2 > len(w.b) {
			break
		}
		return major, ai, uint64(binary.BigEndian.Uint16(w.b[off:])), off + 2, nil
	case ai == 26:
		if off+4 > len(w.b) {
			break
		}
		return major, ai, uint64(binary.BigEndian.Uint32(w.b[off:])), off + 4, nil
	case ai == 27:
		if off+8 > len(w.b) {
			break
		}
		return major, ai, binary.BigEndian.Uint64(w.b[off:]), off + 8, nil
	case ai == 31:
		if major == 0 || major == 1 || major == 6 {
			return 0, 0, 0, 0, malformed("invalid indefinite length at byte %d", off-1)
		}
		return major, ai, 0, off, nil
	default:
		return 0, 0, 0, 0, malformed("reserved CBOR argument at byte %d", off-1)
	}
	return 0, 0, 0, 0, malformed("unexpected end of CBOR")
}

// skip steps over one item at off and returns the offset after it.
func (w *cborWalker) skip(off, depth int) (int, error) {
	if depth > maxCBORDepth {
		return 0, malformed("CBOR nested deeper than %d", maxCBORDepth)
	}
	major, ai, val, next, err := w.head(off)
	if err != nil {
		return 0, err
	}
	remaining := uint64(len(w.b) - next)
	switch major {
	case 0, 1:
		return next, nil
	case 2, 3:
		if ai == 31 {
			for {
				if next >= len(w.b) {
					return 0, malformed("unexpected end of CBOR")
				}
				if w.b[next] == 0xff {
					return next + 1, nil
				}
				m, cai, n, after, err := w.head(next)
				if err != nil {
					return 0, err
				}
				if m != major || cai == 31 || n > uint64(len(w.b)-after) {
					return 0, malformed("bad indefinite string chunk")
				}
				next = after + int(n)
			}
		}
		if val > remaining {
			return 0, malformed("string longer than the data")
		}
		return next + int(val), nil
	case 4, 5:
		n := val
		if major == 5 {
			if n > math.MaxUint64/2 {
				return 0, malformed("map too large")
			}
			n *= 2
		}
		if ai == 31 {
			for {
				if next >= len(w.b) {
					return 0, malformed("unexpected end of CBOR")
				}
				if w.b[next] == 0xff {
					return next + 1, nil
				}
				if next, err = w.skip(next, depth+1); err != nil {
					return 0, err
				}
			}
		}
		if n > remaining { // every item takes at least one byte
			return 0, malformed("array or map longer than the data")
		}
		for i := uint64(0); i < n; i++ {
			if next, err = w.skip(next, depth+1); err != nil {
				return 0, err
			}
		}
		return next, nil
	case 6:
		return w.skip(next, depth+1)
	default: // 7: simple values and floats
		if ai == 31 {
			return 0, malformed("unexpected break at byte %d", off)
		}
		return next, nil
	}
}

// text reads a text string item at off.
func (w *cborWalker) text(off int) (string, int, error) {
	end, err := w.skip(off, 0)
	if err != nil {
		return "", 0, err
	}
	if w.b[off]>>5 != 3 {
		return "", 0, malformed("expected a text string at byte %d", off)
	}
	var s string
	if err := decMode.Unmarshal(w.b[off:end], &s); err != nil {
		return "", 0, malformed("bad text string at byte %d", off)
	}
	return s, end, nil
}

// mapEntries walks a map at off, calling fn with each key and the offset of its value; fn returns
// the offset after the value (or stop).
func (w *cborWalker) mapEntries(off int, fn func(key string, valOff int) (next int, stop bool, err error)) (int, error) {
	major, ai, n, next, err := w.head(off)
	if err != nil {
		return 0, err
	}
	if major != 5 {
		return 0, malformed("expected a map at byte %d", off)
	}
	for i := uint64(0); ai == 31 || i < n; i++ {
		if next >= len(w.b) {
			return 0, malformed("unexpected end of CBOR")
		}
		if ai == 31 && w.b[next] == 0xff {
			return next + 1, nil
		}
		var k string
		if w.b[next]>>5 == 3 {
			if k, next, err = w.text(next); err != nil {
				return 0, err
			}
		} else if next, err = w.skip(next, 1); err != nil {
			return 0, err
		}
		var stop bool
		if next, stop, err = fn(k, next); err != nil || stop {
			return next, err
		}
	}
	return next, nil
}

// readCBORProtected reads the protected map as parseJSON's twin does: no key twice (decMode), no case
// variant of ver, alg or iat, ver and alg text strings, iat an integer or a float (not a string, a
// tag or a bignum).
func readCBORProtected(b []byte, s *Sample) error {
	var p map[string]any
	if err := decMode.Unmarshal(b, &p); err != nil {
		return malformed("protected is not a valid map")
	}
	for k := range p {
		for _, n := range protectedNames {
			if k != n && strings.EqualFold(k, n) {
				return malformed("protected has a case variant of %q", n)
			}
		}
	}
	for i, dst := range []*string{&s.Ver, &s.Alg} {
		if v, ok := p[protectedNames[i]]; ok {
			str, ok := v.(string)
			if !ok {
				return malformed("protected.%s must be a text string", protectedNames[i])
			}
			*dst = str
		}
	}
	iat, ok := p["iat"]
	if !ok {
		return nil
	}
	switch v := iat.(type) {
	case uint64:
		s.IAT = float64(v)
	case int64:
		s.IAT = float64(v)
	case float64:
		s.IAT = v
	default:
		return malformed("protected.iat must be a number of seconds")
	}
	s.HasIAT = true
	return nil
}

// parseCBOR is parseJSON's twin: it reads protected and signature, reads the payload only until its
// values, and never decodes the values (in the binary variant they are not CBOR at all). With full
// set it walks past the values too, as parseJSON does.
func parseCBOR(b []byte, full bool) (Sample, error) {
	var s Sample
	w := &cborWalker{b: b}
	if len(b) == 0 || b[0]>>5 != 5 {
		return s, ErrNotSample
	}
	var seenProt, seenSig, seenPayload bool
	_, err := w.mapEntries(0, func(k string, off int) (int, bool, error) {
		switch k {
		case "protected":
			if seenProt {
				return 0, false, malformed("duplicate protected")
			}
			seenProt = true
			end, err := w.skip(off, 1)
			if err != nil {
				return 0, false, err
			}
			if err := readCBORProtected(b[off:end], &s); err != nil {
				return 0, false, err
			}
			return end, false, nil
		case "signature":
			if seenSig {
				return 0, false, malformed("duplicate signature")
			}
			seenSig = true
			sig, end, err := w.text(off)
			if err != nil {
				return 0, false, malformed("signature must be a text string")
			}
			s.Signature = sig
			// HS256 signatures must be a definite 64-byte text string (0x78 0x40) so the bytes to
			// zero are exactly where the signer wrote them.
			if len(sig) == sigLen && end-off == sigLen+2 && b[off] == 0x78 && b[off+1] == 0x40 {
				s.sigOff = off + 2
			} else {
				s.sigOff = -1
			}
			return end, !full && seenProt && seenSig && seenPayload, nil
		case "payload":
			if seenPayload {
				return 0, false, malformed("duplicate payload")
			}
			seenPayload = true
			stopAtValues := !full && seenProt && seenSig
			stopped, seenName := false, false
			end, err := w.mapEntries(off, func(pk string, poff int) (int, bool, error) {
				switch pk {
				case "device_name", "device_type":
					if pk == "device_name" {
						if seenName {
							return 0, false, malformed("duplicate payload.device_name")
						}
						seenName = true
					}
					v, end, err := w.text(poff)
					if err != nil {
						return 0, false, malformed("payload.%s must be a text string", pk)
					}
					if pk == "device_name" {
						s.DeviceName = v
					} else {
						s.DeviceType = v
					}
					return end, false, nil
				case "values":
					if stopAtValues {
						stopped = true
						return poff, true, nil
					}
				}
				end, err := w.skip(poff, 2)
				return end, false, err
			})
			return end, stopped, err
		}
		end, err := w.skip(off, 1)
		return end, !full && seenProt && seenSig && seenPayload, err
	})
	if err != nil {
		return s, err
	}
	if !seenProt || !seenSig {
		return s, ErrNotSample
	}
	if s.Alg == AlgHS256 && s.sigOff < 0 {
		return s, malformed("an HS256 signature must be a definite 64-byte CBOR text string")
	}
	return s, nil
}

// cborWalkable reports whether body is exactly one well-formed CBOR item, which the binary variant
// (a header followed by raw samples) is not.
func cborWalkable(body []byte) bool {
	w := &cborWalker{b: body}
	end, err := w.skip(0, 0)
	return err == nil && end == len(body)
}
