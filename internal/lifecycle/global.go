package lifecycle

import (
	"fmt"
	"io"
	"log/slog"
	"os"
	"strings"
	"sync"
)

// Global holds the options every command shares and the ways to report.
type Global struct {
	Root          string // --root
	CgroupManager string // default of --cgroup-manager (--systemd-cgroup: systemd)
	// RootfsMode and AllowUnenforced are the defaults of create's and
	// run's flags of the same names.
	RootfsMode      string
	AllowUnenforced bool
	Debug           bool
	Logger          *slog.Logger // --log/--log-format; never nil after Setup
	// LogOnly: --log was given, so warnings and debug lines go to the log
	// only, as runc's do. An engine passes --log, and under its shim
	// sandy's stderr is the container's own (a warning there would land
	// in the container's log as if the container wrote it).
	LogOnly bool
	// RuntimeCaller: --root or --log was given, as engines and runc's
	// own tests pass them: a call of runc's interface, so a verb that
	// has a podman form too answers runc's way (cmd/sandy/forms.go).
	RuntimeCaller bool
	Stderr        io.Writer

	warned sync.Map
}

// Warn prints one warning line per distinct message (the degradation
// ladder's contract: each rung down is said exactly once).
func (g *Global) Warn(msg string) {
	if _, dup := g.warned.LoadOrStore(msg, true); dup {
		return
	}
	if !g.LogOnly {
		fmt.Fprintf(g.stderr(), "sandy: warning: %s\n", msg)
	}
	g.logger().Warn(msg)
}

// Debugf prints under --debug only.
func (g *Global) Debugf(format string, args ...any) {
	msg := fmt.Sprintf(format, args...)
	g.logger().Debug(msg)
	if g.Debug && !g.LogOnly {
		fmt.Fprintf(g.stderr(), "sandy: debug: %s\n", msg)
	}
}

func (g *Global) stderr() io.Writer {
	if g.Stderr != nil {
		return g.Stderr
	}
	return os.Stderr
}

func (g *Global) logger() *slog.Logger {
	if g.Logger != nil {
		return g.Logger
	}
	return slog.New(slog.NewTextHandler(io.Discard, nil))
}

// NewLogger builds the --log logger: text or JSON (runc's format, which
// containerd and podman read: "level" in lower case with logrus's names,
// "warning" not slog's "warn"; "msg", "time").
func NewLogger(w io.Writer, format string, debug bool) (*slog.Logger, error) {
	level := slog.LevelInfo
	if debug {
		level = slog.LevelDebug
	}
	opts := &slog.HandlerOptions{Level: level, ReplaceAttr: func(_ []string, a slog.Attr) slog.Attr {
		if a.Key == slog.LevelKey {
			l := strings.ToLower(a.Value.String())
			if l == "warn" {
				l = "warning"
			}
			a.Value = slog.StringValue(l)
		}
		return a
	}}
	switch format {
	case "", "text":
		return slog.New(slog.NewTextHandler(w, opts)), nil
	case "json":
		return slog.New(slog.NewJSONHandler(w, opts)), nil
	}
	return nil, fmt.Errorf("--log-format %q: want text or json", format)
}
