//go:build containers_image_openpgp

package imagestore

import (
	"errors"
	"io/fs"
	"os"
	"path/filepath"
	"strings"

	"github.com/sandy-rt/sandy/internal/imagehelper"
)

// Probe reports the image store for `sandy doctor`. An existing store is
// opened as the commands open it and its images are counted. A store that
// does not exist yet is not created: the driver ladder is tried for real
// in a scratch store made in the nearest existing directory above where
// the store would be (the same filesystem, in all likelihood), which is
// removed afterwards.
func Probe(o StoreOptions) imagehelper.StoreInfo {
	var info imagehelper.StoreInfo
	so, err := storeConfig(o)
	if err != nil {
		info.Error = err.Error()
		return info
	}
	info.GraphRoot, info.RunRoot = so.GraphRoot, so.RunRoot
	if _, err := os.Stat(so.GraphRoot); err == nil {
		info.Existing = true
		s, res, err := Open(o)
		if err != nil {
			info.Error = err.Error()
			return info
		}
		defer Shutdown(s)
		describe(&info, res)
		if imgs, err := s.Images(); err == nil {
			info.Images = len(imgs)
		}
		return info
	} else if !errors.Is(err, fs.ErrNotExist) {
		info.Error = err.Error()
		return info
	}
	base := existingAncestor(so.GraphRoot)
	scratch, err := os.MkdirTemp(base, ".sandy-probe-")
	if err != nil {
		info.Error = "cannot create the image store under " + base + ": " + err.Error()
		return info
	}
	defer os.RemoveAll(scratch)
	try := o
	try.Root, try.RunRoot, try.Warn = filepath.Join(scratch, "graph"), filepath.Join(scratch, "run"), nil
	s, res, err := Open(try)
	if err != nil {
		info.Error = err.Error()
		return info
	}
	describe(&info, res)
	if _, err := s.Shutdown(true); err != nil {
		info.Error = "shutting down the scratch store: " + err.Error()
	}
	return info
}

func describe(info *imagehelper.StoreInfo, res Resolved) {
	info.Driver, info.Fallback = res.Driver, res.Fallback
	for _, opt := range res.DriverOpts {
		if p, ok := strings.CutPrefix(opt, "overlay.mount_program="); ok {
			info.Mount = p
		} else if p, ok := strings.CutPrefix(opt, "mount_program="); ok {
			info.Mount = p
		}
	}
	if res.Fallback != "" {
		for _, st := range ladder() {
			if st.driver == res.Driver && (st.driver != "overlay" || (info.Mount != "") == (len(st.opts) > 0)) {
				info.Fix = st.fix
			}
		}
	}
}

// existingAncestor is the nearest directory at or above p that exists.
func existingAncestor(p string) string {
	for {
		if fi, err := os.Stat(p); err == nil && fi.IsDir() {
			return p
		}
		parent := filepath.Dir(p)
		if parent == p {
			return p
		}
		p = parent
	}
}
