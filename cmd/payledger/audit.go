package main

import (
	"context"
	"fmt"
)

// runAudit is replaced by the audit package's subcommands.
func runAudit(ctx context.Context, env *environment, args []string) error {
	return fmt.Errorf("%w: audit is not wired yet", errUsage)
}
