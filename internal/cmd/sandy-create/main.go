//go:build containers_image_openpgp

// Command sandy-create is the helper `sandy run IMAGE` starts for an image
// named as it is stored (a registry or localhost/, a path and a tag:
// imagehelper.StoredAsTyped): the _create-container verb of
// internal/storehelper (with its --hold protocol: the --rm container's
// removal after the run) over the image store (go.podman.io/storage), and
// nothing of the image library (go.podman.io/image/v5): not its reference
// parser, whose regexps are compiled at package init, nor registries.conf
// nor the library's types (crypto/tls). Its start is ≈0.5 ms shorter than
// sandy-store's, and that start is on the user's wait (docs/design.md,
// "The run-path helper's dependencies"; TestCreateDeps keeps it so).
//
// It finds an image only by a name it is stored under exactly as typed
// (imagestore.ExactNames), which is the first thing the full lookup
// tries, so what it finds is what sandy-store would. Anything else (a
// name stored otherwise, a missing image to pull, an image whose manifest
// imagestore does not read, another verb) fails before the store changes
// and it execs sandy-store, from its own directory, with the same
// arguments, stdio and environment, which goes on as if sandy had started
// it (and hands the library's part to sandy-image). It is installed beside
// sandy-store; without it sandy starts sandy-store, as before.
package main

import (
	"github.com/sandy-rt/sandy/internal/imagehelper"
	"github.com/sandy-rt/sandy/internal/imagestore"
	"github.com/sandy-rt/sandy/internal/storehelper"
)

func main() {
	storehelper.Program{
		Name:       imagehelper.CreateName,
		Next:       imagehelper.StoreName,
		Verbs:      []string{imagehelper.CreateRole},
		HandOverOn: []error{imagestore.ErrNeedsNames, imagestore.ErrNeedsImageLibrary},
		Spare:      true,
	}.Run()
}
