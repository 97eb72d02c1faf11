package verify

import (
	"bytes"
	"encoding/json"
	"strconv"
	"strings"
)

// maxJSONDepth bounds nesting while skipping values, so hostile input is cheap to refuse.
const maxJSONDepth = 64

type jsonScanner struct {
	b   []byte
	off int
}

func (j *jsonScanner) ws() {
	for j.off < len(j.b) {
		switch j.b[j.off] {
		case ' ', '\t', '\n', '\r':
			j.off++
		default:
			return
		}
	}
}

func (j *jsonScanner) expect(c byte) error {
	j.ws()
	if j.off >= len(j.b) || j.b[j.off] != c {
		if j.off >= len(j.b) {
			return malformed("unexpected end of JSON")
		}
		return malformed("expected %q at byte %d", c, j.off)
	}
	j.off++
	return nil
}

// str scans a JSON string starting at the current '"' and returns its raw extent [start, end)
// including the quotes, and whether it contains escapes.
func (j *jsonScanner) str() (start, end int, escaped bool, err error) {
	j.ws()
	if j.off >= len(j.b) || j.b[j.off] != '"' {
		return 0, 0, false, malformed("expected a string at byte %d", j.off)
	}
	start = j.off
	i := j.off + 1
	for {
		k := bytes.IndexAny(j.b[i:], "\"\\")
		if k < 0 {
			return 0, 0, false, malformed("unterminated string")
		}
		i += k
		if j.b[i] == '"' {
			j.off = i + 1
			return start, j.off, escaped, nil
		}
		escaped = true
		i += 2
		if i > len(j.b) {
			return 0, 0, false, malformed("unterminated string")
		}
	}
}

// key reads an object key.
func (j *jsonScanner) key() (string, error) {
	s, e, esc, err := j.str()
	if err != nil {
		return "", err
	}
	if !esc {
		return string(j.b[s+1 : e-1]), nil
	}
	var k string
	if err := json.Unmarshal(j.b[s:e], &k); err != nil {
		return "", malformed("bad key")
	}
	return k, nil
}

// skip moves past one value and returns its extent. It checks structure (brackets, strings) but
// not the full grammar: the backend parses the file; keygate only needs to find fields.
func (j *jsonScanner) skip() (start, end int, err error) {
	j.ws()
	if j.off >= len(j.b) {
		return 0, 0, malformed("unexpected end of JSON")
	}
	start = j.off
	switch c := j.b[j.off]; c {
	case '"':
		_, end, _, err = j.str()
		return start, end, err
	case '{', '[':
		depth := 0
		for j.off < len(j.b) {
			switch j.b[j.off] {
			case '{', '[':
				depth++
				if depth > maxJSONDepth {
					return 0, 0, malformed("nested deeper than %d", maxJSONDepth)
				}
				j.off++
			case '}', ']':
				depth--
				j.off++
				if depth == 0 {
					return start, j.off, nil
				}
			case '"':
				if _, _, _, err := j.str(); err != nil {
					return 0, 0, err
				}
			default:
				j.off++
			}
		}
		return 0, 0, malformed("unexpected end of JSON")
	default:
		for j.off < len(j.b) {
			switch j.b[j.off] {
			case ',', '}', ']', ' ', '\t', '\n', '\r':
				if j.off == start {
					return 0, 0, malformed("unexpected %q at byte %d", j.b[j.off], j.off)
				}
				return start, j.off, nil
			}
			j.off++
		}
		return 0, 0, malformed("unexpected end of JSON")
	}
}

// object walks the members of the object at the current position, calling fn for each key with the
// scanner positioned at the value. fn must consume the value (or return stop=true).
func (j *jsonScanner) object(fn func(key string) (stop bool, err error)) error {
	if err := j.expect('{'); err != nil {
		return err
	}
	j.ws()
	if j.off < len(j.b) && j.b[j.off] == '}' {
		j.off++
		return nil
	}
	for {
		k, err := j.key()
		if err != nil {
			return err
		}
		if err := j.expect(':'); err != nil {
			return err
		}
		stop, err := fn(k)
		if err != nil || stop {
			return err
		}
		j.ws()
		if j.off >= len(j.b) {
			return malformed("unexpected end of JSON")
		}
		switch j.b[j.off] {
		case ',':
			j.off++
		case '}':
			j.off++
			return nil
		default:
			return malformed("expected ',' or '}' at byte %d", j.off)
		}
	}
}

// protectedNames are the protected header's fields, in Sample's order.
var protectedNames = [...]string{"ver", "alg", "iat"}

// protected reads the protected header strictly: valid JSON, no field twice, no case variant of a
// field (Go's encoding/json would match "ALG" to alg while JavaScript would not), ver and alg
// strings, iat a JSON number. A quoted iat ("1700000000") is refused: some readers would take it
// for a number and some for a string.
func (j *jsonScanner) protected(s *Sample) error {
	j.ws()
	st := j.off
	if _, en, err := j.skip(); err != nil {
		return err
	} else if j.b[st] != '{' || !json.Valid(j.b[st:en]) {
		return malformed("protected is not a valid object")
	}
	j.off = st
	var seen [len(protectedNames)]bool
	return j.object(func(k string) (bool, error) {
		field := -1
		for i, n := range protectedNames {
			switch {
			case k == n:
				field = i
			case strings.EqualFold(k, n):
				return false, malformed("protected has a case variant of %q", n)
			}
		}
		if field < 0 {
			_, _, err := j.skip()
			return false, err
		}
		if seen[field] {
			return false, malformed("protected.%s appears twice", protectedNames[field])
		}
		seen[field] = true
		vs, ve, err := j.skip()
		if err != nil {
			return false, err
		}
		raw := j.b[vs:ve]
		if field == 2 { // iat
			if !isJSONNumber(raw) {
				return false, malformed("protected.iat must be a number of seconds, not %s", jsonKind(raw))
			}
			f, err := strconv.ParseFloat(string(raw), 64)
			if err != nil {
				return false, malformed("protected.iat is out of range")
			}
			s.HasIAT, s.IAT = true, f
			return false, nil
		}
		var v string
		if raw[0] != '"' || json.Unmarshal(raw, &v) != nil {
			return false, malformed("protected.%s must be a string", protectedNames[field])
		}
		if field == 0 {
			s.Ver = v
		} else {
			s.Alg = v
		}
		return false, nil
	})
}

// isJSONNumber reports whether b is exactly one JSON number literal (RFC 8259 §6).
func isJSONNumber(b []byte) bool {
	i := 0
	if i < len(b) && b[i] == '-' {
		i++
	}
	digits := func() int {
		n := 0
		for i < len(b) && b[i] >= '0' && b[i] <= '9' {
			i++
			n++
		}
		return n
	}
	switch {
	case i < len(b) && b[i] == '0':
		i++
	case digits() == 0:
		return false
	}
	if i < len(b) && b[i] == '.' {
		i++
		if digits() == 0 {
			return false
		}
	}
	if i < len(b) && (b[i] == 'e' || b[i] == 'E') {
		i++
		if i < len(b) && (b[i] == '+' || b[i] == '-') {
			i++
		}
		if digits() == 0 {
			return false
		}
	}
	return i == len(b)
}

// jsonKind names a JSON value's type for messages, without echoing it.
func jsonKind(b []byte) string {
	switch b[0] {
	case '"':
		return "a string"
	case '{':
		return "an object"
	case '[':
		return "an array"
	case 't', 'f':
		return "a boolean"
	case 'n':
		return "null"
	}
	return "that value"
}

// parseJSON walks the top-level object: protected and signature are read, the payload is walked
// only until its values (device_name and device_type usually precede them), and the walk stops as
// soon as all three were seen — a 10 MB values array is never scanned. With full set it walks the
// whole file instead, so a device_name placed after the values or a second payload cannot hide.
func parseJSON(b []byte, full bool) (Sample, error) {
	var s Sample
	j := &jsonScanner{b: b}
	var seenProt, seenSig, seenPayload bool
	err := j.object(func(k string) (bool, error) {
		switch k {
		case "protected":
			if seenProt {
				return false, malformed("duplicate protected")
			}
			seenProt = true
			if err := j.protected(&s); err != nil {
				return false, err
			}
		case "signature":
			if seenSig {
				return false, malformed("duplicate signature")
			}
			seenSig = true
			st, en, esc, err := j.str()
			if err != nil {
				return false, malformed("signature must be a string")
			}
			if esc {
				return false, malformed("signature must not contain escapes")
			}
			s.Signature = string(b[st+1 : en-1])
			s.sigOff = st + 1
		case "payload":
			if seenPayload {
				return false, malformed("duplicate payload")
			}
			seenPayload = true
			j.ws()
			if j.off >= len(b) || b[j.off] != '{' {
				return false, malformed("payload must be an object")
			}
			stopped, err := j.payload(&s, !full && seenProt && seenSig)
			if err != nil || stopped {
				return stopped, err
			}
		default:
			if _, _, err := j.skip(); err != nil {
				return false, err
			}
		}
		return !full && seenProt && seenSig && seenPayload, nil
	})
	if err != nil {
		return s, err
	}
	if !seenProt || !seenSig {
		return s, ErrNotSample
	}
	return s, nil
}

// payload reads device_name and device_type. When stopAtValues is set (protected and signature are
// already known) it stops at values, so a large values array is never scanned; otherwise it walks
// the whole payload.
func (j *jsonScanner) payload(s *Sample, stopAtValues bool) (stopped bool, err error) {
	seenName := false
	err = j.object(func(k string) (bool, error) {
		switch k {
		case "device_name", "device_type":
			if k == "device_name" {
				// Parsers disagree on which of two wins; the device a key is bound to must be the
				// one every reader sees.
				if seenName {
					return false, malformed("duplicate payload.device_name")
				}
				seenName = true
			}
			st, en, _, err := j.str()
			if err != nil {
				return false, malformed("payload.%s must be a string", k)
			}
			var v string
			if err := json.Unmarshal(j.b[st:en], &v); err != nil {
				return false, malformed("payload.%s is not a valid string", k)
			}
			if k == "device_name" {
				s.DeviceName = v
			} else {
				s.DeviceType = v
			}
		case "values":
			if stopAtValues {
				stopped = true
				s.valuesOff = j.off
				return true, nil
			}
			if _, _, err := j.skip(); err != nil {
				return false, err
			}
		default:
			if _, _, err := j.skip(); err != nil {
				return false, err
			}
		}
		return false, nil
	})
	return stopped, err
}
