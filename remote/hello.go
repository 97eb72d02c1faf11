package remote

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"strings"
	"unicode/utf8"

	"github.com/fxamacker/cbor/v2"
)

// helloFields is what keygate reads from a device's hello (docs/protocol.md §6).
type helloFields struct {
	APIKey, DeviceID, DeviceType string
}

// errHello: the first message is not a hello that every reader reads the same way. Its messages
// name keygate's own field names only, never a key or value the device sent (a hello carries a
// secret, and refusals are logged).
var errHello = errors.New("malformed hello")

// helloProblem is the part of a parseHello error that is safe to show and log.
func helloProblem(err error) string {
	return strings.TrimPrefix(strings.TrimPrefix(err.Error(), errHello.Error()), ": ")
}

// The names keygate reads, at the top level and inside "hello". A hello that spells one of them in
// another case (APIKEY, apikey, Hello) or repeats any key is refused: keygate would authorize one
// key while a backend that matches names case-insensitively (Go's encoding/json, fxamacker/cbor's
// default) or keeps the last duplicate (JavaScript, Python) would read another.
var (
	helloTopNames   = []string{"hello"}
	helloInnerNames = []string{"apiKey", "deviceId", "deviceType"}
)

// checkName refuses a key that equals one of names only when case is ignored (Unicode simple
// folding, as strings.EqualFold and Go's decoders do: the Kelvin sign K reads as k).
func checkName(key string, names []string) error {
	for _, n := range names {
		if key != n && strings.EqualFold(key, n) {
			return fmt.Errorf("%w: a key is a case variant of %q", errHello, n)
		}
	}
	return nil
}

// parseHello reads the hello strictly: one JSON text or CBOR item, no duplicate key in any map, no
// case variant of a field keygate reads, and those fields exact-case strings.
func parseHello(binary bool, raw []byte) (helloFields, error) {
	var top any
	var err error
	if binary {
		top, err = decodeCBORHello(raw)
	} else {
		top, err = decodeJSONHello(raw)
	}
	if err != nil {
		return helloFields{}, err
	}
	m, ok := top.(map[string]any)
	if !ok {
		return helloFields{}, fmt.Errorf("%w: not a map", errHello)
	}
	inner, ok := m["hello"].(map[string]any)
	if !ok {
		return helloFields{}, fmt.Errorf("%w: no hello map", errHello)
	}
	var h helloFields
	for name, dst := range map[string]*string{"apiKey": &h.APIKey, "deviceId": &h.DeviceID, "deviceType": &h.DeviceType} {
		v, present := inner[name]
		if !present {
			continue
		}
		s, ok := v.(string)
		if !ok {
			return helloFields{}, fmt.Errorf("%w: hello.%s is not a string", errHello, name)
		}
		*dst = s
	}
	return h, nil
}

// decodeJSONHello decodes JSON into maps and slices, refusing duplicate keys anywhere (encoding/json
// keeps the last silently) and invalid UTF-8 (which it would replace, changing names).
func decodeJSONHello(raw []byte) (any, error) {
	if !utf8.Valid(raw) {
		return nil, fmt.Errorf("%w: invalid UTF-8", errHello)
	}
	dec := json.NewDecoder(bytes.NewReader(raw))
	dec.UseNumber()
	v, err := jsonValue(dec, 0, helloTopNames)
	if err != nil {
		return nil, err
	}
	if _, err := dec.Token(); err != io.EOF {
		return nil, fmt.Errorf("%w: data after the hello", errHello)
	}
	return v, nil
}

const maxHelloDepth = 16

// jsonValue reads one value; names are the field names to guard at this level (nil: none).
func jsonValue(dec *json.Decoder, depth int, names []string) (any, error) {
	if depth > maxHelloDepth {
		return nil, fmt.Errorf("%w: nested deeper than %d", errHello, maxHelloDepth)
	}
	tok, err := dec.Token()
	if err != nil {
		return nil, fmt.Errorf("%w: not valid JSON", errHello)
	}
	d, ok := tok.(json.Delim)
	if !ok {
		return tok, nil
	}
	switch d {
	case '{':
		m := map[string]any{}
		for dec.More() {
			kt, err := dec.Token()
			if err != nil {
				return nil, fmt.Errorf("%w: not valid JSON", errHello)
			}
			k := kt.(string) // the decoder only yields string keys inside an object
			if _, dup := m[k]; dup {
				return nil, fmt.Errorf("%w: a key appears twice in one object", errHello)
			}
			if err := checkName(k, names); err != nil {
				return nil, err
			}
			var next []string
			if names != nil && k == "hello" && depth == 0 {
				next = helloInnerNames
			}
			v, err := jsonValue(dec, depth+1, next)
			if err != nil {
				return nil, err
			}
			m[k] = v
		}
		if _, err := dec.Token(); err != nil {
			return nil, fmt.Errorf("%w: not valid JSON", errHello)
		}
		return m, nil
	default: // '['
		var a []any
		for dec.More() {
			v, err := jsonValue(dec, depth+1, nil)
			if err != nil {
				return nil, err
			}
			a = append(a, v)
		}
		if _, err := dec.Token(); err != nil {
			return nil, fmt.Errorf("%w: not valid JSON", errHello)
		}
		return a, nil
	}
}

// helloCBOR refuses duplicate map keys (fxamacker keeps the first by default, JavaScript decoders
// the last) and invalid UTF-8, and bounds the work a hostile hello can cause.
var helloCBOR = func() cbor.DecMode {
	dm, err := cbor.DecOptions{
		MaxNestedLevels: maxHelloDepth, MaxArrayElements: 4096, MaxMapPairs: 256,
		DupMapKey: cbor.DupMapKeyEnforcedAPF, UTF8: cbor.UTF8RejectInvalid,
		MapKeyByteString: cbor.MapKeyByteStringForbidden,
	}.DecMode()
	if err != nil {
		panic(err)
	}
	return dm
}()

// decodeCBORHello decodes one CBOR item; the top map and the hello map must have text keys only.
func decodeCBORHello(raw []byte) (any, error) {
	var v any
	if err := helloCBOR.Unmarshal(raw, &v); err != nil {
		var dup *cbor.DupMapKeyError
		if errors.As(err, &dup) {
			return nil, fmt.Errorf("%w: a key appears twice in one map", errHello)
		}
		return nil, fmt.Errorf("%w: not valid CBOR", errHello)
	}
	top, err := textKeyed(v, helloTopNames)
	if err != nil || top == nil {
		return v, err
	}
	if inner, present := top["hello"]; present {
		m, err := textKeyed(inner, helloInnerNames)
		if err != nil {
			return nil, err
		}
		if m != nil {
			top["hello"] = m
		}
	}
	return top, nil
}

// textKeyed converts a decoded CBOR map to map[string]any, refusing keys that are not text strings
// (a byte-string or integer "apiKey" reads differently in every decoder) and case variants of names.
// A value that is not a map is returned as nil, nil.
func textKeyed(v any, names []string) (map[string]any, error) {
	src, ok := v.(map[any]any)
	if !ok {
		return nil, nil
	}
	m := make(map[string]any, len(src))
	for k, val := range src {
		s, ok := k.(string)
		if !ok {
			return nil, fmt.Errorf("%w: a map key is not a text string", errHello)
		}
		if err := checkName(s, names); err != nil {
			return nil, err
		}
		m[s] = val
	}
	return m, nil
}
