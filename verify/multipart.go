package verify

import (
	"bufio"
	"bytes"
	"errors"
	"fmt"
	"mime"
	"net/textproto"
	"strings"
)

// Part is one part of a multipart/form-data body. Body is a slice of the request body, not a copy,
// so verifying every part of a large upload costs no second copy of it.
type Part struct {
	Name        string
	FileName    string
	ContentType string
	Body        []byte
}

// ErrMultipart: the multipart body cannot be split.
var ErrMultipart = errors.New("malformed multipart body")

// SplitMultipart splits a buffered multipart body (RFC 2046) into parts, in order. mime/multipart
// copies each part through a reader; keygate needs each part as a sub-slice of the body it will
// forward byte for byte, so it finds the delimiters itself and uses textproto for the headers.
func SplitMultipart(body []byte, boundary string, maxParts int) ([]Part, error) {
	if boundary == "" || len(boundary) > 70 {
		return nil, fmt.Errorf("%w: bad boundary", ErrMultipart)
	}
	dash := []byte("--" + boundary)
	delim := []byte("\r\n--" + boundary)
	// The first "--boundary" must open the body or follow CRLF: any other first occurrence is a
	// preamble that parsers disagree about.
	first := bytes.Index(body, dash)
	switch {
	case first < 0:
		return nil, fmt.Errorf("%w: no boundary", ErrMultipart)
	case first > 0 && (first < 2 || body[first-2] != '\r' || body[first-1] != '\n'):
		return nil, fmt.Errorf("%w: ambiguous preamble", ErrMultipart)
	}
	pos := first + len(dash)
	var parts []Part
	for {
		if bytes.HasPrefix(body[pos:], []byte("--")) {
			// Close delimiter: then the end, or padding and CRLF before an ignored epilogue.
			rest := bytes.TrimLeft(body[pos+2:], " \t")
			if len(rest) == 0 || bytes.HasPrefix(rest, []byte("\r\n")) {
				return parts, nil
			}
			return nil, fmt.Errorf("%w: junk after the close delimiter", ErrMultipart)
		}
		// No transport padding (RFC 2046 allows spaces before the CRLF; busboy does not read
		// "--boundary \r\n" as a delimiter at all, so the two would split the body differently).
		if !bytes.HasPrefix(body[pos:], []byte("\r\n")) {
			return nil, fmt.Errorf("%w: boundary not followed by CRLF", ErrMultipart)
		}
		pos += 2
		var hdrEnd int
		if bytes.HasPrefix(body[pos:], []byte("\r\n")) {
			hdrEnd = pos // no headers
		} else {
			i := bytes.Index(body[pos:], []byte("\r\n\r\n"))
			if i < 0 {
				return nil, fmt.Errorf("%w: unterminated part headers", ErrMultipart)
			}
			hdrEnd = pos + i + 2
		}
		// Bare LF line ends are read differently by different parsers; a part whose extent two
		// parsers could disagree on is refused, never guessed.
		for i := pos; i < hdrEnd; i++ {
			if body[i] == '\n' && (i == 0 || body[i-1] != '\r') {
				return nil, fmt.Errorf("%w: bare LF in part headers", ErrMultipart)
			}
		}
		if hdrEnd-pos > 16<<10 {
			return nil, fmt.Errorf("%w: part headers larger than 16 KiB", ErrMultipart)
		}
		p, err := partHeaders(body[pos:hdrEnd+2], len(parts)+1)
		if err != nil {
			return nil, err
		}
		// A parser that searches for CRLF--boundary through headers and all (busboy) ends the part
		// wherever that sequence first appears after the boundary line: inside the header block, or
		// overlapping the blank line that ends it. Such a part is refused rather than split two ways.
		if bytes.Contains(body[pos-2:hdrEnd+2], delim) {
			return nil, fmt.Errorf("%w: part %d has the boundary inside its headers", ErrMultipart, len(parts)+1)
		}
		start := hdrEnd + 2
		i := bytes.Index(body[hdrEnd:], delim)
		switch {
		case i < 0:
			return nil, fmt.Errorf("%w: part %d has no closing boundary", ErrMultipart, len(parts)+1)
		case i == 0:
			return nil, fmt.Errorf("%w: part %d has the boundary right after its headers", ErrMultipart, len(parts)+1)
		}
		i -= 2
		if len(parts) == maxParts {
			return nil, fmt.Errorf("%w: more than %d parts", ErrMultipart, maxParts)
		}
		p.Body = body[start : start+i : start+i]
		parts = append(parts, p)
		pos = start + i + len(delim)
	}
}

// partHeaders reads one part's header block (ending in its blank line's CRLF) into a Part, refusing
// whatever two common multipart parsers (Go's mime/multipart, busboy under multer, Python's) could
// read as different names, file names or bytes: a folded header line, Content-Disposition missing or
// repeated, Content-Type repeated or unparsable, any Content-Transfer-Encoding (Go decodes
// quoted-printable, others pass it through), and a Content-Disposition outside the plain form
// parseDisposition accepts.
func partHeaders(block []byte, n int) (Part, error) {
	var p Part
	if len(block) > 0 && (block[0] == ' ' || block[0] == '\t') || bytes.Contains(block, []byte("\r\n ")) || bytes.Contains(block, []byte("\r\n\t")) {
		return p, fmt.Errorf("%w: part %d has a folded header line", ErrMultipart, n)
	}
	// Each line is a token name, a colon and visible characters: busboy refuses a body with any
	// other header line, while textproto reads some of them (a space inside a name).
	lines, _ := bytes.CutSuffix(block, []byte("\r\n\r\n"))
	for line := range bytes.SplitSeq(lines, []byte("\r\n")) {
		if len(block) == 2 {
			break // no headers at all
		}
		colon := bytes.IndexByte(line, ':')
		if colon <= 0 {
			return p, fmt.Errorf("%w: part %d has a header line without a name", ErrMultipart, n)
		}
		for _, c := range line[:colon] {
			if !isTokenByte(c) {
				return p, fmt.Errorf("%w: part %d has a header name that is not a token", ErrMultipart, n)
			}
		}
		for _, c := range line[colon+1:] {
			if c < 0x20 && c != '\t' || c == 0x7f {
				return p, fmt.Errorf("%w: part %d has a control character in a header", ErrMultipart, n)
			}
		}
	}
	hdr, err := textproto.NewReader(bufio.NewReader(bytes.NewReader(block))).ReadMIMEHeader()
	if err != nil {
		return p, fmt.Errorf("%w: part %d headers: %v", ErrMultipart, n, err)
	}
	if _, ok := hdr["Content-Transfer-Encoding"]; ok {
		return p, fmt.Errorf("%w: part %d has a Content-Transfer-Encoding (RFC 7578 §4.7: not used in form data)", ErrMultipart, n)
	}
	switch ct := hdr["Content-Type"]; len(ct) {
	case 0:
	case 1:
		if _, _, err := mime.ParseMediaType(ct[0]); err != nil {
			return p, fmt.Errorf("%w: part %d has an unparsable Content-Type", ErrMultipart, n)
		}
		p.ContentType = ct[0]
	default:
		return p, fmt.Errorf("%w: part %d has more than one Content-Type", ErrMultipart, n)
	}
	cd := hdr["Content-Disposition"]
	if len(cd) != 1 {
		return p, fmt.Errorf("%w: part %d needs exactly one Content-Disposition, has %d", ErrMultipart, n, len(cd))
	}
	if p.Name, p.FileName, err = parseDisposition(cd[0]); err != nil {
		return p, fmt.Errorf("%w: part %d: %v", ErrMultipart, n, err)
	}
	return p, nil
}

// parseDisposition reads `form-data; name="…"[; filename="…"]` (either order; token or quoted
// values) and nothing else. Every other spelling is refused because parsers part ways on it: a
// repeated or case-variant parameter (first wins, last wins, or error), filename* and name*
// (RFC 7578 §4.2 forbids them; busboy prefers filename*, Go merges them), a backslash in a quoted
// value (Go unescapes only before specials, busboy before anything: name="d\ata" is "d\ata" to one
// and "data" to the other), control characters, whitespace around '=', empty parameter names and
// stray semicolons. What is accepted is then checked against mime.ParseMediaType, so the two
// readings agree. The file name is its last '/'-separated element, as mime/multipart and busboy
// both take it; names ending in '/' or naming "." or ".." are refused since they disagree there.
func parseDisposition(v string) (name, filename string, err error) {
	i := 0
	for i < len(v) && isTokenByte(v[i]) {
		i++
	}
	if !strings.EqualFold(v[:i], "form-data") {
		return "", "", errors.New("Content-Disposition is not form-data")
	}
	var seenName, seenFile bool
	for {
		for i < len(v) && (v[i] == ' ' || v[i] == '\t') {
			i++
		}
		if i == len(v) {
			break
		}
		if v[i] != ';' {
			return "", "", errors.New("Content-Disposition: expected ';'")
		}
		i++
		for i < len(v) && (v[i] == ' ' || v[i] == '\t') {
			i++
		}
		ks := i
		for i < len(v) && isTokenByte(v[i]) {
			i++
		}
		key := strings.ToLower(v[ks:i])
		if i == len(v) || v[i] != '=' || key == "" {
			return "", "", errors.New("Content-Disposition: a parameter without a name or '='")
		}
		i++
		var val string
		if i < len(v) && v[i] == '"' {
			i++
			vs := i
			for i < len(v) && v[i] != '"' {
				if c := v[i]; c == '\\' || c < 0x20 || c == 0x7f {
					return "", "", errors.New("Content-Disposition: a backslash or control character in a quoted value")
				}
				i++
			}
			if i == len(v) {
				return "", "", errors.New("Content-Disposition: unterminated quoted value")
			}
			val = v[vs:i]
			i++
		} else {
			vs := i
			for i < len(v) && isTokenByte(v[i]) {
				i++
			}
			if i == vs {
				return "", "", errors.New("Content-Disposition: an empty parameter value")
			}
			val = v[vs:i]
		}
		switch key {
		case "name":
			if seenName {
				return "", "", errors.New("Content-Disposition: name appears twice")
			}
			seenName, name = true, val
		case "filename":
			if seenFile {
				return "", "", errors.New("Content-Disposition: filename appears twice")
			}
			seenFile, filename = true, val
		default:
			return "", "", errors.New("Content-Disposition: only name and filename parameters are accepted")
		}
		if i < len(v) && v[i] != ' ' && v[i] != '\t' && v[i] != ';' {
			return "", "", errors.New("Content-Disposition: junk after a parameter value")
		}
	}
	if name == "" {
		return "", "", errors.New("Content-Disposition has no name")
	}
	// Belt and braces: Go's own reading must be the same.
	disp, params, err := mime.ParseMediaType(v)
	if err != nil || disp != "form-data" || params["name"] != name || params["filename"] != filename || len(params) != map[bool]int{false: 1, true: 2}[seenFile] {
		return "", "", errors.New("Content-Disposition is read differently by mime.ParseMediaType")
	}
	if seenFile && filename != "" {
		if strings.HasSuffix(filename, "/") {
			return "", "", errors.New("Content-Disposition: filename ends in '/'")
		}
		filename = filename[strings.LastIndexByte(filename, '/')+1:]
		if filename == "." || filename == ".." {
			return "", "", errors.New("Content-Disposition: filename names a directory")
		}
	}
	return name, filename, nil
}

// isTokenByte reports whether c is an RFC 9110 tchar.
func isTokenByte(c byte) bool {
	switch {
	case c >= 'a' && c <= 'z', c >= 'A' && c <= 'Z', c >= '0' && c <= '9':
		return true
	}
	return strings.IndexByte("!#$%&'*+-.^_`|~", c) >= 0
}
