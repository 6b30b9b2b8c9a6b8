package main

import (
	"context"
	"fmt"
)

func runBench(ctx context.Context, env *environment, args []string) error {
	return fmt.Errorf("%w: bench is not wired yet", errUsage)
}
