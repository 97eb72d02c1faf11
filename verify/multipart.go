package verify

import (
	"bufio"
	"bytes"
	"errors"
	"fmt"
	"mime"
	"net/textproto"
	"path/filepath"
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
		for pos < len(body) && (body[pos] == ' ' || body[pos] == '\t') {
			pos++
		}
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
		hdr, err := textproto.NewReader(bufio.NewReader(bytes.NewReader(body[pos : hdrEnd+2]))).ReadMIMEHeader()
		if err != nil {
			return nil, fmt.Errorf("%w: part headers: %v", ErrMultipart, err)
		}
		start := hdrEnd + 2
		i := bytes.Index(body[start:], delim)
		if i < 0 {
			return nil, fmt.Errorf("%w: part %d has no closing boundary", ErrMultipart, len(parts)+1)
		}
		if len(parts) == maxParts {
			return nil, fmt.Errorf("%w: more than %d parts", ErrMultipart, maxParts)
		}
		p := Part{ContentType: hdr.Get("Content-Type"), Body: body[start : start+i : start+i]}
		// As mime/multipart reads them: the name only for form-data, the file name without directories.
		if disp, params, err := mime.ParseMediaType(hdr.Get("Content-Disposition")); err == nil {
			if disp == "form-data" {
				p.Name = params["name"]
			}
			if fn := params["filename"]; fn != "" {
				p.FileName = filepath.Base(fn)
			}
		}
		parts = append(parts, p)
		pos = start + i + len(delim)
	}
}
