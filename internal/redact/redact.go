// Package redact keeps API keys out of logs and error messages: a key pasted into a URL path must
// not land verbatim in the access log or be echoed back in a 404.
package redact

import "strings"

// Marker replaces the secret part of a key-shaped string.
const Marker = "[redacted]"

// minRun is how many characters after "ei_" make a string key-shaped. Generated keys have 64 hex
// characters and caller-supplied ones at least 29 (docs/protocol.md §2.1); a shorter threshold also hides a
// partial key, at the price of redacting the odd harmless word.
const minRun = 8

// keyEnd returns where the key-shaped string starting at s[i:] (which begins "ei_") ends, or -1
// when what follows "ei_" is too short to be a key. A key ends at '/', '?', '#' or whitespace.
func keyEnd(s string, i int) int {
	j := i + 3
	for j < len(s) {
		c := s[j]
		if c == '/' || c == '?' || c == '#' || c <= ' ' || c == 0x7f {
			break
		}
		j++
	}
	if j-(i+3) < minRun {
		return -1
	}
	return j
}

// Path returns p with every key-shaped string ("ei_" and at least 8 more characters up to the next
// '/') replaced by "ei_[redacted]". It returns p itself, without allocating, when there is none.
func Path(p string) string {
	if !strings.Contains(p, "ei_") {
		return p
	}
	return string(AppendPath(make([]byte, 0, len(p)), p))
}

// AppendPath appends p to b with key-shaped strings redacted, as Path does.
func AppendPath(b []byte, p string) []byte {
	for {
		i := strings.Index(p, "ei_")
		if i < 0 {
			return append(b, p...)
		}
		end := keyEnd(p, i)
		if end < 0 {
			b = append(b, p[:i+3]...)
			p = p[i+3:]
			continue
		}
		b = append(b, p[:i+3]...)
		b = append(b, Marker...)
		p = p[end:]
	}
}
