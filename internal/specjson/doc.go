// Package specjson is the JSON codec of sandy's start-up paths: the
// bundle's config.json (spec.Decode), the state file and the config kept
// for exec (internal/state), the config the host sends the init and
// the exec init over the sync socket (initproc.SendConfig), and on
// `run IMAGE`'s path the image helper's answer (imagehelper.Create), the
// bundle it writes and its record (internal/containers). Their decodes
// are the first JSON of their process, and a process's first
// encoding/json decode of a runtime-spec config costs 0.5-0.7 ms on this
// project's machine (encoding/json builds its per-type field lists by
// reflection on first use; the second decode costs 0.03 ms).
//
// It decodes and encodes with github.com/go-json-experiment/json/v1, the
// upstream of Go's encoding/json/v2, on which encoding/json itself is
// built from Go 1.25 under GOEXPERIMENT=jsonv2: a first decode of the
// same config in 0.25-0.33 ms, with encoding/json's semantics (names
// matched case-insensitively but not across '_' or '-', duplicate names
// allowed, the last one winning and objects merging, invalid UTF-8
// replaced by U+FFFD, omitempty and the output byte for byte). A
// maintained library, rather than a decoder written for the spec's
// types: those types change with every runtime-spec release, and
// configs come from podman, containerd, runc and people's editors.
// Errors are encoding/json's own, word for word (legacyError).
// specjson_test.go decodes real configs (runc's, crun's, podman's,
// sandy's) and state files with both, requires equal values and bytes,
// and fuzzes the pair.
//
// Keep every start-up decode and encode of one type in one process on one
// codec: each codec builds its own per-type caches, so a config decoded
// here and encoded with encoding/json pays the first-use cost twice
// (0.4 ms), and a state decoded with encoding/json in create's process
// 0.15 ms. The rest of sandy (the image helper's own side, ps, inspect, the leaves,
// the sync protocol's envelope) uses encoding/json. With Go 1.27 (or GOEXPERIMENT=jsonv2) the module is an
// alias of the standard library's encoding/json/v2, and encoding/json
// itself is built on it: the two codecs become one.
//
// Both sides of the process boundary: the host and the init.
package specjson
