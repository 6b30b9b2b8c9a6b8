package audit_test

import (
	"fmt"
	"strings"
	"testing"

	"github.com/payledger/payledger/audit"
)

func TestParseExpect(t *testing.T) {
	t.Parallel()
	hex := strings.Repeat("ab", 32)
	for _, c := range []struct {
		in     string
		events uint64
		ok     bool
	}{
		{"100:" + hex, 100, true},
		{" 0:" + strings.ToUpper(hex) + "\n", 0, true},
		{"100" + hex, 0, false},
		{"-1:" + hex, 0, false},
		{"x:" + hex, 0, false},
		{"100:" + hex[:62], 0, false},
		{"100:" + hex + "00", 0, false},
		{"100:" + strings.Repeat("zz", 32), 0, false},
		{"", 0, false},
	} {
		d, err := audit.ParseExpect(c.in)
		if (err == nil) != c.ok || c.ok && (d.Events != c.events || d.Digest != hex) {
			t.Errorf("ParseExpect(%q) = %+v, %v", c.in, d, err)
		}
	}
}

// FuzzParseExpect: an auditor's digest is typed or pasted by hand. Whatever
// it is, parsing never panics, and what it accepts prints back to the
// same value.
func FuzzParseExpect(f *testing.F) {
	f.Add("100:" + strings.Repeat("0f", 32))
	f.Add("18446744073709551615:" + strings.Repeat("a", 64))
	f.Add(":")
	f.Fuzz(func(t *testing.T, s string) {
		d, err := audit.ParseExpect(s)
		if err != nil {
			return
		}
		again, err := audit.ParseExpect(fmt.Sprintf("%d:%s", d.Events, d.Digest))
		if err != nil || again.Events != d.Events || again.Digest != d.Digest || len(d.Digest) != 64 {
			t.Fatalf("%q parsed to %+v, which does not round-trip (%+v, %v)", s, d, again, err)
		}
	})
}
