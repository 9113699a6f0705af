package main

import (
	"fmt"
	"io"
	"os"

	"github.com/spf13/cobra"

	"github.com/clover-kv/clover/client"
	"github.com/clover-kv/clover/internal/keys"
)

// valueFlag adds --value-file to a command whose last argument, VALUE, it
// replaces.
func valueFlag(cmd *cobra.Command, path *string) {
	cmd.Flags().StringVar(path, "value-file", "", "read the value from this file instead of the VALUE argument")
}

// readValue returns the value to write: the VALUE argument when given ("-"
// reads standard input), else the contents of --value-file. Exactly one of
// the two is required. A value over the limit is an invalid argument;
// standard input and files that are not regular are read only one byte
// past the limit, so their error gives no size.
func readValue(cmd *cobra.Command, arg []string, path string) ([]byte, error) {
	switch {
	case len(arg) == 1 && path != "":
		return nil, fmt.Errorf("%w: give the value as VALUE or --value-file, not both", errUsage)
	case len(arg) == 1 && arg[0] != "-":
		return []byte(arg[0]), nil
	case len(arg) == 1:
		return readLimited(cmd.InOrStdin(), "value on standard input")
	case path == "":
		return nil, fmt.Errorf("%w: missing VALUE (or --value-file)", errUsage)
	}
	f, err := os.Open(path)
	if err != nil {
		return nil, fmt.Errorf("%w: --value-file: %w", errUsage, err)
	}
	defer f.Close()
	if st, err := f.Stat(); err == nil && st.Mode().IsRegular() && st.Size() > keys.MaxValueBytes {
		return nil, fmt.Errorf("%w: value file %s is %d bytes, over the limit of %d bytes (1 MiB)",
			client.ErrInvalidArgument, path, st.Size(), keys.MaxValueBytes)
	}
	return readLimited(f, "value file "+path)
}

// readLimited reads r to its end unless it holds more than the value limit.
func readLimited(r io.Reader, what string) ([]byte, error) {
	b, err := io.ReadAll(io.LimitReader(r, keys.MaxValueBytes+1))
	if err != nil {
		return nil, fmt.Errorf("read %s: %w", what, err)
	}
	if len(b) > keys.MaxValueBytes {
		return nil, fmt.Errorf("%w: %s is over the limit of %d bytes (1 MiB)", client.ErrInvalidArgument, what, keys.MaxValueBytes)
	}
	return b, nil
}
