package admin

import (
	"cmp"
	"context"
	"fmt"
	"log/slog"
	"os"
	"os/user"
	"strconv"
	"strings"
	"time"

	"github.com/keygate/keygate/keys"
)

// Ops are the key-management operations themselves (check the input, generate the secret, change
// the store, log, audit), written once for both ways in: the HTTP handler and the command line. A
// refusal of the input is a 400 *apierr.Error; the CLI turns it into its usage error.
type Ops struct {
	Store Store
	// Log gets one line per change and the audit trail's log lines; nil: none (the CLI, whose own
	// output says what it did).
	Log *slog.Logger
	// Now stamps audit events; nil: time.Now.
	Now func() time.Time
}

// Caller is who performs an operation and from where, for the audit trail.
type Caller struct {
	Actor keys.Actor
	IP    string
}

// CallerOf is the caller a request's principal is.
func CallerOf(p keys.Principal, ip string) Caller {
	return Caller{Actor: keys.Actor{KeyID: p.KeyID, Name: p.Name}, IP: ip}
}

func (o Ops) info(msg string, args ...any) {
	if o.Log != nil {
		o.Log.Info(msg, args...)
	}
}

// Audit records a successful action of c in project pid's audit trail.
func (o Ops) Audit(ctx context.Context, c Caller, pid int64, action string, target keys.AuditTarget) {
	now := time.Now
	if o.Now != nil {
		now = o.Now
	}
	keys.RecordAudit(ctx, o.Store, o.Log, pid, keys.AuditEvent{
		Time: now(), Action: action, Actor: c.Actor, Target: target, IPAddress: c.IP, Outcome: keys.OutcomeSuccess,
	})
}

// CreateAPIKey creates n (with a generated key when n.Key is empty) and returns it with the whole
// key, which is shown this once.
func (o Ops) CreateAPIKey(ctx context.Context, c Caller, n keys.NewAPIKey) (keys.APIKey, string, error) {
	if n.Key == "" {
		k, err := keys.GenerateAPIKey()
		if err != nil {
			return keys.APIKey{}, "", err
		}
		n.Key = k
	}
	if err := n.Validate(); err != nil {
		return keys.APIKey{}, "", badRequest(err.Error())
	}
	if n.CreatedBy == nil {
		n.CreatedBy = &c.Actor
	}
	ak, err := o.Store.CreateAPIKey(ctx, n)
	if err != nil {
		return keys.APIKey{}, "", err
	}
	o.info("api key created", "project", n.ProjectID, "key_id", ak.ID, "role", ak.Role.String(), "dev", ak.IsDevelopmentKey)
	o.Audit(ctx, c, n.ProjectID, keys.AuditCreate, keys.AuditTarget{Kind: keys.TargetAPIKey, ID: ak.ID, Name: ak.Name})
	return ak, n.Key, nil
}

// RevokeAPIKey revokes API key id of project pid; with onlyRole set, only a key of that role.
func (o Ops) RevokeAPIKey(ctx context.Context, c Caller, pid, id int64, onlyRole keys.Role) error {
	ak, err := o.Store.GetAPIKey(ctx, pid, id)
	if err != nil {
		return err
	}
	if onlyRole != keys.RoleInvalid && ak.Role != onlyRole {
		return badRequest(fmt.Sprintf("API key %d has the %s role, not %s", id, ak.Role.Label(), onlyRole.Label()))
	}
	if err := o.Store.RevokeAPIKey(ctx, pid, id); err != nil {
		return err
	}
	o.info("api key revoked", "project", pid, "key_id", id)
	o.Audit(ctx, c, pid, keys.AuditRevoke, keys.AuditTarget{Kind: keys.TargetAPIKey, ID: id, Name: ak.Name})
	return nil
}

// RollAPIKey gives API key id a new generated secret; the old one works for grace more.
func (o Ops) RollAPIKey(ctx context.Context, c Caller, pid, id int64, grace time.Duration) (keys.APIKey, string, error) {
	k, err := keys.GenerateAPIKey()
	if err != nil {
		return keys.APIKey{}, "", err
	}
	ak, err := o.Store.RollAPIKey(ctx, pid, id, k, grace)
	if err != nil {
		return keys.APIKey{}, "", err
	}
	o.info("api key rolled", "project", pid, "key_id", id, "grace", grace.String())
	o.Audit(ctx, c, pid, keys.AuditRoll, keys.AuditTarget{Kind: keys.TargetAPIKey, ID: id, Name: ak.Name})
	return ak, k, nil
}

// CheckHMACKey is CreateHMACKey's check of its input (a 400 *apierr.Error), for a caller that must
// refuse bad input before it opens a store.
func CheckHMACKey(n keys.NewHMACKey) error {
	if n.Secret != "" {
		if err := keys.ValidateHMACStrength(n.Secret); err != nil {
			return badRequest(err.Error())
		}
	}
	if err := n.Validate(); err != nil {
		return badRequest(err.Error())
	}
	return nil
}

// CreateHMACKey creates n; its secret, when given, must be strong enough.
func (o Ops) CreateHMACKey(ctx context.Context, c Caller, n keys.NewHMACKey) (keys.HMACKey, error) {
	if err := CheckHMACKey(n); err != nil {
		return keys.HMACKey{}, err
	}
	hk, err := o.Store.CreateHMACKey(ctx, n)
	if err != nil {
		return keys.HMACKey{}, err
	}
	o.info("hmac key created", "project", n.ProjectID, "hmac_id", hk.ID, "dev", hk.IsDevelopmentKey, "devices", len(hk.Devices))
	o.Audit(ctx, c, n.ProjectID, keys.AuditCreate, keys.AuditTarget{Kind: keys.TargetHMACKey, ID: hk.ID, Name: hk.Name})
	return hk, nil
}

// DeleteHMACKey deletes HMAC key id of project pid.
func (o Ops) DeleteHMACKey(ctx context.Context, c Caller, pid, id int64) error {
	if err := o.Store.DeleteHMACKey(ctx, pid, id); err != nil {
		return err
	}
	o.info("hmac key deleted", "project", pid, "hmac_id", id)
	o.Audit(ctx, c, pid, keys.AuditDelete, keys.AuditTarget{Kind: keys.TargetHMACKey, ID: id})
	return nil
}

// RollHMACKey gives HMAC key id a new secret (generated when secret is empty); the old one works
// for grace more. It returns the new secret, which is shown this once.
func (o Ops) RollHMACKey(ctx context.Context, c Caller, pid, id int64, secret string, grace time.Duration) (keys.HMACKey, string, error) {
	if secret == "" {
		s, err := keys.GenerateHMACKey()
		if err != nil {
			return keys.HMACKey{}, "", err
		}
		secret = s
	} else if err := keys.ValidateHMACStrength(secret); err != nil {
		return keys.HMACKey{}, "", badRequest(err.Error())
	}
	hk, err := o.Store.RollHMACKey(ctx, pid, id, secret, grace)
	if err != nil {
		return keys.HMACKey{}, "", err
	}
	o.info("hmac key rolled", "project", pid, "hmac_id", id, "grace", grace.String())
	o.Audit(ctx, c, pid, keys.AuditRoll, keys.AuditTarget{Kind: keys.TargetHMACKey, ID: id, Name: hk.Name})
	return hk, secret, nil
}

// UpdateSettings changes the project's settings named (nil: left as they are) and records which.
func (o Ops) UpdateSettings(ctx context.Context, c Caller, pid int64, requireSignatures, requireDeviceBound *bool) (keys.ProjectSettings, error) {
	if requireSignatures == nil && requireDeviceBound == nil {
		return keys.ProjectSettings{}, badRequest("nothing to change: send requireSignatures and/or requireDeviceBoundKeys")
	}
	var changed []string
	set := func(to *bool, v *bool, name string) {
		if v != nil {
			*to = *v
			changed = append(changed, name+"="+strconv.FormatBool(*v))
		}
	}
	ps, err := o.Store.UpdateSettings(ctx, pid, func(ps *keys.ProjectSettings) error {
		changed = changed[:0]
		set(&ps.RequireSignatures, requireSignatures, "requireSignatures")
		set(&ps.RequireDeviceBoundKeys, requireDeviceBound, "requireDeviceBoundKeys")
		return nil
	})
	if err != nil {
		return ps, err
	}
	o.info("settings changed", "project", pid, "key_id", c.Actor.KeyID,
		"require_signatures", ps.RequireSignatures, "require_device_bound_keys", ps.RequireDeviceBoundKeys)
	o.Audit(ctx, c, pid, keys.AuditSettings, keys.AuditTarget{Kind: keys.TargetSettings, Name: strings.Join(changed, " ")})
	return ps, nil
}

// SetLimit overrides the project's rate limit, or API key keyID's (keyID > 0); a zero l clears it.
func (o Ops) SetLimit(ctx context.Context, c Caller, pid, keyID int64, l keys.Limit) (keys.ProjectSettings, error) {
	target := keys.AuditTarget{Kind: keys.TargetSettings, Name: "limit"}
	if keyID > 0 {
		target = keys.AuditTarget{Kind: keys.TargetAPIKey, ID: keyID}
		if !l.IsZero() {
			if _, err := o.Store.GetAPIKey(ctx, pid, keyID); err != nil {
				return keys.ProjectSettings{}, err
			}
		}
	}
	ps, err := o.Store.UpdateSettings(ctx, pid, func(ps *keys.ProjectSettings) error { ps.SetLimit(keyID, l); return nil })
	if err != nil {
		return ps, err
	}
	o.info("rate limit changed", "project", pid, "key_id", keyID)
	o.Audit(ctx, c, pid, keys.AuditLimit, target)
	return ps, nil
}

// OSCaller is the caller a command-line action is: the operating-system user (the CLI holds no
// API key), marked so it cannot be taken for a key's name.
func OSCaller() Caller {
	name := os.Getenv("USER")
	if u, err := user.Current(); err == nil && u.Username != "" {
		name = u.Username
	}
	return Caller{Actor: keys.Actor{Name: cmp.Or(name, "unknown") + " (CLI)"}}
}

// CreateDeviceKeys creates one generated, device-bound HMAC key per device (keys.CreateDeviceKeys)
// and records each; the keys made before a failure are returned with it.
func (o Ops) CreateDeviceKeys(ctx context.Context, c Caller, pid int64, name string, devices []string) ([]keys.DeviceKey, error) {
	made, err := keys.CreateDeviceKeys(ctx, o.Store, pid, name, devices)
	for _, k := range made {
		o.Audit(ctx, c, pid, keys.AuditCreate, keys.AuditTarget{Kind: keys.TargetHMACKey, ID: k.ID, Name: name + " (" + k.Device + ")"})
	}
	return made, err
}
