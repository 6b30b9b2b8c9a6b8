package reports

import (
	"strings"
	"testing"
	"time"

	"github.com/payledger/payledger/projections/recon"
)

func TestTextNeutralisesFormulas(t *testing.T) {
	t.Parallel()
	for in, want := range map[string]string{
		"":                               "",
		"order-7135":                     "order-7135",
		"=HYPERLINK(\"http://x\",\"a\")": "'=HYPERLINK(\"http://x\",\"a\")",
		"+1+2":                           "'+1+2",
		"-2+3":                           "'-2+3",
		"@SUM(A1)":                       "'@SUM(A1)",
		"\tcmd":                          "'\tcmd",
		"a=b":                            "a=b",
	} {
		if got := text(in); got != want {
			t.Errorf("text(%q) = %q, want %q", in, got, want)
		}
	}
	// Amounts never pass through text: a negative net stays a number.
	if rec := summaryRecord(summaryRowWithNet("-35.00")); rec[6] != "-35.00" {
		t.Fatalf("net cell %q", rec[6])
	}
}

func TestParseRange(t *testing.T) {
	t.Parallel()
	d := func(s string) time.Time { t, _ := time.Parse(time.RFC3339, s); return t }
	for _, tc := range []struct {
		from, to         string
		wantFrom, wantTo time.Time
		ok               bool
	}{
		{"", "", time.Time{}, time.Time{}, true},
		{"2026-03-01", "2026-03-01", d("2026-03-01T00:00:00Z"), d("2026-03-02T00:00:00Z"), true},
		{"2026-03-01T10:00:00+02:00", "2026-03-01T09:00:00Z", d("2026-03-01T08:00:00Z"), d("2026-03-01T09:00:00Z"), true},
		{"1772323200", "", d("2026-03-01T00:00:00Z"), time.Time{}, true},
		{"2026-03-02", "2026-03-01", time.Time{}, time.Time{}, false},
		{"2026-03-01T09:00:00Z", "2026-03-01T09:00:00Z", time.Time{}, time.Time{}, false},
		{"2026-02-30", "", time.Time{}, time.Time{}, false},
		{"-5", "", time.Time{}, time.Time{}, false},
		{"", "10000-01-01T00:00:00Z", time.Time{}, time.Time{}, false},
		{"yesterday", "", time.Time{}, time.Time{}, false},
	} {
		from, to, bad := parseRange(tc.from, tc.to)
		if (len(bad) == 0) != tc.ok {
			t.Errorf("%q..%q: errors %v", tc.from, tc.to, bad)
			continue
		}
		if tc.ok && (!from.Equal(tc.wantFrom) || !to.Equal(tc.wantTo)) {
			t.Errorf("%q..%q = %v..%v, want %v..%v", tc.from, tc.to, from, to, tc.wantFrom, tc.wantTo)
		}
	}
}

// FuzzParseRange: whatever the query says, an accepted range is ordered,
// in UTC and inside the years unix microseconds can hold.
func FuzzParseRange(f *testing.F) {
	for _, s := range [][2]string{{"2026-03-01", "2026-03-01"}, {"1772323200", "2026-03-01T09:00:00.5+01:00"}, {"", "9999-12-30"}, {"0", "-0"}} {
		f.Add(s[0], s[1])
	}
	f.Fuzz(func(t *testing.T, a, b string) {
		from, to, bad := parseRange(a, b)
		if len(bad) > 0 {
			return
		}
		for _, x := range []time.Time{from, to} {
			if x.IsZero() {
				continue
			}
			if x.Location() != time.UTC || x.Before(earliest) || x.After(latest.AddDate(0, 0, 1)) {
				t.Fatalf("bound %v out of range for %q..%q", x, a, b)
			}
		}
		if !from.IsZero() && !to.IsZero() && !from.Before(to) {
			t.Fatalf("%q..%q accepted as %v..%v", a, b, from, to)
		}
	})
}

// FuzzWantsCSV: any Accept header is answered without a panic, and JSON
// wins unless text/csv is named.
func FuzzWantsCSV(f *testing.F) {
	for _, s := range []string{"", "text/csv", "application/json;q=0.2, text/csv;q=0.3", "text/*", "text/csv;q=abc", ";;,,"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, accept string) {
		if wantsCSV(accept) && !containsFold(accept, "text/csv") {
			t.Fatalf("CSV chosen for %q", accept)
		}
	})
}

func containsFold(s, sub string) bool { return strings.Contains(strings.ToLower(s), sub) }

func summaryRowWithNet(net string) recon.SummaryRow {
	return recon.SummaryRow{Date: "2026-03-02", Provider: "sandbox", Figures: recon.Figures{Net: net}}
}
