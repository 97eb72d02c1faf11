package verify

import (
	"bytes"
	"fmt"
	"math/rand/v2"
	"path/filepath"
	"strings"
	"testing"

	"github.com/keygate/keygate/internal/testutil"
)

// The differential test: SplitMultipart against busboy, the parser under multer (Express) and
// most Node upload handlers. Whatever keygate accepts, busboy must split into the same parts, with
// the same names, file names and bytes; what the two could read differently keygate must refuse.
// node and busboy are installed by `make deps` (npm ci in testdata/busboy); without them the test
// fails rather than skips, so a CI without the second parser cannot pass silently.

type busboyPart struct {
	Name     []byte `json:"name"`
	FileName []byte `json:"filename"`
	Kind     string `json:"kind"`
	MimeType string `json:"mimeType"`
	Data     []byte `json:"data"`
}

type busboyResult struct {
	Error string       `json:"error"`
	Parts []busboyPart `json:"parts"`
}

type mpCase struct {
	ContentType string `json:"contentType"`
	Body        []byte `json:"body"`
}

// busboySplit runs every case through busboy in one node process.
func busboySplit(t *testing.T, cases []mpCase) []busboyResult {
	t.Helper()
	var res []busboyResult
	testutil.RunNode(t, filepath.Join("testdata", "busboy"), "busboy", "split.js", cases, &res)
	if len(res) != len(cases) {
		t.Fatalf("busboy output: %d results for %d cases", len(res), len(cases))
	}
	return res
}

const bb = "XyZ-boundary"

// mp assembles a body from part header blocks and bodies, with CRLF line ends.
func mp(parts ...string) []byte {
	var b strings.Builder
	for i := 0; i+1 < len(parts); i += 2 {
		b.WriteString("--" + bb + "\r\n" + strings.ReplaceAll(parts[i], "\n", "\r\n") + "\r\n\r\n" + parts[i+1] + "\r\n")
	}
	b.WriteString("--" + bb + "--\r\n")
	return []byte(b.String())
}

const jsonSample = `{"protected":{"ver":"v1","alg":"none"},"signature":"00","payload":{"values":[]}}`

// agree reports how keygate's and busboy's readings of one body differ ("" if they agree).
func agree(parts []Part, r busboyResult) string {
	if r.Error != "" {
		return "busboy refused it: " + r.Error
	}
	if len(parts) != len(r.Parts) {
		return fmt.Sprintf("keygate found %d parts, busboy %d", len(parts), len(r.Parts))
	}
	for i, p := range parts {
		q := r.Parts[i]
		switch {
		case p.Name != string(q.Name):
			return fmt.Sprintf("part %d: name %q vs busboy %q", i+1, p.Name, q.Name)
		case !bytes.Equal(p.Body, q.Data):
			return fmt.Sprintf("part %d: %d bytes vs busboy %d", i+1, len(p.Body), len(q.Data))
		case q.Kind == "file" && q.FileName != nil && p.FileName != string(q.FileName):
			return fmt.Sprintf("part %d: file name %q vs busboy %q", i+1, p.FileName, q.FileName)
		}
	}
	return ""
}

func TestSplitMultipartAgainstBusboy(t *testing.T) {
	ct := "multipart/form-data; boundary=" + bb
	data := `Content-Disposition: form-data; name="data"; filename="s.json"` + "\nContent-Type: application/json"
	type named struct {
		name   string
		ct     string
		body   []byte
		refuse bool // keygate must refuse it (else: must accept, and busboy must agree)
	}
	cases := []named{
		// Accepted: the forms real clients send, and harmless variations.
		{"one file", ct, mp(data, jsonSample), false},
		{"two files and a field", ct, mp(data, jsonSample, `Content-Disposition: form-data; name="label"`, "idle", data, "a,b\n1,2"), false},
		{"filename first", ct, mp(`Content-Disposition: form-data; filename="s.json"; name="data"`, jsonSample), false},
		{"token values", ct, mp(`Content-Disposition: form-data; name=data; filename=s.json`, jsonSample), false},
		{"upper-case type and parameter names", ct, mp(`Content-Disposition: FORM-DATA; NAME="data"; FileName="s.json"`, jsonSample), false},
		{"no space after ;", ct, mp(`Content-Disposition: form-data;name="data";filename="s.json"`, jsonSample), false},
		{"UTF-8 file name", ct, mp(`Content-Disposition: form-data; name="data"; filename="mesure-été.json"`, jsonSample), false},
		{"directory in file name", ct, mp(`Content-Disposition: form-data; name="data"; filename="dir/s.json"`, jsonSample), false},
		{"no file name", ct, mp(`Content-Disposition: form-data; name="data"`+"\nContent-Type: application/octet-stream", jsonSample), false},
		{"empty file name", ct, mp(`Content-Disposition: form-data; name="data"; filename=""`, jsonSample), false},
		{"lower-case header names", ct, mp(`content-disposition: form-data; name="data"; filename="s.json"`+"\ncontent-type: application/json", jsonSample), false},
		{"another header", ct, mp(data+"\nX-Note: hello", jsonSample), false},
		{"empty body", ct, mp(data, ""), false},
		{"body with a CRLF and dashes", ct, mp(data, "a\r\n--XyZ\r\n-"), false},
		{"quoted boundary", `multipart/form-data; boundary="` + bb + `"`, mp(data, jsonSample), false},
		{"epilogue", ct, append(mp(data, jsonSample), "ignored epilogue\r\n"...), false},

		// Refused: each is read differently by two common parsers (or cannot be read unambiguously).
		{"duplicate filename", ct, mp(`Content-Disposition: form-data; name="data"; filename="s.csv"; filename="s.json"`, jsonSample), true},
		{"duplicate equal filename", ct, mp(`Content-Disposition: form-data; name="data"; filename="s.json"; filename="s.json"`, jsonSample), true},
		{"duplicate name", ct, mp(`Content-Disposition: form-data; name="label"; name="data"; filename="s.json"`, jsonSample), true},
		{"case-variant duplicate name", ct, mp(`Content-Disposition: form-data; name="label"; NAME="data"; filename="s.json"`, jsonSample), true},
		{"empty parameter name", ct, mp(`Content-Disposition: form-data; ="x"; name="data"; filename="s.json"`, jsonSample), true},
		{"filename* beside filename", ct, mp(`Content-Disposition: form-data; name="data"; filename="s.csv"; filename*=UTF-8''s.json`, jsonSample), true},
		{"filename* alone", ct, mp(`Content-Disposition: form-data; name="data"; filename*=UTF-8''s.json`, jsonSample), true},
		{"name*", ct, mp(`Content-Disposition: form-data; name="label"; name*=UTF-8''data; filename="s.json"`, jsonSample), true},
		{"backslash in name", ct, mp(`Content-Disposition: form-data; name="d\ata"; filename="s.json"`, jsonSample), true},
		{"escaped quote in filename", ct, mp(`Content-Disposition: form-data; name="data"; filename="s\".json"`, jsonSample), true},
		{"backslash path in file name", ct, mp(`Content-Disposition: form-data; name="data"; filename="C:\dir\s.json"`, jsonSample), true},
		{"folded duplicate name", ct, mp("Content-Disposition: form-data; name=\"label\";\n name=\"data\"; filename=\"s.json\"", jsonSample), true},
		{"folded continuation", ct, mp("Content-Disposition: form-data;\n\tname=\"data\"; filename=\"s.json\"", jsonSample), true},
		{"two Content-Disposition headers", ct, mp(`Content-Disposition: form-data; name="label"`+"\n"+`Content-Disposition: form-data; name="data"; filename="s.json"`, jsonSample), true},
		{"Content-Disposition in two casings", ct, mp(`content-disposition: form-data; name="label"`+"\n"+`Content-Disposition: form-data; name="data"; filename="s.json"`, jsonSample), true},
		{"no Content-Disposition", ct, mp("Content-Type: application/json", jsonSample), true},
		{"no name", ct, mp(`Content-Disposition: form-data; filename="s.json"`, jsonSample), true},
		{"empty name", ct, mp(`Content-Disposition: form-data; name=""; filename="s.json"`, jsonSample), true},
		{"not form-data", ct, mp(`Content-Disposition: attachment; name="data"; filename="s.json"`, jsonSample), true},
		{"unknown parameter", ct, mp(`Content-Disposition: form-data; name="data"; filename="s.json"; size=3`, jsonSample), true},
		{"space before =", ct, mp(`Content-Disposition: form-data; name ="data"; filename="s.json"`, jsonSample), true},
		{"space after =", ct, mp(`Content-Disposition: form-data; name= "data"; filename="s.json"`, jsonSample), true},
		{"trailing semicolon", ct, mp(`Content-Disposition: form-data; name="data"; filename="s.json";`, jsonSample), true},
		{"double semicolon", ct, mp(`Content-Disposition: form-data;; name="data"; filename="s.json"`, jsonSample), true},
		{"unterminated quote", ct, mp(`Content-Disposition: form-data; name="data; filename="s.json"`, jsonSample), true},
		{"junk after a quoted value", ct, mp(`Content-Disposition: form-data; name="data"x; filename="s.json"`, jsonSample), true},
		{"control character in a value", ct, mp("Content-Disposition: form-data; name=\"da\x01ta\"; filename=\"s.json\"", jsonSample), true},
		{"file name ending in /", ct, mp(`Content-Disposition: form-data; name="data"; filename="s.json/"`, jsonSample), true},
		{"file name ..", ct, mp(`Content-Disposition: form-data; name="data"; filename="a/.."`, jsonSample), true},
		{"quoted-printable part", ct, mp(data+"\nContent-Transfer-Encoding: quoted-printable", `{"a":"=3D"}`), true},
		{"base64 part", ct, mp(data+"\nContent-Transfer-Encoding: base64", "e30="), true},
		{"two Content-Types", ct, mp(data+"\nContent-Type: text/csv", jsonSample), true},
		{"unparsable Content-Type", ct, mp(`Content-Disposition: form-data; name="data"; filename="s"`+"\nContent-Type: application/json; charset=a; charset=b", jsonSample), true},
		{"bare LF headers", ct, []byte("--" + bb + "\r\n" + `Content-Disposition: form-data; name="data"; filename="s.json"` + "\n\n" + jsonSample + "\r\n--" + bb + "--\r\n"), true},
		{"no headers", ct, []byte("--" + bb + "\r\n\r\n" + jsonSample + "\r\n--" + bb + "--\r\n"), true},
		{"preamble glued to the boundary", ct, append([]byte("preamble"), mp(data, jsonSample)...), true},
		{"no close delimiter", ct, mp(data, jsonSample)[:len(mp(data, jsonSample))-len("--"+bb+"--\r\n")], true},
	}

	var all []mpCase
	for _, c := range cases {
		all = append(all, mpCase{c.ct, c.body})
	}
	// Mutants: a valid two-part body with a snippet inserted in, or a span deleted from, the part
	// headers, seeded so a failure can be replayed. Each that keygate accepts must read the same in
	// busboy.
	base := mp(data, jsonSample, `Content-Disposition: form-data; name="label"`, "idle")
	hdrEnd := bytes.Index(base, []byte("\r\n\r\n"))
	snippets := []string{" ", "\t", ";", "\"", "\\", "=", "*", "'", "%22", "\r\n", "\r\n ", "\n", "\r", "name", "filename",
		`; name="data"`, `; filename="x.csv"`, `filename*=UTF-8''a.json`, "\x00", "\xff", "é", "/", "..", ",", ":", "Content-Type: text/csv\r\n"}
	rng := rand.New(rand.NewPCG(11, 4))
	var mutants [][]byte
	for len(mutants) < 1500 {
		m := bytes.Clone(base)
		for k := 0; k < 1+rng.IntN(2); k++ {
			at := len("--"+bb+"\r\n") + rng.IntN(hdrEnd-len("--"+bb+"\r\n"))
			if rng.IntN(4) == 0 {
				m = append(m[:at:at], m[min(at+1+rng.IntN(6), len(m)):]...)
			} else {
				s := snippets[rng.IntN(len(snippets))]
				m = append(m[:at:at], append([]byte(s), m[at:]...)...)
			}
		}
		mutants = append(mutants, m)
		all = append(all, mpCase{ct, m})
	}

	// Framing mutants: delimiters, padding and line ends inserted or deleted anywhere in the body.
	frame := []string{"\r\n", "\n", "\r", " ", "\t", "--", "-", "--" + bb, "\r\n--" + bb, "\r\n--" + bb + "--", "\r\n\r\n", bb}
	for len(mutants) < 3000 {
		m := bytes.Clone(base)
		at := rng.IntN(len(m))
		if rng.IntN(4) == 0 {
			m = append(m[:at:at], m[min(at+1+rng.IntN(4), len(m)):]...)
		} else {
			s := frame[rng.IntN(len(frame))]
			m = append(m[:at:at], append([]byte(s), m[at:]...)...)
		}
		mutants = append(mutants, m)
		all = append(all, mpCase{ct, m})
	}

	res := busboySplit(t, all)
	for i, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			_, params, err := mimeBoundary(c.ct)
			if err != nil {
				t.Fatal(err)
			}
			parts, err := SplitMultipart(c.body, params, 100)
			if c.refuse {
				if err == nil {
					t.Fatalf("accepted; busboy reads %s", describe(res[i]))
				}
				return
			}
			if err != nil {
				t.Fatalf("refused: %v", err)
			}
			if d := agree(parts, res[i]); d != "" {
				t.Fatal(d)
			}
		})
	}
	accepted := 0
	for j, m := range mutants {
		parts, err := SplitMultipart(m, bb, 100)
		if err != nil {
			continue
		}
		accepted++
		if d := agree(parts, res[len(cases)+j]); d != "" {
			t.Errorf("mutant %d is read differently: %s\n%q", j, d, m)
		}
	}
	// The mutants must exercise acceptance, not only refusal, or the comparison proves nothing.
	if accepted < len(mutants)/15 {
		t.Errorf("only %d of %d mutants accepted: the comparison is too thin", accepted, len(mutants))
	}
	t.Logf("%d of %d mutants accepted, each split the same by busboy", accepted, len(mutants))
}

func mimeBoundary(ct string) (string, string, error) {
	const pfx = "multipart/form-data; boundary="
	if !strings.HasPrefix(ct, pfx) {
		return "", "", fmt.Errorf("content type %q", ct)
	}
	return "multipart/form-data", strings.Trim(ct[len(pfx):], `"`), nil
}

func describe(r busboyResult) string {
	if r.Error != "" {
		return "an error: " + r.Error
	}
	var s []string
	for _, p := range r.Parts {
		s = append(s, fmt.Sprintf("%s %q (file name %q, %d bytes)", p.Kind, p.Name, p.FileName, len(p.Data)))
	}
	return "[" + strings.Join(s, ", ") + "]"
}
