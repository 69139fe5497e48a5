//go:build linux

package overlay

import (
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"

	specs "github.com/opencontainers/runtime-spec/specs-go"
	"golang.org/x/sys/unix"
)

// Options says what Mount should build. Every path is absolute and seen
// from the mount namespace Mount runs in.
type Options struct {
	// Lower is the bundle's rootfs. It is only ever read.
	Lower string
	// LayerDir is the per-run directory (under the state root) that holds
	// the layer: upper, work, stubs, fuse and merged. The host side creates
	// it, owned by the user, and removes it with Cleanup.
	//
	// Lower and LayerDir may be fd magic links, "/proc/self/fd/N", when
	// the caller cannot reach them by path (a container root that is not
	// the caller's uid, behind a 0700 state root): everything resolves
	// through the fd, and fuse-overlayfs and cp inherit fd N.
	LayerDir string
	// Mode is the rung to use; ModeAuto (or "") picks the best that works.
	Mode Mode
	// Readonly mounts the root read-only (root.readonly in config.json):
	// there is no upper directory.
	Readonly bool
	// Mountpoints are container paths the init will mount onto. Those
	// missing from the rootfs are created in a stub layer stacked above
	// it, never in the bundle, so that a read-only root still has them.
	// A writable root does not need them: the init may create mountpoints
	// in it itself.
	Mountpoints []Mountpoint
	// UIDMap and GIDMap are the container's id maps. Mount does not need
	// them (it runs inside the user namespace, where both the kernel and
	// fuse-overlayfs already see container ids); ScanOwners does.
	UIDMap, GIDMap []specs.LinuxIDMapping
	// Warn receives one line for each thing that is lost: a lower rung
	// than asked for, or entries fuse-overlayfs hides. May be nil.
	Warn func(string) `json:"-"`
	// Layers, when set, is the container's root in an image store: Mount
	// mounts it instead of a layer over Lower, which is then unused, and
	// Mode, Readonly and Mountpoints do not apply (see mountLayers).
	Layers *Layers
}

// Mountpoint is a path inside the container the init will mount onto.
type Mountpoint struct {
	Path string // absolute, inside the container
	File bool   // the target is a file (a bind of a file), not a directory
}

// Root is the container root that Mount built.
type Root struct {
	// Path is the mount to use as the container's root: the init does
	// its OCI mounts under it and then pivot_root(2) into it. It is always
	// LayerDir/merged and always a private mount point.
	Path string
	// Mode is the rung actually used (never ModeAuto).
	Mode Mode
	// Readonly reports that Path is mounted read-only: asked for, or the
	// bind rung.
	Readonly bool
	// Upper is where the container's changes land, "" when there is no
	// writable layer.
	Upper string
}

// Names inside LayerDir. Each is removed and made again by every Mount, so
// a leftover of an earlier run never shows through.
const (
	upperName  = "upper"  // overlay upper directory
	workName   = "work"   // overlay work directory
	stubsName  = "stubs"  // missing mountpoints, stacked above the rootfs
	fuseName   = "fuse"   // where fuse-overlayfs mounts, in its own mount ns
	mergedName = "merged" // Root.Path
)

var layerNames = []string{upperName, workName, stubsName, fuseName, mergedName}

// KernelLayer is what the kernel overlay's rung mounts for a writable
// root in LayerDir: Upper and Work, made empty, and Merged, where the
// overlay lands (Root.Path). The raw init plans the same rung
// (initproc.RawInit) with these paths.
type KernelLayer struct{ Upper, Work, Merged string }

// KernelLayerIn names layerDir's directories for the kernel rung.
func KernelLayerIn(layerDir string) KernelLayer {
	m := mounter{layer: filepath.Clean(layerDir)}
	return KernelLayer{Upper: m.path(upperName), Work: m.path(workName), Merged: m.path(mergedName)}
}

// mounter carries one Mount call.
type mounter struct {
	o     Options
	layer string   // LayerDir, cleaned
	lower *os.File // O_PATH handle on Lower, kept open while mounting
	stubs bool     // the stub layer has entries
	miss  []string // mountpoints missing from Lower

	// rootStat is Lower's root, whose mode and owner the directories
	// that show as the container's / copy; made records the layer's
	// directories made so far (ensure).
	rootStat unix.Stat_t
	made     map[string]bool

	overflowRead             bool // overflowIDs
	overflowUID, overflowGID uint32

	opened []*os.File // O_PATH handles held while mounting (closeOpened)
}

func (m *mounter) path(name string) string { return filepath.Join(m.layer, name) }

func (m *mounter) warn(s string) {
	if m.o.Warn != nil {
		m.o.Warn(s)
	}
}

// Mount builds the container root over o.Lower and returns it. It runs in
// the container's user and mount namespaces, with full capabilities there,
// before pivot_root. It leaves no goroutine behind, and the only process it
// leaves is fuse-overlayfs for ModeFuse (see doc.go).
//
// With ModeAuto it walks the ladder overlay → fuse → bind and calls Warn
// once when it settles below overlay. A forced mode that cannot work returns
// a *RungError and falls back to nothing.
func Mount(o Options) (*Root, error) {
	if o.Layers != nil {
		return mountLayers(o)
	}
	if o.Mode == "" {
		o.Mode = ModeAuto
	}
	if _, err := ParseMode(string(o.Mode)); err != nil {
		return nil, err
	}
	if err := checkPaths(o); err != nil {
		return nil, err
	}
	lower, err := os.OpenFile(o.Lower, unix.O_PATH|unix.O_DIRECTORY|unix.O_CLOEXEC, 0)
	if err != nil {
		return nil, fmt.Errorf("opening rootfs: %w", err)
	}
	defer lower.Close()
	m := &mounter{o: o, layer: filepath.Clean(o.LayerDir), lower: lower}
	if o.Mode == ModeDirect {
		// No layer: missing mountpoints go into the rootfs itself, and the
		// layer directory is not touched.
		return m.direct()
	}
	if err := m.resetLayer(); err != nil {
		return nil, err
	}
	if err := m.makeStubs(); err != nil {
		return nil, err
	}
	if o.Mode != ModeAuto {
		r, err := m.rung(o.Mode)
		if err != nil {
			return nil, err
		}
		return r, nil
	}
	return m.auto()
}

func checkPaths(o Options) error {
	for _, p := range []struct{ name, path string }{{"rootfs", o.Lower}, {"layer dir", o.LayerDir}} {
		if !filepath.IsAbs(p.path) {
			return fmt.Errorf("checking %s %q: not an absolute path", p.name, p.path)
		}
	}
	// The layer paths go into fuse-overlayfs's -o option string, where ','
	// and ':' are separators; the state root is ours, so refuse rather
	// than escape. (Lower is passed as an fd, so it may contain anything.)
	if strings.ContainsAny(o.LayerDir, ",:\\\n") {
		return fmt.Errorf("checking layer dir %q: contains one of , : \\ or a newline; hint: choose a state root (--root) with a plain path", o.LayerDir)
	}
	lo, err := os.Stat(o.Lower)
	if err != nil {
		return fmt.Errorf("checking rootfs: %w", err)
	}
	if !lo.IsDir() {
		return fmt.Errorf("checking rootfs %q: not a directory", o.Lower)
	}
	stat := os.Lstat
	if _, ok := procFD(o.LayerDir); ok {
		stat = os.Stat // the magic link itself is a symlink
	}
	fi, err := stat(o.LayerDir)
	if err != nil {
		return fmt.Errorf("checking layer dir: %w", err)
	}
	if !fi.IsDir() {
		return fmt.Errorf("checking layer dir %q: not a directory", o.LayerDir)
	}
	l, lerr := filepath.EvalSymlinks(o.Lower)
	d, derr := filepath.EvalSymlinks(o.LayerDir)
	if lerr == nil && derr == nil && (within(d, l) || within(l, d)) {
		return fmt.Errorf("checking layer dir %q: it overlaps the rootfs %q; hint: keep the state root outside the bundle", o.LayerDir, o.Lower)
	}
	return nil
}

// within reports whether p is dir or below it.
func within(p, dir string) bool {
	return p == dir || strings.HasPrefix(p, dir+"/")
}

// resetLayer removes whatever an earlier run left in the layer dir. Inside
// the user namespace Mount can remove every file the earlier container
// made, whatever its owner. The directories themselves are made by the
// rung that uses them (ensure): each costs a directory creation on the
// state root's filesystem (0.7-1 ms on the project's machines' disk), and
// a read-only bind root needs only merged, the kernel overlay no fuse.
func (m *mounter) resetLayer() error {
	for _, name := range layerNames {
		if err := removeAt(m.layer, name); err != nil {
			return fmt.Errorf("removing leftover %s: %w", m.path(name), err)
		}
	}
	if err := unix.Fstat(int(m.lower.Fd()), &m.rootStat); err != nil {
		return fmt.Errorf("stat rootfs: %w", err)
	}
	return nil
}

// ensure makes the layer's directories names that are not made yet. The
// merged root shows the upper dir's own mode and owner (and the stub
// layer's, above the rootfs), so those copy the rootfs root's: a 0700
// root would lock out non-root container users. This is the one chown
// Mount does, on an empty directory of its own.
func (m *mounter) ensure(names ...string) error {
	for _, name := range names {
		if m.made[name] {
			continue
		}
		p := m.path(name)
		if err := os.Mkdir(p, 0o700); err != nil {
			return fmt.Errorf("making layer: %w", err)
		}
		if m.made == nil {
			m.made = map[string]bool{}
		}
		m.made[name] = true
		if name != upperName && name != stubsName && name != mergedName {
			continue
		}
		st := m.rootStat
		if err := os.Chmod(p, os.FileMode(st.Mode&0o7777)&os.ModePerm|modeBits(st.Mode)); err != nil {
			return fmt.Errorf("making layer: %w", err)
		}
		if err := os.Lchown(p, int(st.Uid), int(st.Gid)); err != nil && !errors.Is(err, unix.EINVAL) && !errors.Is(err, unix.EPERM) {
			return fmt.Errorf("making layer: %w", err)
		}
	}
	return nil
}

func modeBits(m uint32) os.FileMode {
	var f os.FileMode
	if m&unix.S_ISUID != 0 {
		f |= os.ModeSetuid
	}
	if m&unix.S_ISGID != 0 {
		f |= os.ModeSetgid
	}
	if m&unix.S_ISVTX != 0 {
		f |= os.ModeSticky
	}
	return f
}

// makeStubs creates, in the stub layer, the mountpoints that Lower lacks.
// It looks at Lower one component at a time with lstat and stops at the
// first component that is not a real directory: a symlink there is the
// init's to resolve (in-root), and a stub would hide it. A writable root
// needs no stub (Options.Mountpoints): the init makes its mountpoints in
// the root itself, in the upper layer, so only the missing ones are noted
// (the bind rung refuses them) and no stub is made: each is one or more
// file creations in the layer directory (0.7-1 ms each on a slow disk).
func (m *mounter) makeStubs() error {
	for _, mp := range onRootfs(m.o.Mountpoints) {
		p := mp.Path
		w, err := walkMountpoint(m.o.Lower, p)
		if err != nil {
			return fmt.Errorf("checking mountpoint %s: %w%s", p, err, m.accessHint(err))
		}
		if !w.missing {
			continue
		}
		m.miss = append(m.miss, p)
		if !m.o.Readonly && !w.unmapped(m.overflowIDs()) {
			continue
		}
		if err := m.ensure(stubsName); err != nil {
			return err
		}
		dst := filepath.Join(m.path(stubsName), p)
		if err := m.stubParents(p); err != nil {
			return fmt.Errorf("making mountpoint stub %s: %w", p, err)
		}
		if mp.File {
			f, err := os.OpenFile(dst, os.O_CREATE|os.O_EXCL|os.O_WRONLY|unix.O_NOFOLLOW, 0o644)
			if err != nil && !errors.Is(err, os.ErrExist) {
				return fmt.Errorf("making mountpoint stub %s: %w", p, err)
			}
			if f != nil {
				f.Close()
			}
		} else if err := os.Mkdir(dst, 0o755); err != nil && !errors.Is(err, os.ErrExist) {
			return fmt.Errorf("making mountpoint stub %s: %w", p, err)
		}
		m.stubs = true
	}
	if m.stubs {
		m.stubTimes(m.path(stubsName))
	}
	return nil
}

// accessHint explains a permission error met while looking into the
// rootfs from inside the user namespace. The host side refuses the usual
// case before the init starts (ScanOwners' *AccessError, with the real
// owner); this one remains for a container root that is not the caller
// (root running sandy with maps whose container root is another uid),
// whose access the host does not check. Inside, an
// owner outside the maps reads as the overflow id (65534).
func (m *mounter) accessHint(err error) string {
	var st unix.Stat_t
	if !errors.Is(err, unix.EACCES) || unix.Fstat(int(m.lower.Fd()), &st) != nil {
		return ""
	}
	return fmt.Sprintf("\nhint: the container's root may not search the rootfs (mode %04o, owned by uid %d gid %d as seen in the container, where 65534 stands for an id outside its map): make the rootfs searchable by the container's root, or owned by an id in its map (docs/troubleshooting.md#rootfs-unreadable)",
		st.Mode&0o7777, st.Uid, st.Gid)
}

// onRootfs keeps the mountpoints that are on the root filesystem itself,
// cleaned: a path below another directory mountpoint of the list (/dev/pts
// below /dev) lands in that mount, which the init makes, not in the rootfs.
func onRootfs(mps []Mountpoint) []Mountpoint {
	dirs := map[string]bool{}
	for _, mp := range mps {
		if !mp.File {
			dirs[filepath.Clean("/"+mp.Path)] = true
		}
	}
	var out []Mountpoint
	seen := map[string]bool{}
	for _, mp := range mps {
		p := filepath.Clean("/" + mp.Path)
		if p == "/" || seen[p] {
			continue
		}
		covered := false
		for d := filepath.Dir(p); d != "/"; d = filepath.Dir(d) {
			if dirs[d] {
				covered = true
				break
			}
		}
		if !covered {
			seen[p] = true
			out = append(out, Mountpoint{Path: p, File: mp.File})
		}
	}
	return out
}

// stubParents makes the parent directories of the container path p in the
// stub layer. A merged directory shows the attributes of its topmost copy,
// so a parent that exists in the rootfs gets that directory's mode, owner
// and times (an /etc of the stub layer must look like the rootfs's /etc);
// a new one is 0755.
func (m *mounter) stubParents(p string) error {
	cur, lower := m.path(stubsName), m.o.Lower
	for _, part := range strings.Split(strings.TrimPrefix(filepath.Dir(p), "/"), "/") {
		if part == "" {
			continue
		}
		cur, lower = filepath.Join(cur, part), filepath.Join(lower, part)
		err := os.Mkdir(cur, 0o755)
		if errors.Is(err, os.ErrExist) {
			continue
		}
		if err != nil {
			return err
		}
		var st unix.Stat_t
		if unix.Lstat(lower, &st) != nil || st.Mode&unix.S_IFMT != unix.S_IFDIR {
			continue
		}
		if err := os.Chmod(cur, os.FileMode(st.Mode)&os.ModePerm|modeBits(st.Mode)); err != nil {
			return err
		}
		// Ids outside the map (EINVAL) keep the stub root-owned.
		if err := os.Lchown(cur, int(st.Uid), int(st.Gid)); err != nil && !errors.Is(err, unix.EINVAL) && !errors.Is(err, unix.EPERM) {
			return err
		}
	}
	return nil
}

// stubTimes gives each stub directory that exists in the rootfs the
// rootfs's times, deepest first (making a child moves its parent's mtime).
// target is the tree that holds the stub directories: the stub layer, or
// the copy.
func (m *mounter) stubTimes(target string) {
	stubs := m.path(stubsName)
	var dirs []string
	_ = filepath.WalkDir(stubs, func(p string, d os.DirEntry, err error) error {
		if err == nil && d.IsDir() {
			dirs = append(dirs, p)
		}
		return nil
	})
	for i := len(dirs) - 1; i >= 0; i-- {
		rel, _ := filepath.Rel(stubs, dirs[i])
		var st unix.Stat_t
		if unix.Lstat(filepath.Join(m.o.Lower, rel), &st) != nil || st.Mode&unix.S_IFMT != unix.S_IFDIR {
			continue
		}
		_ = unix.UtimesNanoAt(unix.AT_FDCWD, filepath.Join(target, rel), []unix.Timespec{st.Atim, st.Mtim}, unix.AT_SYMLINK_NOFOLLOW)
	}
}

// mountpointWalk is what walkMountpoint saw of a container path in a root.
type mountpointWalk struct {
	// missing: the path is absent, and every existing component on the
	// way is a real directory (a symlink or a file there is the init's to
	// resolve or refuse).
	missing bool
	// owners are the uid and gid of the root and of each parent of the
	// path that exists, as far as real directories go.
	owners [][2]uint32
}

// walkMountpoint looks at the container path p in root one component at a
// time with lstat, once for both questions makeStubs asks: is p missing,
// and is a directory on its way an unmapped id's (unmapped).
func walkMountpoint(root, p string) (mountpointWalk, error) {
	var w mountpointWalk
	var st unix.Stat_t
	if unix.Lstat(root, &st) == nil && st.Mode&unix.S_IFMT == unix.S_IFDIR {
		w.owners = append(w.owners, [2]uint32{st.Uid, st.Gid})
	}
	parts := strings.Split(strings.TrimPrefix(p, "/"), "/")
	cur := root
	for i, part := range parts {
		cur = filepath.Join(cur, part)
		err := unix.Lstat(cur, &st)
		if errors.Is(err, unix.ENOENT) {
			w.missing = true
			return w, nil
		}
		if err != nil {
			return w, &os.PathError{Op: "lstat", Path: cur, Err: err}
		}
		if i == len(parts)-1 {
			break
		}
		if st.Mode&unix.S_IFMT != unix.S_IFDIR {
			return w, nil // a symlink or file on the way: the init's business
		}
		w.owners = append(w.owners, [2]uint32{st.Uid, st.Gid})
	}
	return w, nil
}

// unmapped reports whether a directory on the way to the walked path
// belongs to an id the user namespace does not map (seen as the overflow
// uid ouid or gid ogid from inside): the init could not make the path in
// a writable root then, since overlay cannot copy that directory up into
// the upper layer with its owner, so it gets a stub as in a read-only root
// (the stub's parents are the init's own, with the rootfs's mode).
func (w mountpointWalk) unmapped(ouid, ogid uint32) bool {
	for _, o := range w.owners {
		if o[0] == ouid || o[1] == ogid {
			return true
		}
	}
	return false
}

// overflowIDs are the kernel's overflow uid and gid, read once a Mount.
func (m *mounter) overflowIDs() (uint32, uint32) {
	if !m.overflowRead {
		m.overflowUID, m.overflowGID = overflowID("uid"), overflowID("gid")
		m.overflowRead = true
	}
	return m.overflowUID, m.overflowGID
}

// overflowID is the kernel's overflow uid or gid (kind), which stands
// for an id outside the user namespace's map; 65534 unless set otherwise.
func overflowID(kind string) uint32 {
	data, err := os.ReadFile("/proc/sys/kernel/overflow" + kind)
	if err != nil {
		return 65534
	}
	v, err := strconv.ParseUint(strings.TrimSpace(string(data)), 10, 32)
	if err != nil {
		return 65534
	}
	return uint32(v)
}

// auto walks the ladder. Readonly roots skip straight to bind when no stub
// is needed: a read-only overlay would add nothing but cost.
func (m *mounter) auto() (*Root, error) {
	if m.o.Readonly && !m.stubs {
		if r, err := m.bind(); err == nil {
			return r, nil
		}
	}
	kr, kerr := m.kernel()
	if kerr == nil {
		return kr, nil
	}
	if err := m.retry(); err != nil {
		return nil, err
	}
	fr, ferr := m.fuse()
	if ferr == nil {
		m.warn(FallbackFuse.Line(why(kerr), fix(kerr)))
		return fr, nil
	}
	if err := m.retry(); err != nil {
		return nil, err
	}
	br, berr := m.bind()
	if berr == nil {
		if m.o.Readonly {
			m.warn(FallbackBind.Line(why(kerr), why(ferr), fix(kerr), fix(ferr)))
		} else {
			m.warn(FallbackBindWritable.Line(why(kerr), why(ferr), fix(kerr), fix(ferr)))
		}
		return br, nil
	}
	return nil, fmt.Errorf("no rootfs mode works: kernel overlay: %s; fuse-overlayfs: %s; bind: %w", why(kerr), why(ferr), berr)
}

// retry undoes what a failed rung left: a failed overlay mount may have made
// work/work, fuse may have left its bind on fuse/.
func (m *mounter) retry() error {
	// A failed fuse rung may have left fuse-overlayfs running and up to
	// two mounts on fuse/ (our shared bind, its mount on top).
	_ = killFuse(m.layer)
	for _, name := range []string{workName, fuseName} {
		for range 4 {
			if unix.Unmount(m.path(name), unix.MNT_DETACH) != nil {
				break
			}
		}
		if err := removeAt(m.layer, name); err != nil {
			return fmt.Errorf("resetting %s: %w", m.path(name), err)
		}
		delete(m.made, name) // the next rung makes it again
	}
	return nil
}

func why(err error) string {
	var re *RungError
	if errors.As(err, &re) {
		return re.Why
	}
	return err.Error()
}

func fix(err error) string {
	var re *RungError
	if errors.As(err, &re) && re.Fix != "" {
		return re.Fix
	}
	return "see docs/rootfs.md#troubleshooting"
}

func (m *mounter) rung(mode Mode) (*Root, error) {
	switch mode {
	case ModeOverlay:
		return m.kernel()
	case ModeFuse:
		return m.fuse()
	case ModeBind:
		return m.bind()
	case ModeCopy:
		return m.copy()
	case ModeDirect:
		return m.direct()
	}
	return nil, fmt.Errorf("mounting rootfs: %w: %q", ErrUnknownMode, mode)
}

// root returns the Root for a rung that mounted on merged, after making
// that mount private: pivot_root(2) fails with EINVAL when the new root or
// its parent is a shared mount.
func (m *mounter) root(mode Mode, upper bool) (*Root, error) {
	p := m.path(mergedName)
	if err := unix.Mount("", p, "", unix.MS_PRIVATE, ""); err != nil {
		return nil, fmt.Errorf("making %s private: %w", p, err)
	}
	r := &Root{Path: p, Mode: mode, Readonly: m.o.Readonly || mode == ModeBind}
	if upper && !m.o.Readonly {
		r.Upper = m.path(upperName)
	}
	return r, nil
}

// ensureFor makes what an overlay of the layer (the kernel's or
// fuse-overlayfs's) needs: upper and work for a writable root, the stub
// layer for a read-only one (lowerdirs), and merged.
func (m *mounter) ensureFor() error {
	if m.o.Readonly {
		return m.ensure(stubsName, mergedName)
	}
	return m.ensure(upperName, workName, mergedName)
}

// lowerdirs is the overlay lowerdir list, top first: the stub layer (when
// it has entries; overlay needs two lower layers without an upper, so a
// read-only root always gets it) above the rootfs, named through our fd so
// that its path needs no escaping.
func (m *mounter) lowerdirs(rootfs string) string {
	if m.stubs || m.o.Readonly {
		return m.path(stubsName) + ":" + rootfs
	}
	return rootfs
}

func fdPath(f *os.File) string { return fmt.Sprintf("/proc/self/fd/%d", f.Fd()) }

// procFD returns N when p is "/proc/self/fd/N" or below it.
func procFD(p string) (int, bool) {
	rest, ok := strings.CutPrefix(p, "/proc/self/fd/")
	if !ok {
		return 0, false
	}
	num, _, _ := strings.Cut(rest, "/")
	n, err := strconv.Atoi(num)
	return n, err == nil && n >= 3
}

// inheritProcFDs makes cmd inherit, at the same numbers, the fds that
// paths name as /proc/self/fd/N, so that the paths mean the same in it;
// cmd.ExtraFiles may already hold fds from 3 on.
func inheritProcFDs(cmd *exec.Cmd, paths ...string) {
	for _, p := range paths {
		n, ok := procFD(p)
		if !ok {
			continue
		}
		for len(cmd.ExtraFiles) <= n-3 {
			cmd.ExtraFiles = append(cmd.ExtraFiles, nil)
		}
		if cmd.ExtraFiles[n-3] == nil {
			cmd.ExtraFiles[n-3] = os.NewFile(uintptr(n), p)
		}
	}
}
