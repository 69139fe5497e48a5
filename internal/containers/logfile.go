package containers

import (
	"errors"
	"fmt"
	"os"
	"strconv"
	"strings"

	"golang.org/x/sys/unix"
)

// OldLogFile is the log rotated out by --log-opt max-size: the log's
// previous part, read before LogFile.
const OldLogFile = LogFile + ".1"

// logFile is the monitor's LogFile, rotated when a write would take it
// past max bytes (max 0: never): LogFile becomes OldLogFile (replacing
// the one before) and a new LogFile is begun. ctrlog writes whole entries
// in each Write, so an entry is never split between the two files. So
// `sandy logs` shows the last max to 2×max bytes of output; conmon, which
// truncates instead, shows the last 0 to max.
type logFile struct {
	path string
	max  int64
	f    *os.File
	size int64
}

func openLogFile(path string, max int64) (*logFile, error) {
	f, err := os.OpenFile(path, os.O_WRONLY|os.O_APPEND|os.O_CREATE|unix.O_CLOEXEC, 0o600)
	if err != nil {
		return nil, err
	}
	fi, err := f.Stat()
	if err != nil {
		f.Close()
		return nil, err
	}
	return &logFile{path: path, max: max, f: f, size: fi.Size()}, nil
}

func (l *logFile) Write(p []byte) (int, error) {
	if l.max > 0 && l.size > 0 && l.size+int64(len(p)) > l.max {
		if err := l.rotate(); err != nil {
			return 0, err
		}
	}
	n, err := l.f.Write(p)
	l.size += int64(n)
	return n, err
}

func (l *logFile) rotate() error {
	if err := os.Rename(l.path, l.path+".1"); err != nil {
		return fmt.Errorf("rotating the log: %w", err)
	}
	f, err := os.OpenFile(l.path, os.O_WRONLY|os.O_APPEND|os.O_CREATE|os.O_EXCL|unix.O_CLOEXEC, 0o600)
	if err != nil {
		return fmt.Errorf("rotating the log: %w", err)
	}
	l.f.Close()
	l.f, l.size = f, 0
	return nil
}

func (l *logFile) Close() error { return l.f.Close() }

// ParseLogOpts reads --log-opt values (podman's): max-size=SIZE, a
// number of bytes with an optional decimal unit (k, m, g, with or
// without b, any case: 10mb is 10,000,000, as podman's FromHumanSize).
// It returns the size cap (0: none).
func ParseLogOpts(opts []string) (int64, error) {
	var max int64
	for _, o := range opts {
		k, v, ok := strings.Cut(o, "=")
		if !ok || k != "max-size" {
			return 0, fmt.Errorf("--log-opt %q: sandy takes max-size=SIZE only", o)
		}
		n, err := parseSize(v)
		if err != nil {
			return 0, fmt.Errorf("--log-opt %q: %w", o, err)
		}
		max = n
	}
	return max, nil
}

var errSize = errors.New("want a size: a number with an optional unit k, m or g (10mb)")

func parseSize(s string) (int64, error) {
	t := strings.TrimSuffix(strings.ToLower(strings.TrimSpace(s)), "b")
	mult := int64(1)
	if t != "" {
		switch t[len(t)-1] {
		case 'k':
			mult = 1e3
		case 'm':
			mult = 1e6
		case 'g':
			mult = 1e9
		}
		if mult > 1 {
			t = t[:len(t)-1]
		}
	}
	f, err := strconv.ParseFloat(t, 64)
	if err != nil || f < 0 || f*float64(mult) > 1<<62 {
		return 0, errSize
	}
	return int64(f * float64(mult)), nil
}
