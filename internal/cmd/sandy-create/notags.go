//go:build !containers_image_openpgp

// Built without its tags, sandy-create would need btrfs headers (cgo);
// this main says how to build it instead, so that `go build ./...` and
// `go vet ./...` work in a plain checkout.
package main

import (
	"fmt"
	"os"
)

func main() {
	fmt.Fprintln(os.Stderr, "sandy-create was built without its build tags: go build -tags containers_image_openpgp,exclude_graphdriver_btrfs ./internal/cmd/sandy-create (or bash hack/install.sh)")
	os.Exit(125)
}
