//go:build containers_image_openpgp

// Command sandy-store is the image helper's storage half: the hidden
// verbs sandy calls for containers from images (_create-container,
// _remove-container, _list-containers, _commit, _diff, _rename-container;
// internal/storehelper) with the image store (go.podman.io/storage) and
// without the image library's copy stack (registries, signatures,
// ocicrypt, and the gRPC and protobuf it brings), which sandy-image links:
// about a quarter of sandy-image's size and half its start (docs/images.md
// "Two programs, one install"). It is installed beside sandy-image, which
// sandy falls back to when it is missing.
//
// A verb that needs the image library (a pull, an image whose manifest
// imagestore does not read itself) fails with
// imagestore.ErrNeedsImageLibrary before it changes the store, and this
// program then execs sandy-image, from its own directory, with the same
// arguments, stdio and environment: inside the store's namespace already,
// sandy-image does the verb as if sandy had started it. sandy starts
// sandy-image directly for `run --pull=always`. It resolves image names as
// podman does (internal/imagenames); sandy-create, the run path's helper,
// hands it the names not stored exactly as typed.
package main

import (
	"github.com/sandy-rt/sandy/internal/imagehelper"
	"github.com/sandy-rt/sandy/internal/imagenames"
	"github.com/sandy-rt/sandy/internal/imagestore"
	"github.com/sandy-rt/sandy/internal/storehelper"
)

func main() {
	storehelper.Program{
		Name:       imagehelper.StoreName,
		Next:       imagehelper.Name,
		Names:      imagenames.ForConf,
		HandOverOn: []error{imagestore.ErrNeedsImageLibrary},
	}.Run()
}
