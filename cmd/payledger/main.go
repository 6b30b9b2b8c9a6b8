// Command payledger is the ledger's one binary: the server and the
// operator's subcommands. This package is the composition root: the only
// place that reads the environment and wires the packages together.
package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"os/signal"
	"sort"
	"syscall"
)

// version is set at build time with -ldflags "-X main.version=…".
var version = "dev"

// command is one subcommand. args excludes the subcommand's own name.
type command struct {
	summary string
	run     func(ctx context.Context, env *environment, args []string) error
}

// commands is the subcommand table; each file adds its own entries through
// init-free registration in this literal so the whole CLI is visible here.
func commands() map[string]command {
	return map[string]command{
		"serve":       {"run the HTTP server, projections, scheduler and webhook delivery", runServe},
		"migrate":     {"create or upgrade the schema", runMigrate},
		"keys":        {"create, list or revoke API keys (keys create --name NAME [--scope full|read])", runKeys},
		"projections": {"projections rebuild [NAME]: drop and replay read models", runProjections},
		"audit":       {"audit history|verify|export: replay and check the ledger", runAudit},
		"bench":       {"load test: create invoices and links over HTTP and report throughput", runBench},
		"version": {"print the version", func(_ context.Context, env *environment, _ []string) error {
			_, err := fmt.Fprintln(env.stdout, "payledger", version)
			return err
		}},
	}
}

// environment is what subcommands get from the process.
type environment struct {
	stdout, stderr io.Writer
	getenv         func(string) string
}

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	os.Exit(run(ctx, os.Args[1:], &environment{stdout: os.Stdout, stderr: os.Stderr, getenv: os.Getenv}))
}

// errUsage marks a usage mistake: exit code 2.
var errUsage = errors.New("usage")

func run(ctx context.Context, args []string, env *environment) int {
	cmds := commands()
	if len(args) == 0 || args[0] == "help" || args[0] == "-h" || args[0] == "--help" {
		usage(env.stderr, cmds)
		if len(args) == 0 {
			return 2
		}
		return 0
	}
	c, ok := cmds[args[0]]
	if !ok {
		fmt.Fprintf(env.stderr, "payledger: unknown command %q\n", args[0])
		usage(env.stderr, cmds)
		return 2
	}
	if err := c.run(ctx, env, args[1:]); err != nil {
		var ex exitError
		if errors.As(err, &ex) {
			return ex.code
		}
		fmt.Fprintf(env.stderr, "payledger %s: %v\n", args[0], err)
		if errors.Is(err, errUsage) {
			return 2
		}
		return 1
	}
	return 0
}

// exitError ends the process with a code after the command already printed
// its own report (audit verify).
type exitError struct{ code int }

func (e exitError) Error() string { return fmt.Sprintf("exit status %d", e.code) }

func usage(w io.Writer, cmds map[string]command) {
	names := make([]string, 0, len(cmds))
	for n := range cmds {
		names = append(names, n)
	}
	sort.Strings(names)
	fmt.Fprintln(w, "usage: payledger <command> [arguments]")
	for _, n := range names {
		fmt.Fprintf(w, "  %-12s %s\n", n, cmds[n].summary)
	}
}
