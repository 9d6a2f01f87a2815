package bench

import (
	"context"
	"debug/elf"
	"fmt"
	"os"
)

// runBinary reports the size of the running binary (`make build` builds
// the release one, stripped) and whether it carries a symbol table: the
// release build strips it with -ldflags "-s -w". The container image
// (deploy/Dockerfile) adds distroless/static's few MB to the same binary.
func runBinary(_ context.Context, _ Options) (Result, error) {
	var r Result
	path, err := os.Executable()
	if err != nil {
		return r, fmt.Errorf("bench: find the running binary: %w", err)
	}
	fi, err := os.Stat(path)
	if err != nil {
		return r, fmt.Errorf("bench: size of %s: %w", path, err)
	}
	r.Note = path
	r.add("size_mb", float64(fi.Size())/1e6)
	stripped := 1.0
	if f, err := elf.Open(path); err == nil {
		if f.Section(".symtab") != nil || f.Section(".debug_info") != nil {
			stripped = 0
		}
		f.Close()
	}
	r.add("stripped", stripped)
	return r, nil
}
