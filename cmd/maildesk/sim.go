package main

import (
	"context"
	"errors"
	"io"
)

// cmdSim runs the Microsoft 365 simulator.
// TODO(lead): wire m365sim.Main(ctx, args, stdout) once graphsync/m365sim builds.
func cmdSim(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	return errors.New("the simulator is not wired into this build yet (graphsync/m365sim is in progress)")
}
