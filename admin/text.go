package admin

import (
	"fmt"
	"io"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/keygate/keygate/keys"
	"github.com/keygate/keygate/limit"
)

// The same views as text, for the command line (`keygate keys list`, `hmac list`, `settings show`
// and friends): aligned columns, one row per key, times in RFC 3339.

// WriteAPIKeys writes a project's API keys as a table.
func WriteAPIKeys(w io.Writer, views []APIKeyView) error {
	return table(w, "ID\tNAME\tROLE\tDEV\tKEY\tCREATED\tEXPIRES\tLAST USED", func(w io.Writer) {
		for _, v := range views {
			lu := "never"
			if v.LastUsed != nil {
				lu = v.LastUsed.Date.Format(time.RFC3339)
				if v.LastUsed.IPAddress != "" {
					lu += " from " + v.LastUsed.IPAddress
				}
			}
			exp := "never"
			if v.Expires != nil {
				exp = v.Expires.Format(time.RFC3339)
				if v.Expired {
					exp = "expired " + exp
				}
			}
			fmt.Fprintf(w, "%d\t%s\t%s\t%s\t%s\t%s\t%s\t%s\n", v.ID, v.Name, v.Role, yes(v.IsDevelopmentKey), v.APIKey, v.Created.Format(time.RFC3339), exp, lu)
		}
	})
}

// WriteHMACKeys writes a project's HMAC keys as a table; DEVICES is "any" for an unbound key.
func WriteHMACKeys(w io.Writer, views []HMACKeyView) error {
	return table(w, "ID\tNAME\tDEV\tHMAC KEY\tDEVICES\tCREATED", func(w io.Writer) {
		for _, v := range views {
			devs := "any"
			if len(v.Devices) > 0 {
				devs = strings.Join(v.Devices, ",")
			}
			fmt.Fprintf(w, "%d\t%s\t%s\t%s\t%s\t%s\n", v.ID, v.Name, yes(v.IsDevelopmentKey), v.HMACKey, devs, v.Created.Format(time.RFC3339))
		}
	})
}

// WriteDeviceKeys writes device and key pairs, one a line, with no header (for scripts).
func WriteDeviceKeys(w io.Writer, made []keys.DeviceKey) error {
	tw := tabwriter.NewWriter(w, 0, 4, 2, ' ', 0)
	for _, k := range made {
		fmt.Fprintf(tw, "%s\t%s\n", k.Device, k.HMACKey)
	}
	return tw.Flush()
}

// WriteSettings writes a project's settings and rate-limit overrides.
func WriteSettings(w io.Writer, pid int64, ps keys.ProjectSettings) error {
	fmt.Fprintf(w, "project %d\n  require signatures: %v\n  require device-bound keys: %v\n", pid, ps.RequireSignatures, ps.RequireDeviceBoundKeys)
	if !ps.Limit.IsZero() {
		fmt.Fprintf(w, "  rate limit (project): %s\n", limit.Format(ps.Limit))
	}
	for id, l := range ps.KeyLimits {
		fmt.Fprintf(w, "  rate limit (key %d): %s\n", id, limit.Format(l))
	}
	return nil
}

// WriteDevKeys writes a project's development keys (nil: not set), one a line.
func WriteDevKeys(w io.Writer, api *keys.APIKey, hk *keys.HMACKey) {
	if api != nil {
		fmt.Fprintf(w, "API key:  %s  (id %d, %q, %s)\n", api.DevSecret, api.ID, api.Name, api.Role.Label())
	}
	if hk != nil {
		fmt.Fprintf(w, "HMAC key: %s  (id %d, %q)\n", hk.Secret, hk.ID, hk.Name)
	}
}

// WriteAudit writes a page of audit events, newest first, and how to ask for the next page.
func WriteAudit(w io.Writer, events []keys.AuditEvent, next string) error {
	return table(w, "TIME\tACTION\tOUTCOME\tACTOR\tTARGET\tADDRESS", func(w io.Writer) {
		for _, e := range events {
			actor := e.Actor.Name
			if e.Actor.KeyID != 0 {
				actor = fmt.Sprintf("key %d %q", e.Actor.KeyID, e.Actor.Name)
			}
			target := []string{e.Target.Kind}
			if e.Target.ID != 0 {
				target = append(target, fmt.Sprint(e.Target.ID))
			}
			if e.Target.Name != "" {
				target = append(target, fmt.Sprintf("%q", e.Target.Name))
			}
			fmt.Fprintf(w, "%s\t%s\t%s\t%s\t%s\t%s\n", e.Time.Format(time.RFC3339), e.Action, e.Outcome, actor, strings.Join(target, " "), e.IPAddress)
		}
		if next != "" {
			fmt.Fprintf(w, "(more: --before %s)\n", next)
		}
	})
}

func table(w io.Writer, header string, rows func(w io.Writer)) error {
	tw := tabwriter.NewWriter(w, 0, 4, 2, ' ', 0)
	fmt.Fprintln(tw, header)
	rows(tw)
	return tw.Flush()
}

func yes(b bool) string {
	if b {
		return "yes"
	}
	return ""
}
