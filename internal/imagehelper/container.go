package imagehelper

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"syscall"
	"time"

	specs "github.com/opencontainers/runtime-spec/specs-go"

	"github.com/sandy-rt/sandy/idmap"
	"github.com/sandy-rt/sandy/internal/spare"
	"github.com/sandy-rt/sandy/internal/specjson"
	"github.com/sandy-rt/sandy/overlay"
	"github.com/sandy-rt/sandy/userns"
)

// The helper's hidden verbs for `sandy run IMAGE`.
const (
	// CreateRole makes a storage container from an image (pulled first
	// when the policy says so) and prints a Prepared as JSON.
	CreateRole = "_create-container"
	// RemoveRole removes a storage container and its layer.
	RemoveRole = "_remove-container"
)

// Prepared is a storage container made from an image, ready for the
// runtime: what CreateRole prints.
type Prepared struct {
	// ID is the storage container's id, 64 hex digits, which is also the
	// container's id in sandy's runtime state.
	ID   string `json:"id"`
	Name string `json:"name"`
	// ImageID and ImageName are the image's id and the name it was found
	// or pulled by (fully qualified).
	ImageID   string `json:"image_id"`
	ImageName string `json:"image_name"`
	// Config is the image's configuration (OCI; converted from Docker's).
	Config ImageConfig `json:"config"`
	// Layers are the container's root in the store, for the init to mount.
	Layers overlay.Layers `json:"layers"`
	// Rootfs is the path the store mounts the root on (spec.root.path);
	// Dir is the storage container's own directory (podman's userdata),
	// which holds the bundle sandy writes.
	Rootfs string `json:"rootfs"`
	Dir    string `json:"dir"`
	// Passwd and Group are the image's /etc/passwd and /etc/group ("" when
	// it has none), read in the root with every symlink resolved inside it.
	Passwd string `json:"passwd"`
	Group  string `json:"group"`
}

// CreateRequest is what `sandy run IMAGE` asks of CreateRole.
type CreateRequest struct {
	Image string
	// ID is the container's id (ValidID), chosen by sandy so that the
	// container's init can start under it while the helper makes the
	// storage container (containers.Run); "" lets the store choose.
	ID   string
	Name string // "" for none
	// Pull is --pull: missing (the default), always, never or newer.
	Pull string
	// Volatile: the container is removed when it exits (--rm).
	Volatile bool
	// UIDMap and GIDMap are the container's id maps relative to the
	// store's user namespace (podman's --uidmap: container ids to the ids
	// of the namespace the store is opened in), as the storage container
	// is made with them (containers/storage IDMappingOptions); nil for the
	// store's own. --userns=keep-id sets them.
	UIDMap, GIDMap []specs.LinuxIDMapping
	// Debug receives --debug's lines about the helper's start; nil for
	// none.
	Debug func(string)
	// Global are sandy's global store flags, passed on
	// (--storage-root, …), and Remote the registry flags of the pull
	// (--tls-verify=false, --creds, …), as the helper's pull takes them.
	Global, Remote []string
}

// Args is the helper's command line for r.
func (r CreateRequest) Args() []string {
	args := append(append([]string(nil), r.Global...), CreateRole)
	if r.ID != "" {
		args = append(args, "--id", r.ID)
	}
	if r.Name != "" {
		args = append(args, "--name", r.Name)
	}
	if r.Pull != "" {
		args = append(args, "--pull", r.Pull)
	}
	if r.Volatile {
		args = append(args, "--volatile")
	}
	if len(r.UIDMap) > 0 || len(r.GIDMap) > 0 {
		args = append(args, "--uidmap", idmap.FlagMap(r.UIDMap), "--gidmap", idmap.FlagMap(r.GIDMap))
	}
	args = append(args, r.Remote...)
	return append(args, "--", r.Image)
}

// ValidID reports whether id has the form of a storage container's id: 64
// lower-case hex digits (the store's own ids, and what sandy chooses).
func ValidID(id string) bool {
	if len(id) != 64 {
		return false
	}
	for _, c := range id {
		if (c < '0' || c > '9') && (c < 'a' || c > 'f') {
			return false
		}
	}
	return true
}

// ErrHelperFailed is an error the helper printed itself: its stderr has
// already reached the user.
var ErrHelperFailed = errors.New("image helper failed")

// HelperError is a helper verb that failed, with its exit status (podman's
// statuses: 125 for its own errors; 1 for an image that is not there).
type HelperError struct {
	Verb string
	Code int
}

func (e *HelperError) Error() string {
	return fmt.Sprintf("%s %s exited with status %d", Name, e.Verb, e.Code)
}

func (e *HelperError) Unwrap() error { return ErrHelperFailed }

// Printed reports that the helper printed the error itself, on the
// stderr it shares with sandy.
func (e *HelperError) Printed() bool { return true }

// The --hold protocol of CreateRole: after the Prepared, the helper
// reads one line: HoldRemove removes the container and answers HoldOK
// (or the error); HoldKeep keeps it. End of input without either (sandy
// was killed) removes a --volatile (run --rm) container, and another
// whose record sandy had not written yet (Abandoned), so a killed `sandy
// run` leaves nothing of its own that nothing refers to.
//
// HoldRemoveBehind removes it too, but the helper answers HoldLocked as
// soon as it holds the store's removals lock, which every helper verb
// waits for before it opens the store: sandy returns then, and the
// removal ends behind it (Session.RemoveBehind).
const (
	HoldRemove       = "remove"
	HoldKeep         = "keep"
	HoldOK           = "ok"
	HoldRemoveBehind = "remove-behind"
	HoldLocked       = "locked"
)

// Session is a storage container made by a helper that stays for the
// container's life (CreateRole --hold), so that --rm removes it without a
// second helper's start-up.
type Session struct {
	Prepared *Prepared
	proc     helperProc
	in       io.WriteCloser
	out      *bufio.Reader
	helper   string
	global   []string
	stderr   io.Writer
	done     bool
}

// Create runs CreateRole, the helper started directly in the store's
// user namespace (no re-exec of its own) and in a session of its own
// (the terminal's Ctrl-C goes to the container, not to it). Its
// progress and errors go to stderr as they come (a pull's progress); the
// Prepared comes back. warn receives the id map ladder's line.
func Create(ctx context.Context, helper string, r CreateRequest, stderr io.Writer, warn func(string)) (*Session, error) {
	prog := helper
	if r.Pull != "always" && r.Pull != "newer" {
		// The image is most likely stored: the storage-only helper,
		// which hands a pull to the helper itself; for a name in the
		// store's own form, the one without the image library, which
		// hands any other case to the storage-only helper.
		prog = createHelper(storeHelper(helper), r.Image)
	}
	s, err := startSession(ctx, helper, prog, r, stderr, warn)
	if errors.Is(err, errSpareHandOver) {
		// What sandy-create hands over, sandy-store does (its exec).
		s, err = startSession(ctx, helper, storeHelper(helper), r, stderr, warn)
	}
	return s, err
}

// startSession starts prog's CreateRole --hold, or has its spare serve it
// (spare.go), and reads the answer.
func startSession(ctx context.Context, helper, prog string, r CreateRequest, stderr io.Writer, warn func(string)) (*Session, error) {
	if r.Debug != nil {
		r.Debug("image helper: " + filepath.Base(prog))
	}
	exe, err := os.Open(prog)
	if err != nil {
		return nil, fmt.Errorf("opening %s: %w", prog, err)
	}
	defer exe.Close()
	inR, inW, err := os.Pipe()
	if err != nil {
		return nil, err
	}
	outR, outW, err := os.Pipe()
	if err != nil {
		inR.Close()
		inW.Close()
		return nil, err
	}
	closePipes := func() {
		for _, f := range []*os.File{inR, inW, outR, outW} {
			f.Close()
		}
	}
	hold := []string{"--hold"}
	errFile, _ := stderr.(*os.File)
	useSpare := filepath.Base(prog) == CreateName && errFile != nil
	if useSpare {
		hold = append(hold, "--spare", spare.Dir())
	}
	args := r.Args()
	for i, a := range args {
		if a == CreateRole {
			args = append(append(append([]string(nil), args[:i+1]...), hold...), args[i+1:]...)
			break
		}
	}
	var proc helperProc
	if useSpare {
		t0 := time.Now()
		sp, why, err := dialSpare(ctx, exe, args, [3]*os.File{inR, outW, errFile})
		if err != nil {
			closePipes()
			return nil, err
		}
		if sp != nil {
			proc = sp
			if r.Debug != nil {
				r.Debug(fmt.Sprintf("image helper: the spare %s %d took the request (no start-up): %v", CreateName, sp.p.Pid, time.Since(t0).Round(10*time.Microsecond)))
			}
		} else if r.Debug != nil {
			r.Debug("image helper: no spare: " + why)
		}
	}
	if proc == nil {
		child, warning, err := StartInNamespace(exe, Namespace{Args: args, Stdin: inR, Stdout: outW, Stderr: stderr, Setsid: true, Outlive: true, Debug: r.Debug})
		if warning != "" && warn != nil {
			warn(SingleIDNote(warning))
		}
		if err != nil {
			closePipes()
			return nil, err
		}
		proc = childProc{child}
	}
	// The helper has its copies: with ours closed, its exit is our EOF.
	inR.Close()
	outW.Close()
	s := &Session{proc: proc, in: inW, out: bufio.NewReader(outR), helper: helper, global: r.Global, stderr: stderr}
	stop := context.AfterFunc(ctx, func() { proc.signal(syscall.SIGTERM) })
	defer stop()
	line, rerr := s.out.ReadBytes('\n')
	if rerr != nil {
		return nil, s.fail()
	}
	var p Prepared
	if err := specjson.Unmarshal(line, &p); err != nil {
		s.Keep()
		return nil, fmt.Errorf("%s %s printed %q: %w", Name, CreateRole, line, err)
	}
	if r.ID != "" && p.ID != r.ID {
		s.Prepared = &p
		_ = s.Remove(ctx)
		return nil, fmt.Errorf("%s %s made container %s, not the %s asked for (an older helper? reinstall sandy and its helpers together)", Name, CreateRole, p.ID, r.ID)
	}
	if err := p.Layers.Check(); err != nil {
		s.Remove(ctx)
		return nil, fmt.Errorf("%s %s: %w", Name, CreateRole, err)
	}
	s.Prepared = &p
	return s, nil
}

// fail waits for a helper that ended without an answer: its error is on
// stderr already.
func (s *Session) fail() error {
	s.in.Close()
	s.done = true
	code, err := s.proc.wait()
	if errors.Is(err, errSpareHandOver) {
		return err
	}
	if err == nil && code > 0 {
		return &HelperError{Verb: CreateRole, Code: code}
	}
	if err == nil {
		err = errors.New("no answer")
	}
	return fmt.Errorf("%s %s: %w", Name, CreateRole, err)
}

// helperProc is the helper serving a Session: a process sandy started
// (childProc) or a spare (spareProc).
type helperProc interface {
	// wait waits for the end of a verb that failed: its exit status, or
	// an error when there is none (killed). A helper that stays as a
	// spare after its session is not waited for: see ended.
	wait() (int, error)
	signal(sig syscall.Signal)
	// close lets the helper go on without us.
	close()
}

type childProc struct{ c *userns.Child }

func (p childProc) wait() (int, error) {
	err := p.c.Cmd.Wait()
	var ee *exec.ExitError
	if errors.As(err, &ee) && ee.ExitCode() >= 0 {
		return ee.ExitCode(), nil
	}
	return 0, err
}

func (p childProc) signal(sig syscall.Signal) { _ = p.c.Cmd.Process.Signal(sig) }

// close reaps the helper whenever it exits: after its session it may
// stay a while, a spare.
func (p childProc) close() { go func() { _ = p.c.Cmd.Wait() }() }

// ended waits for the end of the helper's session, which closes its
// stdout (it exits, or stays as a spare with stdio on /dev/null), and
// lets the helper go.
func (s *Session) ended() {
	_, _ = io.Copy(io.Discard, s.out)
	s.proc.close()
}

// Keep lets the helper go and the storage container stay.
func (s *Session) Keep() {
	if s.done {
		return
	}
	s.done = true
	_, _ = io.WriteString(s.in, HoldKeep+"\n")
	s.in.Close()
	s.ended()
}

// Remove has the helper remove the storage container. When the helper
// is gone (killed), a new one does it.
func (s *Session) Remove(ctx context.Context) error {
	if s.done {
		return Remove(ctx, s.helper, s.global, s.Prepared.ID, s.stderr)
	}
	s.done = true
	_, werr := io.WriteString(s.in, HoldRemove+"\n")
	s.in.Close()
	line, _ := s.out.ReadString('\n')
	s.ended()
	switch line = strings.TrimSpace(line); {
	case werr == nil && line == HoldOK:
		return nil
	case werr == nil && line != "":
		return errors.New(line)
	}
	if s.Prepared == nil {
		return fmt.Errorf("%s %s: the helper ended before removing the container", Name, CreateRole)
	}
	return Remove(ctx, s.helper, s.global, s.Prepared.ID, s.stderr)
}

// RemoveBehind has the helper remove the storage container after this
// process has gone on: it returns once the helper holds the store's
// removals lock, which every later helper verb waits for (a `run --name`
// of the same name, a list, an rm see the container gone). A helper that
// does not answer so (gone, or an older one) is waited for and the
// container removed as Remove does.
func (s *Session) RemoveBehind(ctx context.Context) error {
	if s.done {
		return Remove(ctx, s.helper, s.global, s.Prepared.ID, s.stderr)
	}
	s.done = true
	_, werr := io.WriteString(s.in, HoldRemoveBehind+"\n")
	line, _ := s.out.ReadString('\n')
	s.in.Close()
	if line = strings.TrimSpace(line); werr == nil && line == HoldLocked {
		// The helper's own session, not killed with this process: it
		// finishes and exits (or stays, a spare); nothing of it is ours
		// to wait for.
		s.proc.close()
		return nil
	}
	s.ended()
	if werr == nil && line != "" {
		return errors.New(line)
	}
	return Remove(ctx, s.helper, s.global, s.Prepared.ID, s.stderr)
}

// SingleIDNote is the line for the id map ladder's step down to the single
// mapping, with what it means for the image store.
func SingleIDNote(warning string) string {
	return warning + "; the image store keeps one owner for every file (ignore_chown_errors)"
}

// Remove runs RemoveRole for the storage container id.
func Remove(ctx context.Context, helper string, global []string, id string, stderr io.Writer) error {
	args := append(append([]string(nil), global...), RemoveRole, "--", id)
	_, err := run(ctx, helper, args, stderr)
	return err
}

// run runs a storage verb, with sandy-store where it is installed
// (storeHelper), and returns what it printed. A rootless caller
// starts the helper in the store's namespace itself (StartInNamespace),
// which spares the helper's own re-exec into it: one start of the 25 MB
// helper, not two.
func run(ctx context.Context, helper string, args []string, stderr io.Writer) ([]byte, error) {
	helper = storeHelper(helper)
	if NeedsNamespace() {
		return runInNamespace(ctx, helper, args, stderr)
	}
	cmd := exec.CommandContext(ctx, helper, args...)
	cmd.Args[0] = filepath.Base(helper)
	var out bytes.Buffer
	cmd.Stdout = &out
	cmd.Stderr = stderr
	cmd.Stdin = nil
	if err := cmd.Run(); err != nil {
		var ee *exec.ExitError
		if errors.As(err, &ee) && ee.ExitCode() > 0 {
			return nil, &HelperError{Verb: verbOf(args), Code: ee.ExitCode()}
		}
		return nil, fmt.Errorf("running %s: %w", helper, err)
	}
	return out.Bytes(), nil
}

func runInNamespace(ctx context.Context, helper string, args []string, stderr io.Writer) ([]byte, error) {
	exe, err := os.Open(helper)
	if err != nil {
		return nil, fmt.Errorf("opening %s: %w", helper, err)
	}
	defer exe.Close()
	var debug func(string)
	if slices.Contains(args, "--debug") {
		debug = func(line string) { fmt.Fprintf(stderr, "sandy: debug: %s\n", line) }
	}
	var out bytes.Buffer
	child, warning, err := StartInNamespace(exe, Namespace{Args: args, Stdout: &out, Stderr: stderr, Debug: debug})
	if warning != "" {
		fmt.Fprintf(stderr, "sandy: warning: %s\n", SingleIDNote(warning))
	}
	if err != nil {
		return nil, err
	}
	stop := context.AfterFunc(ctx, func() { _ = child.Cmd.Process.Kill() })
	defer stop()
	if err := child.Cmd.Wait(); err != nil {
		var ee *exec.ExitError
		if errors.As(err, &ee) && ee.ExitCode() > 0 {
			return nil, &HelperError{Verb: verbOf(args), Code: ee.ExitCode()}
		}
		return nil, fmt.Errorf("running %s: %w", helper, err)
	}
	return out.Bytes(), nil
}

func verbOf(args []string) string {
	for _, a := range args {
		if strings.HasPrefix(a, "_") {
			return a
		}
	}
	return "helper"
}

// ImageConfig is the part of an image's configuration a container is made
// from: the "config" object of the OCI image config (image-spec
// v1.ImageConfig), with its JSON names, so that the helper's answer
// decodes into it. It is declared here rather than imported: image-spec
// links go-digest, whose package init compiles regexps that every sandy
// process, the container's init too, would pay (about 1 ms).
type ImageConfig struct {
	User         string              `json:"User,omitempty"`
	ExposedPorts map[string]struct{} `json:"ExposedPorts,omitempty"`
	Env          []string            `json:"Env,omitempty"`
	Entrypoint   []string            `json:"Entrypoint,omitempty"`
	Cmd          []string            `json:"Cmd,omitempty"`
	Volumes      map[string]struct{} `json:"Volumes,omitempty"`
	WorkingDir   string              `json:"WorkingDir,omitempty"`
	Labels       map[string]string   `json:"Labels,omitempty"`
	StopSignal   string              `json:"StopSignal,omitempty"`
}

// ListRole lists the store's containers (sandy's, podman's and
// buildah's: one list) as a JSON array of StoredContainer.
const ListRole = "_list-containers"

// StoredContainer is one storage container, as ListRole reports it.
type StoredContainer struct {
	ID        string    `json:"id"`
	Names     []string  `json:"names"`
	ImageID   string    `json:"image_id"`
	ImageName string    `json:"image_name"`
	Created   time.Time `json:"created"`
	// Dir is the container's own directory (podman's userdata): sandy's
	// record and config.json are there for the containers sandy made.
	Dir string `json:"dir"`
	// Owner is who made it, as its metadata and directory say:
	// OwnerSandy, OwnerBuildah, or "" (podman's metadata, or none: podman,
	// another tool, or a sandy older than the mark).
	Owner string `json:"owner,omitempty"`
	// Creator is the sandy process that asked for it (OwnerSandy only).
	Creator *Creator `json:"creator,omitempty"`
}

// List runs ListRole.
func List(ctx context.Context, helper string, global []string, stderr io.Writer) ([]StoredContainer, error) {
	out, err := run(ctx, helper, append(append([]string(nil), global...), ListRole), stderr)
	if err != nil {
		return nil, err
	}
	var list []StoredContainer
	if err := json.Unmarshal(out, &list); err != nil {
		return nil, fmt.Errorf("%s %s printed %q: %w", Name, ListRole, out, err)
	}
	return list, nil
}
