//go:build containers_image_openpgp

// Package imagenames resolves the image names a user types as podman
// does: the image library's reference parser (go.podman.io/image/v5's
// docker/reference: normalisation, ":latest", docker.io/library/) and the
// unqualified-search registries of registries.conf (its sysregistriesv2).
// It is imagestore.Names for sandy-store and sandy-image, and the lookups
// of the image commands (internal/images).
//
// It is a package of its own so that sandy-create, the helper `sandy run
// IMAGE` starts, does not link it: the reference parser compiles its
// regexps at package init (≈0.4 ms of every start), and the image
// library's types bring crypto/tls. sandy-create finds only names stored
// exactly as typed (imagestore.ExactNames) and hands any other to
// sandy-store (docs/design.md, "The run-path helper's dependencies").
//
// It runs in the image helpers, inside the store's user and mount
// namespace.
package imagenames
