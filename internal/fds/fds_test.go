package fds

import (
	"bytes"
	"errors"
	"io/fs"
	"os"
	"path/filepath"
	"strconv"
	"testing"

	"golang.org/x/sys/unix"
)

func TestCloexecFrom(t *testing.T) {
	r, w, err := os.Pipe()
	if err != nil {
		t.Fatal(err)
	}
	defer r.Close()
	defer w.Close()
	// A fd inherited without the flag, as a caller's would be.
	dup, err := unix.Dup(int(w.Fd()))
	if err != nil {
		t.Fatal(err)
	}
	defer unix.Close(dup)
	flags := func(fd int) int {
		f, err := unix.FcntlInt(uintptr(fd), unix.F_GETFD, 0)
		if err != nil {
			t.Fatal(err)
		}
		return f
	}
	if flags(dup)&unix.FD_CLOEXEC != 0 {
		t.Fatal("dup(2) set FD_CLOEXEC")
	}
	if err := CloexecFrom(dup); err != nil {
		t.Fatal(err)
	}
	if flags(dup)&unix.FD_CLOEXEC == 0 {
		t.Errorf("fd %d has no FD_CLOEXEC after CloexecFrom", dup)
	}
	if _, err := unix.FcntlInt(uintptr(dup), unix.F_GETFD, 0); err != nil {
		t.Errorf("fd %d was closed: %v", dup, err)
	}
}

// TestReadFile: the whole file, past the first buffer; /proc's size-0
// files; errors as os.ReadFile's.
func TestReadFile(t *testing.T) {
	want := bytes.Repeat([]byte("0123456789abcdef"), 300) // 4800 bytes: several buffers
	p := filepath.Join(t.TempDir(), "f")
	if err := os.WriteFile(p, want, 0o600); err != nil {
		t.Fatal(err)
	}
	got, err := ReadFile(p)
	if err != nil || !bytes.Equal(got, want) {
		t.Errorf("ReadFile: %d bytes, %v; want %d bytes", len(got), err, len(want))
	}
	stat, err := ReadFile("/proc/self/stat")
	if err != nil || !bytes.HasPrefix(stat, []byte(strconv.Itoa(os.Getpid())+" (")) {
		t.Errorf("ReadFile(/proc/self/stat): %q, %v", stat, err)
	}
	empty := filepath.Join(t.TempDir(), "empty")
	if err := os.WriteFile(empty, nil, 0o600); err != nil {
		t.Fatal(err)
	}
	if got, err := ReadFile(empty); err != nil || len(got) != 0 {
		t.Errorf("ReadFile(empty): %q, %v", got, err)
	}
	_, err = ReadFile(filepath.Join(t.TempDir(), "absent"))
	var pe *os.PathError
	if !errors.Is(err, fs.ErrNotExist) || !errors.As(err, &pe) || pe.Op != "open" {
		t.Errorf("ReadFile(absent): %v, want an open *os.PathError that is fs.ErrNotExist", err)
	}
	if _, err := ReadFile(t.TempDir()); !errors.Is(err, unix.EISDIR) {
		t.Errorf("ReadFile(a directory): %v, want EISDIR", err)
	}
}

// TestOpen: a close-on-exec file of the path's name, usable as a file.
func TestOpen(t *testing.T) {
	f, err := Open("/proc/self/ns/net", unix.O_RDONLY)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	if f.Name() != "/proc/self/ns/net" {
		t.Errorf("name %q", f.Name())
	}
	flags, err := unix.FcntlInt(f.Fd(), unix.F_GETFD, 0)
	if err != nil || flags&unix.FD_CLOEXEC == 0 {
		t.Errorf("F_GETFD: %#x, %v; want FD_CLOEXEC", flags, err)
	}
	var st, self unix.Stat_t
	if err := unix.Fstat(int(f.Fd()), &st); err != nil {
		t.Fatal(err)
	}
	if err := unix.Stat("/proc/self/ns/net", &self); err != nil {
		t.Fatal(err)
	}
	if st.Ino != self.Ino {
		t.Errorf("inode %d, want %d", st.Ino, self.Ino)
	}
	if _, err := Open(filepath.Join(t.TempDir(), "absent"), unix.O_RDONLY); !errors.Is(err, fs.ErrNotExist) {
		t.Errorf("Open(absent): %v", err)
	}
}

// TestFromRights: the one fd of a message comes out; a message with two
// is an error, and neither stays open.
func TestFromRights(t *testing.T) {
	pair, err := unix.Socketpair(unix.AF_UNIX, unix.SOCK_SEQPACKET|unix.SOCK_CLOEXEC, 0)
	if err != nil {
		t.Fatal(err)
	}
	defer unix.Close(pair[0])
	defer unix.Close(pair[1])
	recv := func(send ...int) (int, error) {
		if err := unix.Sendmsg(pair[0], []byte{'x'}, unix.UnixRights(send...), nil, 0); err != nil {
			t.Fatal(err)
		}
		oob := make([]byte, unix.CmsgSpace(4*len(send)))
		_, oobn, _, _, err := unix.Recvmsg(pair[1], make([]byte, 1), oob, unix.MSG_CMSG_CLOEXEC)
		if err != nil {
			t.Fatal(err)
		}
		return FromRights(oob[:oobn])
	}
	fd, err := recv(pair[0])
	if err != nil || fd < 0 {
		t.Fatalf("one fd: %d, %v", fd, err)
	}
	unix.Close(fd)
	before := openFDs(t)
	if fd, err := recv(pair[0], pair[1]); err == nil || fd != -1 {
		t.Fatalf("two fds: %d, %v; want an error", fd, err)
	}
	if after := openFDs(t); after != before {
		t.Errorf("open fds %d before, %d after a message of two: the two were not closed", before, after)
	}
}

func openFDs(t *testing.T) int {
	ents, err := os.ReadDir("/proc/self/fd")
	if err != nil {
		t.Fatal(err)
	}
	return len(ents)
}
