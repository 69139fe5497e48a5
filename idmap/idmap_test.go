package idmap

import (
	"errors"
	"fmt"
	"math"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"

	specs "github.com/opencontainers/runtime-spec/specs-go"
)

func mapping(c, h, s uint32) specs.LinuxIDMapping {
	return specs.LinuxIDMapping{ContainerID: c, HostID: h, Size: s}
}

func TestParseSubID(t *testing.T) {
	tests := []struct {
		name    string
		text    string // or file under testdata when it starts with "@"
		user    string
		id      uint32
		want    []SubIDRange
		wantErr string // substring; "" = no error
	}{
		{name: "one line", text: "alice:100000:65536\n", user: "alice", id: 1000,
			want: []SubIDRange{{100000, 65536}}},
		{name: "no trailing newline", text: "alice:100000:65536", user: "alice", id: 1000,
			want: []SubIDRange{{100000, 65536}}},
		{name: "several lines in file order, by name and by uid", text: "@subuid.multi", user: "alice", id: 1000,
			want: []SubIDRange{{100000, 65536}, {231072, 1000}, {300000, 10}}},
		{name: "numeric uid only", text: "@subuid.multi", user: "", id: 1000,
			want: []SubIDRange{{231072, 1000}}},
		{name: "only other users", text: "@subuid.multi", user: "dave", id: 1001, want: nil},
		{name: "name is not a prefix match", text: "alice2:1:5\nalic:7:5\n", user: "alice", id: 1, want: nil},
		{name: "crlf", text: "@subuid.crlf", user: "bob", id: 1, want: []SubIDRange{{165536, 65536}}},
		{name: "empty file", text: "@subuid.empty", user: "alice", id: 1000, want: nil},
		{name: "last valid id", text: "alice:4294967294:1\n", user: "alice", want: []SubIDRange{{4294967294, 1}}},
		{name: "duplicates kept for the builder", text: "@subuid.overlap", user: "alice",
			want: []SubIDRange{{100000, 65536}, {100000, 65536}, {150000, 30000}, {1000, 10}}},

		{name: "two fields", text: "@subuid.malformed", user: "alice", wantErr: "line 3 "},
		{name: "four fields", text: "x\n\nalice:1:2:3\n", user: "alice", wantErr: "line 1 "},
		{name: "four fields line 3", text: "#x\n\nalice:1:2:3\n", user: "alice", wantErr: "line 3 "},
		{name: "empty owner", text: ":1:2\n", wantErr: "empty owner"},
		{name: "start not a number", text: "alice:abc:2\n", wantErr: "start \"abc\""},
		{name: "negative count", text: "alice:1:-2\n", wantErr: "count \"-2\""},
		{name: "start too big", text: "alice:4294967296:1\n", wantErr: "not a uint32"},
		{name: "zero count", text: "alice:100000:0\n", wantErr: "count is 0"},
		{name: "overflows uint32", text: "alice:4294967295:1\n", wantErr: "passes the last id"},
		{name: "overflows by sum", text: "alice:4000000000:300000000\n", wantErr: "passes the last id"},
		{name: "malformed line of another user", text: "alice:1:2\nbob:x:1\n", user: "alice", wantErr: "line 2 "},
		{name: "spaces inside fields", text: "alice: 1:2\n", wantErr: "line 1 "},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			text := tc.text
			if f, ok := strings.CutPrefix(text, "@"); ok {
				b, err := os.ReadFile(filepath.Join("testdata", f))
				if err != nil {
					t.Fatal(err)
				}
				text = string(b)
			}
			got, err := ParseSubID(strings.NewReader(text), tc.user, tc.id)
			if tc.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tc.wantErr) || !errors.Is(err, ErrMalformed) {
					t.Fatalf("err = %v, want one containing %q wrapping ErrMalformed", err, tc.wantErr)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if !reflect.DeepEqual(got, tc.want) {
				t.Fatalf("got %v, want %v", got, tc.want)
			}
		})
	}
}

func TestParseGetsubids(t *testing.T) {
	tests := []struct {
		name, out string
		want      []SubIDRange
		wantErr   bool
	}{
		{name: "one", out: "0: alice 100000 65536\n", want: []SubIDRange{{100000, 65536}}},
		{name: "two", out: "0: alice 100000 65536\n1: alice 300000 10\n", want: []SubIDRange{{100000, 65536}, {300000, 10}}},
		{name: "empty", out: "", want: nil},
		{name: "garbage", out: "Error fetching ranges\n", wantErr: true},
		{name: "zero count", out: "0: alice 1 0\n", wantErr: true},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			got, err := parseGetsubids(tc.out)
			if (err != nil) != tc.wantErr {
				t.Fatalf("err = %v, wantErr %v", err, tc.wantErr)
			}
			if !tc.wantErr && !reflect.DeepEqual(got, tc.want) {
				t.Fatalf("got %v, want %v", got, tc.want)
			}
		})
	}
}

func TestBuildAuto(t *testing.T) {
	many := make([]SubIDRange, MaxLines) // 340 ranges + own id = 341 lines
	for i := range many {
		many[i] = SubIDRange{Start: uint32(100000 + 2*i), Count: 1}
	}
	fits := many[:MaxLines-1]
	tests := []struct {
		name    string
		own     uint32
		ranges  []SubIDRange
		want    []specs.LinuxIDMapping
		wantErr bool
	}{
		{name: "no ranges", own: 1000, want: []specs.LinuxIDMapping{mapping(0, 1000, 1)}},
		{name: "one range", own: 1000, ranges: []SubIDRange{{100000, 65536}},
			want: []specs.LinuxIDMapping{mapping(0, 1000, 1), mapping(1, 100000, 65536)}},
		{name: "several ranges in file order", own: 1000, ranges: []SubIDRange{{300000, 10}, {100000, 65536}},
			want: []specs.LinuxIDMapping{mapping(0, 1000, 1), mapping(1, 300000, 10), mapping(11, 100000, 65536)}},
		{name: "adjacent ranges merge", own: 1000, ranges: []SubIDRange{{100000, 10}, {100010, 20}},
			want: []specs.LinuxIDMapping{mapping(0, 1000, 1), mapping(1, 100000, 30)}},
		{name: "own id adjacent is not merged", own: 99999, ranges: []SubIDRange{{100000, 10}},
			want: []specs.LinuxIDMapping{mapping(0, 99999, 1), mapping(1, 100000, 10)}},
		{name: "duplicates and overlaps dropped", own: 1000,
			ranges: []SubIDRange{{100000, 65536}, {100000, 65536}, {150000, 30000}},
			want:   []specs.LinuxIDMapping{mapping(0, 1000, 1), mapping(1, 100000, 80000)}},
		{name: "range holding own id is split", own: 1000, ranges: []SubIDRange{{990, 20}},
			want: []specs.LinuxIDMapping{mapping(0, 1000, 1), mapping(1, 990, 10), mapping(11, 1001, 9)}},
		{name: "container ids clipped at the last id", own: 0, ranges: []SubIDRange{{1, math.MaxUint32 - 1}},
			want: []specs.LinuxIDMapping{mapping(0, 0, 1), mapping(1, 1, math.MaxUint32-1)}},
		{name: "339 ranges fit", own: 1000, ranges: fits},
		{name: "340 ranges are too many", own: 1000, ranges: many, wantErr: true},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			got, err := buildAuto(tc.own, tc.ranges)
			if tc.wantErr {
				if !errors.Is(err, ErrInvalidMapping) {
					t.Fatalf("err = %v, want ErrInvalidMapping", err)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if tc.want != nil && !reflect.DeepEqual(got, tc.want) {
				t.Fatalf("got %v, want %v", got, tc.want)
			}
			// Whatever the input, the kernel must accept the result.
			if err := ValidateMappings("uidMappings", got); err != nil {
				t.Fatalf("built map does not validate: %v", err)
			}
			if got[0] != mapping(0, tc.own, 1) {
				t.Fatalf("first line %v, want 0 -> own id", got[0])
			}
		})
	}
}

func TestValidateMappings(t *testing.T) {
	tooMany := make([]specs.LinuxIDMapping, MaxLines+1)
	for i := range tooMany {
		tooMany[i] = mapping(uint32(i), uint32(100000+i), 1)
	}
	tests := []struct {
		name    string
		m       []specs.LinuxIDMapping
		wantErr string
	}{
		{name: "ok", m: []specs.LinuxIDMapping{mapping(0, 1000, 1), mapping(1, 100000, 65536)}},
		{name: "ok unordered", m: []specs.LinuxIDMapping{mapping(1, 100000, 65536), mapping(0, 1000, 1)}},
		{name: "max lines ok", m: tooMany[:MaxLines]},
		{name: "last id ok", m: []specs.LinuxIDMapping{mapping(math.MaxUint32-1, math.MaxUint32-1, 1)}},
		{name: "empty", m: nil, wantErr: "is empty"},
		{name: "too many lines", m: tooMany, wantErr: "341 lines"},
		{name: "zero size", m: []specs.LinuxIDMapping{mapping(0, 1000, 1), mapping(1, 100000, 0)}, wantErr: "uidMappings[1] {containerID: 1, hostID: 100000, size: 0}: size is 0"},
		{name: "container overflow", m: []specs.LinuxIDMapping{mapping(math.MaxUint32, 1000, 1)}, wantErr: "[0] {containerID: 4294967295, hostID: 1000, size: 1}: container ids pass"},
		{name: "host overflow", m: []specs.LinuxIDMapping{mapping(0, 4294000000, 1000000)}, wantErr: "host ids pass"},
		{name: "container overlap", m: []specs.LinuxIDMapping{mapping(0, 1000, 1), mapping(10, 100000, 100), mapping(50, 200000, 10)}, wantErr: "uidMappings[1] {containerID: 10, hostID: 100000, size: 100} and uidMappings[2] {containerID: 50, hostID: 200000, size: 10}: container ids overlap"},
		{name: "host overlap", m: []specs.LinuxIDMapping{mapping(0, 100050, 1), mapping(1, 100000, 100)}, wantErr: "uidMappings[0] {containerID: 0, hostID: 100050, size: 1} and uidMappings[1] {containerID: 1, hostID: 100000, size: 100}: host ids overlap"},
		{name: "duplicate", m: []specs.LinuxIDMapping{mapping(0, 1000, 1), mapping(0, 1000, 1)}, wantErr: "container ids overlap"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			err := ValidateMappings("uidMappings", tc.m)
			if tc.wantErr == "" {
				if err != nil {
					t.Fatal(err)
				}
				return
			}
			if err == nil || !strings.Contains(err.Error(), tc.wantErr) || !errors.Is(err, ErrInvalidMapping) {
				t.Fatalf("err = %v, want one containing %q wrapping ErrInvalidMapping", err, tc.wantErr)
			}
		})
	}
}

// subFiles writes subuid and subgid files into a temp dir.
func subFiles(t *testing.T, subuid, subgid string) (string, string) {
	t.Helper()
	d := t.TempDir()
	u, g := filepath.Join(d, "subuid"), filepath.Join(d, "subgid")
	for f, s := range map[string]string{u: subuid, g: subgid} {
		if s == "<missing>" {
			continue
		}
		if err := os.WriteFile(f, []byte(s), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	return u, g
}

var (
	helpersOK     = helperStatus{uidPath: "/h/newuidmap", gidPath: "/h/newgidmap"}
	helpersAbsent = helperStatus{problem: &problem{what: "newuidmap not found in PATH", fix: installHint, anchor: "newuidmap-missing", pkg: "uidmap"}}
)

func TestResolve(t *testing.T) {
	const alice = "alice:100000:65536\nbob:165536:65536\n"
	tests := []struct {
		name           string
		subuid, subgid string
		h              helperStatus
		uids, gids     []specs.LinuxIDMapping // from config.json
		wantUIDs       []specs.LinuxIDMapping
		wantGIDs       []specs.LinuxIDMapping
		wantHelpers    bool
		wantWarning    []string // substrings; nil = no warning
		wantRootFix    []string // SUBUID, SUBGID: the files' paths
		wantPackages   []string
		wantErr        []string // substrings
		wantErrIs      error
	}{
		{name: "automatic", subuid: alice, subgid: alice, h: helpersOK,
			wantUIDs:    []specs.LinuxIDMapping{mapping(0, 1000, 1), mapping(1, 100000, 65536)},
			wantGIDs:    []specs.LinuxIDMapping{mapping(0, 1001, 1), mapping(1, 100000, 65536)},
			wantHelpers: true},
		{name: "automatic by numeric uid", subuid: "1000:200000:10\n", subgid: "1000:200000:10\n", h: helpersOK,
			wantUIDs:    []specs.LinuxIDMapping{mapping(0, 1000, 1), mapping(1, 200000, 10)},
			wantGIDs:    []specs.LinuxIDMapping{mapping(0, 1001, 1), mapping(1, 200000, 10)},
			wantHelpers: true},
		{name: "automatic without helpers degrades", subuid: alice, subgid: alice, h: helpersAbsent,
			wantUIDs: singleMapping(1000), wantGIDs: singleMapping(1001),
			wantWarning:  []string{"newuidmap not found in PATH", "only uid 1000 and gid 1001", "apt-get install uidmap"},
			wantPackages: []string{"uidmap"}},
		{name: "automatic without subuid range degrades", subuid: "bob:165536:65536\n", subgid: alice, h: helpersOK,
			wantUIDs: singleMapping(1000), wantGIDs: singleMapping(1001),
			wantWarning: []string{"no range for alice in ", `"alice:100000:65536"`, "usermod --add-subuids 100000-165535 alice"},
			wantRootFix: []string{"echo 'alice:100000:65536' >> SUBUID"}},
		{name: "no subuid range, the first gap too small", subuid: "bob:100000:65536\ncarol:200000:65536\n", subgid: alice, h: helpersOK,
			wantUIDs: singleMapping(1000), wantGIDs: singleMapping(1001),
			wantWarning: []string{`"alice:265536:65536"`, "usermod --add-subuids 265536-331071 alice"},
			wantRootFix: []string{"echo 'alice:265536:65536' >> SUBUID"}},
		{name: "automatic with missing files degrades", subuid: "<missing>", subgid: "<missing>", h: helpersOK,
			wantUIDs: singleMapping(1000), wantGIDs: singleMapping(1001),
			wantWarning: []string{"subuid and no range for alice in", "subgid", `"alice:100000:65536"`, "--add-subgids 100000-165535"},
			wantRootFix: []string{"echo 'alice:100000:65536' >> SUBUID", "echo 'alice:100000:65536' >> SUBGID"}},
		{name: "malformed subuid is an error", subuid: "alice:1\n", subgid: alice, h: helpersOK,
			wantErr: []string{"subuid: line 1"}, wantErrIs: ErrMalformed},
		{name: "config within range", subuid: alice, subgid: alice, h: helpersOK,
			uids:        []specs.LinuxIDMapping{mapping(0, 1000, 1), mapping(1, 100000, 1000), mapping(2000, 101000, 10)},
			gids:        []specs.LinuxIDMapping{mapping(0, 100000, 65536)},
			wantUIDs:    []specs.LinuxIDMapping{mapping(0, 1000, 1), mapping(1, 100000, 1000), mapping(2000, 101000, 10)},
			wantGIDs:    []specs.LinuxIDMapping{mapping(0, 100000, 65536)},
			wantHelpers: true},
		{name: "config spanning adjacent owned ranges", subuid: "alice:100000:10\nalice:100010:10\n", subgid: alice, h: helpersOK,
			uids:        []specs.LinuxIDMapping{mapping(0, 100000, 20)},
			gids:        []specs.LinuxIDMapping{mapping(0, 1001, 1)},
			wantUIDs:    []specs.LinuxIDMapping{mapping(0, 100000, 20)},
			wantGIDs:    []specs.LinuxIDMapping{mapping(0, 1001, 1)},
			wantHelpers: true},
		{name: "config own ids only needs no helper", subuid: "<missing>", subgid: "<missing>", h: helpersAbsent,
			uids:     []specs.LinuxIDMapping{mapping(0, 1000, 1)},
			gids:     []specs.LinuxIDMapping{mapping(0, 1001, 1)},
			wantUIDs: []specs.LinuxIDMapping{mapping(0, 1000, 1)}, wantGIDs: []specs.LinuxIDMapping{mapping(0, 1001, 1)}},
		{name: "config outside range", subuid: alice, subgid: alice, h: helpersOK,
			uids:      []specs.LinuxIDMapping{mapping(0, 1000, 1), mapping(1, 165000, 1000)},
			wantErr:   []string{"uidMappings[1] {containerID: 1, hostID: 165000, size: 1000}", "host uids 165536-165999 are not yours", "(100000-165535)", "hint: add the line"},
			wantErrIs: ErrNotOwned},
		{name: "config other user's range", subuid: alice, subgid: alice, h: helpersOK,
			uids:      []specs.LinuxIDMapping{mapping(0, 165536, 65536)},
			wantErrIs: ErrNotOwned, wantErr: []string{"uidMappings[0]"}},
		{name: "config own id with size >1", subuid: alice, subgid: alice, h: helpersOK,
			gids:      []specs.LinuxIDMapping{mapping(0, 1001, 2)},
			wantErrIs: ErrNotOwned, wantErr: []string{"gidMappings[0]", "host gids 1001-1002", "your own gid 1001 must be a line of its own"}},
		{name: "config overlap", subuid: alice, subgid: alice, h: helpersOK,
			uids:      []specs.LinuxIDMapping{mapping(0, 100000, 10), mapping(5, 100100, 10)},
			wantErrIs: ErrInvalidMapping, wantErr: []string{"container ids overlap"}},
		{name: "config zero size", subuid: alice, subgid: alice, h: helpersOK,
			uids:      []specs.LinuxIDMapping{mapping(0, 100000, 0)},
			wantErrIs: ErrInvalidMapping, wantErr: []string{"size is 0"}},
		{name: "config needs helpers that are missing", subuid: alice, subgid: alice, h: helpersAbsent,
			uids:      []specs.LinuxIDMapping{mapping(0, 1000, 1), mapping(1, 100000, 65536)},
			wantErrIs: ErrNoHelpers, wantErr: []string{"uidMappings in config.json need newuidmap", "hint: apt-get install uidmap"}},
		{name: "config needs ranges that are missing", subuid: "<missing>", subgid: alice, h: helpersOK,
			uids:      []specs.LinuxIDMapping{mapping(1, 100000, 65536)},
			wantErrIs: ErrNotOwned, wantErr: []string{"(none)", `hint: add the line "alice:100000:65536"`}},
		{name: "config uids, automatic gids", subuid: alice, subgid: alice, h: helpersOK,
			uids:        []specs.LinuxIDMapping{mapping(0, 100000, 10)},
			wantUIDs:    []specs.LinuxIDMapping{mapping(0, 100000, 10)},
			wantGIDs:    []specs.LinuxIDMapping{mapping(0, 1001, 1), mapping(1, 100000, 65536)},
			wantHelpers: true},
		{name: "config uids, automatic gids without range", subuid: alice, subgid: "", h: helpersOK,
			uids:        []specs.LinuxIDMapping{mapping(0, 100000, 10)},
			wantUIDs:    []specs.LinuxIDMapping{mapping(0, 100000, 10)},
			wantGIDs:    singleMapping(1001),
			wantHelpers: true,
			wantWarning: []string{"no range for alice in", "only gid 1001 (as root)"},
			wantRootFix: []string{"echo 'alice:100000:65536' >> SUBGID"}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			u, g := subFiles(t, tc.subuid, tc.subgid)
			req := Request{UID: 1000, GID: 1001, User: "alice", UIDMappings: tc.uids, GIDMappings: tc.gids,
				SubUIDFile: u, SubGIDFile: g}
			p, err := resolve(req, false, tc.h)
			if tc.wantErr != nil || tc.wantErrIs != nil {
				if err == nil {
					t.Fatalf("no error, plan %+v", p)
				}
				for _, s := range tc.wantErr {
					if !strings.Contains(err.Error(), s) {
						t.Errorf("error %q lacks %q", err, s)
					}
				}
				if tc.wantErrIs != nil && !errors.Is(err, tc.wantErrIs) {
					t.Errorf("error %v is not %v", err, tc.wantErrIs)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if !reflect.DeepEqual(p.UIDs, tc.wantUIDs) || !reflect.DeepEqual(p.GIDs, tc.wantGIDs) {
				t.Errorf("maps = %v %v, want %v %v", p.UIDs, p.GIDs, tc.wantUIDs, tc.wantGIDs)
			}
			if p.Helpers != tc.wantHelpers {
				t.Errorf("Helpers = %v, want %v", p.Helpers, tc.wantHelpers)
			}
			if tc.wantWarning == nil && p.Warning != "" {
				t.Errorf("unexpected warning %q", p.Warning)
			}
			if tc.wantWarning != nil && strings.Contains(p.Warning, "\n") {
				t.Errorf("warning is more than one line: %q", p.Warning)
			}
			for _, s := range tc.wantWarning {
				if !strings.Contains(p.Warning, s) {
					t.Errorf("warning %q lacks %q", p.Warning, s)
				}
			}
			var rootFix []string
			for _, f := range tc.wantRootFix {
				rootFix = append(rootFix, strings.NewReplacer("SUBUID", u, "SUBGID", g).Replace(f))
			}
			if !reflect.DeepEqual(p.RootFix, rootFix) || !reflect.DeepEqual(p.Packages, tc.wantPackages) {
				t.Errorf("RootFix %q, Packages %q; want %q, %q", p.RootFix, p.Packages, rootFix, tc.wantPackages)
			}
			if p.Helpers && (p.uidHelper == "" || p.gidHelper == "") {
				t.Errorf("helper paths not kept: %q %q", p.uidHelper, p.gidHelper)
			}
		})
	}
}

// TestFreeStart: the first 65536 ids at or above 100000 that no entry,
// whoever owns it, overlaps.
func TestFreeStart(t *testing.T) {
	tests := []struct {
		name   string
		taken  []SubIDRange
		count  uint32
		want   uint32
		wantOK bool
	}{
		{"empty", nil, 65536, 100000, true},
		{"below 100000 only", []SubIDRange{{1000, 5000}, {50000, 50000}}, 65536, 100000, true},
		{"straddles 100000", []SubIDRange{{99999, 2}}, 65536, 100001, true},
		{"after one", []SubIDRange{{100000, 65536}}, 65536, 165536, true},
		{"first gap exact", []SubIDRange{{100000, 10}, {165546, 5}}, 65536, 100010, true},
		{"first gap too small by one", []SubIDRange{{100000, 10}, {165545, 5}}, 65536, 165550, true},
		{"gap before the first", []SubIDRange{{300000, 65536}}, 65536, 100000, true},
		{"unsorted and overlapping", []SubIDRange{{231072, 65536}, {100000, 200000}, {120000, 10}}, 65536, 300000, true},
		{"contained range does not pull back", []SubIDRange{{100000, 100000}, {150000, 10}}, 65536, 200000, true},
		{"adjacent ranges", []SubIDRange{{100000, 65536}, {165536, 65536}}, 65536, 231072, true},
		{"up to the last id", []SubIDRange{{100000, 4294967295 - 100000 - 65536}}, 65536, 4294967295 - 65536, true},
		{"no room left", []SubIDRange{{100000, 4294967295 - 100000 - 65535}}, 65536, 0, false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, ok := FreeStart(tt.taken, tt.count)
			if got != tt.want || ok != tt.wantOK {
				t.Errorf("FreeStart(%v, %d) = %d, %v; want %d, %v", tt.taken, tt.count, got, ok, tt.want, tt.wantOK)
			}
		})
	}
}

// TestResolveHelperChecks runs the real helper checks with fake paths.
func TestResolveHelperChecks(t *testing.T) {
	u, g := subFiles(t, "alice:100000:65536\n", "alice:100000:65536\n")
	plain := filepath.Join(t.TempDir(), "newuidmap")
	if err := os.WriteFile(plain, []byte("#!/bin/sh\n"), 0o755); err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		name     string
		lookPath func(string) (string, error)
		want     []string
	}{
		{name: "missing", lookPath: func(n string) (string, error) { return "", fmt.Errorf("%s: not found", n) },
			want: []string{"newuidmap not found in PATH", "apt-get install uidmap"}},
		{name: "not setuid", lookPath: func(string) (string, error) { return plain, nil },
			want: []string{plain + " is not setuid root", "chmod u+s " + plain}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			p, err := Resolve(Request{UID: 1000, GID: 1000, User: "alice", SubUIDFile: u, SubGIDFile: g, LookPath: tc.lookPath})
			if err != nil {
				t.Fatal(err)
			}
			if p.Helpers || !reflect.DeepEqual(p.UIDs, singleMapping(1000)) {
				t.Fatalf("plan %+v, want the single mapping", p)
			}
			for _, s := range tc.want {
				if !strings.Contains(p.Warning, s) {
					t.Errorf("warning %q lacks %q", p.Warning, s)
				}
			}
		})
	}
}

func TestPlanTranslate(t *testing.T) {
	p := &Plan{
		UIDs: []specs.LinuxIDMapping{mapping(0, 1000, 1), mapping(1, 100000, 65536)},
		GIDs: []specs.LinuxIDMapping{mapping(0, 1001, 1), mapping(1, 200000, 10)},
	}
	tests := []struct {
		name string
		fn   func(uint32) (uint32, bool)
		in   uint32
		want uint32
		ok   bool
	}{
		{"uid root", p.ToHost, 0, 1000, true},
		{"uid 1", p.ToHost, 1, 100000, true},
		{"uid last", p.ToHost, 65536, 165535, true},
		{"uid unmapped", p.ToHost, 65537, 0, false},
		{"uid max", p.ToHost, math.MaxUint32, 0, false},
		{"gid 10", p.ToHostGID, 10, 200009, true},
		{"gid unmapped", p.ToHostGID, 11, 0, false},
		{"host uid to container", p.ToContainer, 100001, 2, true},
		{"host own gid to container", p.ToContainerGID, 1001, 0, true},
		{"host unmapped", p.ToContainer, 999, 0, false},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			got, ok := tc.fn(tc.in)
			if got != tc.want || ok != tc.ok {
				t.Fatalf("(%d) = %d, %v; want %d, %v", tc.in, got, ok, tc.want, tc.ok)
			}
		})
	}
	if n := p.ContainerIDCount(); n != 65537 {
		t.Fatalf("ContainerIDCount = %d, want 65537", n)
	}
	huge := &Plan{UIDs: []specs.LinuxIDMapping{mapping(0, 0, math.MaxUint32), mapping(0, 0, math.MaxUint32)}}
	if n := huge.ContainerIDCount(); n != math.MaxUint32 {
		t.Fatalf("ContainerIDCount saturates at %d, got %d", uint32(math.MaxUint32), n)
	}
}

func TestHelperErrorText(t *testing.T) {
	e := &HelperError{
		Argv:   []string{"/usr/bin/newuidmap", "4242", "0", "1000", "1"},
		Output: "newuidmap: uid range [1-2) -> [5-6) not allowed",
		Err:    errors.New("exit status 1"),
	}
	e.Hint = helperHint("newuidmap", e.Argv[0], e.Output, e.Err, "add the line \"alice:100000:65536\" to /etc/subuid")
	want := "/usr/bin/newuidmap [4242 0 1000 1]: exit status 1: newuidmap: uid range [1-2) -> [5-6) not allowed\n" +
		"hint: a host range is not yours in /etc/subuid: add the line \"alice:100000:65536\" to /etc/subuid"
	if e.Error() != want {
		t.Fatalf("got\n%s\nwant\n%s", e.Error(), want)
	}
}

func FuzzParseSubID(f *testing.F) {
	for _, name := range []string{"subuid.multi", "subuid.crlf", "subuid.malformed", "subuid.overlap"} {
		b, err := os.ReadFile(filepath.Join("testdata", name))
		if err != nil {
			f.Fatal(err)
		}
		f.Add(string(b), "alice", uint32(1000))
	}
	f.Add("a:4294967294:1\n", "a", uint32(0))
	f.Add(":::\n#\n\n", "", uint32(0))
	f.Fuzz(func(t *testing.T, text, name string, id uint32) {
		rs, err := ParseSubID(strings.NewReader(text), name, id)
		if err != nil {
			if !errors.Is(err, ErrMalformed) {
				t.Fatalf("error %v does not wrap ErrMalformed", err)
			}
			return
		}
		for _, r := range rs {
			if r.Count == 0 || r.end() > math.MaxUint32 {
				t.Fatalf("bad range %v from %q", r, text)
			}
		}
		// Whatever parses must build into a map the kernel accepts.
		if m, err := buildAuto(id, rs); err == nil {
			if err := ValidateMappings("uidMappings", m); err != nil {
				t.Fatalf("buildAuto(%d, %v) = %v: %v", id, rs, m, err)
			}
		}
	})
}

func TestHasSubidLine(t *testing.T) {
	for _, tt := range []struct {
		conf string
		want bool
	}{
		{"passwd: files\ngroup: files\n", false},
		{"passwd: files\nsubid: sss\n", true},
		{"# subid: sss\n", false},
		{"subid:\n", false},
		{"  subid :  files # comment\n", true},
	} {
		if got := hasSubidLine(tt.conf); got != tt.want {
			t.Errorf("hasSubidLine(%q) = %v, want %v", tt.conf, got, tt.want)
		}
	}
}

// TestResolvePrivileged: a caller with CAP_SETUID/CAP_SETGID (root, or uid
// 0 of an engine's user namespace) writes config.json's mappings itself,
// whatever /etc/subuid says and whether or not the helpers exist; only
// what the kernel would refuse is an error.
func TestResolvePrivileged(t *testing.T) {
	absent := func(n string) (string, error) { return "", fmt.Errorf("%s: not found", n) }
	u, g := subFiles(t, "<missing>", "<missing>")
	tests := []struct {
		name               string
		uids, gids         []specs.LinuxIDMapping
		wantUIDs, wantGIDs []specs.LinuxIDMapping
		wantErr            error
	}{
		{name: "any host ids", uids: []specs.LinuxIDMapping{mapping(0, 1000, 2000)}, gids: []specs.LinuxIDMapping{mapping(0, 1000, 3000)},
			wantUIDs: []specs.LinuxIDMapping{mapping(0, 1000, 2000)}, wantGIDs: []specs.LinuxIDMapping{mapping(0, 1000, 3000)}},
		{name: "keep-id shape", uids: []specs.LinuxIDMapping{mapping(0, 1, 1000), mapping(1000, 0, 1), mapping(1001, 1001, 64536)},
			wantUIDs: []specs.LinuxIDMapping{mapping(0, 1, 1000), mapping(1000, 0, 1), mapping(1001, 1001, 64536)},
			wantGIDs: singleMapping(0)},
		{name: "overlap is still refused", uids: []specs.LinuxIDMapping{mapping(0, 1000, 10), mapping(5, 2000, 10)}, wantErr: ErrInvalidMapping},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			p, err := Resolve(Request{UID: 0, GID: 0, User: "root", UIDMappings: tc.uids, GIDMappings: tc.gids,
				SubUIDFile: u, SubGIDFile: g, LookPath: absent, Privileged: true})
			if tc.wantErr != nil {
				if !errors.Is(err, tc.wantErr) {
					t.Fatalf("error %v, want %v", err, tc.wantErr)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if !p.Privileged || p.Helpers || p.Warning != "" {
				t.Errorf("plan %+v: want privileged, no helpers, no warning", p)
			}
			if !reflect.DeepEqual(p.UIDs, tc.wantUIDs) || !reflect.DeepEqual(p.GIDs, tc.wantGIDs) {
				t.Errorf("maps = %v %v, want %v %v", p.UIDs, p.GIDs, tc.wantUIDs, tc.wantGIDs)
			}
		})
	}
	t.Run("automatic needs no helper", func(t *testing.T) {
		u, g := subFiles(t, "root:100000:65536\n", "root:100000:65536\n")
		p, err := Resolve(Request{UID: 0, GID: 0, User: "root", SubUIDFile: u, SubGIDFile: g, LookPath: absent, Privileged: true})
		if err != nil {
			t.Fatal(err)
		}
		want := []specs.LinuxIDMapping{mapping(0, 0, 1), mapping(1, 100000, 65536)}
		if !p.Privileged || p.Helpers || p.Warning != "" || !reflect.DeepEqual(p.UIDs, want) {
			t.Errorf("plan %+v", p)
		}
	})
}
