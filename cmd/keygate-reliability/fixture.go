package main

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"strconv"
	"sync"
	"sync/atomic"
	"time"

	"github.com/keygate/keygate/keys"
)

// created is one API key the suite made: its id (to revoke it) and its value (to use it).
type created struct {
	id  int64
	key string
}

// storeFor opens keygate's store on a Redis URL, as `keygate keys` does.
func storeFor(redisURL string) (keys.Store, error) {
	rdb, err := keys.NewRedisClient(redisURL)
	if err != nil {
		return nil, err
	}
	return keys.NewRedisStore(rdb, nil), nil
}

// createKeys writes n admin keys of project 1 straight into the store (the fixture, not what is
// measured), 8 at a time.
func createKeys(ctx context.Context, s keys.Store, n int, name string) ([]created, error) {
	out := make([]created, n)
	errs := make(chan error, n)
	sem := make(chan struct{}, 8)
	var wg sync.WaitGroup
	for i := range out {
		wg.Add(1)
		sem <- struct{}{}
		go func() {
			defer wg.Done()
			defer func() { <-sem }()
			k, err := keys.GenerateAPIKey()
			if err == nil {
				var ak keys.APIKey
				ak, err = s.CreateAPIKey(ctx, keys.NewAPIKey{ProjectID: 1, Name: name + "-" + strconv.Itoa(i), Role: keys.RoleAdmin, Key: k})
				out[i] = created{id: ak.ID, key: k}
			}
			if err != nil {
				errs <- err
			}
		}()
	}
	wg.Wait()
	close(errs)
	if err := <-errs; err != nil {
		return nil, fmt.Errorf("create keys: %w", err)
	}
	return out, nil
}

func values(cs []created) []string {
	out := make([]string, len(cs))
	for i, c := range cs {
		out[i] = c.key
	}
	return out
}

// warm requests each key on each replica until it is admitted (so it is in every cache).
func warm(kgs []*keygateProc, ks []string) error {
	sem := make(chan struct{}, 16)
	var wg sync.WaitGroup
	var failed atomic.Int64
	for _, kg := range kgs {
		for _, k := range ks {
			wg.Add(1)
			sem <- struct{}{}
			go func() {
				defer wg.Done()
				defer func() { <-sem }()
				if !waitFor(5*time.Second, func() bool { st, _ := get(kg.url(), k); return st == 200 }) {
					failed.Add(1)
				}
			}()
		}
	}
	wg.Wait()
	if n := failed.Load(); n > 0 {
		return fmt.Errorf("%d keys were never admitted while warming", n)
	}
	return nil
}

func (k *keygateProc) url() string { return "http://" + k.studio + "/v1/api/1/raw-data" }

// api calls keygate's key-management API (docs/protocol.md §3) with an admin key.
func (k *keygateProc) api(method, path, admin string, body any) (int, []byte, error) {
	var rd io.Reader
	if body != nil {
		b, _ := json.Marshal(body)
		rd = bytes.NewReader(b)
	}
	req, _ := http.NewRequest(method, "http://"+k.studio+"/v1/api/1"+path, rd)
	req.Header.Set("x-api-key", admin)
	if body != nil {
		req.Header.Set("Content-Type", "application/json")
	}
	resp, err := client.Do(req)
	if err != nil {
		return 0, nil, err
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	return resp.StatusCode, b, err
}

// revoke revokes a key through a replica's API and returns when the answer came.
func (k *keygateProc) revoke(admin string, id int64) (sent, answered time.Time, err error) {
	sent = time.Now()
	st, b, err := k.api(http.MethodDelete, "/apikeys/"+strconv.FormatInt(id, 10), admin, nil)
	answered = time.Now()
	if err == nil && st != 200 {
		err = fmt.Errorf("revoke: %d %s", st, b)
	}
	return sent, answered, err
}

// create makes a key through a replica's API.
func (k *keygateProc) create(admin, name string) (created, error) {
	st, b, err := k.api(http.MethodPost, "/apikeys", admin, map[string]any{"name": name, "role": "admin", "isDevelopmentKey": false})
	if err != nil {
		return created{}, err
	}
	var r struct {
		ID     int64  `json:"id"`
		APIKey string `json:"apiKey"`
	}
	if st != 200 || json.Unmarshal(b, &r) != nil || r.APIKey == "" {
		return created{}, fmt.Errorf("create: %d %s", st, b)
	}
	return created{id: r.ID, key: r.APIKey}, nil
}

// refusedWithin polls a replica with a key until it is refused; it returns when.
func refusedWithin(kg *keygateProc, key string, timeout time.Duration) (time.Time, bool) {
	deadline := time.Now().Add(timeout)
	for time.Now().Before(deadline) {
		st, _ := get(kg.url(), key)
		if st == 401 || st == 403 {
			return time.Now(), true
		}
	}
	return time.Time{}, false
}

// Upstream modes.
const (
	upNormal int32 = iota
	upSlow         // answers after 3 s (past keygate's 1 s upstream timeout)
	upReset        // resets the connection without answering
)

// upstream is the Go backend behind keygate: a small JSON answer, or a fault on demand.
type upstream struct {
	mode atomic.Int32
	port int
	mu   sync.Mutex
	srv  *http.Server
}

func newUpstream() (*upstream, error) {
	u := &upstream{port: freePort()}
	return u, u.up()
}

func (u *upstream) url() string { return "http://" + addr(u.port) }

func (u *upstream) handler(w http.ResponseWriter, r *http.Request) {
	switch u.mode.Load() {
	case upSlow:
		select {
		case <-time.After(3 * time.Second):
		case <-r.Context().Done():
			return
		}
	case upReset:
		hj, ok := w.(http.Hijacker)
		if !ok {
			panic("no hijacker")
		}
		c, _, err := hj.Hijack()
		if err == nil {
			if tc, ok := c.(*net.TCPConn); ok {
				tc.SetLinger(0) // close with RST
			}
			c.Close()
		}
		return
	}
	io.Copy(io.Discard, r.Body)
	w.Header().Set("Content-Type", "application/json")
	w.Write([]byte(`{"success":true,"data":"fixed answer from the reliability upstream"}`))
}

// up (re)starts the upstream on its port.
func (u *upstream) up() error {
	u.mu.Lock()
	defer u.mu.Unlock()
	var ln net.Listener
	var err error
	if !waitFor(5*time.Second, func() bool { ln, err = net.Listen("tcp", addr(u.port)); return err == nil }) {
		return fmt.Errorf("upstream listen: %w", err)
	}
	u.srv = &http.Server{Handler: http.HandlerFunc(u.handler), ReadHeaderTimeout: 5 * time.Second}
	go u.srv.Serve(ln)
	return nil
}

// down closes the upstream: connections are refused until up.
func (u *upstream) down() {
	u.mu.Lock()
	defer u.mu.Unlock()
	if u.srv != nil {
		u.srv.Close()
		u.srv = nil
	}
}
