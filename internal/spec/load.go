package spec

import (
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"slices"
	"strings"

	specs "github.com/opencontainers/runtime-spec/specs-go"

	"github.com/sandy-rt/sandy/internal/specjson"
)

// Bundle is a loaded, validated OCI bundle.
type Bundle struct {
	Dir    string      // absolute bundle directory
	Rootfs string      // absolute path of root.path
	Spec   *specs.Spec // the config as written, with defaults filled in
	// NoProcess: config.json has no process (it is OPTIONAL in the runtime
	// spec). Spec.Process is then an empty placeholder: the container can
	// be created, and start must fail.
	NoProcess bool
}

// Load reads dir/config.json, decodes it strictly enough to report the file,
// line and column of a syntax error, fills defaults and validates it.
func Load(dir string) (*Bundle, error) {
	abs, err := filepath.Abs(dir)
	if err != nil {
		return nil, fmt.Errorf("bundle %q: %w", dir, err)
	}
	path := filepath.Join(abs, "config.json")
	data, err := os.ReadFile(path)
	if err != nil {
		if errors.Is(err, fs.ErrNotExist) {
			return nil, fmt.Errorf("bundle %s has no config.json (create one with `sandy spec --rootless` in that directory)", abs)
		}
		return nil, fmt.Errorf("reading %s: %w", path, err)
	}
	s, err := Decode(path, data)
	if err != nil {
		return nil, err
	}
	b := &Bundle{Dir: abs, Spec: s}
	if err := b.validate(); err != nil {
		return nil, fmt.Errorf("%s: %w", path, err)
	}
	return b, nil
}

// Decode parses config.json bytes (the first JSON value in them, as a
// json.Decoder reads it), through specjson: a config is the first JSON
// `sandy run` and `create` decode. Errors are encoding/json's; they name
// the file and, for syntax and type errors, the line and column.
func Decode(name string, data []byte) (*specs.Spec, error) {
	var s specs.Spec
	if err := specjson.DecodeFirst(data, &s); err != nil {
		var se *json.SyntaxError
		var te *json.UnmarshalTypeError
		switch {
		case errors.As(err, &se):
			line, col := lineCol(data, se.Offset)
			return nil, fmt.Errorf("%s:%d:%d: invalid JSON: %v", name, line, col, se)
		case errors.As(err, &te):
			line, col := lineCol(data, te.Offset)
			return nil, fmt.Errorf("%s:%d:%d: field %q: cannot use JSON %s as %s", name, line, col, te.Field, te.Value, te.Type)
		}
		return nil, fmt.Errorf("%s: %w", name, err)
	}
	return &s, nil
}

func lineCol(data []byte, off int64) (int, int) {
	if off > int64(len(data)) {
		off = int64(len(data))
	}
	line, col := 1, 1
	for _, c := range data[:off] {
		if c == '\n' {
			line++
			col = 1
		} else {
			col++
		}
	}
	return line, col
}

// knownNamespaces are the namespace types sandy can create or join.
var knownNamespaces = map[specs.LinuxNamespaceType]bool{
	specs.PIDNamespace: true, specs.NetworkNamespace: true, specs.MountNamespace: true,
	specs.IPCNamespace: true, specs.UTSNamespace: true, specs.UserNamespace: true,
	specs.CgroupNamespace: true, specs.TimeNamespace: true,
}

func (b *Bundle) validate() error {
	s := b.Spec
	if s.Root == nil || s.Root.Path == "" {
		return errors.New("root.path: missing (the bundle's root filesystem, usually \"rootfs\")")
	}
	b.Rootfs = s.Root.Path
	if !filepath.IsAbs(b.Rootfs) {
		b.Rootfs = filepath.Join(b.Dir, b.Rootfs)
	}
	fi, err := os.Stat(b.Rootfs)
	if err != nil {
		return fmt.Errorf("root.path %q: %w", s.Root.Path, err)
	}
	if !fi.IsDir() {
		return fmt.Errorf("root.path %q: not a directory", s.Root.Path)
	}
	if s.Process == nil {
		b.NoProcess = true
		s.Process = &specs.Process{Cwd: "/", Args: []string{"/nonexistent: config.json has no process"}}
	}
	if s.Process.Cwd == "" {
		s.Process.Cwd = "/"
	}
	if err := ValidateProcess(s.Process); err != nil {
		return err
	}
	if s.Linux == nil {
		s.Linux = &specs.Linux{}
	}
	seen := map[specs.LinuxNamespaceType]bool{}
	for _, ns := range s.Linux.Namespaces {
		if !knownNamespaces[ns.Type] {
			return fmt.Errorf("linux.namespaces: unknown namespace type %q", ns.Type)
		}
		if seen[ns.Type] {
			return fmt.Errorf("linux.namespaces: %q listed twice", ns.Type)
		}
		seen[ns.Type] = true
		if ns.Path != "" && !filepath.IsAbs(ns.Path) {
			return fmt.Errorf("linux.namespaces: %s path %q must be absolute", ns.Type, ns.Path)
		}
	}
	for i, m := range s.Mounts {
		if m.Destination == "" {
			return fmt.Errorf("mounts[%d]: destination missing", i)
		}
		if !filepath.IsAbs(m.Destination) {
			return fmt.Errorf("mounts[%d]: destination %q must be absolute", i, m.Destination)
		}
	}
	for _, p := range append(append([]string{}, s.Linux.MaskedPaths...), s.Linux.ReadonlyPaths...) {
		if !filepath.IsAbs(p) {
			return fmt.Errorf("linux.maskedPaths/readonlyPaths: %q must be absolute", p)
		}
	}
	for k := range s.Linux.Sysctl {
		if k == "" || strings.Contains(k, "..") || strings.HasPrefix(k, "/") || strings.HasPrefix(k, ".") {
			return fmt.Errorf("linux.sysctl: invalid key %q", k)
		}
	}
	return nil
}

// Namespace returns the config's entry for typ, if any.
func Namespace(s *specs.Spec, typ specs.LinuxNamespaceType) (specs.LinuxNamespace, bool) {
	if s.Linux == nil {
		return specs.LinuxNamespace{}, false
	}
	for _, ns := range s.Linux.Namespaces {
		if ns.Type == typ {
			return ns, true
		}
	}
	return specs.LinuxNamespace{}, false
}

// Edit changes the loaded config in memory with fn, then validates it
// again: `sandy run ./bundle COMMAND` and run's -e, -v, -w, -t change the
// spec for one run, and config.json is never written. A config with no
// process gets one when fn sets process.args.
func (b *Bundle) Edit(fn func(*specs.Spec) error) error {
	var placeholder []string
	if b.NoProcess {
		placeholder = append(placeholder, b.Spec.Process.Args...)
	}
	if err := fn(b.Spec); err != nil {
		return err
	}
	if b.NoProcess && !slices.Equal(placeholder, b.Spec.Process.Args) {
		b.NoProcess = false
	}
	if err := b.validate(); err != nil {
		return fmt.Errorf("%s with run's overrides: %w", filepath.Join(b.Dir, "config.json"), err)
	}
	return nil
}
