package mountflags

import (
	"testing"

	"golang.org/x/sys/unix"
)

func TestFromStatfs(t *testing.T) {
	got := FromStatfs(unix.ST_RDONLY | unix.ST_NOSUID | unix.ST_RELATIME)
	if got != unix.MS_RDONLY|unix.MS_NOSUID|unix.MS_RELATIME {
		t.Fatalf("got %#x", got)
	}
}

func TestRemount(t *testing.T) {
	for _, tc := range []struct {
		name         string
		st           int64
		flags, clear uintptr
		want         uintptr
	}{
		{"locked flags kept", unix.ST_NOSUID | unix.ST_NODEV | unix.ST_RELATIME, unix.MS_RDONLY, 0, unix.MS_RDONLY | unix.MS_NOSUID | unix.MS_NODEV | unix.MS_RELATIME},
		{"a cleared flag dropped", unix.ST_NOSUID | unix.ST_NOEXEC, unix.MS_RDONLY, unix.MS_NOEXEC, unix.MS_RDONLY | unix.MS_NOSUID},
		{"an atime mode asked for replaces the mount's", unix.ST_NOATIME, unix.MS_STRICTATIME, 0, unix.MS_STRICTATIME},
	} {
		if got := Remount(tc.st, tc.flags, tc.clear); got != tc.want {
			t.Errorf("%s: %#x, want %#x", tc.name, got, tc.want)
		}
	}
	if got := RemountAtime(unix.ST_RELATIME, unix.MS_RDONLY|unix.MS_NOATIME); got != unix.MS_RDONLY|unix.MS_RELATIME {
		t.Errorf("RemountAtime: %#x", got)
	}
}
