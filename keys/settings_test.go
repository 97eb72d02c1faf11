package keys

import (
	"testing"
	"time"
)

func TestProjectSettingsSetLimit(t *testing.T) {
	l := Limit{Rate: 5, Period: time.Second, Burst: 10}
	var ps ProjectSettings
	ps.SetLimit(0, l)
	ps.SetLimit(7, l)
	if ps.Limit != l || ps.KeyLimits[7] != l {
		t.Fatalf("after set: %+v", ps)
	}
	ps.SetLimit(7, Limit{})
	if _, ok := ps.KeyLimits[7]; ok {
		t.Errorf("key 7's override not cleared: %+v", ps)
	}
	ps.SetLimit(0, Limit{})
	if !ps.Limit.IsZero() {
		t.Errorf("project override not cleared: %+v", ps)
	}
	ps.SetLimit(8, Limit{}) // clearing what is not there is a no-op
}
