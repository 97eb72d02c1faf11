package verify

import "testing"

func TestFileFormat(t *testing.T) {
	for _, tc := range []struct {
		name string
		body string
		want Format
	}{
		{"a.json", "\xa3", FormatJSON}, // the extension decides
		{"a.CBOR", "{", FormatCBOR},
		{"a.bin", "\xa3\x68", FormatCBOR}, // a CBOR map
		{"-", `{"protected":{}}`, FormatJSON},
		{"-", "\n{}", FormatJSON},
		{"a.csv", "a,b\n", FormatUnknown},
		{"-", "", FormatUnknown},
	} {
		t.Run(tc.name+" "+tc.body, func(t *testing.T) {
			if got := FileFormat(tc.name, []byte(tc.body)); got != tc.want {
				t.Errorf("FileFormat(%q, %q) = %v, want %v", tc.name, tc.body, got, tc.want)
			}
		})
	}
}

func TestParseFormat(t *testing.T) {
	for in, want := range map[string]Format{"json": FormatJSON, "JSON": FormatJSON, "cbor": FormatCBOR} {
		if got, err := ParseFormat(in); got != want || err != nil {
			t.Errorf("ParseFormat(%q) = %v, %v", in, got, err)
		}
	}
	if _, err := ParseFormat("xml"); err == nil {
		t.Error("ParseFormat(xml) is not an error")
	}
}
