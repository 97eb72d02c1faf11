package standin

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"sync"
	"time"
)

// Privileged stands in for the platform's deployment runner starting a privileged deployment
// block: it fetches the project's development API key from keygate's ops listener with the service
// token (docs/deploy.md) and, as the block would, calls the Studio API back through keygate with it.
// The key never leaves it: the job's answer says which key the block ran as, not the key.
type Privileged struct {
	// Token is the service token (KEYGATE_SERVICE_TOKEN_FILE's content).
	Token  string
	Client *http.Client

	mu          sync.RWMutex
	ops, studio string
}

// SetAddrs tells the runner where keygate's ops listener and Studio face are (base URLs), once
// keygate listens.
func (p *Privileged) SetAddrs(ops, studio string) {
	p.mu.Lock()
	p.ops, p.studio = ops, studio
	p.mu.Unlock()
}

func (p *Privileged) client() *http.Client {
	if p.Client != nil {
		return p.Client
	}
	return &http.Client{Timeout: 10 * time.Second}
}

func (p *Privileged) getJSON(ctx context.Context, url string, hdr http.Header, into any) (int, error) {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, url, nil)
	if err != nil {
		return 0, err
	}
	req.Header = hdr
	res, err := p.client().Do(req)
	if err != nil {
		return 0, err
	}
	defer res.Body.Close()
	b, err := io.ReadAll(io.LimitReader(res.Body, 64<<10))
	if err != nil {
		return res.StatusCode, err
	}
	if err := json.Unmarshal(b, into); err != nil {
		return res.StatusCode, fmt.Errorf("answer is not JSON")
	}
	return res.StatusCode, nil
}

// run is the job: POST /v1/api/{projectId}/jobs/privileged-block on the stand-in Studio backend.
func (p *Privileged) run(w http.ResponseWriter, r *http.Request, pid string) {
	p.mu.RLock()
	ops, studio := p.ops, p.studio
	p.mu.RUnlock()
	if ops == "" {
		fail(w, http.StatusServiceUnavailable, "privileged block: keygate is not listening yet")
		return
	}
	var keys struct {
		Success bool   `json:"success"`
		APIKey  string `json:"apiKey"`
		Error   string `json:"error"`
	}
	status, err := p.getJSON(r.Context(), ops+"/internal/projects/"+pid+"/devkeys", http.Header{"Authorization": {"Bearer " + p.Token}}, &keys)
	switch {
	case err != nil:
		fail(w, http.StatusBadGateway, "privileged block: could not fetch the development key from keygate: "+err.Error())
		return
	case status != http.StatusOK || keys.APIKey == "":
		msg := keys.Error
		if msg == "" {
			msg = "the project has no development API key"
		}
		fail(w, http.StatusConflict, "privileged block: "+msg)
		return
	}
	// The block runs with the key: here, one Studio call through keygate.
	var info struct {
		Success   bool   `json:"success"`
		APIKeyID  int64  `json:"apiKeyId"`
		ProjectID int64  `json:"projectId"`
		Role      string `json:"role"`
		Error     string `json:"error"`
	}
	status, err = p.getJSON(r.Context(), studio+"/v1/api/projects/api-key-info", http.Header{"X-Api-Key": {keys.APIKey}}, &info)
	if err != nil || status != http.StatusOK || !info.Success {
		fail(w, http.StatusBadGateway, fmt.Sprintf("privileged block: the Studio API refused the development key (%d %s)", status, info.Error))
		return
	}
	writeJSON(w, http.StatusOK, map[string]any{"success": true, "block": map[string]any{
		"ranAs":      map[string]any{"apiKeyId": info.APIKeyID, "projectId": info.ProjectID, "role": info.Role},
		"calledBack": "GET /v1/api/projects/api-key-info",
	}})
}
