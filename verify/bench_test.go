package verify

import (
	"crypto/hmac"
	"crypto/sha256"
	"fmt"
	"strconv"
	"strings"
	"testing"
)

// bigSample builds a signed JSON sample of about n bytes.
func bigSample(b testing.TB, n int) []byte {
	b.Helper()
	var sb strings.Builder
	sb.WriteString(`{"protected":{"ver":"v1","alg":"none"},"signature":"00","payload":{"device_name":"bench","device_type":"BENCH","interval_ms":1,"sensors":[{"name":"a","units":"m"},{"name":"b","units":"m"}],"values":[`)
	for i := 0; sb.Len() < n; i++ {
		if i > 0 {
			sb.WriteByte(',')
		}
		sb.WriteString("[" + strconv.Itoa(i%1000) + ".125,-" + strconv.Itoa(i%777) + ".5]")
	}
	sb.WriteString("]}}")
	out, err := Sign([]byte(sb.String()), FormatJSON, []byte(vectorKey), SignOptions{HasIAT: true, IAT: 1700000000})
	if err != nil {
		b.Fatal(err)
	}
	return out
}

// BenchmarkVerify measures parse + verify next to a bare HMAC-SHA256 over the same bytes: the
// goal is a ratio under 1.2 at 10 MB.
func BenchmarkVerify(b *testing.B) {
	for _, size := range []int{1 << 10, 100 << 10, 10 << 20} {
		body := bigSample(b, size)
		name := fmt.Sprintf("%dKiB", size>>10)
		b.Run("verify/"+name, func(b *testing.B) {
			b.SetBytes(int64(len(body)))
			b.ReportAllocs()
			keys := [][]byte{[]byte(vectorKey)}
			for i := 0; i < b.N; i++ {
				s, err := Parse(body, FormatJSON)
				if err != nil {
					b.Fatal(err)
				}
				if _, err := s.Verify(body, keys); err != nil {
					b.Fatal(err)
				}
			}
		})
		b.Run("hmac/"+name, func(b *testing.B) {
			b.SetBytes(int64(len(body)))
			b.ReportAllocs()
			for i := 0; i < b.N; i++ {
				m := hmac.New(sha256.New, []byte(vectorKey))
				m.Write(body)
				m.Sum(nil)
			}
		})
	}
}
