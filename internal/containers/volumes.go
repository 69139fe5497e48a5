package containers

import (
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"slices"

	specs "github.com/opencontainers/runtime-spec/specs-go"

	"github.com/sandy-rt/sandy/internal/lifecycle"
	"github.com/sandy-rt/sandy/internal/volumes"
)

// OpenVolumes opens sandy's volume store (volumes.DefaultRoot) with the
// hooks sandy has: what a container user wrote into a volume, owned by
// the caller's subordinate ids, is removed from a user namespace
// (lifecycle.RemoveTreeInUserNS). No hook says yet which containers use a
// volume: for the store, none does.
func OpenVolumes() (*volumes.Store, error) {
	root, err := volumes.DefaultRoot()
	if err != nil {
		return nil, err
	}
	s, err := volumes.Open(root)
	if err != nil {
		return nil, err
	}
	s.RemoveForeign = lifecycle.RemoveTreeInUserNS
	return s, nil
}

// removeVolumes removes the named volumes (a container's anonymous ones)
// through OpenVolumes, so that files the container wrote as a
// subordinate id go too.
func removeVolumes(names []string) error {
	if len(names) == 0 {
		return nil
	}
	st, err := OpenVolumes()
	if err != nil {
		return err
	}
	var errs []error
	for _, name := range names {
		if err := st.Remove(name, false); err != nil {
			errs = append(errs, fmt.Errorf("removing anonymous volume %s: %w", name, err))
		}
	}
	return errors.Join(errs...)
}

// firstUseOptions are the bind options of a volume's first use
// (initproc's copyup and chownup).
var firstUseOptions = []string{"copyup", "chownup"}

// firstUseDone rewrites a kept container's config.json without the
// first-use options once it has run: a volume is filled and given its
// owner once, by the container that first mounts it, as podman does; a
// later start of the same container leaves it as it is then.
func firstUseDone(dir string) error {
	b, err := os.ReadFile(filepath.Join(dir, "config.json"))
	if err != nil {
		return err
	}
	var s specs.Spec
	if err := json.Unmarshal(b, &s); err != nil {
		return fmt.Errorf("reading the container's config.json: %w", err)
	}
	changed := false
	for i, m := range s.Mounts {
		kept := slices.DeleteFunc(slices.Clone(m.Options), func(o string) bool { return slices.Contains(firstUseOptions, o) })
		if len(kept) != len(m.Options) {
			s.Mounts[i].Options, changed = kept, true
		}
	}
	if !changed {
		return nil
	}
	return writeBundle(dir, &s)
}
