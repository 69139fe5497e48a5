//go:build containers_image_openpgp

// Package imagestore is the image store without the image library's copy
// stack: opening the rootless store (go.podman.io/storage, configured from
// containers-storage.conf as podman reads it, with the driver ladder),
// finding an image by name (through Names: internal/imagenames resolves
// names as podman does, ExactNames only as stored), reading its config (OCI and
// Docker schema 2 manifests; the rest is ErrNeedsImageLibrary), and the
// storage containers of `sandy run IMAGE`: create, remove, list, commit,
// diff, rename.
//
// It links nothing of go.podman.io/image/v5: not copy, the transports or
// signature, whose inits (protobuf and gRPC through ocicrypt's key
// provider) double a helper's start, and not the reference parser, whose
// regexps are compiled at package init (internal/imagenames has it). The
// storage-only helpers (internal/cmd/sandy-create, and sandy-store with
// imagenames) are built on it; internal/images adds the library (pull,
// push, archives) for sandy-image.
// What needs the library comes in through the options (a Puller, a
// ConfigFunc), nil in sandy-store.
//
// It runs in the image helpers, inside the store's user and mount
// namespace.
package imagestore
