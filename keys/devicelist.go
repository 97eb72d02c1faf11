package keys

import (
	"context"
	"errors"
	"fmt"
	"strings"
)

// DeviceKey is a device and the HMAC key made for it (`keygate hmac create --devices-from`).
type DeviceKey struct {
	Device  string `json:"device"`
	ID      int64  `json:"id"`
	HMACKey string `json:"hmacKey"`
}

// ParseDeviceList reads one device name (or prefix ending in '*') a line, skipping blank lines and
// # comments. Every line is checked before anything is created: an invalid or repeated name is an
// error naming its line.
func ParseDeviceList(text string) ([]string, error) {
	var out []string
	seen := map[string]int{}
	for i, line := range strings.Split(text, "\n") {
		d := strings.TrimSpace(line)
		if d == "" || strings.HasPrefix(d, "#") {
			continue
		}
		if err := ValidateDevicePattern(d); err != nil {
			return nil, fmt.Errorf("line %d: %w", i+1, err)
		}
		if first, dup := seen[d]; dup {
			return nil, fmt.Errorf("line %d: device %q is already on line %d", i+1, d, first)
		}
		seen[d] = i + 1
		out = append(out, d)
	}
	if len(out) == 0 {
		return nil, errors.New("names no devices")
	}
	return out, nil
}

// CreateDeviceKeys creates one generated HMAC key per device, bound to it and named
// "name (device)". If the store fails midway, it returns the keys already made with the error, so
// the caller can still show them and none is lost.
func CreateDeviceKeys(ctx context.Context, s interface {
	CreateHMACKey(ctx context.Context, n NewHMACKey) (HMACKey, error)
}, projectID int64, name string, devices []string) ([]DeviceKey, error) {
	made := make([]DeviceKey, 0, len(devices))
	for _, d := range devices {
		secret, err := GenerateHMACKey()
		if err != nil {
			return made, err
		}
		hk, err := s.CreateHMACKey(ctx, NewHMACKey{ProjectID: projectID, Name: name + " (" + d + ")", Secret: secret, Devices: []string{d}})
		if err != nil {
			return made, fmt.Errorf("create the key of device %q: %w", d, err)
		}
		made = append(made, DeviceKey{Device: d, ID: hk.ID, HMACKey: hk.Secret})
	}
	return made, nil
}
