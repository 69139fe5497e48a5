package cgroupv2

import (
	"errors"
	"fmt"
	"net"
	"os"
	"path/filepath"
	"strconv"
	"time"

	"github.com/godbus/dbus/v5"
)

// Session is what a systemd user session needs from the host that files
// tell, as `sandy doctor` reports it: whether systemd is the init and
// whether the user bus (the dbus-user-session package on Debian and
// Ubuntu) is installed. Linger asks logind the rest.
type Session struct {
	Systemd bool // systemd is the init: <root>/run/systemd/system exists (sd_booted(3))
	// UserBus: a dbus.socket user unit is installed (dbus-user-session,
	// or dbus-broker's), so a user session has a bus sandy can ask for a
	// scope.
	UserBus bool
}

// ReadSession reads Session with every path under root ("/" on the host;
// tests pass a fake tree).
func ReadSession(root string) Session {
	exists := func(p ...string) bool {
		_, err := os.Stat(filepath.Join(append([]string{root}, p...)...))
		return err == nil
	}
	s := Session{Systemd: exists("run/systemd/system")}
	for _, d := range []string{"usr/lib/systemd/user", "lib/systemd/user", "etc/systemd/user"} {
		if exists(d, "dbus.socket") {
			s.UserBus = true
		}
	}
	return s
}

// LingerCommand is the fix, as root, when Logind is true and Linger false.
func LingerCommand(user string) string { return "loginctl enable-linger " + user }

// lingerTimeout bounds all of Linger: doctor answers in about a second.
const lingerTimeout = 2 * time.Second

// SystemBusSocket is the system bus, where systemd-logind answers.
const SystemBusSocket = "/run/dbus/system_bus_socket"

// ErrNoLogind marks a host where systemd-logind does not answer (no
// system bus, or no logind on it): nothing stops a user's processes at
// logout then.
var ErrNoLogind = errors.New("systemd-logind does not answer")

// Linger asks systemd-logind on the system bus at sock whether uid
// lingers (loginctl show-user -p Linger). A user with neither a session
// nor linger is unknown to logind, which is linger off. Without linger
// systemd stops the user's manager, its user bus and every scope under it
// (the systemd cgroup manager's containers) when the user's last session
// ends. The error wraps ErrNoLogind when logind does not answer.
func Linger(sock string, uid uint32) (bool, error) {
	c, err := net.DialTimeout("unix", sock, lingerTimeout)
	if err != nil {
		return false, fmt.Errorf("%w: connecting to the system bus %s: %w", ErrNoLogind, sock, err)
	}
	_ = c.SetDeadline(time.Now().Add(lingerTimeout))
	conn, err := dbus.NewConn(c)
	if err != nil {
		c.Close()
		return false, fmt.Errorf("%w: system bus %s: %w", ErrNoLogind, sock, err)
	}
	defer conn.Close()
	if err := conn.Auth([]dbus.Auth{dbus.AuthExternal(strconv.Itoa(os.Getuid()))}); err != nil {
		return false, fmt.Errorf("%w: authenticating to the system bus %s: %w", ErrNoLogind, sock, err)
	}
	if err := conn.Hello(); err != nil {
		return false, fmt.Errorf("%w: system bus %s: %w", ErrNoLogind, sock, err)
	}
	var path dbus.ObjectPath
	err = conn.Object("org.freedesktop.login1", "/org/freedesktop/login1").Call("org.freedesktop.login1.Manager.GetUser", 0, uid).Store(&path)
	var de dbus.Error
	switch {
	case errors.As(err, &de) && de.Name == "org.freedesktop.login1.NoSuchUser":
		return false, nil
	case err != nil:
		return false, fmt.Errorf("%w: asking login1 for user %d: %w", ErrNoLogind, uid, err)
	}
	v, err := conn.Object("org.freedesktop.login1", path).GetProperty("org.freedesktop.login1.User.Linger")
	if err != nil {
		return false, fmt.Errorf("reading Linger of %s: %w", path, err)
	}
	on, _ := v.Value().(bool)
	return on, nil
}
