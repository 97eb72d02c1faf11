package standin

import (
	"encoding/json"
	"net/http"
	"time"

	"github.com/fxamacker/cbor/v2"
	"github.com/gorilla/websocket"
)

// Remote is a stand-in remote-management server (docs/protocol.md §6) for `keygate demo`: it answers the hello
// that keygate forwards with {"hello": true, "serverTimestamp": …} in the session's encoding, then
// keeps the session open (pings are answered) until the device leaves.
type Remote struct{}

var _ http.Handler = Remote{}

var upgrader = websocket.Upgrader{CheckOrigin: func(*http.Request) bool { return true }}

// ServeHTTP implements http.Handler.
func (Remote) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	c, err := upgrader.Upgrade(w, r, nil)
	if err != nil {
		return
	}
	defer c.Close()
	mt, _, err := c.ReadMessage()
	if err != nil {
		return
	}
	reply := map[string]any{"hello": true, "serverTimestamp": time.Now().UnixMilli()}
	var b []byte
	if mt == websocket.BinaryMessage {
		b, _ = cbor.Marshal(reply)
	} else {
		b, _ = json.Marshal(reply)
	}
	if err := c.WriteMessage(mt, b); err != nil {
		return
	}
	for {
		if _, _, err := c.ReadMessage(); err != nil {
			return
		}
	}
}
