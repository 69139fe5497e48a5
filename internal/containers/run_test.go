package containers

import (
	"strings"
	"testing"
)

// TestRunRequestCheck: what run IMAGE refuses before anything is made.
func TestRunRequestCheck(t *testing.T) {
	for _, tc := range []struct {
		r    RunRequest
		want string
	}{
		{RunRequest{Name: "web-1.test_a"}, ""},
		{RunRequest{Name: "-x"}, "names must match"},
		{RunRequest{Name: "a/b"}, "names must match"},
		{RunRequest{Name: "a\nb"}, "names must match"},
		{RunRequest{Options: Options{Userns: "keep-id"}}, ""},
	} {
		err := tc.r.check()
		switch {
		case tc.want == "" && err != nil:
			t.Errorf("%+v: %v", tc.r, err)
		case tc.want != "" && (err == nil || !strings.Contains(err.Error(), tc.want)):
			t.Errorf("%+v: %v, want %q", tc.r, err, tc.want)
		}
	}
}

// goInitFlags names the flags whose config only the Go init sets up, so
// that such a container's init starts beside the image helper; the rest
// may take the raw init.
func TestGoInitFlags(t *testing.T) {
	for _, c := range []struct {
		o    Options
		want string
	}{
		{Options{}, ""},
		{Options{Volumes: []string{"/src:/src"}, Workdir: "/src", User: "1000"}, ""},
		{Options{Init: true}, "--init"},
		{Options{Tmpfs: []string{"/scratch"}}, "a tmpfs that copies the image's directory up (/scratch)"},
		{Options{Tmpfs: []string{"/scratch:notmpcopyup,size=1m"}}, ""},
		{Options{Mounts: []string{"type=tmpfs,destination=/t"}}, "a tmpfs that copies the image's directory up (/t)"},
		{Options{Mounts: []string{"type=tmpfs,destination=/t,notmpcopyup"}}, ""},
		{Options{Mounts: []string{"type=bind,source=/a,destination=/b"}}, ""},
	} {
		if got := goInitFlags(c.o); got != c.want {
			t.Errorf("goInitFlags(%+v) = %q, want %q", c.o, got, c.want)
		}
	}
}
