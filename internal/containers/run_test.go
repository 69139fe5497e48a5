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
