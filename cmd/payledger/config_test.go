package main

import (
	"bytes"
	"context"
	"strings"
	"testing"
	"time"
)

func TestConfigNamesTheBadSetting(t *testing.T) {
	t.Parallel()
	cases := []struct {
		env  map[string]string
		want string // the variable the error must name; "" = valid
	}{
		{map[string]string{}, ""},
		{map[string]string{"PAYLEDGER_DATABASE_URL": "mysql://x"}, "PAYLEDGER_DATABASE_URL"},
		{map[string]string{"PAYLEDGER_EVENTSTORE_URL": "esdb://h:2113"}, "PAYLEDGER_DATABASE_URL"},
		{map[string]string{"PAYLEDGER_EVENTSTORE_URL": "http://h", "PAYLEDGER_DATABASE_URL": "postgres://x"}, "PAYLEDGER_EVENTSTORE_URL"},
		{map[string]string{"PAYLEDGER_LINK_TTL_MIN": "soon"}, "PAYLEDGER_LINK_TTL_MIN"},
		{map[string]string{"PAYLEDGER_LINK_TTL_MAX": "-1m"}, "PAYLEDGER_LINK_TTL_MAX"},
		{map[string]string{"PAYLEDGER_LINK_TTL_MIN": "11m"}, "PAYLEDGER_LINK_TTL_MIN"},
		{map[string]string{"PAYLEDGER_LINK_TTL_DEFAULT": "1m"}, "PAYLEDGER_LINK_TTL_DEFAULT"},
		{map[string]string{"PAYLEDGER_WEBHOOK_ALLOW_PRIVATE": "yes please"}, "PAYLEDGER_WEBHOOK_ALLOW_PRIVATE"},
		{map[string]string{"PAYLEDGER_PUBLIC_URL": "ftp://x"}, "PAYLEDGER_PUBLIC_URL"},
		{map[string]string{"PAYLEDGER_CATALOG": "catalog.json"}, "PAYLEDGER_RESET_FEE_SECRET"},
		{map[string]string{"PAYLEDGER_RELAY_TOPIC": "events; DROP TABLE x"}, "PAYLEDGER_RELAY_TOPIC"},
		{map[string]string{"PAYLEDGER_AUDIT_DIGEST_EVERY": "0"}, "PAYLEDGER_AUDIT_DIGEST_EVERY"},
	}
	for _, c := range cases {
		_, err := loadConfig(func(k string) string { return c.env[k] })
		switch {
		case c.want == "" && err != nil:
			t.Errorf("%v: unexpected error %v", c.env, err)
		case c.want != "" && (err == nil || !strings.HasPrefix(err.Error(), c.want+":")):
			t.Errorf("%v: error %v, want one naming %s", c.env, err, c.want)
		}
	}
}

func TestConfigDefaults(t *testing.T) {
	t.Parallel()
	c, err := loadConfig(func(string) string { return "" })
	if err != nil {
		t.Fatal(err)
	}
	if c.DataDir != "./payledger-data" || c.HTTPAddr != "127.0.0.1:8080" || c.PublicURL != "http://127.0.0.1:8080" ||
		c.LinkTTLMin != 5*time.Minute || c.LinkTTLMax != 10*time.Minute || c.LinkTTLDefault != 10*time.Minute || c.AllowPrivate {
		t.Fatalf("defaults = %+v", c)
	}
}

// A bad setting stops serve with one line naming it, before anything is
// opened or written.
func TestServeRefusesBadConfigInOneLine(t *testing.T) {
	t.Parallel()
	var stderr bytes.Buffer
	env := &environment{stdout: &bytes.Buffer{}, stderr: &stderr, getenv: func(k string) string {
		if k == "PAYLEDGER_LINK_TTL_MAX" {
			return "ten minutes"
		}
		return ""
	}}
	if code := run(context.Background(), []string{"serve"}, env); code == 0 {
		t.Fatal("serve started with a bad setting")
	}
	out := strings.TrimSpace(stderr.String())
	if strings.Count(out, "\n") != 0 || !strings.Contains(out, "PAYLEDGER_LINK_TTL_MAX") {
		t.Fatalf("stderr = %q, want one line naming PAYLEDGER_LINK_TTL_MAX", out)
	}
}
