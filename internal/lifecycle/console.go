package lifecycle

import (
	"fmt"
	"net"
	"os"

	"golang.org/x/sys/unix"
)

// sendConsole hands the pty master to the caller's --console-socket: one
// message carrying the fd by SCM_RIGHTS, as runc does (the name in the
// message body is the pty's path, which conmon and the shims ignore).
func sendConsole(socketPath string, master *os.File) error {
	conn, err := net.Dial("unix", socketPath)
	if err != nil {
		return fmt.Errorf("connecting to --console-socket %s: %w", socketPath, err)
	}
	defer conn.Close()
	uc, ok := conn.(*net.UnixConn)
	if !ok {
		return fmt.Errorf("--console-socket %s is not a unix socket", socketPath)
	}
	oob := unix.UnixRights(int(master.Fd()))
	if _, _, err := uc.WriteMsgUnix([]byte(master.Name()), oob, nil); err != nil {
		return fmt.Errorf("sending the pty to --console-socket %s: %w", socketPath, err)
	}
	return nil
}
