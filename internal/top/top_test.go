package top

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"
)

// fakeProc writes a /proc entry: stat, status, cmdline and ns/pid.
func fakeProc(t *testing.T, root string, pid int, ns, stat, status, cmdline string) {
	t.Helper()
	dir := filepath.Join(root, strconv.Itoa(pid))
	if err := os.MkdirAll(filepath.Join(dir, "ns"), 0o755); err != nil {
		t.Fatal(err)
	}
	for name, data := range map[string]string{"stat": stat, "status": status, "cmdline": cmdline} {
		if err := os.WriteFile(filepath.Join(dir, name), []byte(data), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	if err := os.Symlink(ns, filepath.Join(dir, "ns", "pid")); err != nil {
		t.Fatal(err)
	}
}

// statLine is a stat line with the fields top reads.
func statLine(pid int, comm, state string, ppid, pgrp, tty int, utime, stime uint64, nice int, start uint64) string {
	// fields 3..24: state ppid pgrp session tty_nr tpgid flags minflt
	// cminflt majflt cmajflt utime stime cutime cstime priority nice
	// num_threads itrealvalue starttime vsize rss
	return fmt.Sprintf("%d (%s) %s %d %d 1 %d -1 0 0 0 0 0 %d %d 0 0 20 %d 1 0 %d 4096000 250 18446744073709551615",
		pid, comm, state, ppid, pgrp, tty, utime, stime, nice, start)
}

func statusText(nspid string, uid, gid int) string {
	return fmt.Sprintf("Name:\tx\nUid:\t%d\t%d\t%d\t%d\nGid:\t%d\t%d\t%d\t%d\nGroups:\t%d 100010\nNSpid:\t%s\nCapInh:\t0000000000000000\nCapPrm:\t00000000a80425fb\nCapEff:\t0000000000000000\nCapBnd:\t00000000a80425fb\nCapAmb:\t0000000000000000\nSeccomp:\t2\n",
		uid, uid, uid, uid, gid, gid, gid, gid, gid, nspid)
}

func TestInNamespaceAndTable(t *testing.T) {
	root := t.TempDir()
	const ctr, host = "pid:[4026532000]", "pid:[4026531836]"
	// The container: init 5000 (pid 1, parent 4990 on the host), a shell
	// exec'd into it (5100, pid 7) and its child (5101, pid 8) whose comm
	// holds parentheses.
	fakeProc(t, root, 5000, ctr, statLine(5000, "sleep", "S", 4990, 5000, 0, 150, 50, 0, 1000), statusText("5000\t1", 100000, 100000), "sleep\x00100\x00")
	fakeProc(t, root, 5100, ctr, statLine(5100, "sh", "S", 4995, 5100, 34816+3, 0, 0, 5, 2000), statusText("5100\t7", 101000, 101000), "/bin/sh\x00")
	fakeProc(t, root, 5101, ctr, statLine(5101, "a) (b", "Z", 5100, 5100, 0, 0, 0, 0, 2100), statusText("5101\t8", 100000, 100000), "")
	// Not the container's: the host's shell.
	fakeProc(t, root, 4990, host, statLine(4990, "bash", "S", 1, 4990, 0, 0, 0, 0, 10), statusText("4990", 1000, 1000), "bash\x00")

	procs, err := InNamespace(root, 5000)
	if err != nil {
		t.Fatal(err)
	}
	if len(procs) != 3 {
		t.Fatalf("%d processes, want the container's 3", len(procs))
	}
	cols, err := Parse([]string{"user,pid", "ppid", "pgid", "%C", "etime", "tty", "time", "args", "huser", "hpid", "group", "groups", "state", "nice", "comm", "seccomp", "capeff", "capbnd", "vsz", "rss"})
	if err != nil {
		t.Fatal(err)
	}
	boot := time.Unix(1_000_000, 0)
	v := &View{
		UIDMap:    []IDMap{{0, 100000, 1}, {1, 100001, 65535}},
		GIDMap:    []IDMap{{0, 100000, 65536}},
		Users:     map[int]string{0: "root", 1000: "app"},
		Groups:    map[int]string{0: "root", 10: "wheel"},
		HostUsers: func(id int) string { return map[int]string{1000: "alice"}[id] },
		Now:       boot.Add(50 * time.Second), // 40 s after the init's start (10 s)
		Boot:      boot,
	}
	rows := Table(procs, cols, v)
	got := make([]string, len(rows))
	for i, r := range rows {
		got[i] = strings.Join(r, "|")
	}
	want := []string{
		"USER|PID|PPID|PGID|%CPU|ELAPSED|TTY|TIME|COMMAND|HUSER|HPID|GROUP|GROUPS|STATE|NI|COMMAND|SECCOMP|EFFECTIVE CAPS|BOUNDING CAPS|VSZ|RSS",
		"root|1|0|1|5.000|40s|?|2s|sleep 100|100000|5000|root|root,wheel|S|0|sleep|filter|none|CHOWN,DAC_OVERRIDE,FOWNER,FSETID,KILL,SETGID,SETUID,SETPCAP,NET_BIND_SERVICE,NET_RAW,SYS_CHROOT,MKNOD,AUDIT_WRITE,SETFCAP|4000|" + strconv.Itoa(250*os.Getpagesize()/1024),
		"app|7|0|7|0.000|30s|pts/3|0s|/bin/sh|101000|5100|1000|1000,wheel|S|5|sh|filter|none|CHOWN,DAC_OVERRIDE,FOWNER,FSETID,KILL,SETGID,SETUID,SETPCAP,NET_BIND_SERVICE,NET_RAW,SYS_CHROOT,MKNOD,AUDIT_WRITE,SETFCAP|4000|" + strconv.Itoa(250*os.Getpagesize()/1024),
		"root|8|7|7|0.000|29s|?|0s|[a) (b]|100000|5101|root|root,wheel|Z|0|a) (b|filter|none|CHOWN,DAC_OVERRIDE,FOWNER,FSETID,KILL,SETGID,SETUID,SETPCAP,NET_BIND_SERVICE,NET_RAW,SYS_CHROOT,MKNOD,AUDIT_WRITE,SETFCAP|4000|" + strconv.Itoa(250*os.Getpagesize()/1024),
	}
	if len(got) != len(want) {
		t.Fatalf("rows:\n%s", strings.Join(got, "\n"))
	}
	for i := range want {
		if got[i] != want[i] {
			t.Errorf("row %d:\n got %s\nwant %s", i, got[i], want[i])
		}
	}
}

func TestInNamespaceNoInit(t *testing.T) {
	if _, err := InNamespace(t.TempDir(), 42); err == nil || !strings.Contains(err.Error(), "container's init (42)") {
		t.Fatalf("err = %v", err)
	}
}

func TestParse(t *testing.T) {
	cols, err := Parse(nil)
	if err != nil {
		t.Fatal(err)
	}
	var headers []string
	for _, c := range cols {
		headers = append(headers, c.Header)
	}
	if got := strings.Join(headers, " "); got != "USER PID PPID %CPU ELAPSED TTY TIME COMMAND" {
		t.Errorf("default headers %q", got)
	}
	if _, err := Parse([]string{"pid", "-eo"}); !errors.Is(err, ErrUnknownDescriptor) || !strings.Contains(err.Error(), `"-eo"`) || !strings.Contains(err.Error(), "huser") {
		t.Errorf("unknown descriptor: %v", err)
	}
	cols, err = Parse([]string{"%p %U"})
	if err != nil || len(cols) != 2 || cols[0].Name != "pid" || cols[1].Name != "user" {
		t.Errorf("AIX codes: %v %v", cols, err)
	}
}

func TestTTYName(t *testing.T) {
	for nr, want := range map[int]string{0: "?", 136 << 8: "pts/0", 136<<8 | 5: "pts/5", 137<<8 | 2: "pts/258", 4<<8 | 1: "tty1", 4<<8 | 65: "ttyS1", 5<<8 | 1: "console", 1<<8 | 3: "?"} {
		if got := ttyName(nr); got != want {
			t.Errorf("ttyName(%#x) = %q, want %q", nr, got, want)
		}
	}
}

func TestToInside(t *testing.T) {
	m := []IDMap{{0, 1000, 1}, {1, 100000, 65536}}
	for host, want := range map[int]int{1000: 0, 100000: 1, 165535: 65536, 1001: 65534, 0: 65534} {
		if got, _ := toInside(m, host); got != want {
			t.Errorf("toInside(%d) = %d, want %d", host, got, want)
		}
	}
}

func TestReadIDMapAndBootTime(t *testing.T) {
	dir := t.TempDir()
	p := filepath.Join(dir, "uid_map")
	if err := os.WriteFile(p, []byte("         0     100000          1\n         1     100001      65535\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	m, err := ReadIDMap(p)
	if err != nil || len(m) != 2 || m[1] != (IDMap{1, 100001, 65535}) {
		t.Fatalf("ReadIDMap = %v, %v", m, err)
	}
	if err := os.WriteFile(filepath.Join(dir, "stat"), []byte("cpu  1 2 3\nbtime 1700000000\nprocesses 5\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	b, err := BootTime(dir)
	if err != nil || b.Unix() != 1700000000 {
		t.Fatalf("BootTime = %v, %v", b, err)
	}
}
