package copier

import (
	"errors"
	"fmt"
	"path"
	"strings"
)

// Location is one side of `sandy cp SRC DST`.
type Location struct {
	// Container is the container's name, id or id prefix; "" for the host.
	Container string
	// Path is the path in the container or on the host as typed; "-"
	// (host side only) is a tar stream on stdin or stdout.
	Path string
}

// Stream reports whether l is "-": a tar stream on stdin or stdout.
func (l Location) Stream() bool { return l.Container == "" && l.Path == "-" }

// ParseLocation reads one argument as podman cp does: a string that
// starts with "." or "/" is a host path (so ./a:b is a file, not
// container "./a"), else the text before the first ":" names a
// container; no ":" makes it a host path.
func ParseLocation(arg string) Location {
	if arg == "" || arg[0] == '.' || arg[0] == '/' {
		return Location{Path: arg}
	}
	if c, p, ok := strings.Cut(arg, ":"); ok {
		return Location{Container: c, Path: p}
	}
	return Location{Path: arg}
}

// Errors of ParseArgs, for the callers that explain them.
var (
	ErrNoContainer   = errors.New("neither SRC nor DST is CONTAINER:PATH: one side must name a container")
	ErrTwoContainers = errors.New("both SRC and DST name a container: copy through the host (sandy cp A:PATH - | sandy cp - B:DIR)")
)

// ParseArgs reads `sandy cp SRC DST`: exactly one side names a
// container, and "-" may stand for the other.
func ParseArgs(src, dst string) (Location, Location, error) {
	s, d := ParseLocation(src), ParseLocation(dst)
	switch {
	case s.Container == "" && d.Container == "":
		return s, d, ErrNoContainer
	case s.Container != "" && d.Container != "":
		return s, d, ErrTwoContainers
	case src == "" || dst == "":
		return s, d, errors.New("an empty path")
	}
	for _, l := range []Location{s, d} {
		if l.Container != "" && l.Path == "" {
			return s, d, fmt.Errorf("%s: no path after the container (CONTAINER:PATH; the container's root is CONTAINER:/)", l.Container+":")
		}
	}
	if s.Stream() && d.Stream() {
		return s, d, ErrNoContainer
	}
	return s, d, nil
}

// Source is what a copy reads, as the command line gave it.
type Source struct {
	// Path is the path without the trailing "/" or "/.".
	Path string
	// Contents: the path ends in "/." (or is the root): the directory's
	// contents are copied, not the directory itself (docker cp's rule).
	Contents bool
	// Follow: the path ends in "/" or "/.": a symlink at it is followed
	// (inside the root), as a path that names a directory must be.
	Follow bool
}

// ParseSource reads a source path's docker cp suffixes. p is absolute
// (the caller joins a host path to its working directory and a container
// path to "/"); Path comes back clean.
func ParseSource(p string) Source {
	var s Source
	switch {
	case strings.HasSuffix(p, "/.") || p == ".":
		s.Contents, s.Follow = true, true
	case strings.HasSuffix(p, "/"):
		s.Follow = true
	}
	s.Path = path.Clean(p)
	if s.Path == "/" {
		s.Contents, s.Follow = true, true
	}
	return s
}

// TarName is the name of the source's top entry in the stream: its
// base name, or "." for its contents.
func (s Source) TarName() string {
	if s.Contents {
		return "."
	}
	return path.Base(s.Path)
}
