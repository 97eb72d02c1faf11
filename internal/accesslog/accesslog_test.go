package accesslog

import (
	"bytes"
	"encoding/json"
	"strings"
	"testing"
	"time"
)

func TestJSONLine(t *testing.T) {
	var out bytes.Buffer
	w := New(&out, false)
	r := &Record{
		Time: time.Date(2026, 11, 25, 12, 0, 0, 123, time.UTC), Face: "studio", Method: "GET",
		Path: "/v1/api/1/raw-data/\"quoted\"\\\n\x01\xff/é", Outcome: "forwarded", Class: "read", Status: 200,
		KeyID: 7, Project: 1, Duration: 1500 * time.Microsecond, BytesOut: 100, BytesIn: -1, Signature: "valid",
		RequestID: "req-1", ClientIP: "192.0.2.1", UserAgent: "kg-bar/1 \"x\"",
	}
	w.Log(r)
	w.Log(&Record{Time: r.Time, Face: "ingestion", Error: "upstream is unavailable: dial tcp"})
	lines := strings.Split(strings.TrimSuffix(out.String(), "\n"), "\n")
	if len(lines) != 2 {
		t.Fatalf("%d lines: %q", len(lines), out.String())
	}
	var got map[string]any
	if err := json.Unmarshal([]byte(lines[0]), &got); err != nil {
		t.Fatalf("not JSON: %v: %s", err, lines[0])
	}
	want := map[string]any{
		"time": "2026-11-25T12:00:00.000000123Z", "level": "INFO", "msg": "request", "face": "studio", "method": "GET",
		"path": "/v1/api/1/raw-data/\"quoted\"\\\n\x01\ufffd/é", "status": 200.0, "outcome": "forwarded", "class": "read",
		"key_id": 7.0, "project": 1.0, "duration_ms": 1.5, "bytes_out": 100.0, "bytes_in": -1.0, "signature": "valid",
		"request_id": "req-1", "client_ip": "192.0.2.1", "user_agent": "kg-bar/1 \"x\"",
	}
	for k, v := range want {
		if got[k] != v {
			t.Errorf("%s = %#v, want %#v", k, got[k], v)
		}
	}
	if _, ok := got["error"]; ok {
		t.Error("empty error written")
	}
	var second map[string]any
	if err := json.Unmarshal([]byte(lines[1]), &second); err != nil || second["error"] != "upstream is unavailable: dial tcp" {
		t.Errorf("second line %s (%v)", lines[1], err)
	}
}

func TestTextLine(t *testing.T) {
	var out bytes.Buffer
	New(&out, true).Log(&Record{Time: time.Unix(0, 0).UTC(), Face: "studio", Method: "GET", Path: "/a b", Status: 404, Outcome: "not_found", Duration: 2345678 * time.Nanosecond, UserAgent: "curl/8 x"})
	s := out.String()
	for _, want := range []string{"duration_ms=2.345", `user_agent="curl/8 x"`, "level=INFO msg=request face=studio", `path="/a b"`, "status=404", "outcome=not_found", "class=\"\""} {
		if !strings.Contains(s, want) {
			t.Errorf("%q missing %q", s, want)
		}
	}
	if strings.Count(s, "\n") != 1 {
		t.Errorf("not one line: %q", s)
	}
}

func BenchmarkJSONLine(b *testing.B) {
	var out bytes.Buffer
	w := New(&out, false)
	r := &Record{Time: time.Now(), Face: "studio", Method: "GET", Path: "/v1/api/1/raw-data", Outcome: "forwarded", Class: "read", Status: 200, KeyID: 7, Project: 1, Duration: time.Millisecond,
		RequestID: "0123456789abcdef0123456789abcdef", ClientIP: "192.0.2.1", UserAgent: "edge-impulse-linux/1.0"}
	b.ReportAllocs()
	for i := 0; i < b.N; i++ {
		out.Reset()
		w.Log(r)
	}
}

// TestKeysRedacted: a key pasted into a URL path (or echoed in an error) never lands in the log.
func TestKeysRedacted(t *testing.T) {
	key := "ei_" + strings.Repeat("0123456789abcdef", 4)
	own := "ei_my-own-caller-supplied-key-0001"
	for _, text := range []bool{false, true} {
		var out bytes.Buffer
		w := New(&out, text)
		// A client may send a key (by mistake or to plant it) as its request id or User-Agent.
		w.Log(&Record{Face: "studio", Method: "GET", Path: "/v1/api/1/" + key + "/x/" + own, Error: "no such endpoint: GET /" + key,
			RequestID: key, UserAgent: "agent " + own})
		line := out.String()
		if strings.Contains(line, key[3:]) || strings.Contains(line, own[3:]) {
			t.Errorf("text=%v: key in the log: %s", text, line)
		}
		if !strings.Contains(line, "/v1/api/1/ei_[redacted]/x/ei_[redacted]") {
			t.Errorf("text=%v: path not kept around the redaction: %s", text, line)
		}
	}
}

// TestAppendTime: the per-second cache writes exactly what time.RFC3339Nano writes, for times in
// the same second and across seconds, with and without a fraction, in UTC and with an offset.
func TestAppendTime(t *testing.T) {
	east := time.FixedZone("east", 5*3600+30*60)
	west := time.FixedZone("west", -8*3600)
	berlin, err := time.LoadLocation("Europe/Berlin")
	if err != nil {
		berlin = time.FixedZone("berlin", 3600)
	}
	base := time.Date(2026, 11, 26, 23, 59, 59, 0, time.UTC)
	var times []time.Time
	for _, loc := range []*time.Location{time.UTC, east, west, berlin, time.Local} {
		for _, ns := range []int{0, 1, 10, 123, 100000000, 120000000, 999999999, 500} {
			times = append(times, base.Add(time.Duration(ns)).In(loc))
			times = append(times, base.Add(time.Second+time.Duration(ns)).In(loc))
		}
	}
	times = append(times,
		time.Date(2026, 3, 29, 1, 59, 59, 999999999, time.UTC).In(berlin), // the second before a DST change
		time.Date(2026, 3, 29, 2, 0, 0, 1, time.UTC).In(berlin),
		time.Unix(0, 0).UTC(), time.Unix(-1, 5).UTC(), time.Date(1969, 12, 31, 23, 59, 59, 999, time.UTC),
		time.Now(), time.Now().Add(time.Nanosecond))
	w := New(nil, false)
	for _, tm := range times {
		want := tm.Format(time.RFC3339Nano)
		if got := string(w.appendTime(nil, tm)); got != want {
			t.Errorf("appendTime(%v) = %q, want %q", tm, got, want)
		}
	}
}

// TestAppendJSONString: every string, whether it starts, ends or is made of bytes that need
// escaping, decodes back to itself (invalid UTF-8 as U+FFFD).
func TestAppendJSONString(t *testing.T) {
	cases := []string{"", "plain", "/v1/api/1/raw-data", `"`, `\`, "a\"b", "tail\\", "\x00", "\x1f\x7f", "é", "a\xffb", "\xff",
		"ok then \n newline", "\u2028\u2029<>&", strings.Repeat("x", 300) + "\x01", "日本語/ok"}
	for c := 0; c < 256; c++ {
		cases = append(cases, "ab"+string([]byte{byte(c)})+"cd")
	}
	for _, s := range cases {
		b := appendJSONString(nil, s)
		var got string
		if err := json.Unmarshal(b, &got); err != nil {
			t.Errorf("appendJSONString(%q) = %s: not a JSON string: %v", s, b, err)
			continue
		}
		if want := strings.ToValidUTF8(s, "\ufffd"); got != want {
			t.Errorf("appendJSONString(%q) decodes to %q, want %q", s, got, want)
		}
	}
}
