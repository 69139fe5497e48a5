package cgroupv2

import (
	"errors"
	"os"
	"path/filepath"
	"testing"
)

func TestReadSession(t *testing.T) {
	root := t.TempDir()
	if got := ReadSession(root); got != (Session{}) {
		t.Errorf("empty root: %+v", got)
	}
	if err := os.MkdirAll(filepath.Join(root, "run/systemd/system"), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.MkdirAll(filepath.Join(root, "lib/systemd/user"), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(root, "lib/systemd/user/dbus.socket"), nil, 0o644); err != nil {
		t.Fatal(err)
	}
	if got := ReadSession(root); got != (Session{Systemd: true, UserBus: true}) {
		t.Errorf("systemd with the user bus unit: %+v", got)
	}
}

// TestLingerNoLogind: no system bus is "no logind", which doctor reports
// as nothing stopping processes at logout.
func TestLingerNoLogind(t *testing.T) {
	_, err := Linger(filepath.Join(t.TempDir(), "system_bus_socket"), 1000)
	if !errors.Is(err, ErrNoLogind) {
		t.Errorf("Linger without a bus = %v, want ErrNoLogind", err)
	}
}
