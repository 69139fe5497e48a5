// Package spec loads and validates an OCI bundle's config.json with the
// runtime-spec types (no second config model), applies the adjustments a
// rootless runtime needs, and writes the example config of `sandy spec`.
//
// It runs on the host side only and does no I/O beyond reading config.json
// and checking the bundle's root path.
package spec
