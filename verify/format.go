package verify

import (
	"mime"
	"path"
	"strings"
)

// DetectFormat decides how to read a body from its media type and, for parts of multipart uploads,
// its file name. application/octet-stream is the binary (CBOR) variant only when it starts with a
// CBOR map; anything else (WAV, JPEG, CSV, …) is FormatUnknown: not a sample.
func DetectFormat(contentType, fileName string, body []byte) Format {
	mt, _, _ := mime.ParseMediaType(contentType)
	switch {
	case mt == "application/json" || strings.HasSuffix(mt, "+json"):
		return FormatJSON
	case mt == "application/cbor":
		return FormatCBOR
	}
	switch strings.ToLower(path.Ext(fileName)) {
	case ".json":
		return FormatJSON
	case ".cbor":
		return FormatCBOR
	}
	if (mt == "application/octet-stream" || mt == "") && len(body) > 0 && body[0]>>5 == 5 {
		return FormatCBOR
	}
	return FormatUnknown
}
