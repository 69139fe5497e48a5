package volumes

import (
	"errors"
	"strings"
	"testing"
)

func TestParseOptions(t *testing.T) {
	dir := t.TempDir()
	for _, tc := range []struct {
		name   string
		opts   map[string]string
		device string // the bind device, when accepted
		noCopy bool
		bad    string // a word of the error; "" when accepted
	}{
		{name: "none", opts: nil},
		{name: "bind", opts: map[string]string{"type": "none", "o": "bind", "device": dir}, device: dir},
		{name: "rbind without type", opts: map[string]string{"o": "rbind", "device": dir + "/"}, device: dir},
		{name: "nocopy key", opts: map[string]string{"nocopy": ""}, noCopy: true},
		{name: "nocopy in o", opts: map[string]string{"o": "nocopy"}, noCopy: true},
		{name: "copy", opts: map[string]string{"copy": ""}},
		{name: "tmpfs", opts: map[string]string{"type": "tmpfs", "device": "tmpfs"}, bad: "--tmpfs"},
		{name: "ext4", opts: map[string]string{"type": "ext4", "device": "/dev/sda1"}, bad: "root in the initial user namespace"},
		{name: "nfs", opts: map[string]string{"type": "nfs", "o": "addr=1.2.3.4", "device": ":/x"}, bad: "type=nfs"},
		{name: "uid", opts: map[string]string{"o": "uid=1000"}, bad: ":U"},
		{name: "size", opts: map[string]string{"o": "size=10m"}, bad: "quota"},
		{name: "none without bind", opts: map[string]string{"type": "none", "device": dir}, bad: "o=bind"},
		{name: "bind without device", opts: map[string]string{"type": "none", "o": "bind"}, bad: "device="},
		{name: "relative device", opts: map[string]string{"type": "none", "o": "bind", "device": "rel"}, bad: "absolute"},
		{name: "bind with ro", opts: map[string]string{"type": "none", "o": "bind,ro", "device": dir}, bad: ":ro"},
		{name: "unknown key", opts: map[string]string{"image": "alpine"}, bad: "type, device and o"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			p, err := parseOptions(tc.opts)
			if tc.bad != "" {
				if !errors.Is(err, ErrUnsupportedOption) || !strings.Contains(err.Error(), tc.bad) {
					t.Fatalf("err %v, want ErrUnsupportedOption with %q", err, tc.bad)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if p.bindDevice != tc.device || p.noCopy != tc.noCopy {
				t.Errorf("got %+v, want device %q nocopy %v", p, tc.device, tc.noCopy)
			}
		})
	}
}

func TestCheckDevice(t *testing.T) {
	if err := (parsedOptions{bindDevice: "/nonexistent/sandy"}).checkDevice(); err == nil {
		t.Error("a missing device passed")
	}
	if err := (parsedOptions{bindDevice: "/proc/self/status"}).checkDevice(); err == nil {
		t.Error("a file as device passed")
	}
	if err := (parsedOptions{bindDevice: t.TempDir()}).checkDevice(); err != nil {
		t.Error(err)
	}
}

func TestParseOptsLabels(t *testing.T) {
	o, err := ParseOpts([]string{"type=none", "o=bind,rbind", "nocopy"})
	if err != nil || o["type"] != "none" || o["o"] != "bind,rbind" || o["nocopy"] != "" || len(o) != 3 {
		t.Errorf("ParseOpts: %v, %v", o, err)
	}
	if _, err := ParseOpts([]string{"=x"}); err == nil {
		t.Error("ParseOpts(=x) passed")
	}
	l, err := ParseLabels([]string{"a=b=c", "d"})
	if err != nil || l["a"] != "b=c" || l["d"] != "" {
		t.Errorf("ParseLabels: %v, %v", l, err)
	}
}

func FuzzParseOptions(f *testing.F) {
	f.Add("type", "none", "o", "bind")
	f.Add("o", "uid=1,size=2", "device", "/x")
	f.Fuzz(func(t *testing.T, k1, v1, k2, v2 string) {
		p, err := parseOptions(map[string]string{k1: v1, k2: v2})
		if err == nil && p.bindDevice != "" && p.bindDevice[0] != '/' {
			t.Errorf("accepted a relative device %q", p.bindDevice)
		}
	})
}
