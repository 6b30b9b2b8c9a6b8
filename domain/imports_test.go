package domain_test

import (
	"go/parser"
	"go/token"
	"io/fs"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
)

const module = "github.com/payledger/payledger"

// allowed is the whole dependency budget of the domain: the standard
// library, exact decimals, and the domain's own packages. Anything else
// (a database driver, an HTTP client, a UUID generator) belongs in an
// adapter, where it can be replaced without touching the rules.
func allowed(path string) bool {
	first, _, _ := strings.Cut(path, "/")
	switch {
	case !strings.Contains(first, "."): // standard library paths have no dot in their first element
		return true
	case path == "github.com/shopspring/decimal":
		return true
	case path == module+"/domain" || strings.HasPrefix(path, module+"/domain/"):
		return true
	}
	return false
}

func TestAllowedClassifier(t *testing.T) {
	t.Parallel()
	for path, want := range map[string]bool{
		"time": true, "encoding/json": true, "github.com/shopspring/decimal": true,
		module + "/domain/money": true,
		module + "/eventstore":   false, module + "/domainx": false,
		"github.com/google/uuid": false, "github.com/shopspring/decimal/sub": false,
		"golang.org/x/sys/unix": false,
	} {
		if got := allowed(path); got != want {
			t.Errorf("allowed(%q) = %v, want %v", path, got, want)
		}
	}
}

// TestDomainImports fails when any non-test file under domain/ imports
// outside the budget above.
func TestDomainImports(t *testing.T) {
	t.Parallel()
	files := 0
	err := filepath.WalkDir(".", func(path string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		if d.IsDir() {
			if d.Name() == "testdata" || (strings.HasPrefix(d.Name(), ".") && path != ".") {
				return filepath.SkipDir
			}
			return nil
		}
		if !strings.HasSuffix(path, ".go") || strings.HasSuffix(path, "_test.go") {
			return nil
		}
		f, err := parser.ParseFile(token.NewFileSet(), path, nil, parser.ImportsOnly)
		if err != nil {
			return err
		}
		files++
		for _, imp := range f.Imports {
			p, err := strconv.Unquote(imp.Path.Value)
			if err != nil {
				return err
			}
			if !allowed(p) {
				t.Errorf("domain/%s imports %q: the domain may import only the standard library and github.com/shopspring/decimal", filepath.ToSlash(path), p)
			}
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	if files < 5 {
		t.Fatalf("only %d source files found under domain/: is the test running in the right directory?", files)
	}
}
