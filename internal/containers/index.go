package containers

import (
	"context"
	"encoding/hex"
	"errors"
	"fmt"
	"hash/fnv"
	"io/fs"
	"os"
	"path/filepath"
	"strings"

	"golang.org/x/sys/unix"

	"github.com/sandy-rt/sandy/internal/imagehelper"
	"github.com/sandy-rt/sandy/internal/lifecycle"
	"github.com/sandy-rt/sandy/internal/volumes"
)

// The name index: how a verb that takes a container reference (a name,
// an id or a unique id prefix) finds the container without the image
// helper, whose start and list of the store cost 50-800 ms.
//
// The index is the store's own layout and sandy's records, not a second
// copy of them that could disagree: the store keeps each container in a
// directory named by its id (<graphroot>/<driver>-containers/ID/userdata,
// storage's ContainerDirectory), and sandy's record there (RecordFile)
// carries the container's name (Record.Name, written when the container
// is made and by rename). So
//
//   - ids and prefixes are matched against the directory's entries (every
//     container in the store, podman's and buildah's too);
//   - a name is the one record that carries it; the store gave it (two
//     concurrent `run --name x`: the store's lock lets one win, and only
//     the winner writes a record), rename changes the record under its
//     lock once the store has the new name, and rm removes the directory
//     with the record;
//   - every answer comes from the record found at that moment: an entry
//     cannot name a container other than the one whose record it read.
//
// The one thing sandy must remember is where that directory is, which
// only the helper knows (containers-storage.conf is read by the storage
// library): the first `run` or list of a store writes it into a file in
// the user's data directory beside the volumes (storeDirsDir), named by
// everything that picks the store (the --storage-* flags, the
// environment the configuration is found by and the configuration
// files' identities), so that another store's flags or an edited
// storage.conf never reuse it. It is persistent, as the store and the
// records are: a reboot (the runtime directory gone) changes nothing of
// it. When the file is lost, the next command lists once through the
// helper and writes it again.
//
// The index answers only what it can answer exactly; anything else
// (a name no record carries, several candidates, a container without a
// record, a record written before Record.Name existed) goes to the
// helper's list, as before.

// storeDirsDir is the directory, beside sandy's volumes (the user's
// data directory), of the files that remember the stores' container
// directories, one a store, named by storeKey.
const storeDirsDir = "image-stores"

// storeKey names the store that flags select, with the environment
// and the configuration files that storage reads to find it.
func storeKey(flags []string) string {
	h := fnv.New128a() // a name, not a secret: crypto/sha256 would link the FIPS module's inits into every process
	for _, f := range flags {
		if f == "--debug" {
			continue
		}
		fmt.Fprintf(h, "flag %q\n", f)
	}
	env := []string{"CONTAINERS_STORAGE_CONF", "XDG_CONFIG_HOME", "XDG_DATA_HOME", "XDG_RUNTIME_DIR", "HOME"}
	for _, k := range env {
		fmt.Fprintf(h, "env %s=%q\n", k, os.Getenv(k))
	}
	fmt.Fprintf(h, "euid %d\n", os.Geteuid())
	config := os.Getenv("XDG_CONFIG_HOME")
	if config == "" {
		config = filepath.Join(os.Getenv("HOME"), ".config")
	}
	// storage.conf and its drop-in directories (an added or removed
	// drop-in changes the directory's mtime).
	for _, p := range []string{
		os.Getenv("CONTAINERS_STORAGE_CONF"),
		filepath.Join(config, "containers", "storage.conf"),
		filepath.Join(config, "containers", "storage.conf.d"),
		"/etc/containers/storage.conf", "/etc/containers/storage.conf.d",
		"/usr/share/containers/storage.conf", "/usr/share/containers/storage.conf.d",
	} {
		var st unix.Stat_t
		if p == "" || unix.Stat(p, &st) != nil {
			continue
		}
		fmt.Fprintf(h, "file %q %d %d %d %d.%d\n", p, st.Dev, st.Ino, st.Size, st.Mtim.Sec, st.Mtim.Nsec)
	}
	return hex.EncodeToString(h.Sum(nil)[:12])
}

// storeDirPath is the file that remembers the container directory of
// the store m's flags select.
func (m Manage) storeDirPath() (string, error) {
	vols, err := volumes.DefaultRoot()
	if err != nil {
		return "", err
	}
	return filepath.Join(filepath.Dir(vols), storeDirsDir, storeKey(m.Global)), nil
}

// rememberStore writes the store's container directory, known from one
// of its containers' own directory (ID/userdata), for the next verb.
// Failing to is not an error: the next verb lists through the helper.
func (m Manage) rememberStore(containerDir string) {
	dir := filepath.Dir(filepath.Dir(containerDir))
	if !filepath.IsAbs(dir) {
		return
	}
	p, err := m.storeDirPath()
	if err != nil {
		return
	}
	if cur, err := os.ReadFile(p); err == nil && string(cur) == dir {
		return
	}
	if err := os.MkdirAll(filepath.Dir(p), 0o700); err != nil {
		return
	}
	if err := writeAtomic(p, []byte(dir)); err != nil {
		if m.G != nil {
			m.G.Debugf("remembering the image store's container directory: %v", err)
		}
	}
}

// storeDir is the store's container directory, "" when not known.
func (m Manage) storeDir() string {
	p, err := m.storeDirPath()
	if err != nil {
		return ""
	}
	b, err := os.ReadFile(p)
	if err != nil || !filepath.IsAbs(string(b)) {
		return ""
	}
	return string(b)
}

// errAskStore: the index cannot answer exactly; the helper's list must.
var errAskStore = errors.New("the index cannot answer: ask the store")

// lookup resolves ref as find does over the list (a whole id, then a
// name, then a unique id prefix of at least 3), among the containers
// sandy made, and with external among the store's others too. It answers
// only when the answer is certain; otherwise errAskStore.
func (m Manage) lookup(ref string, external bool) (Listed, error) {
	dir := m.storeDir()
	if dir == "" {
		return Listed{}, errAskStore
	}
	ents, err := os.ReadDir(dir)
	if err != nil {
		return Listed{}, errAskStore
	}
	type entry struct {
		id  string
		rec Record
		ok  bool // a record of sandy's this version wrote
	}
	var all []entry
	// foreign: a container without a record (podman's, buildah's, or
	// being made); old: a record without Record.Name. Their names are
	// not known here.
	foreign, old := false, false
	for _, e := range ents {
		if !e.IsDir() || !isStoreID(e.Name()) {
			continue
		}
		en := entry{id: e.Name()}
		rec, ok, err := readRecord(filepath.Join(dir, en.id, "userdata"))
		en.rec, en.ok = rec, ok && err == nil && rec.ImageID != ""
		foreign = foreign || !ok
		old = old || ok && !en.ok
		all = append(all, en)
	}
	pick := func(en entry) (Listed, error) {
		if !en.ok {
			return Listed{}, errAskStore
		}
		return m.listedOf(en.id, filepath.Join(dir, en.id, "userdata"), en.rec)
	}
	for _, en := range all {
		if en.id == ref {
			return pick(en)
		}
	}
	var named, prefixed []entry
	for _, en := range all {
		if en.ok && en.rec.Name == ref {
			named = append(named, en)
		}
		if len(ref) >= 3 && strings.HasPrefix(en.id, ref) && (en.ok || external) {
			prefixed = append(prefixed, en)
		}
	}
	// A name is the store's, unique: the one record that carries it.
	if len(named) == 1 {
		return pick(named[0])
	}
	// A prefix: unique, and no container whose names the index cannot
	// see, one of which could be ref (a name outranks a prefix).
	unknownNames := old || external && foreign
	if len(named) == 0 && len(prefixed) == 1 && !unknownNames {
		return pick(prefixed[0])
	}
	return Listed{}, errAskStore
}

// isStoreID reports whether name is a storage container's id (64 hex
// digits).
func isStoreID(name string) bool {
	if len(name) != 64 {
		return false
	}
	for i := 0; i < len(name); i++ {
		c := name[i]
		if !('0' <= c && c <= '9' || 'a' <= c && c <= 'f') {
			return false
		}
	}
	return true
}

// listedOf is the Listed of sandy's container id, whose own directory is
// dir and record rec: the runtime's state says whether it runs.
func (m Manage) listedOf(id, dir string, rec Record) (Listed, error) {
	l := Listed{ID: id, Image: rec.Image, ImageID: rec.ImageID, Created: rec.Created, dir: dir}
	if rec.Name != "" {
		l.Names = []string{rec.Name}
	}
	return m.withRecord(l, rec)
}

// withRecord completes l, a container of sandy's, from its record and
// the runtime's state.
func (m Manage) withRecord(l Listed, rec Record) (Listed, error) {
	l.Command, l.ExitCode, l.Finished, l.rec = rec.Command, rec.ExitCode, rec.Finished, rec
	l.Started = rec.Started
	l.Ports, l.Labels = portMappings(rec.Ports), rec.Labels
	var err error
	if l.State, err = lifecycle.StatusOf(m.G, l.ID); err != nil {
		return Listed{}, err
	}
	l.State, l.MonitorGone = stateOf(l.State, rec)
	return l, nil
}

// completeRecord gives a record written before Record.Name and
// Record.ImageID existed the store's name and image id, so that the
// index can answer for it next time. Only fields still empty are set,
// under the record's lock: a rename that wrote the name meanwhile wins.
func completeRecord(dir string, names []string, imageID string) error {
	if imageID == "" {
		return nil
	}
	err := updateRecord(dir, func(r *Record) {
		if r.Name == "" && len(names) > 0 {
			r.Name = names[0]
		}
		if r.ImageID == "" {
			r.ImageID = imageID
		}
	})
	if errors.Is(err, fs.ErrNotExist) {
		return nil // removed meanwhile
	}
	return err
}

// Rename gives the container ref names (sandy's) the name name: in the
// store first, which refuses a name in use (sandy's, podman's or
// buildah's), then in its record, for the index. The record's lock is
// held throughout, so no other writer of the record puts the old name
// back.
func (m Manage) Rename(ctx context.Context, ref, name string) error {
	c, err := m.Find(ctx, ref)
	if err != nil {
		return err
	}
	unlock, err := lockRecord(c.dir)
	if err != nil {
		return err
	}
	defer unlock()
	if err := imagehelper.Rename(ctx, m.Helper, m.Global, c.ID, name, m.Stderr); err != nil {
		return err
	}
	rec, ok, err := readRecord(c.dir)
	if err != nil || !ok {
		return err // removed meanwhile: nothing to keep
	}
	rec.Name = name
	if rec.ImageID == "" {
		rec.ImageID = c.ImageID
	}
	if err := writeRecord(c.dir, rec); err != nil {
		return fmt.Errorf("renamed in the store, but %w", err)
	}
	return nil
}
