//go:build !linux

package slirp

// builtinAdvice is the fix for a port the slirp4netns driver cannot
// forward (exe.go); slirp runs containers on Linux only.
func builtinAdvice(int) string { return "use the builtin driver" }
