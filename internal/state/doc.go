// Package state owns sandy's state root and the per-container state
// directory: where it lives (--root, else $XDG_RUNTIME_DIR/sandy, else a
// private 0700 directory under /tmp), the state file written atomically,
// a lock per container so that two sandy commands on one id never corrupt
// it, the container's status as the runtime spec defines it, and `list`.
//
// Host side only.
package state
