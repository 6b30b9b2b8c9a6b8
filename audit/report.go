package audit

import (
	"encoding/json"
	"fmt"
	"io"
	"strings"
	"time"
)

// WriteText prints the report for a person: the figures, then every
// mismatch with the ids needed to find it, then one verdict line.
func (r *Report) WriteText(w io.Writer) error {
	var b strings.Builder
	fmt.Fprintf(&b, "streams checked:      %d\n", r.Streams)
	fmt.Fprintf(&b, "events checked:       %d\n", r.Events)
	fmt.Fprintf(&b, "stream heads checked: %d\n", r.HeadsChecked)
	fmt.Fprintf(&b, "digests checked:      %d\n", r.DigestsChecked)
	fmt.Fprintf(&b, "read models checked:  %s\n", list(r.Projections))
	if len(r.Skipped) > 0 {
		fmt.Fprintf(&b, "read models skipped:  %s (no row dump to compare)\n", list(r.Skipped))
	}
	fmt.Fprintf(&b, "digest:               %d:%s\n", r.Events, r.Digest)
	fmt.Fprintf(&b, "took:                 %s\n", r.Elapsed.Round(time.Millisecond))
	section := func(title string, n, shown int, lines func(add func(string))) {
		if n == 0 {
			return
		}
		fmt.Fprintf(&b, "\n%s: %d\n", title, n)
		lines(func(s string) { fmt.Fprintf(&b, "  %s\n", s) })
		if n > shown {
			fmt.Fprintf(&b, "  … and %d more\n", n-shown)
		}
	}
	section("hash chain mismatches", r.ChainCount, len(r.Chain), func(add func(string)) {
		for _, p := range r.Chain {
			add(p.String())
		}
	})
	section("read model mismatches", r.ReadModelCount, len(r.ReadModels), func(add func(string)) {
		for _, m := range r.ReadModels {
			switch {
			case m.Live == "":
				add(fmt.Sprintf("%s %s: missing from the read model (replay has %s)", m.Projection, m.Key, clip(m.Rebuilt)))
			case m.Rebuilt == "":
				add(fmt.Sprintf("%s %s: in the read model but not in a replay (%s)", m.Projection, m.Key, clip(m.Live)))
			default:
				add(fmt.Sprintf("%s %s: read model %s, replay %s", m.Projection, m.Key, clip(m.Live), clip(m.Rebuilt)))
			}
		}
	})
	section("digest mismatches", r.DigestCount, len(r.DigestProblems), func(add func(string)) {
		for _, p := range r.DigestProblems {
			add(p.String())
		}
		if len(r.DigestProblems) > 0 {
			add(fmt.Sprintf("digests are cumulative: the first %d events are unchanged; the change lies after them, within the first %d", r.DigestsHoldUpTo, r.DigestProblems[0].Events))
		}
	})
	if r.OK() {
		b.WriteString("\nOK: every hash chain, stream head, digest and read model holds\n")
	} else {
		fmt.Fprintf(&b, "\nFAILED: %d hash chain, %d read model and %d digest mismatches\n", r.ChainCount, r.ReadModelCount, r.DigestCount)
	}
	_, err := io.WriteString(w, b.String())
	return err
}

// WriteJSON prints the report as one JSON document.
func (r *Report) WriteJSON(w io.Writer) error {
	type out struct {
		*Report
		OK      bool    `json:"ok"`
		Seconds float64 `json:"seconds"`
	}
	enc := json.NewEncoder(w)
	enc.SetIndent("", "  ")
	return enc.Encode(out{Report: r, OK: r.OK(), Seconds: r.Elapsed.Seconds()})
}

func list(names []string) string {
	if len(names) == 0 {
		return "none"
	}
	return strings.Join(names, ", ")
}

// clip shortens a row for the terminal; the JSON report has it whole.
func clip(s string) string {
	const max = 160
	if len(s) <= max {
		return s
	}
	cut := max
	for cut > 0 && s[cut]&0xC0 == 0x80 { // do not split a UTF-8 sequence
		cut--
	}
	return s[:cut] + "…"
}
