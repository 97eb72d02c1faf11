package verify

import (
	"fmt"
	"mime"
	"path"
	"strings"
)

// DetectFormat decides how to read a body from its media type, its start and its file name. An
// explicit JSON or CBOR media type decides; another specific type (text/csv, audio/wav, image/jpeg,
// …) means not a sample; a generic one (application/octet-stream, none) is sniffed — a CBOR map is
// the binary variant — and then judged by the file name's extension.
func DetectFormat(contentType, fileName string, body []byte) Format {
	mt, _, _ := mime.ParseMediaType(contentType)
	switch {
	case mt == "application/json" || strings.HasSuffix(mt, "+json"):
		return FormatJSON
	case mt == "application/cbor":
		return FormatCBOR
	case mt != "" && mt != "application/octet-stream":
		return FormatUnknown
	}
	if len(body) > 0 && body[0]>>5 == 5 {
		return FormatCBOR
	}
	switch strings.ToLower(path.Ext(fileName)) {
	case ".json":
		return FormatJSON
	case ".cbor":
		return FormatCBOR
	}
	return FormatUnknown
}

// FileFormat decides a sample file's format from its name's extension, else from its first byte
// (a CBOR map; JSON's opening brace or whitespace). FormatUnknown when neither tells.
func FileFormat(name string, body []byte) Format {
	switch strings.ToLower(path.Ext(name)) {
	case ".json":
		return FormatJSON
	case ".cbor":
		return FormatCBOR
	}
	if f := DetectFormat("", "", body); f != FormatUnknown {
		return f
	}
	if len(body) > 0 && (body[0] == '{' || body[0] == ' ' || body[0] == '\n') {
		return FormatJSON
	}
	return FormatUnknown
}

// ParseFormat reads a format's name: json or cbor, in any case.
func ParseFormat(name string) (Format, error) {
	switch strings.ToLower(name) {
	case "json":
		return FormatJSON, nil
	case "cbor":
		return FormatCBOR, nil
	}
	return FormatUnknown, fmt.Errorf("want json or cbor, got %q", name)
}

// ChooseFormat is a sample file's format: the one named (json or cbor) when name is set, else
// FileFormat's guess from the file's name and first byte; an error when neither decides.
func ChooseFormat(file string, body []byte, named string) (Format, error) {
	if named != "" {
		f, err := ParseFormat(named)
		if err != nil {
			return f, fmt.Errorf("--format: %w", err)
		}
		return f, nil
	}
	if f := FileFormat(file, body); f != FormatUnknown {
		return f, nil
	}
	return FormatUnknown, fmt.Errorf("cannot tell whether %s is JSON or CBOR: name it .json or .cbor, or pass --format", file)
}
