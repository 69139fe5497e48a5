package slirp

import (
	"errors"
	"testing"
)

// TestLoopbackWarning: the loopback line is the error after a fixed prefix.
func TestLoopbackWarning(t *testing.T) {
	got := LoopbackWarning(errors.New("slirp4netns not in PATH (apt-get install slirp4netns)"))
	want := "network: loopback only (no outside network): slirp4netns not in PATH (apt-get install slirp4netns)"
	if got != want {
		t.Errorf("LoopbackWarning = %q, want %q", got, want)
	}
}
