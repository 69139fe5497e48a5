//go:build linux

package userns

import (
	"bytes"
	"errors"
	"io"
	"os"
	"testing"

	"golang.org/x/sys/unix"
)

// TestSealWritesRetriesBusy: F_ADD_SEALS' EBUSY (pages still referenced
// from an LRU batch, seen on a loaded machine) is tried again; other
// errors and a lasting EBUSY are returned.
func TestSealWritesRetriesBusy(t *testing.T) {
	for _, c := range []struct {
		name  string
		errs  []error // one per call; nil then
		tries int
		want  error
	}{
		{"at once", nil, 1, nil},
		{"busy twice", []error{unix.EBUSY, unix.EBUSY}, 3, nil},
		{"another error", []error{unix.EPERM}, 1, unix.EPERM},
		{"busy for good", []error{unix.EBUSY, unix.EBUSY, unix.EBUSY, unix.EBUSY, unix.EBUSY, unix.EBUSY, unix.EBUSY}, 6, unix.EBUSY},
	} {
		calls := 0
		err := sealWrites(3, func(fd, seals int) error {
			calls++
			if seals&unix.F_SEAL_WRITE == 0 || fd != 3 {
				t.Errorf("%s: fd %d seals %#x", c.name, fd, seals)
			}
			if calls <= len(c.errs) {
				return c.errs[calls-1]
			}
			return nil
		})
		if calls != c.tries || !errors.Is(err, c.want) && !(err == nil && c.want == nil) {
			t.Errorf("%s: %d calls, %v; want %d, %v", c.name, calls, err, c.tries, c.want)
		}
	}
}

// TestSealedCopy: the copy is the binary, byte for byte, and it is
// sealed against writes and growth.
func TestSealedCopy(t *testing.T) {
	src, err := os.Open("/proc/self/exe")
	if err != nil {
		t.Fatal(err)
	}
	defer src.Close()
	dst, err := sealedCopy(src)
	if err != nil {
		t.Fatal(err)
	}
	defer dst.Close()
	want, err := os.ReadFile("/proc/self/exe")
	if err != nil {
		t.Fatal(err)
	}
	got, err := io.ReadAll(io.NewSectionReader(dst, 0, 1<<40))
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(got, want) {
		t.Errorf("the copy has %d bytes, not the binary's %d (or other bytes)", len(got), len(want))
	}
	seals, err := unix.FcntlInt(dst.Fd(), unix.F_GET_SEALS, 0)
	if err != nil {
		t.Fatal(err)
	}
	if want := unix.F_SEAL_SEAL | unix.F_SEAL_SHRINK | unix.F_SEAL_GROW | unix.F_SEAL_WRITE; seals&want != want {
		t.Errorf("seals %#x, want %#x", seals, want)
	}
	if _, err := dst.WriteAt([]byte("x"), 0); err == nil {
		t.Error("a write to the sealed copy succeeded")
	}
}
