package copier

import (
	"fmt"
	"path"
	"strings"
)

// Info is what a copy needs to know of a path.
type Info struct {
	Exists bool `json:"exists"`
	IsDir  bool `json:"is_dir"`
}

// Transfer is where a stream lands: it is extracted into the directory
// Dir, its top entry From renamed To (the rest of each name kept).
type Transfer struct {
	Dir  string `json:"dir"`
	From string `json:"from"`
	To   string `json:"to"`
}

// Plan applies docker cp's rules (podman's too) to a source src, whose
// top entry is a directory or not (srcDir), and the destination dst as
// typed, which is d:
//
//   - a file into an existing directory keeps its name; onto an existing
//     file it replaces it; onto a path that does not exist it takes that
//     name (whose parent must exist), unless dst ends in "/", which must
//     then be an existing directory;
//   - a directory into an existing directory is copied into it under its
//     name, or its contents are (SRC/.); onto a path that does not exist
//     it is created there with the source's contents; onto an existing
//     file it is an error unless overwrite.
//
// dst is clean or ends in "/"; dst's parent is known to be a directory
// when d.Exists is false (the side that looked says otherwise).
func Plan(src Source, srcDir bool, dst string, d Info, overwrite bool) (Transfer, error) {
	from := src.TarName()
	slash := strings.HasSuffix(dst, "/") && dst != "/"
	clean := path.Clean(dst)
	switch {
	case !srcDir && src.Follow:
		return Transfer{}, fmt.Errorf("%s: not a directory (the source ends in /)", src.Path)
	case d.Exists && d.IsDir:
		to := from
		return Transfer{Dir: clean, From: from, To: to}, nil
	case d.Exists && slash:
		return Transfer{}, fmt.Errorf("%s: not a directory", dst)
	case d.Exists && srcDir && !overwrite:
		return Transfer{}, fmt.Errorf("cannot copy a directory onto the file %s (--overwrite replaces it)", dst)
	case !d.Exists && slash && !srcDir:
		return Transfer{}, fmt.Errorf("destination directory %s does not exist (without the trailing /, the file is copied to that name)", dst)
	}
	if clean == "/" {
		return Transfer{Dir: "/", From: from, To: from}, nil
	}
	return Transfer{Dir: path.Dir(clean), From: from, To: path.Base(clean)}, nil
}
