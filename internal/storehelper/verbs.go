//go:build containers_image_openpgp

package storehelper

import (
	"bufio"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"os/signal"
	"strings"
	"syscall"
	"time"

	"github.com/spf13/pflag"
	"go.podman.io/storage"

	"github.com/sandy-rt/sandy/idmap"
	"github.com/sandy-rt/sandy/internal/imagehelper"
	"github.com/sandy-rt/sandy/internal/imagestore"
)

// cmdCreateContainer is imagehelper.CreateRole: `sandy run IMAGE` asks
// for a storage container and gets an imagehelper.Prepared as JSON.
func cmdCreateContainer(ctx context.Context, g *Env, args []string) error {
	// A write to a pipe whose reader is gone (sandy killed while the
	// store works: the answer on stdout, --debug's lines on stderr) must
	// fail, not end the helper by SIGPIPE (Go's default for fds 1 and 2)
	// with the container made and nobody to remove it.
	signal.Ignore(syscall.SIGPIPE)
	var o imagestore.ContainerOptions
	fs := g.flags("_create-container [flags] IMAGE")
	var pf PullFlags
	pf.add(fs)
	fs.StringVar(&o.Name, "name", "", "the container's name")
	fs.StringVar(&o.ID, "id", "", "the container's id, 64 hex digits (default: the store chooses)")
	fs.StringVar(&o.Pull, "pull", "missing", "missing, always, never or newer")
	fs.BoolVar(&o.Volatile, "volatile", false, "the container is removed when it exits")
	hold := fs.Bool("hold", false, "after the answer, wait for \"remove\" on stdin (see holdContainer)")
	spare := fs.String("spare", "", "with --hold: after the session, wait in DIR as the spare helper of the next run (spare.go)")
	uidmap := fs.String("uidmap", "", "the container's uid map relative to the store's namespace, CONTAINER:HOST:SIZE[,...] (podman's --uidmap)")
	gidmap := fs.String("gidmap", "", "the container's gid map, as --uidmap")
	if err := parse(fs, args); err != nil {
		return helpOK(err)
	}
	pf.TLSVerifySet = fs.Changed("tls-verify")
	if o.ID != "" && !imagehelper.ValidID(o.ID) {
		return fmt.Errorf("--id %q: want 64 lower-case hex digits", o.ID)
	}
	if _, err := ParseSize(pf.MaxLayerSize); err != nil {
		return err
	}
	var err error
	if *uidmap != "" || *gidmap != "" {
		if o.UIDMap, err = idmap.ParseFlagMap("--uidmap", *uidmap); err != nil {
			return err
		}
		if o.GIDMap, err = idmap.ParseFlagMap("--gidmap", *gidmap); err != nil {
			return err
		}
	}
	if g.Library != nil {
		if o.Puller, err = g.Library.Puller(pf, g.Stderr); err != nil {
			return err
		}
		o.Config = g.Library.Config
	}
	if fs.NArg() != 1 {
		return errors.New("want exactly one image")
	}
	t0 := time.Now()
	s, err := g.openStore()
	if err != nil {
		return err
	}
	end := func() { imagestore.Shutdown(s) }
	g.Debugf("opening the image store: %v", time.Since(t0))
	if g.Debug {
		o.Trace = func(step string, d time.Duration) { g.Debugf("%s: %v", step, d) }
	}
	p, err := imagestore.CreateContainer(ctx, s, g.names(), fs.Arg(0), o)
	var aerr error
	if err == nil {
		// The answer first: sandy waits for it, not for the shutdown.
		aerr = json.NewEncoder(g.Stdout).Encode(p)
	}
	t0 = time.Now()
	end()
	g.Debugf("closing the image store: %v", time.Since(t0))
	if err != nil {
		return err
	}
	if err := aerr; err != nil {
		if *hold {
			// sandy is gone before it read the answer, which holds the
			// directory its record goes in: the container goes, as
			// holdContainer removes it when sandy goes later.
			if rerr := removeContainer(g, p.ID); rerr != nil {
				return fmt.Errorf("answering: %w; removing the container %s: %v", err, p.ID, rerr)
			}
		}
		return fmt.Errorf("answering: %w", err)
	}
	if !*hold {
		return nil
	}
	if g.spares {
		g.spare = *spare
	}
	return holdContainer(g, p, o.Volatile)
}

// removeContainer opens the store and removes the storage container id.
func removeContainer(g *Env, id string) error {
	t0 := time.Now()
	s, err := g.openStore()
	if err != nil {
		return err
	}
	g.Debugf("opening the image store: %v", time.Since(t0))
	defer imagestore.Shutdown(s)
	t0 = time.Now()
	defer func() { g.Debugf("removing the storage container: %v", time.Since(t0)) }()
	return imagestore.RemoveContainer(s, id)
}

// holdContainer is the rest of `_create-container --hold`: the helper
// stays, its store closed, until sandy says what becomes of the
// container once it exits: "remove" (run --rm, or a set-up that failed)
// removes it now, without a second helper's start-up; "keep" keeps it;
// end of input without a word (sandy was killed) removes a volatile
// (--rm) container, and another whose record sandy had not written
// (imagehelper.Abandoned: it is sandy's, and nothing refers to it); the
// others stay. The answer to "remove" is one line, "ok" or the error.
// The container is always the one this process made (the store refuses
// an id it holds already): podman's and buildah's are never touched.
//
// "remove-behind" (a `run --rm` whose container exited) removes it too,
// but answers "locked" first, once it holds the store's removals lock
// (imagestore.LockRemovals), and sandy returns the exit status then, without
// waiting for the removal: every helper verb waits for that lock before
// it opens the store (openStore), so a `run --name` of the same name, a
// list or an rm that follows sees the container gone. Nothing more goes
// to stdout after the answer (sandy is gone); an error of the removal goes
// to stderr, and the container stays, exited, for `sandy rm`.
func holdContainer(g *Env, p *imagehelper.Prepared, volatile bool) error {
	id := p.ID
	// The lock "remove-behind" takes, ready while the container runs.
	lock, lerr := imagestore.OpenRemovals(g.Store)
	line, err := bufio.NewReader(g.Stdin).ReadString('\n')
	switch strings.TrimSpace(line) {
	case imagehelper.HoldRemoveBehind:
		if lerr == nil {
			lerr = imagestore.LockOpened(lock)
		}
		if lerr != nil {
			closeLock(lock)
			fmt.Fprintln(g.Stdout, lerr.Error())
			return lerr
		}
		// Held until the removal is done: the process's exit, or a
		// spare's linger, closes it.
		g.removals, g.Store.HoldsRemovals = lock, true
		fmt.Fprintln(g.Stdout, imagehelper.HoldLocked)
		g.Stdout = io.Discard
		// The next run's request may come before the removal ends
		// (`for ...; do sandy run --rm IMAGE ...; done`): it waits in
		// the spare's queue, as it would wait for this lock anyway.
		g.takeSparePlace()
	case imagehelper.HoldRemove:
		closeLock(lock)
	case "":
		closeLock(lock)
		// sandy is gone without a word (killed): a --rm container goes,
		// and one it had not written its record in yet.
		if err != nil && !errors.Is(err, io.EOF) {
			return err
		}
		if !imagehelper.Abandoned(p.Dir, volatile) {
			return nil
		}
		g.Debugf("sandy is gone without a word, and the storage container %s with it (--rm, or no record)", id)
	default:
		closeLock(lock)
		return nil
	}
	remove := func() error { return removeContainer(g, id) }
	// After a killed sandy the container's processes may still be dying,
	// with its root mounted in their namespace: a few tries.
	for try := 0; ; try++ {
		if err = remove(); err == nil || line != "" || try == 10 {
			break
		}
		time.Sleep(200 * time.Millisecond)
	}
	answer := imagehelper.HoldOK
	if err != nil {
		answer = err.Error()
	}
	fmt.Fprintln(g.Stdout, answer)
	return err
}

// closeLock closes a removals lock that was not taken.
func closeLock(f *os.File) {
	if f != nil {
		f.Close()
	}
}

// cmdRemoveContainer is imagehelper.RemoveRole.
func cmdRemoveContainer(_ context.Context, g *Env, args []string) error {
	return g.withStore(g.flags("_remove-container ID"), args, oneID, func(s storage.Store, ids []string) error {
		return imagestore.RemoveContainer(s, ids[0])
	})
}

// cmdListContainers is imagehelper.ListRole.
func cmdListContainers(_ context.Context, g *Env, args []string) error {
	return g.withStore(g.flags("_list-containers"), args, nil, func(s storage.Store, _ []string) error {
		list, err := imagestore.ListContainers(s)
		if err != nil {
			return err
		}
		return json.NewEncoder(g.Stdout).Encode(list)
	})
}

// cmdCommit is imagehelper.CommitRole: an image of a storage container.
func cmdCommit(ctx context.Context, g *Env, args []string) error {
	fs := g.flags("_commit [--message M] [--author A] [--change INSTR]... ID [IMAGE]")
	o := imagestore.CommitOptions{Names: g.names()}
	if g.Library != nil {
		o.Config = g.Library.Config
	}
	fs.StringVar(&o.Message, "message", "", "the history entry's comment")
	fs.StringVar(&o.Author, "author", "", "the image's author")
	fs.StringArrayVar(&o.Changes, "change", nil, "a Dockerfile instruction applied to the config (repeatable)")
	check := func(ops []string) error {
		if len(ops) < 1 || len(ops) > 2 {
			return errors.New("want a container id and at most one image name")
		}
		return nil
	}
	return g.withStore(fs, args, check, func(s storage.Store, ops []string) error {
		if len(ops) == 2 {
			o.Name = ops[1]
		}
		id, err := imagestore.Commit(ctx, s, ops[0], o)
		if err != nil {
			return err
		}
		fmt.Fprintln(g.Stdout, id)
		return nil
	})
}

// cmdDiff is imagehelper.DiffRole: a storage container's changes.
func cmdDiff(_ context.Context, g *Env, args []string) error {
	return g.withStore(g.flags("_diff ID"), args, oneID, func(s storage.Store, ids []string) error {
		changes, err := imagestore.Diff(s, ids[0])
		if err != nil {
			return err
		}
		return json.NewEncoder(g.Stdout).Encode(changes)
	})
}

// cmdRenameContainer is imagehelper.RenameRole.
func cmdRenameContainer(_ context.Context, g *Env, args []string) error {
	check := func(ops []string) error {
		if len(ops) != 2 {
			return errors.New("want a container id and a name")
		}
		return nil
	}
	return g.withStore(g.flags("_rename-container ID NAME"), args, check, func(s storage.Store, ops []string) error {
		return imagestore.RenameContainer(s, ops[0], ops[1])
	})
}

// oneID is the operand check of a verb on one storage container.
func oneID(ops []string) error {
	if len(ops) != 1 {
		return errors.New("want exactly one container id")
	}
	return nil
}

// withStore is the shape of a storage verb: it parses args into fs
// (--help ends the verb with success), checks the operands with check
// (nil: any), opens the store (openStore), runs fn on it and the
// operands, and shuts the store down. Nothing touches the store before
// the command line is found good.
func (g *Env) withStore(fs *pflag.FlagSet, args []string, check func(ops []string) error, fn func(s storage.Store, ops []string) error) error {
	if err := parse(fs, args); err != nil {
		return helpOK(err)
	}
	if check != nil {
		if err := check(fs.Args()); err != nil {
			return err
		}
	}
	s, err := g.openStore()
	if err != nil {
		return err
	}
	defer imagestore.Shutdown(s)
	return fn(s, fs.Args())
}
