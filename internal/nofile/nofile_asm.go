//go:build amd64 || arm64

package nofile

// getrlimit is prlimit64(0, RLIMIT_NOFILE, NULL, lim): 0, or -errno.
func getrlimit(lim *[2]uint64) int64
