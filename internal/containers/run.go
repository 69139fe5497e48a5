package containers

import (
	"context"
	"encoding/binary"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"math/rand/v2"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"time"

	specs "github.com/opencontainers/runtime-spec/specs-go"

	"github.com/sandy-rt/sandy/internal/imagehelper"
	"github.com/sandy-rt/sandy/internal/lifecycle"
	"github.com/sandy-rt/sandy/internal/specjson"
	"github.com/sandy-rt/sandy/internal/volumes"
	"github.com/sandy-rt/sandy/overlay"
)

// RunRequest is `sandy run IMAGE`: the image and how to get it, the
// container's flags (Options, as podman's), and the runtime's own flags
// (network publishing, cgroups, …) as the bundle form takes them.
type RunRequest struct {
	Image string
	Name  string
	Pull  string // --pull
	Rm    bool   // --rm
	// PublishAll is -P: every port the image exposes, on free host ports.
	PublishAll bool
	// LogDriver is --log-driver: k8s-file (the default) or none; the
	// monitor of a detached run writes the log (detach.go).
	LogDriver string
	// LogMaxSize is --log-opt max-size (0: no cap).
	LogMaxSize int64
	// Interactive is -i: under -d, the monitor keeps the container's
	// stdin open for `sandy attach` (attach.go).
	Interactive bool
	// Options are the container's flags; Runtime the runtime path's,
	// which Run completes from the generated spec.
	Options Options
	Runtime lifecycle.RunOptions
	// Helper is the image helper's path; HelperGlobal the store flags and
	// HelperRemote the registry flags it gets.
	Helper                     string
	HelperGlobal, HelperRemote []string
	Stderr                     io.Writer
}

// ExitSandyError is podman's status for an error of the engine itself
// (not the container's): 125.
const ExitSandyError = 125

// Run runs a container from an image in the foreground, through the same
// runtime path as `sandy run ./bundle`:
//
//  1. the image helper makes a storage container from the image (pulling
//     it as --pull says; under --userns=keep-id with podman's keep-id
//     maps, which give it an id-mapped copy of the image's top layer),
//     under an id sandy chose, and reports its layers, config and user
//     database;
//  2. meanwhile lifecycle.Run starts creating the container under that
//     id from the start spec, what the flags alone decide
//     (GenerateStart: namespaces, id maps, cgroup): the state, the
//     cgroup, the init's clone, maps and Go start (lifecycle.PendingBundle);
//  3. once the helper answers, Generate builds the OCI spec from the
//     image config and the flags, and it is written as config.json in the
//     storage container's own directory, a bundle whose root is the
//     storage layers; the runtime checks that it agrees with the start
//     spec, configures the init with it, starts and waits for it;
//  4. --rm removes the storage container (its layer) afterwards.
//
// Under -d, the container's monitor runs steps 2 to 4 (detach.go,
// monitor.go, pending.go): it starts before the helper answers, and gets
// the container's directory once step 3's bundle is written. Run returns
// 0 once the process runs, and prints the id.
//
// It returns the container's exit status, or 125 for sandy's own errors
// (126 and 127 when the command cannot be executed or is not found), as
// podman does. The storage container of a failed set-up is removed: an
// error leaves nothing behind.
func Run(ctx context.Context, g *lifecycle.Global, r RunRequest) (int, error) {
	if err := r.check(); err != nil {
		return ExitSandyError, err
	}
	uidMap, gidMap, err := storeMaps(r.Options)
	if err != nil {
		return ExitSandyError, err
	}
	st := r.startStorage(ctx, g, newStorageID(), uidMap, gidMap)
	if r.Runtime.Detach {
		return r.runDetached(ctx, g, st)
	}
	return r.runForeground(ctx, g, st)
}

// startOptions is what the container's init starts with while the helper
// makes the storage container st, in the foreground and under -d alike:
// the start spec (GenerateStart: what the flags and the host decide) and
// the runtime options the flags decide, with the host they were made for.
func (r RunRequest) startOptions(st *storage) (Host, *specs.Spec, lifecycle.RunOptions, error) {
	o := r.Runtime
	h, err := CallerHost(st.id, "") // the root is known once the helper answers
	if err != nil {
		return h, nil, o, err
	}
	start, x, err := GenerateStart(r.Options, h)
	if err != nil {
		return h, nil, o, err
	}
	return h, start, o, r.flagOptions(&o, st.id, x)
}

// runForeground is Run in the foreground: the container's creation
// starts while the helper makes the storage container.
func (r RunRequest) runForeground(ctx context.Context, g *lifecycle.Global, st *storage) (int, error) {
	h, start, o, err := r.startOptions(st)
	if err != nil {
		if herr := st.discard(ctx, g); herr != nil {
			// The helper failed too, and said so: its error alone.
			return ExitSandyError, quietHelperError(herr)
		}
		return ExitSandyError, err
	}
	vols := &volumeSet{}
	var bundleErr error
	base := o
	o.Pending = &lifecycle.PendingBundle{Spec: start, Wait: func(ctx context.Context) (*lifecycle.ReadyBundle, error) {
		rb, err := r.finalBundle(ctx, g, st, h, base, vols)
		bundleErr = err
		return rb, err
	}, GoInit: goInitFlags(r.Options)}
	g.Debugf("the container's creation starts while the image helper makes the storage container %s", st.id)
	code, err := lifecycle.Run(ctx, g, &o)
	var ie *lifecycle.InterruptedError
	if errors.As(err, &ie) {
		st.cancel() // a pull under way stops
	}
	sess, herr := st.wait(context.WithoutCancel(ctx))
	if herr != nil {
		// Nothing was made. The helper's own error is what the user
		// sees, not the runtime's step that waited for it.
		if bundleErr == nil {
			bundleErr = herr
		}
		if ie != nil {
			return code, err
		}
		return ExitSandyError, quietHelperError(bundleErr)
	}
	p := sess.Prepared
	defer sess.Keep()
	if bundleErr != nil && ie == nil {
		err = bundleErr // said as before the overlap: Generate's, the volumes', …
	}
	if err == nil && !r.Rm {
		recordExit(g, p.Dir, code)
		if err := firstUseDone(p.Dir); err != nil {
			g.Debugf("dropping the volumes' first-use options: %v", err)
		}
	}
	if r.Rm && err == nil {
		// The exit status is known: the layer's removal goes on behind
		// the user's back (imagehelper.Session.RemoveBehind), and the
		// next command that reads the store waits for it.
		vols.removeAnonymous(g)
		t0 := time.Now()
		if err := sess.RemoveBehind(context.WithoutCancel(ctx)); err != nil {
			g.Warn(fmt.Sprintf("removing storage container %s: %v", p.ID, err))
		}
		g.Debugf("handing the storage container's removal to the helper: %v", time.Since(t0).Round(10*time.Microsecond))
		return code, nil
	}
	if r.Rm || err != nil {
		// Setting up failed: the container never ran, so nothing of it is
		// kept (as podman removes a container whose start failed under
		// --rm, and never leaves a half-made one without). --rm removes
		// the anonymous volumes too (podman run --rm does).
		vols.removeAnonymous(g)
		st.remove(ctx, g, sess)
	}
	if err != nil && code == 1 {
		code = ExitSandyError
	}
	return code, err
}

// finalBundle is the pending bundle of a foreground run
// (lifecycle.PendingBundle.Wait): once the helper has made the storage
// container, the spec is generated from the image and the flags and
// written in it, with the record and the monitor's orders.
func (r RunRequest) finalBundle(ctx context.Context, g *lifecycle.Global, st *storage, h Host, o lifecycle.RunOptions, vols *volumeSet) (*lifecycle.ReadyBundle, error) {
	sess, err := st.wait(ctx)
	if err != nil {
		return nil, err
	}
	p := sess.Prepared
	h.Rootfs = p.Rootfs
	t0 := time.Now()
	fo, err := r.runtimeOptions(p, h, o, vols)
	g.Debugf("generating the spec, writing the bundle and the record: %v", time.Since(t0).Round(10*time.Microsecond))
	if err == nil {
		err = r.prepareMonitor(g, p, fo, vols)
	}
	if err != nil {
		return nil, err
	}
	return &lifecycle.ReadyBundle{Dir: fo.Bundle, Layers: fo.Layers, Publish: fo.Network.Publish}, nil
}

// runDetached is Run under -d: the container's monitor starts at once as
// a pending one (pending.go), and its init starts while the helper makes
// the storage container, as the foreground run's does; once the helper
// answers, the bundle, the record and the monitor's orders are written
// and the monitor gets the container's directory.
func (r RunRequest) runDetached(ctx context.Context, g *lifecycle.Global, st *storage) (int, error) {
	h, start, o, err := r.startOptions(st)
	var pm *pendingMonitor
	if err == nil {
		pm, err = startPendingMonitor(newMonitorConfig(g, r, &o, "", nil, r.Options.Terminal, r.Interactive), start)
	}
	if err != nil {
		if herr := st.discard(ctx, g); herr != nil {
			return ExitSandyError, quietHelperError(herr)
		}
		return ExitSandyError, err
	}
	g.Debugf("the container's monitor starts while the image helper makes the storage container %s", st.id)
	sess, err := st.wait(ctx)
	if err != nil {
		// The monitor undoes what it made and exits: then the helper's
		// work is undone too (an interrupt), or there is none (its
		// error, which it printed).
		pm.abort()
		if ctx.Err() != nil {
			st.cancel()
			_ = st.discard(context.WithoutCancel(ctx), g)
		}
		return ExitSandyError, quietHelperError(err)
	}
	p := sess.Prepared
	defer sess.Keep()
	vols := &volumeSet{}
	h.Rootfs = p.Rootfs
	t0 := time.Now()
	fo, err := r.runtimeOptions(p, h, o, vols)
	g.Debugf("generating the spec, writing the bundle and the record: %v", time.Since(t0).Round(10*time.Microsecond))
	if err == nil {
		err = r.prepareMonitor(g, p, fo, vols)
	}
	if err != nil {
		pm.abort()
		vols.removeAnonymous(g)
		st.remove(ctx, g, sess)
		return ExitSandyError, err
	}
	// The monitor owns the container once it has its directory: the
	// helper lets it go first, so that a sandy killed from here on leaves
	// it to the monitor (a killed sandy's helper removes a --rm one,
	// imagehelper.Abandoned). A failed start removes it through a helper
	// of its own.
	sess.Keep()
	code, err := r.detach(g, p, fo, pm)
	if err != nil {
		vols.removeAnonymous(g)
		st.remove(ctx, g, sess)
	}
	return code, err
}

// quietHelperError marks an error the helper printed itself.
func quietHelperError(err error) error {
	var he *imagehelper.HelperError
	if errors.As(err, &he) {
		return errQuiet{err}
	}
	return err
}

// storage is the storage container the image helper makes in the
// background (imagehelper.Create on a goroutine of its own), under the
// id sandy chose.
type storage struct {
	id     string
	done   chan struct{}
	sess   *imagehelper.Session
	err    error
	cancel context.CancelFunc
}

// startStorage starts the image helper on the storage container id.
func (r RunRequest) startStorage(ctx context.Context, g *lifecycle.Global, id string, uidMap, gidMap []specs.LinuxIDMapping) *storage {
	hctx, cancel := context.WithCancel(context.WithoutCancel(ctx))
	st := &storage{id: id, done: make(chan struct{}), cancel: cancel}
	go func() {
		defer close(st.done)
		t0 := time.Now()
		st.sess, st.err = imagehelper.Create(hctx, r.Helper, imagehelper.CreateRequest{
			Image: r.Image, ID: id, Name: r.Name, Pull: r.Pull, Volatile: r.Rm,
			UIDMap: uidMap, GIDMap: gidMap,
			Global: r.HelperGlobal, Remote: r.HelperRemote,
			Debug: func(line string) { g.Debugf("%s", line) },
		}, r.Stderr, g.Warn)
		if st.err != nil {
			return
		}
		p := st.sess.Prepared
		Manage{G: g, Global: r.HelperGlobal}.rememberStore(p.Dir) // for the name index (index.go)
		g.Debugf("creating storage container %s (image %s, %s layers): %v", p.ID, p.ImageName, p.Layers.Driver, time.Since(t0).Round(10*time.Microsecond))
	}()
	return st
}

// wait returns the helper's session once it has answered, or ctx's cause
// when ctx ends first.
func (st *storage) wait(ctx context.Context) (*imagehelper.Session, error) {
	select {
	case <-st.done:
		return st.sess, st.err
	case <-ctx.Done():
		return nil, context.Cause(ctx)
	}
}

// remove has the helper remove the storage container of a set-up that
// failed.
func (st *storage) remove(ctx context.Context, g *lifecycle.Global, sess *imagehelper.Session) {
	t0 := time.Now()
	defer func() { g.Debugf("removing the storage container: %v", time.Since(t0).Round(10*time.Microsecond)) }()
	if err := sess.Remove(context.WithoutCancel(ctx)); err != nil {
		g.Warn(fmt.Sprintf("removing storage container %s: %v", sess.Prepared.ID, err))
	}
}

// discard removes what the helper makes, for a run that failed before
// its creation started, and returns the helper's error if it failed.
func (st *storage) discard(ctx context.Context, g *lifecycle.Global) error {
	sess, err := st.wait(context.WithoutCancel(ctx))
	if err == nil {
		st.remove(ctx, g, sess)
	}
	return err
}

// newStorageID chooses a storage container's id as the storage library
// does (stringid.GenerateRandomID): 64 hex digits whose short form, the
// first 12, is not all digits (a hostname). It needs to be unique, not
// secret (the store refuses an id in use), so math/rand/v2 serves, as for
// lifecycle.NewID.
func newStorageID() string {
	for {
		var b []byte
		for range 4 {
			b = binary.LittleEndian.AppendUint64(b, rand.Uint64())
		}
		id := hex.EncodeToString(b)
		if strings.Trim(id[:12], "0123456789") != "" {
			return id
		}
	}
}

// check refuses what this version cannot do yet, before anything is made.
func (r RunRequest) check() error {
	if r.Name != "" && !volumes.MatchesNameRule(r.Name) {
		// podman's rule for container names is its rule for volumes.
		return fmt.Errorf("--name %q: names must match [a-zA-Z0-9][a-zA-Z0-9_.-]*", r.Name)
	}
	if err := r.checkDetach(); err != nil {
		return err
	}
	return nil
}

// flagOptions fills in the runtime's options that the flags decide (x:
// GenerateStart's or Generate's Extra): the id, the root's mode, seccomp,
// the network, /etc/resolv.conf and hosts, and -p's host ports (a free
// one where -p names none, chosen once: a spec that has its host port is
// kept as it is).
func (r RunRequest) flagOptions(o *lifecycle.RunOptions, id string, x *Extra) error {
	o.ID = id
	o.RootfsMode = string(overlay.ModeDirect)
	// The storage container's files are the store's namespace's; a
	// container with its maps runs in it, as podman's do.
	o.SharedUserNS = imagehelper.StoreUserNS
	switch x.Seccomp {
	case "default":
		o.Seccomp = "default"
	case "unconfined":
		o.NoSeccomp = true
	}
	o.Network.Mode = x.Network
	o.NetFiles = &lifecycle.NetFiles{DNS: x.DNS, Search: x.DNSSearch, Options: x.DNSOptions}
	for _, h := range x.AddHosts {
		o.NetFiles.Hosts = append(o.NetFiles.Hosts, h.IP.String()+"\t"+h.Name)
	}
	if len(x.NetworkOptions) > 0 {
		o.Network.Mode += ":" + strings.Join(x.NetworkOptions, ",")
	}
	var err error
	o.Network.Publish, err = publishSpecs(o.Network.Publish, nil, false, freePort)
	return err
}

// runtimeOptions generates the spec, writes the bundle and fills in the
// runtime's options for the storage container p, from base (run's
// flags, or flagOptions' already).
func (r RunRequest) runtimeOptions(p *imagehelper.Prepared, h Host, base lifecycle.RunOptions, vols *volumeSet) (*lifecycle.RunOptions, error) {
	users := UserDB{Users: ParsePasswd(p.Passwd), Groups: ParseGroup(p.Group)}
	s, x, err := Generate(p.Config, r.Options, users, h)
	if err != nil {
		return nil, err
	}
	o := base
	if err := r.flagOptions(&o, p.ID, x); err != nil {
		return nil, err
	}
	o.Bundle = p.Dir
	layers := p.Layers
	o.Layers = &layers
	if x.Seccomp == "file" {
		// The profile is in the spec; the runtime installs the config's.
		if err := loadSeccompFile(s, x.SeccompFile); err != nil {
			return nil, err
		}
	}
	// -P: the image's exposed ports, each on a free host port.
	if o.Network.Publish, err = publishSpecs(o.Network.Publish, x.ExposedPorts, r.PublishAll, freePort); err != nil {
		return nil, err
	}
	// Volumes last of what may fail on the flags: mounting claims a fresh
	// volume's first use (volumes.Store.FirstUse).
	if err := vols.mount(s, x.Volumes); err != nil {
		return nil, err
	}
	// U: the container's init chowns the source to the process user.
	for i, m := range s.Mounts {
		if slices.Contains(x.Chown, m.Destination) {
			s.Mounts[i].Options = append(slices.Clip(m.Options), "rchown")
		}
	}
	if err := addUserDBLines(s, p, x); err != nil {
		return nil, err
	}
	if err := writeBundle(p.Dir, s); err != nil {
		return nil, err
	}
	if err := writeRecord(p.Dir, Record{Name: p.Name, ImageID: p.ImageID, Image: p.ImageName, Command: s.Process.Args, Created: time.Now().UTC(), Ports: o.Network.Publish, Network: x.Network, Labels: x.Labels, AnonymousVolumes: vols.anonymous, Volumes: vols.names}); err != nil {
		return nil, err
	}
	return &o, nil
}

// addUserDBLines gives the container the /etc/passwd and /etc/group
// lines Generate asks for (a numeric -u with no entry), as podman does:
// the image's file with the line added, written in the container's own
// directory and bound over the image's, which is never written.
func addUserDBLines(s *specs.Spec, p *imagehelper.Prepared, x *Extra) error {
	for _, f := range []struct{ name, base, line string }{{"passwd", p.Passwd, x.PasswdEntry}, {"group", p.Group, x.GroupEntry}} {
		if f.line == "" {
			continue
		}
		content := f.base
		if content != "" && !strings.HasSuffix(content, "\n") {
			content += "\n"
		}
		src := filepath.Join(p.Dir, f.name)
		if err := os.WriteFile(src, []byte(content+f.line+"\n"), 0o644); err != nil {
			return fmt.Errorf("writing the container's /etc/%s: %w", f.name, err)
		}
		s.Mounts = append(s.Mounts, specs.Mount{Destination: "/etc/" + f.name, Type: "bind", Source: src, Options: []string{"rbind", "ro", "rprivate"}})
	}
	return nil
}

// writeBundle writes the spec as dir/config.json: the bundle the runtime
// path loads, kept with the storage container as podman keeps its
// userdata/config.json.
func writeBundle(dir string, s *specs.Spec) error {
	b, err := specjson.MarshalIndent(s, "", "\t")
	if err != nil {
		return err
	}
	tmp := filepath.Join(dir, ".config.json.tmp")
	if err := os.WriteFile(tmp, b, 0o600); err != nil {
		return fmt.Errorf("writing the container's config.json: %w", err)
	}
	if err := os.Rename(tmp, filepath.Join(dir, "config.json")); err != nil {
		return fmt.Errorf("writing the container's config.json: %w", err)
	}
	return nil
}

// errQuiet is an error the image helper already printed.
type errQuiet struct{ error }

func (e errQuiet) Unwrap() error { return e.error }

// Printed reports that the error's message reached the user already.
func (errQuiet) Printed() bool { return true }

// volumeSet is the named and anonymous volumes of one run: resolved in
// sandy's volume store (made on first use, as podman), mounted, and the
// anonymous ones removed with the container under --rm.
type volumeSet struct {
	store     *volumes.Store
	anonymous []string
	names     []string // every volume mounted, anonymous ones too
}

func (v *volumeSet) mount(s *specs.Spec, want []NamedVolume) error {
	if len(want) == 0 {
		return nil
	}
	var err error
	if v.store, err = OpenVolumes(); err != nil {
		return err
	}
	for _, nv := range want {
		vol, err := v.store.Resolve(nv.Name)
		if err != nil {
			return fmt.Errorf("volume for %s: %w", nv.Dest, err)
		}
		if vol.Anonymous {
			v.anonymous = append(v.anonymous, vol.Name)
		}
		v.names = append(v.names, vol.Name)
		m := VolumeMount(nv, vol.Source())
		copyUp, chown, err := v.store.FirstUse(vol.Name)
		if err != nil {
			return fmt.Errorf("volume for %s: %w", nv.Dest, err)
		}
		// The container's init does the first use (initproc).
		switch {
		case copyUp && !slices.Contains(nv.Options, "nocopy"):
			m.Options = append(m.Options, "copyup")
		case copyUp || chown:
			m.Options = append(m.Options, "chownup")
		}
		if slices.Contains(nv.Options, "U") {
			m.Options = append(m.Options, "rchown")
		}
		s.Mounts = append(s.Mounts, m)
	}
	sortMounts(s.Mounts)
	return nil
}

func (v *volumeSet) removeAnonymous(g *lifecycle.Global) {
	for _, name := range v.anonymous {
		if err := v.store.Remove(name, false); err != nil {
			g.Warn(fmt.Sprintf("removing anonymous volume %s: %v", name, err))
		}
	}
	v.anonymous = nil
}

// recordExit adds the exit status to a kept container's record, for
// `sandy container ls` (a container removed meanwhile has no record).
func recordExit(g *lifecycle.Global, dir string, code int) {
	rec, ok, err := readRecord(dir)
	if err != nil || !ok {
		g.Debugf("recording the exit status in %s: %v", dir, err)
		return
	}
	now := time.Now().UTC()
	rec.ExitCode, rec.Finished = &code, &now
	if err := writeRecord(dir, rec); err != nil {
		g.Debugf("recording the exit status: %v", err)
	}
}

// goInitFlags is why the flags alone give a config that only the
// container's Go init sets up (the raw init plans none of it,
// initproc.RawInit), "" where the final bundle may take the raw init:
// --init (sandy's pid 1 bound in), a tmpfs that copies the image's
// directory up (--tmpfs, --mount type=tmpfs: tmpcopyup unless
// notmpcopyup), read by the parsers the spec's mounts come from (a flag
// they refuse is the spec's error to say, later).
func goInitFlags(o Options) string {
	if o.Init {
		return "--init"
	}
	var ms mountSet
	for _, m := range o.Mounts {
		_ = parseMount(m, "", &ms)
	}
	for _, t := range o.Tmpfs {
		_ = parseTmpfs(t, &ms)
	}
	for _, m := range ms.mounts {
		if m.Type == "tmpfs" && slices.Contains(m.Options, "tmpcopyup") {
			return "a tmpfs that copies the image's directory up (" + m.Destination + ")"
		}
	}
	return ""
}
