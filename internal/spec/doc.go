// Package spec loads and validates an OCI bundle's config.json with the
// runtime-spec types (no second config model), applies the adjustments a
// rootless runtime needs, and writes the example config of `sandy spec`.
//
// ValidateProcess holds the rules of a process object, shared by Load
// (create, run) and exec (its flags, or `exec --process FILE`);
// CheckUserMapped checks process.user against the container's id maps
// once the caller knows them (create: the maps it is about to write;
// exec: the running container's).
//
// It runs on the host side only and does no I/O beyond reading config.json
// and checking the bundle's root path.
package spec
