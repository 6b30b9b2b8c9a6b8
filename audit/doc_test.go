package audit_test

import (
	"bufio"
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"testing"

	"github.com/payledger/payledger/audit"
	"github.com/payledger/payledger/projections"
	"github.com/payledger/payledger/projections/projectiontest"
)

// docBlock returns the fenced bash block of docs/audit.md whose text
// contains marker: the tests run the document's own words.
func docBlock(t *testing.T, marker string) string {
	t.Helper()
	doc, err := os.ReadFile(filepath.Join("..", "docs", "audit.md"))
	if err != nil {
		t.Fatal(err)
	}
	for _, m := range regexp.MustCompile("(?s)```bash\n(.*?)```").FindAllStringSubmatch(string(doc), -1) {
		if strings.Contains(m[1], marker) {
			return m[1]
		}
	}
	t.Fatalf("docs/audit.md has no bash block with %q", marker)
	return ""
}

func needTools(t *testing.T) {
	t.Helper()
	for _, tool := range []string{"bash", "jq", "xxd", "sha256sum", "base64", "wc", "cut", "mktemp"} {
		if _, err := exec.LookPath(tool); err != nil {
			t.Skipf("the documented procedure needs %s", tool)
		}
	}
}

func export(t *testing.T, b projections.Backend) (path string, lines []string) {
	t.Helper()
	var buf bytes.Buffer
	if _, err := audit.Export(context.Background(), b, &buf, audit.ExportOptions{}); err != nil {
		t.Fatal(err)
	}
	path = filepath.Join(t.TempDir(), "export.jsonl")
	if err := os.WriteFile(path, buf.Bytes(), 0o600); err != nil {
		t.Fatal(err)
	}
	return path, strings.Split(strings.TrimRight(buf.String(), "\n"), "\n")
}

func runScript(t *testing.T, script string, stdin string, env []string, args ...string) (string, int) {
	t.Helper()
	f := filepath.Join(t.TempDir(), "script.sh")
	if err := os.WriteFile(f, []byte(script), 0o600); err != nil {
		t.Fatal(err)
	}
	cmd := exec.Command("bash", append([]string{f}, args...)...)
	cmd.Stdin = strings.NewReader(stdin)
	cmd.Env = append(os.Environ(), env...)
	var out bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &out
	err := cmd.Run()
	code := 0
	if ee, ok := err.(*exec.ExitError); ok {
		code = ee.ExitCode()
	} else if err != nil {
		t.Fatal(err)
	}
	return out.String(), code
}

// TestDocumentedProcedureVerifiesAnExport runs the scripts of
// docs/audit.md, as printed there, on a real export: the whole-export
// script accepts it and ends with the digest verify reports; the one-event
// and one-digest snippets reproduce a line's hash and digest; an edited,
// a removed and a reordered line each make the script fail naming the
// stream and version.
func TestDocumentedProcedureVerifiesAnExport(t *testing.T) {
	t.Parallel()
	needTools(t)
	projectiontest.Backends(t, func(t *testing.T, b projections.Backend) {
		w := newWorld(t, b, 8)
		rep := w.verify(t)
		path, lines := export(t, b)
		if len(lines) != int(rep.Events) {
			t.Fatalf("exported %d lines, verify saw %d events", len(lines), rep.Events)
		}

		whole := docBlock(t, "# verify-export.sh")
		out, code := runScript(t, whole, "", nil, path)
		want := "OK: " + strconv.Itoa(len(lines)) + " events in 8 streams; digest " + strconv.FormatUint(rep.Events, 10) + ":" + rep.Digest
		if code != 0 || !strings.Contains(out, want) {
			t.Fatalf("documented script on an untouched export: exit %d, want %q:\n%s", code, want, out)
		}

		one := docBlock(t, "# one-event.sh")
		for _, i := range []int{0, len(lines) / 2, len(lines) - 1} {
			var l audit.Line
			if err := json.Unmarshal([]byte(lines[i]), &l); err != nil {
				t.Fatal(err)
			}
			out, code := runScript(t, one, lines[i]+"\n", nil)
			if code != 0 || strings.TrimSpace(out) != l.Hash {
				t.Fatalf("one-event.sh on line %d: exit %d, %q, want %s", i, code, out, l.Hash)
			}
			if i == 0 {
				continue
			}
			var before audit.Line
			_ = json.Unmarshal([]byte(lines[i-1]), &before)
			out, code = runScript(t, docBlock(t, `"$D_PREV" "$HASH"`), "", []string{"D_PREV=" + before.Digest, "HASH=" + l.Hash})
			if code != 0 || strings.TrimSpace(out) != l.Digest {
				t.Fatalf("digest by hand at line %d: %q, want %s", i, out, l.Digest)
			}
		}

		var victim audit.Line
		k := len(lines) / 3
		_ = json.Unmarshal([]byte(lines[k]), &victim)
		at := "stream " + victim.Stream + " version " + strconv.FormatUint(victim.Version, 10)
		for _, c := range []struct {
			name  string
			edit  func([]string) []string
			wants []string
		}{
			{"data edited", func(ls []string) []string {
				var l audit.Line
				_ = json.Unmarshal([]byte(ls[k]), &l)
				l.Data = strings.Replace(l.Data, `"`, `"x`, 1)
				b, _ := json.Marshal(l)
				ls[k] = string(b)
				return ls
			}, []string{at + ": hash mismatch", at + ": digest mismatch"}},
			{"line removed", func(ls []string) []string {
				return append(ls[:k:k], ls[k+1:]...)
			}, []string{"seq gap", "digest mismatch"}},
			{"lines swapped", func(ls []string) []string {
				ls[k], ls[k+1] = ls[k+1], ls[k]
				return ls
			}, []string{"seq gap", "digest mismatch"}},
		} {
			ls := c.edit(append([]string(nil), lines...))
			p := filepath.Join(t.TempDir(), "tampered.jsonl")
			if err := os.WriteFile(p, []byte(strings.Join(ls, "\n")+"\n"), 0o600); err != nil {
				t.Fatal(err)
			}
			out, code := runScript(t, whole, "", nil, p)
			if code != 1 || !strings.Contains(out, "FAILED:") {
				t.Fatalf("%s: exit %d:\n%s", c.name, code, out)
			}
			for _, w := range c.wants {
				if !strings.Contains(out, w) {
					t.Fatalf("%s: output lacks %q:\n%s", c.name, w, out)
				}
			}
		}
	})
}

// TestCanonicalBytesAsDocumented rebuilds every hash and digest of an
// export from the document's description alone (netstrings after the raw
// prev_hash, the chain members cut off the metadata, D(n) =
// SHA-256(D(n-1) ‖ hash)) without the store's code, so the byte layout
// is checked even where the shell tools are missing.
func TestCanonicalBytesAsDocumented(t *testing.T) {
	t.Parallel()
	b := projectiontest.SQLite(t)
	w := newWorld(t, b, 30)
	_, lines := export(t, w.b)
	cut := regexp.MustCompile(`,?"prev_hash":"[0-9a-f]{64}","hash":"[0-9a-f]{64}"\}$`)
	ns := func(s string) string { return strconv.Itoa(len(s)) + ":" + s + "," }
	digest := make([]byte, 32)
	sc := bufio.NewScanner(strings.NewReader(strings.Join(lines, "\n")))
	sc.Buffer(nil, 1<<20)
	n := 0
	for sc.Scan() {
		var l audit.Line
		if err := json.Unmarshal(sc.Bytes(), &l); err != nil {
			t.Fatal(err)
		}
		prev, err := hex.DecodeString(l.PrevHash)
		if err != nil || len(prev) != 32 {
			t.Fatalf("prev_hash %q", l.PrevHash)
		}
		caller := cut.ReplaceAllString(l.Metadata, "}")
		if caller == l.Metadata {
			t.Fatalf("metadata without chain members: %s", l.Metadata)
		}
		canonical := ns(l.Stream) + ns(strconv.FormatUint(l.Version, 10)) + ns(l.Type) + ns(l.Data) + ns(caller)
		sum := sha256.Sum256(append(prev, canonical...))
		if hex.EncodeToString(sum[:]) != l.Hash {
			t.Fatalf("seq %d: documented bytes hash to %x, stored hash %s", l.Seq, sum, l.Hash)
		}
		d := sha256.Sum256(append(digest, sum[:]...))
		digest = d[:]
		if hex.EncodeToString(digest) != l.Digest {
			t.Fatalf("seq %d: documented digest %x, export says %s", l.Seq, digest, l.Digest)
		}
		n++
	}
	if n < 100 {
		t.Fatalf("only %d events", n)
	}
	// The worked example of the document.
	example := ns("invoice-inv_1") + ns("1") + ns("invoice.created") + ns(`{"a":1}`) + ns("{}")
	doc, err := os.ReadFile(filepath.Join("..", "docs", "audit.md"))
	if err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(string(doc), "    "+example+"\n") {
		t.Fatalf("docs/audit.md does not show the worked example %s", example)
	}
}
