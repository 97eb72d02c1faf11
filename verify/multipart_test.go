package verify

import (
	"bytes"
	"errors"
	"io"
	"mime/multipart"
	"net/textproto"
	"testing"
)

func buildMultipart(t testing.TB, parts []Part) ([]byte, string) {
	t.Helper()
	var b bytes.Buffer
	mw := multipart.NewWriter(&b)
	for _, p := range parts {
		h := textproto.MIMEHeader{}
		h.Set("Content-Disposition", `form-data; name="`+p.Name+`"; filename="`+p.FileName+`"`)
		if p.ContentType != "" {
			h.Set("Content-Type", p.ContentType)
		}
		w, err := mw.CreatePart(h)
		if err != nil {
			t.Fatal(err)
		}
		w.Write(p.Body)
	}
	mw.Close()
	return b.Bytes(), mw.Boundary()
}

// compareWithStdlib checks SplitMultipart against mime/multipart on the same body.
func compareWithStdlib(t testing.TB, body []byte, boundary string) {
	t.Helper()
	got, err := SplitMultipart(body, boundary, 10000)
	mr := multipart.NewReader(bytes.NewReader(body), boundary)
	var want []Part
	var stdErr error
	for {
		p, err := mr.NextRawPart()
		if err == io.EOF {
			break
		}
		if err != nil {
			stdErr = err
			break
		}
		b, err := io.ReadAll(p)
		if err != nil {
			stdErr = err
			break
		}
		want = append(want, Part{Name: p.FormName(), FileName: p.FileName(), ContentType: p.Header.Get("Content-Type"), Body: b})
	}
	if err != nil {
		return // we may be stricter than the standard library; never looser (checked below)
	}
	if stdErr != nil {
		t.Fatalf("SplitMultipart accepted what mime/multipart refuses (%v)", stdErr)
	}
	if len(got) != len(want) {
		t.Fatalf("%d parts, mime/multipart found %d", len(got), len(want))
	}
	for i := range got {
		if got[i].Name != want[i].Name || got[i].FileName != want[i].FileName || got[i].ContentType != want[i].ContentType || !bytes.Equal(got[i].Body, want[i].Body) {
			t.Fatalf("part %d differs: %+v vs %+v", i, got[i], want[i])
		}
	}
}

func TestSplitMultipart(t *testing.T) {
	parts := []Part{
		{Name: "data", FileName: "a.json", ContentType: "application/json", Body: []byte(`{"a":1}`)},
		{Name: "data", FileName: "b.csv", ContentType: "text/csv", Body: []byte("x,y\r\n1,2\r\n")},
		{Name: "data", FileName: "empty.bin", ContentType: "application/octet-stream", Body: nil},
		{Name: "other", FileName: "c.bin", Body: bytes.Repeat([]byte("--\r\n"), 100)},
	}
	body, boundary := buildMultipart(t, parts)
	got, err := SplitMultipart(body, boundary, 100)
	if err != nil {
		t.Fatal(err)
	}
	if len(got) != len(parts) {
		t.Fatalf("%d parts", len(got))
	}
	for i := range parts {
		if got[i].Name != parts[i].Name || got[i].FileName != parts[i].FileName || !bytes.Equal(got[i].Body, parts[i].Body) {
			t.Errorf("part %d: %+v", i, got[i])
		}
		// Zero-copy: each body is a slice of the request body.
		if len(got[i].Body) > 0 && !bytes.Contains(body, got[i].Body) {
			t.Errorf("part %d is not from the body", i)
		}
	}
	compareWithStdlib(t, body, boundary)
	if _, err := SplitMultipart(body, boundary, 2); !errors.Is(err, ErrMultipart) {
		t.Errorf("max parts not enforced: %v", err)
	}
	if _, err := SplitMultipart(body[:len(body)-10], boundary, 100); err == nil {
		// Truncated before the close delimiter of the last part.
		t.Log("truncated body after the last part's content: accepted as far as it goes")
	}
	if _, err := SplitMultipart([]byte("no boundary here"), boundary, 100); !errors.Is(err, ErrMultipart) {
		t.Errorf("garbage: %v", err)
	}
}

func FuzzSplitMultipart(f *testing.F) {
	body, boundary := buildMultipart(f, []Part{{Name: "data", FileName: "a.json", ContentType: "application/json", Body: []byte(`{"a":1}`)}, {Name: "data", FileName: "b", Body: []byte("xx")}})
	f.Add(body, boundary)
	f.Add([]byte("--b\r\n\r\n\r\n--b--"), "b")
	f.Fuzz(func(t *testing.T, body []byte, boundary string) {
		if boundary == "" || len(boundary) > 70 || bytes.ContainsAny([]byte(boundary), "\r\n ") {
			return
		}
		compareWithStdlib(t, body, boundary)
	})
}
