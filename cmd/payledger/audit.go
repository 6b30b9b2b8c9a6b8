package main

import (
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"runtime/debug"
	"strings"
	"sync"
	"text/tabwriter"
	"time"

	"github.com/payledger/payledger/audit"
	"github.com/payledger/payledger/domain/invoice"
	"github.com/payledger/payledger/projections"
)

const auditUsage = `audit history INVOICE_ID [--as-of RFC3339] [--format table|json]
       audit verify [--format text|json] [--expect-digest EVENTS:HEX]... [--quiet]
       audit export [--from RFC3339] [--to RFC3339] [--format jsonl|csv] [--output FILE]
       audit digests [--format table|json]`

// exitVerifyFailed is the exit status of a verify that found mismatches,
// apart from 1 (the check could not run) so that scripts can tell them
// apart.
const exitVerifyFailed = 3

func runAudit(ctx context.Context, env *environment, args []string) error {
	if len(args) == 0 {
		return fmt.Errorf("%w: %s", errUsage, auditUsage)
	}
	switch args[0] {
	case "history":
		return auditHistory(ctx, env, args[1:])
	case "verify":
		return auditVerify(ctx, env, args[1:])
	case "export":
		return auditExport(ctx, env, args[1:])
	case "digests":
		return auditDigests(ctx, env, args[1:])
	default:
		return fmt.Errorf("%w: unknown audit subcommand %q\n%s", errUsage, args[0], auditUsage)
	}
}

// parseInterleaved parses flags that may come after positional arguments
// ("history inv_1 --as-of T"), which flag.Parse alone stops at.
func parseInterleaved(fs *flag.FlagSet, args []string) ([]string, error) {
	var pos []string
	for {
		if err := fs.Parse(args); err != nil {
			return nil, fmt.Errorf("%w: %v", errUsage, err)
		}
		if fs.NArg() == 0 {
			return pos, nil
		}
		pos = append(pos, fs.Arg(0))
		args = fs.Args()[1:]
	}
}

func parseInstant(name, v string) (time.Time, error) {
	if v == "" {
		return time.Time{}, nil
	}
	t, err := time.Parse(time.RFC3339Nano, v)
	if err != nil {
		return time.Time{}, fmt.Errorf("%w: --%s %q is not an RFC 3339 time such as 2026-11-22T10:00:00Z", errUsage, name, v)
	}
	return t, nil
}

func auditHistory(ctx context.Context, env *environment, args []string) error {
	fs := flag.NewFlagSet("audit history", flag.ContinueOnError)
	fs.SetOutput(env.stderr)
	asOf := fs.String("as-of", "", "show the invoice as it was at this instant (RFC 3339)")
	format := fs.String("format", "table", "table or json")
	pos, err := parseInterleaved(fs, args)
	if err != nil {
		return err
	}
	if len(pos) != 1 {
		return fmt.Errorf("%w: audit history INVOICE_ID [--as-of RFC3339] [--format table|json]", errUsage)
	}
	if *format != "table" && *format != "json" {
		return fmt.Errorf("%w: --format %q: want table or json", errUsage, *format)
	}
	t, err := parseInstant("as-of", *asOf)
	if err != nil {
		return err
	}
	a, err := open(ctx, env)
	if err != nil {
		return err
	}
	defer a.Close()
	h, err := audit.LoadHistory(ctx, a.svc, pos[0], t)
	if errors.Is(err, invoice.ErrNotFound) {
		return fmt.Errorf("no invoice %s", strings.TrimPrefix(err.Error(), invoice.ErrNotFound.Error()+": "))
	}
	if err != nil {
		return err
	}
	if *format == "json" {
		return h.WriteJSON(env.stdout)
	}
	return h.WriteTable(env.stdout)
}

// expectFlag collects repeated --expect-digest values.
type expectFlag []audit.Digest

func (e *expectFlag) String() string { return fmt.Sprint(len(*e)) }

func (e *expectFlag) Set(v string) error {
	d, err := audit.ParseExpect(v)
	if err != nil {
		return err
	}
	*e = append(*e, d)
	return nil
}

func auditVerify(ctx context.Context, env *environment, args []string) error {
	fs := flag.NewFlagSet("audit verify", flag.ContinueOnError)
	fs.SetOutput(env.stderr)
	format := fs.String("format", "text", "text or json")
	quiet := fs.Bool("quiet", false, "no progress on stderr")
	var expect expectFlag
	fs.Var(&expect, "expect-digest", "EVENTS:HEX a digest kept from an earlier verify or audit digests (repeatable)")
	pos, err := parseInterleaved(fs, args)
	if err != nil {
		return err
	}
	if len(pos) > 0 || (*format != "text" && *format != "json") {
		return fmt.Errorf("%w: audit verify [--format text|json] [--expect-digest EVENTS:HEX]... [--quiet]", errUsage)
	}
	a, err := open(ctx, env)
	if err != nil {
		return err
	}
	defer a.Close()
	var projs []projections.Projection
	for _, n := range a.set.Names() {
		projs = append(projs, a.set.Runner(n).Projection())
	}
	// Only the SQL stores keep events and stream heads in the database;
	// with KurrentDB the SQL side has empty tables of those names.
	sqlLog := a.cfg.EventStoreURL == ""
	total := -1
	if sqlLog {
		if err := a.be.DB().QueryRowContext(ctx, `SELECT COUNT(*) FROM events`).Scan(&total); err != nil {
			total = -1
		}
	}
	o := audit.Options{Backend: a.be, Projections: projs, StreamHeads: sqlLog, Digests: true, Expect: expect, Total: total}
	if !*quiet {
		var mu sync.Mutex
		bar := projections.ProgressPrinter(env.stderr, "hash chains")
		o.Progress = func(done, total int) { mu.Lock(); bar(done, total); mu.Unlock() }
		o.OnProjection = func(name string, n int, took time.Duration, err error) {
			mu.Lock()
			defer mu.Unlock()
			verdict := "matches a fresh replay"
			switch {
			case err != nil:
				verdict = "could not be compared: " + err.Error()
			case n > 0:
				verdict = fmt.Sprintf("%d mismatching rows", n)
			}
			fmt.Fprintf(env.stderr, "\rread model %-16s %s (%s)%20s\n", name, verdict, took.Round(time.Millisecond), "")
		}
	}
	// A verification allocates a great deal of short-lived garbage (every
	// event decoded once per read model) and ends with the process: half
	// as many collections save about a tenth of its CPU time.
	defer debug.SetGCPercent(debug.SetGCPercent(200))
	r, err := audit.Verify(ctx, o)
	if err != nil {
		return err
	}
	if *format == "json" {
		err = r.WriteJSON(env.stdout)
	} else {
		err = r.WriteText(env.stdout)
	}
	if err != nil {
		return err
	}
	if !r.OK() {
		return exitError{exitVerifyFailed}
	}
	return nil
}

func auditExport(ctx context.Context, env *environment, args []string) error {
	fs := flag.NewFlagSet("audit export", flag.ContinueOnError)
	fs.SetOutput(env.stderr)
	from := fs.String("from", "", "first recorded time included (RFC 3339)")
	to := fs.String("to", "", "recorded time excluded and after (RFC 3339)")
	format := fs.String("format", "jsonl", "jsonl or csv")
	output := fs.String("output", "", "write to this file instead of stdout")
	pos, err := parseInterleaved(fs, args)
	if err != nil {
		return err
	}
	if len(pos) > 0 || (*format != "jsonl" && *format != "csv") {
		return fmt.Errorf("%w: audit export [--from RFC3339] [--to RFC3339] [--format jsonl|csv] [--output FILE]", errUsage)
	}
	o := audit.ExportOptions{Format: *format}
	if o.From, err = parseInstant("from", *from); err != nil {
		return err
	}
	if o.To, err = parseInstant("to", *to); err != nil {
		return err
	}
	if !o.From.IsZero() && !o.To.IsZero() && !o.From.Before(o.To) {
		return fmt.Errorf("%w: --from must be before --to", errUsage)
	}
	a, err := open(ctx, env)
	if err != nil {
		return err
	}
	defer a.Close()
	var (
		w io.Writer = env.stdout
		f *os.File
	)
	if *output != "" {
		if f, err = os.Create(*output); err != nil {
			return err
		}
		defer f.Close()
		w = f
	}
	n, err := audit.Export(ctx, a.be, w, o)
	if err == nil && f != nil {
		err = f.Close()
	}
	if err != nil {
		return err
	}
	fmt.Fprintf(env.stderr, "exported %d events\n", n)
	return nil
}

func auditDigests(ctx context.Context, env *environment, args []string) error {
	fs := flag.NewFlagSet("audit digests", flag.ContinueOnError)
	fs.SetOutput(env.stderr)
	format := fs.String("format", "table", "table or json")
	pos, err := parseInterleaved(fs, args)
	if err != nil {
		return err
	}
	if len(pos) > 0 || (*format != "table" && *format != "json") {
		return fmt.Errorf("%w: audit digests [--format table|json]", errUsage)
	}
	a, err := open(ctx, env)
	if err != nil {
		return err
	}
	defer a.Close()
	ds, err := audit.RecordedDigests(ctx, a.be.DB())
	if err != nil {
		return err
	}
	if *format == "json" {
		if ds == nil {
			ds = []audit.Digest{}
		}
		enc := json.NewEncoder(env.stdout)
		enc.SetIndent("", "  ")
		return enc.Encode(ds)
	}
	tw := tabwriter.NewWriter(env.stdout, 0, 4, 2, ' ', 0)
	fmt.Fprintln(tw, "EVENTS\tLAST EVENT\tKIND\tEXPECT-DIGEST")
	for _, d := range ds {
		kind := "periodic"
		if d.Head {
			kind = "head"
		}
		fmt.Fprintf(tw, "%d\t%s\t%s\t%d:%s\n", d.Events, d.EventID, kind, d.Events, d.Digest)
	}
	return tw.Flush()
}
