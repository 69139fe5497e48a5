//go:build containers_image_openpgp

// Package images is sandy's image half: the transports that fill and
// empty the rootless image store (go.podman.io/image/v5: registries,
// docker-archive, oci-archive, oci layouts, dir) and the image commands
// over it. The store itself (go.podman.io/storage, configured from
// containers-storage.conf exactly as podman, buildah and skopeo read it,
// so the store is shared with them), lookups and the storage containers
// are internal/imagestore's, which sandy-store links without this package.
//
// Only the image helper (internal/cmd/sandy-image) imports this package.
// The libraries behind it cost about 18 ms of package initialisation and
// 24 MB of binary; keeping them out of cmd/sandy keeps them off the
// runtime path (create/start/run ./bundle/exec). The helper runs every
// store operation inside sandy's user and mount namespace with podman's
// id map (0 → the caller, 1..N → the subordinate ranges), so the owners of
// files in the store agree with podman's.
//
// Each verb is one function taking the Store and an options struct; the
// helper's main is flags and printing only.
package images
