package containers

import (
	"context"
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
// hook every user needs: what a container user wrote into a volume,
// owned by the caller's subordinate ids, is removed from a user namespace
// (lifecycle.RemoveTreeInUserNS). It says no container uses a volume:
// run and a container's removal take it; `sandy volume` takes
// Manage.Volumes.
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

// Volumes is OpenVolumes with the hooks of `sandy volume`: a volume is
// in use by every container (of any state) whose record names it, found
// in one list of the store made on the first question; `volume rm -f`
// removes those containers first, as podman does.
func (m Manage) Volumes(ctx context.Context) (*volumes.Store, error) {
	s, err := OpenVolumes()
	if err != nil {
		return nil, err
	}
	var users map[string][]string
	s.InUse = func(name string) ([]string, error) {
		if users == nil {
			list, err := m.List(ctx, false)
			if err != nil {
				return nil, err
			}
			users = map[string][]string{}
			for _, c := range list {
				for _, v := range slices.Concat(c.rec.Volumes, c.rec.AnonymousVolumes) {
					if !slices.Contains(users[v], c.ID) {
						users[v] = append(users[v], c.ID)
					}
				}
			}
		}
		return users[name], nil
	}
	s.RemoveContainers = func(ids []string) error {
		users = nil // listed again on the next question
		_, err := m.Remove(ctx, ids, true, false)
		return err
	}
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
