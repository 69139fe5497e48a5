// Package imagehelper is the sandy binary's side of the image commands:
// which verbs belong to the image helper (internal/cmd/sandy-image), where
// the helper is installed, and the exec that hands a command to it; the
// store's user namespace the helper runs in (namespace.go), which the
// pause process keeps between commands (pause.go). The storage verbs of
// containers from images (container.go, commit.go) run with sandy-store,
// the helper without the image library's copy stack, where it is
// installed beside sandy-image (storeHelper), and the storage container of
// an image named as stored with sandy-create, the one without any of the
// image library, where it is installed beside sandy-store (createHelper).
//
// The split keeps the image libraries' 18 ms of package initialisation
// and 24 MB out of the sandy binary, so the runtime path (create, start,
// run ./bundle, exec) does not pay for them; `sandy pull` costs one
// execve more. This package imports nothing heavy.
package imagehelper

import (
	"context"
	"encoding/json"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"time"

	"golang.org/x/sys/unix"
)

// Name is the helper's file name.
const Name = "sandy-image"

// StoreName is the storage-only helper's file name: the hidden verbs sandy
// calls for containers from images, without the image library's copy
// stack (internal/cmd/sandy-store), installed beside Name.
const StoreName = "sandy-store"

// CreateName is the run path's helper's file name: _create-container for
// an image named as it is stored, without the image library at all
// (internal/cmd/sandy-create), installed beside StoreName.
const CreateName = "sandy-create"

// createHelper is the program to create the storage container of an image
// named image with, given the storage helper storeHelper chose:
// sandy-create beside it when image is StoredAsTyped and sandy-create is
// there (it hands any other case to sandy-store), else store.
func createHelper(store, image string) string {
	if filepath.Base(store) != StoreName || !StoredAsTyped(image) {
		return store
	}
	p := filepath.Join(filepath.Dir(store), CreateName)
	if unix.Access(p, unix.X_OK) == nil {
		return p
	}
	return store
}

// StoredAsTyped reports whether image has the form of a name the image
// store keeps names under, the form podman's lookup normalises every name
// to: a registry part (with a dot or a colon, or "localhost") before the
// first slash, and a tag after the last. It is a string test, not a
// parse: a name of this form that is not stored as typed costs
// sandy-create's hand-over to sandy-store, nothing else.
func StoredAsTyped(image string) bool {
	first, rest, ok := strings.Cut(image, "/")
	if !ok || rest == "" || strings.Contains(image, "@") {
		return false
	}
	if !strings.ContainsAny(first, ".:") && first != "localhost" {
		return false
	}
	last := rest[strings.LastIndex(rest, "/")+1:]
	tag := strings.LastIndex(last, ":")
	return tag > 0 && tag < len(last)-1
}

// storeHelper is the program to run a storage verb with, given the
// helper Locate found: sandy-store beside it when it is there (it hands
// what needs the image library to the helper itself), else the helper.
func storeHelper(helper string) string {
	p := filepath.Join(filepath.Dir(helper), StoreName)
	if unix.Access(p, unix.X_OK) == nil {
		return p
	}
	return helper
}

// Verb is one image command, for sandy's help text.
type Verb struct{ Name, Usage, Summary string }

// Verbs are the commands sandy hands to the helper.
func Verbs() []Verb {
	return []Verb{
		{"pull", "pull [flags] IMAGE", "copy an image from a registry (or TRANSPORT:REF) into the image store"},
		{"push", "push [flags] IMAGE [DESTINATION]", "copy an image to a registry or TRANSPORT:REF"},
		{"images", "images [-a] [-q] [--digests] [--format json|TEMPLATE] [IMAGE]", "list the images in the store"},
		{"rmi", "rmi [-f] [-a] IMAGE...", "remove images (or names of them)"},
		{"tag", "tag IMAGE NAME...", "add names to an image"},
		{"untag", "untag IMAGE [NAME...]", "remove names from an image"},
		{"load", "load [-i FILE]", "store the images of a docker-archive or oci-archive"},
		{"save", "save -o FILE [--format docker-archive|oci-archive] IMAGE...", "write images to an archive"},
		{"login", "login [-u USER] [--password-stdin] REGISTRY", "store credentials for a registry (auth.json, as podman)"},
		{"logout", "logout [-a] [REGISTRY]", "remove stored credentials"},
		{"image", "image ls|inspect|rm|prune|tag|untag|pull|push|load|save|exists ...", "the image commands by their long names"},
	}
}

// IsVerb reports whether name is an image command.
func IsVerb(name string) bool {
	for _, v := range Verbs() {
		if v.Name == name {
			return true
		}
	}
	return false
}

// Locate finds the helper: beside the running sandy binary (its real
// path, symlinks resolved), else in ../libexec/sandy/ from there, the
// layout `make install`-style packaging uses. It never searches $PATH: the
// helper is part of this sandy, not whichever one comes first.
func Locate() (string, error) {
	self, err := os.Executable()
	if err != nil {
		return "", fmt.Errorf("finding the sandy binary: %w", err)
	}
	if real, err := filepath.EvalSymlinks(self); err == nil {
		self = real
	}
	return locateFrom(filepath.Dir(self))
}

func locateFrom(dir string) (string, error) {
	candidates := []string{
		filepath.Join(dir, Name),
		filepath.Join(dir, "..", "libexec", "sandy", Name),
	}
	for _, c := range candidates {
		if unix.Access(c, unix.X_OK) == nil {
			return c, nil
		}
	}
	return "", fmt.Errorf("the image commands need %s, which is not installed beside sandy (looked for %s and %s): build it with `go build -tags containers_image_openpgp,exclude_graphdriver_btrfs -o %s ./internal/cmd/sandy-image` (hack/install.sh does both)",
		Name, candidates[0], candidates[1], candidates[0])
}

// Exec replaces this process with the helper running args (global flags,
// then verb and its arguments). A rootless caller whose pause process
// holds the store's namespace (pause.go) becomes the helper inside it
// (execJoined: one helper start, not two); otherwise the helper enters the
// namespace itself. debug receives --debug's lines.
func Exec(path, verb string, args []string, debug func(string)) error {
	if NeedsNamespace() && verb != "login" && verb != "logout" {
		err := execJoined(path, args, debug)
		debug("store namespace: left to " + Name + ": " + err.Error())
	}
	argv := append([]string{Name}, args...)
	if err := unix.Exec(path, argv, os.Environ()); err != nil {
		return fmt.Errorf("running %s: %w", path, err)
	}
	return nil
}

// StoreInfo is what the image helper's probe reports of the image store,
// for `sandy doctor`: where it is, the driver it uses (an existing store)
// or would pick (a new one, tried for real in a scratch store beside it),
// and the driver ladder's notice when it had to step down.
type StoreInfo struct {
	GraphRoot string `json:"graph_root"`
	RunRoot   string `json:"run_root"`
	Driver    string `json:"driver"`             // overlay, vfs, …; "" when the store cannot be opened
	Mount     string `json:"mount,omitempty"`    // overlay's mount program, "" for the kernel's
	Existing  bool   `json:"existing"`           // the store exists (else a new one was tried)
	Images    int    `json:"images"`             // images in an existing store
	Fallback  string `json:"fallback,omitempty"` // the ladder's notice, "" when the first choice works
	Fix       string `json:"fix,omitempty"`      // what gives the better driver back
	Error     string `json:"error,omitempty"`    // the store cannot be opened: why
}

// ProbeRole is the helper's hidden verb that prints StoreInfo as JSON.
const ProbeRole = "_probe-store"

// ProbeStore runs the helper's probe and returns what it found.
func ProbeStore(helper string, timeout time.Duration) (StoreInfo, error) {
	var info StoreInfo
	ctx, cancel := context.WithTimeout(context.Background(), timeout)
	defer cancel()
	cmd := exec.CommandContext(ctx, helper, ProbeRole)
	var stderr strings.Builder
	cmd.Stderr = &stderr
	out, err := cmd.Output()
	if err != nil {
		return info, fmt.Errorf("%s %s: %w: %s", Name, ProbeRole, err, strings.TrimSpace(stderr.String()))
	}
	if err := json.Unmarshal(out, &info); err != nil {
		return info, fmt.Errorf("%s %s printed %q: %w", Name, ProbeRole, out, err)
	}
	return info, nil
}
