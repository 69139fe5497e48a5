package containers

import (
	"reflect"
	"testing"

	"github.com/sandy-rt/sandy/internal/imagehelper"
)

func TestWithoutRuntimeMounts(t *testing.T) {
	in := []imagehelper.Change{{Path: "/added", Kind: "A"}, {Path: "/etc", Kind: "C"}, {Path: "/etc/hostname", Kind: "A"},
		{Path: "/etc/hosts", Kind: "A"}, {Path: "/run", Kind: "C"}, {Path: "/run/x", Kind: "A"}, {Path: "/etc/hostname.bak", Kind: "A"}}
	want := []imagehelper.Change{{Path: "/added", Kind: "A"}, {Path: "/etc", Kind: "C"}, {Path: "/run/x", Kind: "A"}, {Path: "/etc/hostname.bak", Kind: "A"}}
	if got := WithoutRuntimeMounts(in); !reflect.DeepEqual(got, want) {
		t.Errorf("got %v, want %v", got, want)
	}
	if len(in) != 7 {
		t.Error("the input was changed")
	}
}
