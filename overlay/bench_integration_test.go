//go:build integration && linux

package overlay

import (
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"sort"
	"strings"
	"testing"
	"time"

	specs "github.com/opencontainers/runtime-spec/specs-go"
)

// The numbers for docs/rootfs.md, run by hack/bench-overlay.sh as the test
// user (SANDY_OVERLAY_BENCH=1). They measure Mount directly, inside a user
// + mount + pid namespace made by unshare(1) with the full subordinate map,
// as the init calls it, to separate the rung's cost from the rest of sandy's
// start-up (the script also times sandy run end to end).

type ioResult struct {
	BigMiB      int
	Write       time.Duration // write BigMiB in 1 MiB writes
	Big         time.Duration // the same, then fsync
	SmallFiles  int
	Small       time.Duration // create, write 4 KiB, close; SmallFiles times
	SmallDelete time.Duration // remove them again
}

func (r ioResult) String() string {
	return fmt.Sprintf("dd %d MiB: %5.0f MiB/s written, %5.0f MiB/s incl. fsync | %d x 4 KiB files: %6.0f created/s, %6.0f deleted/s",
		r.BigMiB, float64(r.BigMiB)/r.Write.Seconds(), float64(r.BigMiB)/r.Big.Seconds(), r.SmallFiles, float64(r.SmallFiles)/r.Small.Seconds(), float64(r.SmallFiles)/r.SmallDelete.Seconds())
}

func ioBench(dir string) (ioResult, error) {
	r := ioResult{BigMiB: 512, SmallFiles: 5000}
	d := filepath.Join(dir, "bench")
	if err := os.Mkdir(d, 0o755); err != nil {
		return r, err
	}
	buf := make([]byte, 1<<20)
	for i := range buf {
		buf[i] = byte(i)
	}
	start := time.Now()
	f, err := os.OpenFile(filepath.Join(d, "big"), os.O_CREATE|os.O_EXCL|os.O_WRONLY, 0o644)
	if err != nil {
		return r, err
	}
	for range r.BigMiB {
		if _, err := f.Write(buf); err != nil {
			f.Close()
			return r, err
		}
	}
	r.Write = time.Since(start)
	if err := f.Sync(); err != nil {
		f.Close()
		return r, err
	}
	f.Close()
	r.Big = time.Since(start)
	if err := os.Remove(filepath.Join(d, "big")); err != nil {
		return r, err
	}
	small := buf[:4096]
	start = time.Now()
	for i := range r.SmallFiles {
		if err := os.WriteFile(filepath.Join(d, fmt.Sprintf("f%05d", i)), small, 0o644); err != nil {
			return r, err
		}
	}
	r.Small = time.Since(start)
	start = time.Now()
	for i := range r.SmallFiles {
		if err := os.Remove(filepath.Join(d, fmt.Sprintf("f%05d", i))); err != nil {
			return r, err
		}
	}
	r.SmallDelete = time.Since(start)
	return r, os.Remove(d)
}

func benchEnabled(t *testing.T) {
	if os.Getenv("SANDY_OVERLAY_BENCH") != "1" {
		t.Skip("benchmark: run hack/bench-overlay.sh (SANDY_OVERLAY_BENCH=1)")
	}
	if os.Getuid() == 0 {
		t.Skip("benchmark: run as the unprivileged test user (hack/bench-overlay.sh does)")
	}
	requireFuse(t)
}

func median(ds []time.Duration) time.Duration {
	s := append([]time.Duration(nil), ds...)
	sort.Slice(s, func(i, j int) bool { return s[i] < s[j] })
	return s[len(s)/2]
}

// TestBenchStartup: time spent in Mount per rung, busybox rootfs, median of
// 15, and what each adds over a plain bind.
func TestBenchStartup(t *testing.T) {
	benchEnabled(t)
	f := newFixture(t)
	const n = 15
	res := map[Mode]time.Duration{}
	for _, mode := range []Mode{ModeBind, ModeOverlay, ModeFuse, ModeCopy} {
		var ds []time.Duration
		for range n {
			resp := runHelper(t, nsFull, helperReq{Opts: Options{Lower: f.rootfs, LayerDir: f.layer, Mode: mode}})
			if resp.Err != "" {
				t.Fatalf("%s: %s", mode, resp.Err)
			}
			ds = append(ds, time.Duration(resp.MountNS))
		}
		res[mode] = median(ds)
	}
	fmt.Printf("\n## startup: time in Mount, busybox rootfs (%d runs, median)\n", n)
	for _, mode := range []Mode{ModeBind, ModeOverlay, ModeFuse, ModeCopy} {
		fmt.Printf("BENCH startup %-8s %8.2f ms   (+%.2f ms vs bind)\n", mode, ms(res[mode]), ms(res[mode]-res[ModeBind]))
	}
	benchScan(t, "startup", f.rootfs)
}

// benchScan times the host-side owner check on rootfs under the single-id
// map (every subordinate-owned file unmapped), median of 15: the whole tree
// and the lifecycle's bounded scan.
func benchScan(t *testing.T, label, rootfs string) {
	uids := []specs.LinuxIDMapping{{HostID: uint32(os.Getuid()), Size: 1}}
	gids := []specs.LinuxIDMapping{{HostID: uint32(os.Getgid()), Size: 1}}
	for _, limit := range []int{0, DefaultScanLimit} {
		var ds []time.Duration
		var rep *OwnerReport
		for range 15 {
			t0 := time.Now()
			var err error
			if rep, err = ScanOwners(rootfs, uids, gids, limit); err != nil {
				t.Fatal(err)
			}
			ds = append(ds, time.Since(t0))
		}
		fmt.Printf("BENCH %s ScanOwners limit %-5d %8.2f ms  (%d entries checked, %d unmapped, whole tree: %v)\n",
			label, limit, ms(median(ds)), rep.Checked, rep.Count, rep.Complete)
	}
}

func ms(d time.Duration) float64 { return float64(d) / float64(time.Millisecond) }

// TestBenchIO: write throughput in the merged root against the host dir the
// layer lives on.
func TestBenchIO(t *testing.T) {
	benchEnabled(t)
	f := newFixture(t)
	host := filepath.Join(f.dir, "hostdir")
	if err := os.Mkdir(host, 0o755); err != nil {
		t.Fatal(err)
	}
	fmt.Printf("\n## write throughput (layer dir on %s)\n", fsTypeName(f.dir))
	hr, err := ioBench(host)
	if err != nil {
		t.Fatal(err)
	}
	fmt.Printf("BENCH io %-8s %s\n", "host", hr)
	for _, mode := range []Mode{ModeOverlay, ModeFuse} {
		resp := runHelper(t, nsFull, helperReq{Opts: Options{Lower: f.rootfs, LayerDir: f.layer, Mode: mode}, IOBench: true})
		if resp.Err != "" {
			t.Fatalf("%s: %s", mode, resp.Err)
		}
		fmt.Printf("BENCH io %-8s %s\n", mode, resp.IO)
	}
}

// TestBenchBigRootfs: a 1 GB rootfs whose files belong to many subordinate
// ids, mounted with the full subordinate map: first run against second run,
// and against the copy rung (what a chown copy would cost at least).
func TestBenchBigRootfs(t *testing.T) {
	benchEnabled(t)
	f := newFixture(t)
	big := filepath.Join(f.dir, "big")
	start := time.Now()
	// 960 files of 1 MiB and 16384 of 4 KiB in 64 directories, owners
	// spread over container ids 0..6300 (host ids in the subordinate range).
	if err := os.MkdirAll(filepath.Join(big, "rootfs"), 0o755); err != nil {
		t.Fatal(err)
	}
	mib := make([]byte, 1<<20)
	for i := range mib {
		mib[i] = byte(i * 7)
	}
	for d := range 64 {
		dir := filepath.Join(big, "rootfs", fmt.Sprintf("d%d", d))
		must(t, os.Mkdir(dir, 0o755))
		for i := d; i < 960; i += 64 {
			must(t, os.WriteFile(filepath.Join(dir, fmt.Sprintf("m%d", i)), mib, 0o644))
		}
		for i := range 256 {
			must(t, os.WriteFile(filepath.Join(dir, fmt.Sprintf("s%d", i)), mib[:4096], 0o644))
		}
	}
	script := `set -e; cd "$1/rootfs"; for d in $(seq 0 63); do chown -R $((d * 100)):$((d * 100)) d$d; done`
	t.Cleanup(func() {
		_ = exec.Command("unshare", "--user", "--map-root-user", "--map-auto", "rm", "-rf", big).Run()
	})
	out, err := exec.Command("unshare", "--user", "--map-root-user", "--map-auto", "sh", "-c", script, "sh", big).CombinedOutput()
	if err != nil {
		t.Fatalf("making the big rootfs: %v: %s", err, out)
	}
	du, _ := exec.Command("du", "-sh", "--apparent-size", filepath.Join(big, "rootfs")).Output()
	fmt.Printf("\n## 1 GB rootfs, full subordinate map (made in %.1f s: %s)\n", time.Since(start).Seconds(), strings.TrimSpace(string(du)))
	lower := filepath.Join(big, "rootfs")
	benchScan(t, "big", lower)
	for _, mode := range []Mode{ModeOverlay, ModeFuse, ModeCopy} {
		for run := 1; run <= 2; run++ {
			t0 := time.Now()
			resp := runHelper(t, nsFull, helperReq{
				Opts:  Options{Lower: lower, LayerDir: f.layer, Mode: mode},
				Shell: `ls -ln d63/m63 | cut -d' ' -f3; du -s "$ROOT/../upper" 2>/dev/null | cut -f1`,
			})
			total := time.Since(t0)
			if resp.Err != "" {
				t.Fatalf("%s: %s", mode, resp.Err)
			}
			owner, upper, _ := strings.Cut(strings.TrimSpace(resp.Shell), "\n")
			fmt.Printf("BENCH big %-8s run %d: Mount %9.2f ms, whole helper %8.0f ms, owner of /d63/m63 inside: %s, upper dir after mount: %s KiB\n",
				mode, run, ms(time.Duration(resp.MountNS)), ms(total), owner, upper)
			if err := Cleanup(f.layer); err != nil {
				cleanupEverything(t, f.layer)
			}
			_ = os.Mkdir(f.layer, 0o700)
		}
	}
}
