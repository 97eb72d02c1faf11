package keys

import (
	"strings"
	"testing"
)

func TestParseDeviceList(t *testing.T) {
	got, err := ParseDeviceList("# fleet\ncam-1\n\n  cam-2  \nline-4-*\n")
	if err != nil || strings.Join(got, ",") != "cam-1,cam-2,line-4-*" {
		t.Fatalf("ParseDeviceList = %q, %v", got, err)
	}
	for _, tc := range []struct{ text, want string }{
		{"a\nb\na\n", "line 3: device \"a\" is already on line 1"},
		{"# only a comment\n\n", "names no devices"},
	} {
		if _, err := ParseDeviceList(tc.text); err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("ParseDeviceList(%q) = %v, want %q", tc.text, err, tc.want)
		}
	}
}
