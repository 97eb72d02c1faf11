package remote

import (
	"bufio"
	"context"
	"encoding/json"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/fxamacker/cbor/v2"
	"github.com/gorilla/websocket"

	"github.com/keygate/keygate/cache"
	"github.com/keygate/keygate/keys"
)

// mapResolver knows a fixed set of keys.
type mapResolver map[string]keys.Principal

func (m mapResolver) Resolve(_ context.Context, key string) (keys.Principal, error) {
	if p, ok := m[key]; ok {
		return p, nil
	}
	return keys.Principal{}, cache.ErrUnknownKey
}

const (
	helloGood  = "ei_" + "1111111111111111111111111111111111111111111111111111111111111111"
	helloOther = "ei_" + "2222222222222222222222222222222222222222222222222222222222222222"
)

// cborMapPairs encodes a CBOR map from key/value pairs in order, duplicates and all (a Go map could
// not hold them).
func cborMapPairs(t *testing.T, kv ...any) []byte {
	t.Helper()
	b := []byte{0xa0 | byte(len(kv)/2)}
	for _, x := range kv {
		if raw, ok := x.(cbor.RawMessage); ok {
			b = append(b, raw...)
			continue
		}
		e, err := cbor.Marshal(x)
		if err != nil {
			t.Fatal(err)
		}
		b = append(b, e...)
	}
	return b
}

// helloCases are hellos that must be refused because two readers could see two different keys.
func helloCases(t *testing.T) []struct {
	name   string
	binary bool
	msg    []byte
} {
	t.Helper()
	inner := func(kv ...any) cbor.RawMessage { return cbor.RawMessage(cborMapPairs(t, kv...)) }
	return []struct {
		name   string
		binary bool
		msg    []byte
	}{
		{"JSON duplicate apiKey", false, []byte(`{"hello":{"apiKey":"` + helloGood + `","apiKey":"` + helloOther + `"}}`)},
		{"JSON APIKEY beside apiKey", false, []byte(`{"hello":{"apiKey":"` + helloGood + `","APIKEY":"` + helloOther + `"}}`)},
		{"JSON apikey alone", false, []byte(`{"hello":{"apikey":"` + helloGood + `"}}`)},
		{"JSON Kelvin-sign apiKey", false, []byte(`{"hello":{"api\u212aey":"` + helloGood + `"}}`)},
		{"JSON escaped duplicate", false, []byte(`{"hello":{"apiKey":"` + helloGood + `","api\u004bey":"` + helloOther + `"}}`)},
		{"JSON duplicate hello", false, []byte(`{"hello":{"apiKey":"` + helloGood + `"},"hello":{"apiKey":"` + helloOther + `"}}`)},
		{"JSON Hello beside hello", false, []byte(`{"hello":{"apiKey":"` + helloGood + `"},"Hello":{"apiKey":"` + helloOther + `"}}`)},
		{"JSON HELLO alone", false, []byte(`{"HELLO":{"apiKey":"` + helloGood + `"}}`)},
		{"JSON duplicate deviceId", false, []byte(`{"hello":{"apiKey":"` + helloGood + `","deviceId":"a","deviceId":"b"}}`)},
		{"JSON DeviceId variant", false, []byte(`{"hello":{"apiKey":"` + helloGood + `","deviceId":"a","DeviceId":"b"}}`)},
		{"JSON duplicate in nested sensors", false, []byte(`{"hello":{"apiKey":"` + helloGood + `","sensors":[{"name":"a","name":"b"}]}}`)},
		{"JSON apiKey not a string", false, []byte(`{"hello":{"apiKey":["` + helloGood + `"]}}`)},
		{"JSON trailing second hello", false, []byte(`{"hello":{"apiKey":"` + helloGood + `"}}{"hello":{"apiKey":"` + helloOther + `"}}`)},
		{"JSON invalid UTF-8 in a key", false, []byte("{\"hello\":{\"apiKey\":\"" + helloGood + "\",\"api\xffKey\":\"" + helloOther + "\"}}")},
		{"CBOR duplicate apiKey", true, cborMapPairs(t, "hello", inner("apiKey", helloGood, "apiKey", helloOther))},
		{"CBOR APIKEY beside apiKey", true, cborMapPairs(t, "hello", inner("apiKey", helloGood, "APIKEY", helloOther))},
		{"CBOR apikey alone", true, cborMapPairs(t, "hello", inner("apikey", helloGood))},
		{"CBOR duplicate hello", true, cborMapPairs(t, "hello", inner("apiKey", helloGood), "hello", inner("apiKey", helloOther))},
		{"CBOR Hello beside hello", true, cborMapPairs(t, "hello", inner("apiKey", helloGood), "Hello", inner("apiKey", helloOther))},
		{"CBOR byte-string apiKey key", true, cborMapPairs(t, "hello", inner([]byte("apiKey"), helloGood))},
		{"CBOR integer key", true, cborMapPairs(t, "hello", inner("apiKey", helloGood, 1, helloOther))},
		{"CBOR apiKey as bytes", true, cborMapPairs(t, "hello", inner("apiKey", []byte(helloGood)))},
	}
}

func TestParseHello(t *testing.T) {
	t.Run("accepted", func(t *testing.T) {
		j := []byte(`{"hello":{"version":4,"apiKey":"` + helloGood + `","deviceId":"d1","deviceType":"T","sensors":[{"name":"a"}],"mode":"ingestion"}}`)
		c, _ := cbor.Marshal(map[string]any{"hello": map[string]any{"version": 4, "apiKey": helloGood, "deviceId": "d1", "deviceType": "T"}})
		for name, tt := range map[string]struct {
			binary bool
			msg    []byte
		}{"json": {false, j}, "cbor": {true, c}} {
			h, err := parseHello(tt.binary, tt.msg)
			if err != nil || h.APIKey != helloGood || h.DeviceID != "d1" || h.DeviceType != "T" {
				t.Errorf("%s: %+v, %v", name, h, err)
			}
		}
	})
	for _, tt := range helloCases(t) {
		t.Run(tt.name, func(t *testing.T) {
			_, err := parseHello(tt.binary, tt.msg)
			if err == nil {
				t.Fatal("accepted")
			}
			if strings.Contains(err.Error(), helloGood[3:10]) || strings.Contains(err.Error(), helloOther[3:10]) {
				t.Errorf("error echoes a key: %v", err)
			}
		})
	}
}

// TestRemoteRefusesAmbiguousHellos drives real websocket sessions through the remote face: each
// ambiguous hello is answered {"hello": false} in its own encoding, closed, and never reaches the
// upstream, while the plain hello of the same key is relayed.
func TestRemoteRefusesAmbiguousHellos(t *testing.T) {
	var mu sync.Mutex
	var reached [][]byte
	up := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		c, err := (&websocket.Upgrader{}).Upgrade(w, r, nil)
		if err != nil {
			return
		}
		defer c.Close()
		mt, b, err := c.ReadMessage()
		if err != nil {
			return
		}
		mu.Lock()
		reached = append(reached, b)
		mu.Unlock()
		c.WriteMessage(mt, []byte(`{"hello":true}`))
		c.ReadMessage()
	}))
	defer up.Close()
	u, _ := url.Parse("ws" + strings.TrimPrefix(up.URL, "http"))
	res := mapResolver{
		helloGood:  {ProjectID: 1, KeyID: 1, Role: keys.RoleIngestion},
		helloOther: {ProjectID: 2, KeyID: 2, Role: keys.RoleIngestion},
	}
	rm := New(Options{Upstream: u, Resolver: res, HelloTimeout: 5 * time.Second, Log: slog.New(slog.DiscardHandler)})
	gw := httptest.NewServer(rm)
	defer gw.Close()
	addr := "ws" + strings.TrimPrefix(gw.URL, "http")

	send := func(t *testing.T, binary bool, msg []byte) (map[string]any, int) {
		t.Helper()
		c, _, err := websocket.DefaultDialer.Dial(addr, nil)
		if err != nil {
			t.Fatal(err)
		}
		defer c.Close()
		mt := websocket.TextMessage
		if binary {
			mt = websocket.BinaryMessage
		}
		if err := c.WriteMessage(mt, msg); err != nil {
			t.Fatal(err)
		}
		c.SetReadDeadline(time.Now().Add(5 * time.Second))
		rt, b, err := c.ReadMessage()
		if err != nil {
			t.Fatalf("no answer: %v", err)
		}
		var m map[string]any
		if rt == websocket.BinaryMessage {
			err = cbor.Unmarshal(b, &m)
		} else {
			err = json.Unmarshal(b, &m)
		}
		if err != nil {
			t.Fatalf("answer %q: %v", b, err)
		}
		return m, rt
	}

	t.Run("plain HTTP with a slow body is answered and closed at once", func(t *testing.T) {
		c := dialRaw(t, gw)
		io.WriteString(c, "POST / HTTP/1.1\r\nHost: k\r\nContent-Length: 100000\r\n\r\nx")
		br := bufio.NewReader(c)
		res, body := readAnswer(t, c, br, 2*time.Second)
		if res.StatusCode != 400 || !res.Close {
			t.Fatalf("%d close=%v %s", res.StatusCode, res.Close, body)
		}
		errorText(t, body)
		expectConnClosed(t, c, br, 2*time.Second)
	})
	t.Run("plain hello relayed", func(t *testing.T) {
		m, _ := send(t, false, []byte(`{"hello":{"apiKey":"`+helloGood+`"}}`))
		if m["hello"] != true {
			t.Fatalf("answer %v", m)
		}
	})
	mu.Lock()
	base := len(reached)
	mu.Unlock()
	for _, tt := range helloCases(t) {
		t.Run(tt.name, func(t *testing.T) {
			m, rt := send(t, tt.binary, tt.msg)
			if m["hello"] != false || !strings.Contains(m["err"].(string), "must be a hello") {
				t.Errorf("answer %v", m)
			}
			if want := map[bool]int{false: websocket.TextMessage, true: websocket.BinaryMessage}[tt.binary]; rt != want {
				t.Errorf("answered in message type %d, want %d", rt, want)
			}
		})
	}
	mu.Lock()
	defer mu.Unlock()
	if len(reached) != base {
		t.Errorf("%d ambiguous hellos reached the upstream", len(reached)-base)
	}
}
