package seccomp

import (
	"flag"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

var update = flag.Bool("update", false, "rewrite the golden BPF listings in testdata/")

// TestGoldenListings keeps the programs of runc's test profiles as
// listings in testdata/*.bpf, so that a change to the code generator shows
// up in review. Refresh them with `go test ./seccomp -run Golden -update`.
func TestGoldenListings(t *testing.T) {
	for name, p := range runcBatsProfiles() {
		t.Run(name, func(t *testing.T) {
			f, err := compile(p, options{native: archX86_64, enosys: true})
			if err != nil {
				t.Fatal(err)
			}
			var b strings.Builder
			fmt.Fprintf(&b, "# %s: %d instructions, flags %#x\n", name, len(f.Instructions()), f.Flags())
			for i, in := range f.Disassemble() {
				fmt.Fprintf(&b, "%4d  %v\n", i, in)
			}
			path := filepath.Join("testdata", name+".bpf")
			if *update {
				if err := os.WriteFile(path, []byte(b.String()), 0o644); err != nil {
					t.Fatal(err)
				}
				return
			}
			want, err := os.ReadFile(path)
			if err != nil {
				t.Fatalf("%v (run with -update to create it)", err)
			}
			if string(want) != b.String() {
				t.Errorf("%s differs from the compiled program (run with -update if the change is intended):\n%s", path, b.String())
			}
		})
	}
}
