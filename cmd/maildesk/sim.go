package main

import (
	"context"
	"errors"
	"flag"
	"io"

	"github.com/maildesk/maildesk/graphsync/m365sim"
)

// cmdSim runs the Microsoft 365 simulator alone until ctx ends.
func cmdSim(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	err := m365sim.Main(ctx, args, stdout)
	if errors.Is(err, flag.ErrHelp) {
		return usageError{err}
	}
	return err
}
