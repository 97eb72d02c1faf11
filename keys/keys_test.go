package keys

import (
	"encoding/base64"
	"encoding/hex"
	"fmt"
	"regexp"
	"strings"
	"testing"
)

func TestParseRole(t *testing.T) {
	for _, r := range Roles {
		got, err := ParseRole(r.String())
		if err != nil || got != r {
			t.Errorf("ParseRole(%q) = %v, %v", r.String(), got, err)
		}
	}
	for _, bad := range []string{"", "Admin", "ADMIN", "superuser", "ingestion", "read-only", "invalid"} {
		if _, err := ParseRole(bad); err == nil {
			t.Errorf("ParseRole(%q) accepted", bad)
		}
	}
	if RoleInvalid.Valid() {
		t.Error("zero Role is valid")
	}
	if RoleIngestionDeployment.Label() != "Ingestion + deployment" {
		t.Errorf("label = %q", RoleIngestionDeployment.Label())
	}
}

func TestGenerateAPIKey(t *testing.T) {
	re := regexp.MustCompile(`^ei_[0-9a-f]{64}$`)
	seen := map[string]bool{}
	for i := 0; i < 100; i++ {
		k, err := GenerateAPIKey()
		if err != nil {
			t.Fatal(err)
		}
		if !re.MatchString(k) || seen[k] {
			t.Fatalf("bad or repeated key %q", k)
		}
		seen[k] = true
		if err := ValidateAPIKey(k); err != nil {
			t.Fatal(err)
		}
	}
	h, _ := GenerateHMACKey()
	if !regexp.MustCompile(`^[0-9a-f]{64}$`).MatchString(h) {
		t.Errorf("hmac key %q", h)
	}
}

func TestValidateAPIKey(t *testing.T) {
	tests := []struct {
		key string
		ok  bool
	}{
		{"ei_" + strings.Repeat("a", 29), true},
		{"ei_" + strings.Repeat("a", 28), false},
		{"EI_" + strings.Repeat("a", 40), false},
		{"ei_" + strings.Repeat("a", 300), false},
		{"ei_" + strings.Repeat("a", 30) + "\x00", false},
		{"ei_" + strings.Repeat("a", 30) + ",b", false},
	}
	for _, tt := range tests {
		if err := ValidateAPIKey(tt.key); (err == nil) != tt.ok {
			t.Errorf("ValidateAPIKey(len %d) = %v, want ok=%v", len(tt.key), err, tt.ok)
		}
		if LooksLikeAPIKey(tt.key) != tt.ok {
			t.Errorf("LooksLikeAPIKey(len %d) != %v", len(tt.key), tt.ok)
		}
	}
}

func TestMasterKeyAndSealer(t *testing.T) {
	raw := []byte("0123456789abcdef0123456789abcdef")
	for _, form := range []string{hex.EncodeToString(raw), base64.StdEncoding.EncodeToString(raw), base64.RawURLEncoding.EncodeToString(raw)} {
		got, err := ParseMasterKey(form)
		if err != nil || string(got) != string(raw) {
			t.Errorf("ParseMasterKey(%q) = %q, %v", form, got, err)
		}
	}
	for _, bad := range []string{"", "short", base64.StdEncoding.EncodeToString(raw[:16]), strings.Repeat("z", 64)} {
		if _, err := ParseMasterKey(bad); err == nil {
			t.Errorf("ParseMasterKey(%q) accepted", bad)
		}
	}
	s, err := NewSealer(raw)
	if err != nil {
		t.Fatal(err)
	}
	sealed, err := s.Seal("secret", "hmac", 1, 2)
	if err != nil || strings.Contains(sealed, "secret") {
		t.Fatalf("sealed = %q, %v", sealed, err)
	}
	if got, err := s.Open(sealed, "hmac", 1, 2); err != nil || got != "secret" {
		t.Errorf("open = %q, %v", got, err)
	}
	if _, err := s.Open(sealed, "hmac", 2, 2); err == nil {
		t.Error("a sealed secret opened on another record")
	}
	var none *Sealer
	if _, err := none.Open(sealed, "hmac", 1, 2); err != ErrSealed {
		t.Errorf("open without master key: %v", err)
	}
	plain, _ := none.Seal("secret", "hmac", 1, 2)
	if got, _ := s.Open(plain, "hmac", 1, 2); got != "secret" {
		t.Error("plain records written before a master key was set do not open")
	}
}

func TestDeviceBinding(t *testing.T) {
	tests := []struct {
		name    string
		devices []string
		valid   bool
		matches map[string]bool
	}{
		{"unbound", nil, true, map[string]bool{"dev-a": true, "": true}},
		{"exact", []string{"dev-a"}, true, map[string]bool{"dev-a": true, "dev-b": false, "dev-a2": false, "DEV-A": false, "": false}},
		{"prefix", []string{"line-3-*"}, true, map[string]bool{"line-3-07": true, "line-3-": true, "line-4-01": false, "line-3": false}},
		{"several", []string{"cam-1", "cam-2"}, true, map[string]bool{"cam-1": true, "cam-2": true, "cam-3": false}},
		{"lone star", []string{"*"}, false, nil},
		{"star inside", []string{"a*b"}, false, nil},
		{"two stars", []string{"a**"}, false, nil},
		{"empty name", []string{""}, false, nil},
		{"control character", []string{"dev\n1"}, false, nil},
		{"invalid utf-8", []string{"dev\xff"}, false, nil},
		{"too long", []string{strings.Repeat("d", MaxDeviceNameLength+1)}, false, nil},
		{"duplicate", []string{"dev-a", "dev-a"}, false, nil},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			err := NewHMACKey{ProjectID: 1, Name: "k", Secret: "s", Devices: tc.devices}.Validate()
			if (err == nil) != tc.valid {
				t.Fatalf("Validate() = %v, want valid=%v", err, tc.valid)
			}
			k := HMACKey{Devices: tc.devices}
			for dev, want := range tc.matches {
				if got := k.ValidFor(dev); got != want {
					t.Errorf("ValidFor(%q) = %v, want %v", dev, got, want)
				}
			}
		})
	}
	many := make([]string, MaxDevicesPerKey+1)
	for i := range many {
		many[i] = fmt.Sprintf("dev-%d", i)
	}
	if err := (NewHMACKey{ProjectID: 1, Name: "k", Secret: "s", Devices: many}).Validate(); err == nil {
		t.Errorf("a binding of %d devices accepted", len(many))
	}
}
