package postgres

import (
	"net/url"
	"strings"
	"testing"
)

func TestSessionDSN(t *testing.T) {
	tests := []struct {
		name, dsn, app string
		wantApp        string
		wantErr        string
	}{
		{name: "url default name", dsn: "postgres://u@h/db?sslmode=disable", wantApp: "payledger"},
		{name: "url keeps caller's name", dsn: "postgres://u@h/db?application_name=billing", wantApp: "billing"},
		{name: "url read-model pool", dsn: "postgres://u@h/db?application_name=billing", app: readModelApp, wantApp: readModelApp},
		{name: "url reserved name", dsn: "postgres://u@h/db?application_name=payledger%20read%20model", wantErr: "reserved"},
		{name: "kv default name", dsn: "host=h dbname=db", wantApp: "payledger"},
		{name: "kv quoted name", dsn: "host=h application_name='my app' dbname=db", wantApp: "my app"},
		{name: "kv reserved quoted name", dsn: "host=h application_name = 'payledger read model'", wantErr: "reserved"},
		{name: "kv read-model pool", dsn: "host=h", app: readModelApp, wantApp: readModelApp},
		{name: "kv escaped quote", dsn: `host=h application_name='o\'brien'`, wantApp: "o'brien"},
		{name: "kv escaped backslash", dsn: `host=h application_name='a\\b\'c'`, wantApp: `a\b'c`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := sessionDSN(tt.dsn, tt.app, genericPlans)
			if tt.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tt.wantErr) {
					t.Fatalf("sessionDSN(%q) = %q, %v; want error with %q", tt.dsn, got, err, tt.wantErr)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			var app, sync, plans string
			if strings.HasPrefix(got, "postgres://") {
				u, err := url.Parse(got)
				if err != nil {
					t.Fatal(err)
				}
				q := u.Query()
				app, sync, plans = q.Get("application_name"), q.Get("synchronous_commit"), q.Get("plan_cache_mode")
			} else {
				app, sync, plans = kvValue(got, "application_name"), kvValue(got, "synchronous_commit"), kvValue(got, "plan_cache_mode")
			}
			if app != tt.wantApp || sync != "on" || plans != genericPlans.value {
				t.Errorf("sessionDSN(%q) = %q: application_name %q, synchronous_commit %q, plan_cache_mode %q; want %q, on, %s",
					tt.dsn, got, app, sync, plans, tt.wantApp, genericPlans.value)
			}
		})
	}
}
