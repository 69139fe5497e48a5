package containers

import (
	"context"
	"errors"
	"fmt"
	"io"
	"strings"
	"time"

	"github.com/sandy-rt/sandy/internal/imagehelper"
	"github.com/sandy-rt/sandy/internal/lifecycle"
	"github.com/sandy-rt/sandy/internal/state"
)

// Listed is one container of `sandy container ls`, with podman's JSON
// names.
type Listed struct {
	ID      string    `json:"Id"`
	Names   []string  `json:"Names"`
	Image   string    `json:"Image"`
	ImageID string    `json:"ImageID"`
	Command []string  `json:"Command"`
	Created time.Time `json:"Created"`
	State   string    `json:"State"` // running, paused, created, stopping, exited, or storage (External)
	// Started is when a detached container's process (last) started.
	Started  *time.Time `json:"StartedAt,omitempty"`
	ExitCode *int       `json:"ExitCode,omitempty"`
	Finished *time.Time `json:"FinishedAt,omitempty"`
	// External: a storage container without a record of sandy's: podman's
	// or buildah's in the same store, or one a killed sandy run left;
	// listed with --external only, in podman's "storage" state.
	External bool `json:"IsExternal"`
	// Owner says whose an external container is (imagehelper.OwnerSandy,
	// OwnerBuildah, "" when unknown): rm removes sandy's own without -f.
	Owner string `json:"Owner,omitempty"`
	// MonitorGone: the monitor of a detached container was killed before
	// it could record how the container ended (which died with it).
	MonitorGone bool `json:"MonitorGone,omitempty"`

	// Ports are the published ports (-p, -P).
	Ports []PortMapping `json:"Ports,omitempty"`
	// Labels are the image's and --label's.
	Labels map[string]string `json:"Labels,omitempty"`

	dir string // the storage container's directory
	rec Record
	// creator: the live sandy that is making this external container of
	// sandy's (nil when none is: it was left over).
	creator *imagehelper.Creator
}

// Latest is the id of the container made last (podman's --latest):
// sandy's, of any state.
func (m Manage) Latest(ctx context.Context) (string, error) {
	list, err := m.List(ctx, false)
	if err != nil {
		return "", err
	}
	var latest *Listed
	for i, c := range list {
		if !c.External && (latest == nil || c.Created.After(latest.Created)) {
			latest = &list[i]
		}
	}
	if latest == nil {
		return "", errors.New("--latest: no containers to act on")
	}
	return latest.ID, nil
}

// Running reports whether the container has processes (or is being
// made): the state rm refuses without -f.
func (l Listed) Running() bool {
	return l.State == state.Running || l.State == state.Paused || l.State == state.Created || l.State == state.Creating || l.State == Stopping
}

// Stopping is the state of a detached container whose process has ended
// while its monitor finishes (records the status, removes it under --rm).
const Stopping = "stopping"

// Manage carries what `sandy container …` needs: the runtime's globals
// and the image helper with its store flags.
type Manage struct {
	G      *lifecycle.Global
	Helper string
	Global []string
	Stderr io.Writer
}

// List lists the containers sandy made from images, the store's others
// too with external. The runtime's state says which run; sandy's record
// says how the others ended.
func (m Manage) List(ctx context.Context, external bool) ([]Listed, error) {
	stored, err := imagehelper.List(ctx, m.Helper, m.Global, m.Stderr)
	if err != nil {
		return nil, err
	}
	var out []Listed
	for i, sc := range stored {
		if i == 0 {
			m.rememberStore(sc.Dir) // for the name index (index.go)
		}
		l := Listed{ID: sc.ID, Names: sc.Names, Image: sc.ImageName, ImageID: sc.ImageID, Created: sc.Created, dir: sc.Dir}
		rec, ok, err := readRecord(sc.Dir)
		if err != nil {
			return nil, err
		}
		switch {
		case !ok && !external:
			continue
		case !ok:
			l = externalOf(l, sc)
		default:
			if rec.ImageID == "" {
				if err := completeRecord(sc.Dir, sc.Names, sc.ImageID); err != nil {
					m.G.Debugf("completing the record of %s: %v", short(sc.ID), err)
				}
			}
			if l, err = m.withRecord(l, rec); err != nil {
				return nil, err
			}
		}
		out = append(out, l)
	}
	return out, nil
}

// stateOf is a container's state from the runtime's status st and its
// record: a detached one is running while its monitor lives (creating
// before its process ran, stopping once it ended), and exited once the
// monitor is gone. A monitor
// that is gone without recording the exit status was killed (gone).
func stateOf(st string, rec Record) (string, bool) {
	monitor := rec.Monitor != nil && state.Alive(rec.Monitor.Pid, rec.Monitor.Start)
	ended := st == "" || st == state.Stopped
	switch {
	case monitor && ended && rec.Started == nil:
		return state.Creating, false // the monitor is setting it up
	case monitor && ended:
		return Stopping, false
	case !ended:
		return st, false
	}
	return "exited", rec.Monitor != nil && !monitor && rec.ExitCode == nil
}

// Remove removes containers sandy made, named by name, id or a unique id
// prefix: their storage container and layer. A running one is refused
// unless force, which kills it first. Each is done or not on its own; the
// error lists what failed.
func (m Manage) Remove(ctx context.Context, refs []string, force, anonymous bool) (removed []string, err error) {
	var all []Listed // the store's list, once, for the references the index cannot answer
	var errs []error
	for _, ref := range refs {
		c, err := m.lookup(ref, true)
		if errors.Is(err, errAskStore) {
			if all == nil {
				if all, err = m.List(ctx, true); err != nil {
					return removed, errors.Join(append(errs, err)...)
				}
			}
			c, err = find(all, ref)
		}
		if err == nil {
			err = m.remove(ctx, c, force)
		}
		if err == nil && anonymous {
			// rm -v: the container's anonymous volumes (named ones stay,
			// as with podman).
			err = removeVolumes(c.rec.AnonymousVolumes)
		}
		if err != nil {
			errs = append(errs, err)
			continue
		}
		removed = append(removed, c.ID)
	}
	return removed, errors.Join(errs...)
}

func (m Manage) remove(ctx context.Context, c Listed, force bool) error {
	switch {
	case c.External:
		return m.removeExternal(ctx, c, force)
	case c.Running() && !force:
		return fmt.Errorf("container %s is %s: stop it first (sandy stop %s), or rm -f to kill it", short(c.ID), c.State, short(c.ID))
	case c.Running():
		// Killed, and its monitor gone (it records the end and, under
		// --rm, removes the container itself).
		if err := m.stop(ctx, c, 0); err != nil {
			return fmt.Errorf("killing container %s: %w", short(c.ID), err)
		}
	}
	if err := m.removeRuntime(ctx, c.ID); err != nil {
		return err
	}
	if _, ok, err := readRecord(c.dir); err == nil && !ok && c.rec.Rm {
		return nil // its monitor removed it (--rm)
	}
	return m.removeStorage(ctx, c.ID)
}

// removeRuntime removes what a killed monitor or a killed `sandy run`
// left of the runtime for container id: its state, cgroup, network files
// and exit file (killing what still runs).
func (m Manage) removeRuntime(ctx context.Context, id string) error {
	if err := lifecycle.Delete(ctx, m.G, id, true); err != nil {
		return fmt.Errorf("removing the runtime state of container %s: %w", short(id), err)
	}
	removeExitFile(m.G, id)
	return nil
}

// removeStorage removes the storage container id and its layer through
// the helper, whose own error line is its message.
func (m Manage) removeStorage(ctx context.Context, id string) error {
	if err := imagehelper.Remove(ctx, m.Helper, m.Global, id, m.Stderr); err != nil {
		var he *imagehelper.HelperError
		if errors.As(err, &he) {
			return errQuiet{err}
		}
		return err
	}
	return nil
}

// find resolves a container reference as podman does: a full id, a name,
// then a unique id prefix.
func find(all []Listed, ref string) (Listed, error) {
	var prefixed []Listed
	for _, c := range all {
		if c.ID == ref {
			return c, nil
		}
		for _, n := range c.Names {
			if n == ref {
				return c, nil
			}
		}
		if len(ref) >= 3 && strings.HasPrefix(c.ID, ref) {
			prefixed = append(prefixed, c)
		}
	}
	switch len(prefixed) {
	case 1:
		return prefixed[0], nil
	case 0:
		return Listed{}, fmt.Errorf("no container with name or id %q", ref)
	}
	return Listed{}, fmt.Errorf("%q names %d containers (%s, …): give more of the id", ref, len(prefixed), short(prefixed[0].ID))
}

func short(id string) string { return id[:min(12, len(id))] }

// Find is the container a name, id or unique id prefix names, among
// those sandy made.
func (m Manage) Find(ctx context.Context, ref string) (Listed, error) {
	if c, err := m.lookup(ref, false); !errors.Is(err, errAskStore) {
		return c, err
	}
	all, err := m.List(ctx, false)
	if err != nil {
		return Listed{}, err
	}
	return find(all, ref)
}

// Resolve turns a name, id or unique id prefix of a running container
// sandy made into its id.
func (m Manage) Resolve(ctx context.Context, ref string) (string, error) {
	// A whole id (what run -d printed) of a running container needs no
	// list of the store, whose helper costs 100 ms and more.
	if len(ref) == 64 {
		if st, err := lifecycle.StatusOf(m.G, ref); err == nil && (st == state.Running || st == state.Paused) {
			return ref, nil
		}
	}
	c, err := m.Find(ctx, ref)
	if err != nil {
		// Not one of sandy's: a storage container without its record
		// is said as such (a second list, on the error's path only).
		if ext, gerr := m.Get(ctx, ref); gerr == nil && ext.External {
			return "", externalError(ext, refuseExec)
		}
		return "", err
	}
	if !c.Running() {
		return "", fmt.Errorf("container %s is %s: exec needs a running container", short(c.ID), c.State)
	}
	return c.ID, nil
}
