package lifecycle

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"time"

	"github.com/sandy-rt/sandy/internal/state"
)

// The container's state directory in create: claimed on a goroutine
// beside the first steps (createState, awaitState), saved with the
// init's pid (saveState, awaitSaved), and the --pid-file.

// stateClaim is what creating the state directory gave: its lock, or the
// error (the id in use).
type stateClaim struct {
	lock *state.Lock
	err  error
}

// stateError is the error of the state's creation, met at the step that
// first needed the state directory: it is reported as that step's.
type stateError struct{ err error }

func (e *stateError) Error() string { return e.err.Error() }

func (e *stateError) Unwrap() error { return e.err }

func (cr *creation) createState(context.Context) error {
	root, err := state.OpenRoot(cr.g.Root)
	if err != nil {
		return err
	}
	cr.root = root
	collectLeftovers(cr.g, root, 0)
	if cr.o.ID == "" {
		cr.o.ID = NewID()
	}
	cr.c = &state.Container{
		ID:          cr.o.ID,
		Bundle:      cr.bundle.Dir,
		Rootfs:      cr.bundle.Rootfs,
		Created:     time.Now().UTC(),
		Annotations: cr.bundle.Spec.Annotations,
		Hooks:       cr.bundle.Spec.Hooks,
	}
	if cr.o.owned {
		cr.c.Owner = os.Getpid()
		cr.c.OwnerStart, _, _ = state.ProcStart(os.Getpid())
	}
	// Saved before the directory appears, so that a kill -9 from here on
	// leaves a state that the next sandy command recognises and collects.
	// On a goroutine: the collection of dead runs' leftovers and the two
	// file creations (the directory, state.json: 2.5-3.5 ms on this
	// project's machines' /tmp) run beside the steps that do not need the
	// directory (the id maps, the init's start and its Go runtime's);
	// awaitState joins it where one does, first of all before a cgroup is
	// made under the id, so that an id in use is refused before anything
	// of the container that holds it could be touched.
	c := *cr.c // a snapshot: the steps go on filling in cr.c
	claim := make(chan stateClaim, 1)
	cr.claim = claim
	go func() {
		collectLeftovers(cr.g, root, 0)
		lock, err := root.Create(&c)
		claim <- stateClaim{lock, err}
	}()
	cr.undo.add(func() {
		if cr.awaitState() == nil {
			_ = root.Remove(cr.o.ID)
			cr.lock.Unlock()
		}
	})
	return nil
}

// awaitState waits for the state directory createState is making and
// returns its error, the same each time.
func (cr *creation) awaitState() error {
	if cr.claim != nil {
		r := <-cr.claim
		cr.claim = nil
		cr.lock, cr.claimErr = r.lock, r.err
	}
	if cr.claimErr != nil {
		return &stateError{cr.claimErr}
	}
	return nil
}

// saveState saves the container's config (for exec) and its state, now
// with the init's pid. A foreground run without --pid-file saves them while
// the init is released into execve (awaitSaved joins it before the process
// counts as started and before the teardown): two file creations, 1.6-2
// ms on this project's machines' /tmp, off the user's wait. Until then the
// state says "creating" (no pid), as it did until this step. create, run
// -d and a --pid-file (whose reader may look the pid up at once) save
// before they go on.
func (cr *creation) saveState(context.Context) error {
	cr.c.NoSeccomp = cr.o.NoSeccomp
	cr.c.NoProcess = cr.bundle.NoProcess
	if !cr.o.owned || cr.o.PidFile != "" {
		return cr.save(cr.c)
	}
	c := *cr.c // the teardown changes cr.c; the save is of this moment
	cr.saved = make(chan error, 1)
	go func() { cr.saved <- cr.save(&c) }()
	return nil
}

func (cr *creation) save(c *state.Container) error {
	if err := cr.root.SaveSpec(c.ID, cr.bundle.Spec); err != nil {
		return err
	}
	return cr.root.Save(c)
}

// awaitSaved waits for the save saveState left running, if any.
func (cr *creation) awaitSaved() error {
	if cr.saved == nil {
		return nil
	}
	err := <-cr.saved
	cr.saved = nil
	if err != nil {
		return fmt.Errorf("saving the state: %w", err)
	}
	return nil
}

// writePidFile writes --pid-file atomically (relative to the caller's cwd).
func (cr *creation) writePidFile(context.Context) error {
	if cr.o.PidFile == "" {
		return nil
	}
	return WritePidFile(cr.o.PidFile, cr.c.Pid)
}

// WritePidFile writes pid to path through a temp file and a rename.
func WritePidFile(path string, pid int) error {
	abs, err := filepath.Abs(path)
	if err != nil {
		return err
	}
	tmp := filepath.Join(filepath.Dir(abs), "."+filepath.Base(abs)+".tmp")
	if err := os.WriteFile(tmp, []byte(strconv.Itoa(pid)), 0o644); err != nil {
		return fmt.Errorf("writing pid file: %w", err)
	}
	if err := os.Rename(tmp, abs); err != nil {
		os.Remove(tmp)
		return fmt.Errorf("writing pid file: %w", err)
	}
	return nil
}
