package admin

import (
	"context"
	"errors"
	"net/http"
	"testing"
	"time"

	"github.com/keygate/keygate/internal/apierr"
	"github.com/keygate/keygate/keys"
)

// TestOps drives the operations the HTTP handler and the CLI share directly: each refusal of the
// input is a 400, each change is recorded once in the audit trail with the caller as its actor.
func TestOps(t *testing.T) {
	e := newEnv(t)
	ctx := context.Background()
	at := time.Now().Truncate(time.Millisecond) // within the audit retention
	ops := Ops{Store: e.store, Now: func() time.Time { return at }}
	c := Caller{Actor: keys.Actor{Name: "alice (CLI)"}, IP: "192.0.2.1"}
	yes := true
	weak := keys.NewHMACKey{ProjectID: 1, Name: "w", Secret: "short"}

	tests := []struct {
		name   string
		run    func() error
		status int    // 0: success
		action string // the audit action a success records
	}{
		{"create an API key", func() error {
			_, k, err := ops.CreateAPIKey(ctx, c, keys.NewAPIKey{ProjectID: 1, Name: "ci", Role: keys.RoleReadOnly})
			if err == nil && keys.ValidateAPIKey(k) != nil {
				t.Errorf("generated key %q is not a valid key", k)
			}
			return err
		}, 0, keys.AuditCreate},
		{"an API key without a name", func() error {
			_, _, err := ops.CreateAPIKey(ctx, c, keys.NewAPIKey{ProjectID: 1, Role: keys.RoleReadOnly})
			return err
		}, http.StatusBadRequest, ""},
		{"a weak HMAC key", func() error { return CheckHMACKey(weak) }, http.StatusBadRequest, ""},
		{"revoke only an ingestion key", func() error { return ops.RevokeAPIKey(ctx, c, 1, e.admin.KeyID, keys.RoleIngestion) }, http.StatusBadRequest, ""},
		{"roll an API key", func() error { _, _, err := ops.RollAPIKey(ctx, c, 1, e.readonly.KeyID, time.Hour); return err }, 0, keys.AuditRoll},
		{"settings with nothing to change", func() error { _, err := ops.UpdateSettings(ctx, c, 1, nil, nil); return err }, http.StatusBadRequest, ""},
		{"require signatures", func() error { _, err := ops.UpdateSettings(ctx, c, 1, &yes, nil); return err }, 0, keys.AuditSettings},
		{"a limit for a key", func() error {
			_, err := ops.SetLimit(ctx, c, 1, e.deploy.KeyID, keys.Limit{Rate: 10, Period: time.Second, Burst: 10})
			return err
		}, 0, keys.AuditLimit},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			before, _, _ := e.store.ListAudit(ctx, 1, 1000, "")
			err := tc.run()
			var ae *apierr.Error
			switch {
			case tc.status == 0 && err != nil:
				t.Fatalf("error %v", err)
			case tc.status != 0 && (!errors.As(err, &ae) || ae.Status != tc.status):
				t.Fatalf("error %v, want a %d", err, tc.status)
			}
			after, _, _ := e.store.ListAudit(ctx, 1, 1000, "")
			want := 0
			if tc.action != "" {
				want = 1
			}
			if len(after)-len(before) != want {
				t.Fatalf("%d audit events recorded, want %d", len(after)-len(before), want)
			}
			if want == 1 {
				ev := after[0] // newest first
				if ev.Action != tc.action || ev.Actor.Name != "alice (CLI)" || ev.IPAddress != "192.0.2.1" || !ev.Time.Equal(at) {
					t.Errorf("audit event %+v, want %s by alice (CLI) from 192.0.2.1 at %v", ev, tc.action, at)
				}
			}
		})
	}
}
