package containers

import (
	"context"
	"errors"
	"fmt"
	"os"
	"os/user"

	"github.com/sandy-rt/sandy/internal/imagehelper"
	"github.com/sandy-rt/sandy/internal/lifecycle"
)

// checkDetach refuses the detached flags this version cannot honour.
func (r RunRequest) checkDetach() error {
	switch r.LogDriver {
	case "", LogDriverK8sFile, LogDriverNone:
	default:
		return fmt.Errorf("--log-driver %q: sandy writes k8s-file logs or none (journald and passthrough are not supported)", r.LogDriver)
	}
	return nil
}

// prepareMonitor writes what a monitor needs to run the container (now
// under -d, later for `sandy container start` of a kept one): its orders
// beside the bundle and the record's detached fields. A --rm container
// run in the foreground is never started again: it gets none.
func (r RunRequest) prepareMonitor(g *lifecycle.Global, p *imagehelper.Prepared, o *lifecycle.RunOptions, vols *volumeSet) error {
	if r.Rm && !r.Runtime.Detach {
		return nil
	}
	cfg := newMonitorConfig(g, r, o, p.Dir, vols.anonymous, r.Options.Terminal, r.Interactive)
	if err := writeMonitorConfig(cfg); err != nil {
		return err
	}
	sig, err := signalName(p.Config.StopSignal)
	if err != nil {
		return fmt.Errorf("image StopSignal: %w", err)
	}
	return updateRecord(p.Dir, func(rec *Record) {
		rec.Detached, rec.Rm = r.Runtime.Detach, r.Rm && r.Runtime.Detach
		rec.StopSignal, rec.AnonymousVolumes, rec.LogDriver = sig, vols.anonymous, cfg.LogDriver
	})
}

// detach is the end of `sandy run -d IMAGE`: the container's monitor,
// started pending (pending.go), gets the container's directory and runs
// it; once its process runs, the id is printed and the status is 0. When
// it does not start, the status is the foreground run's (125, 126, 127)
// and the caller removes the container.
func (r RunRequest) detach(g *lifecycle.Global, p *imagehelper.Prepared, o *lifecycle.RunOptions, pm *pendingMonitor) (int, error) {
	if u, err := user.Current(); err == nil {
		if w := lingerWarning(u.Username, fileExists); w != "" {
			g.Warn(w)
		}
	}
	pm.send(p.Dir)
	g.Debugf("the monitor has the container's directory: waiting for it to start the container")
	if err := pm.wait(p.Dir, r.Stderr); err != nil {
		// A monitor that died in the set-up (killed) left the runtime's
		// state: removed before the caller removes the storage container.
		if derr := lifecycle.Delete(context.Background(), g, p.ID, true); derr != nil {
			g.Debugf("removing the runtime state of %s: %v", p.ID, derr)
		}
		// Or killed while it made that state: its unfinished directory.
		lifecycle.CollectTemp(g)
		var me *MonitorError
		if errors.As(err, &me) {
			return me.Code, err
		}
		return ExitSandyError, err
	}
	fmt.Fprintln(o.Stdout, p.ID)
	return 0, nil
}

// lingerWarning is the line for a systemd host where the user's lingering
// is off: at logout systemd ends the user's manager and removes
// $XDG_RUNTIME_DIR (sandy's runtime state), and with KillUserProcesses the
// session's processes, a detached container's monitor among them.
func lingerWarning(username string, exists func(string) bool) string {
	if !exists("/run/systemd/system") || exists("/var/lib/systemd/linger/"+username) {
		return ""
	}
	return fmt.Sprintf("lingering is off for %s: at logout systemd may end the container with your session and removes $XDG_RUNTIME_DIR, where sandy keeps its state; fix: loginctl enable-linger %s (docs/troubleshooting.md#lingering-is-off-for-user)", username, username)
}

func fileExists(p string) bool {
	_, err := os.Stat(p)
	return err == nil
}
