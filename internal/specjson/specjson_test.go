package specjson_test

import (
	"bytes"
	"encoding/json"
	"errors"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"
	"time"

	specs "github.com/opencontainers/runtime-spec/specs-go"

	"github.com/sandy-rt/sandy/internal/initproc"
	"github.com/sandy-rt/sandy/internal/specjson"
	"github.com/sandy-rt/sandy/internal/state"
	"github.com/sandy-rt/sandy/overlay"
)

// The configs in testdata/ are real: `runc spec`, `runc spec --rootless`,
// `crun spec --rootless`, `sandy spec` and `sandy spec --rootless` as
// they wrote them; podman.json is the config podman 4.3 handed its
// runtime for `podman run --rootfs` with a hooks dir, annotations,
// --cap-add, --ulimit, --tmpfs, -w and --hostname (its default seccomp
// profile included); saved-config.json is the config sandy keeps for exec
// in the state directory; state-*.json are state files sandy wrote, one
// of a container on a bind root with runc's rootless config, one with the
// full subordinate map, slirp4netns, an overlay root, annotations and
// hooks.
var configFiles = []string{
	"runc.json", "runc-rootless.json", "crun-rootless.json", "sandy.json",
	"sandy-rootless.json", "podman.json", "saved-config.json",
}

var stateFiles = []string{"state-bind.json", "state-net-hooks.json"}

// edgeConfigs are what a config written by hand or by another tool may
// hold that encoding/json accepts and a stricter decoder might not, or
// decodes in its own way: the two must agree on each.
var edgeConfigs = map[string]string{
	"upper-case names": `{"OCIVERSION":"1.0.2","Process":{"ARGS":["/bin/sh"],"Cwd":"/","USER":{"UID":1,"gid":2}},"ROOT":{"Path":"rootfs","READONLY":true},"HostName":"h"}`,
	"duplicate names": `{"hostname":"a","hostname":"b","process":{"args":["x"],"cwd":"/x"},"process":{"cwd":"/y"},` +
		`"annotations":{"k":"1"},"annotations":{"k":"2","l":"3"},"linux":{"maskedPaths":["/a","/b"]},"linux":{"maskedPaths":["/c"]}}`,
	"invalid UTF-8":          "{\"hostname\":\"a\xffb\",\"annotations\":{\"k\xfe\":\"v\xc3\"},\"process\":{\"args\":[\"\xed\xa0\x80\"]}}",
	"lone surrogate escapes": `{"hostname":"\ud800x","process":{"args":["\udc00","\ud83d\ude00"]}}`,
	"escapes":                `{"hostname":"\u0041\n\t\"\\\/","annotations":{"\u00e9":"<>&\u2028"}}`,
	"nulls":                  `{"process":null,"root":null,"hooks":{"prestart":null},"linux":{"namespaces":null,"sysctl":null,"resources":null},"annotations":null,"hostname":null}`,
	"unknown names":          `{"ociVersion":"1","x-vendor":{"a":[1,2,{"b":null}]},"process":{"args":["a"],"unknown":true}}`,
	"delimiters differ":      `{"oci_version":"1","oci-version":"2","process":{"no_new_privileges":true}}`,
	"non-ASCII folding":      `{"linux":{"ſysctl":{"a":"b"}},"hoſtname":"h","proceſs":{"argſ":["x"]}}`,
	"Kelvin sign":            `{"linux":{"\u212aernel":{"a":"b"}},"process":{"rlimits":[{"type":"RLIMIT_NOFILE","hard":1,"soft":1}]}}`,
	"numbers":                `{"process":{"user":{"uid":0,"gid":4294967295,"umask":18},"oomScoreAdj":-1000,"rlimits":[{"type":"RLIMIT_NOFILE","hard":18446744073709551615,"soft":0}]}}`,
	"whitespace":             " \n\t{ \"hostname\" : \"h\" , \"process\" : { \"args\" : [ \"a\" , \"b\" ] } } \n",
	"empty object":           `{}`,
	"trailing text":          `{"hostname":"h"} and more`,
	"second value":           `{"hostname":"h"}{"hostname":"i"}`,
	"seccomp":                `{"linux":{"seccomp":{"defaultAction":"SCMP_ACT_ERRNO","defaultErrnoRet":1,"architectures":["SCMP_ARCH_X86_64"],"flags":["SECCOMP_FILTER_FLAG_LOG"],"listenerPath":"/x","syscalls":[{"names":["a","b"],"action":"SCMP_ACT_ALLOW","args":[{"index":1,"value":2,"valueTwo":3,"op":"SCMP_CMP_MASKED_EQ"}]}]}}}`,
	"file modes":             `{"linux":{"devices":[{"path":"/dev/x","type":"c","major":1,"minor":3,"fileMode":438,"uid":0,"gid":0}]}}`,
}

// malformed are inputs both must refuse: a bundle that fails with one
// must fail with the other.
var malformed = map[string]string{
	"empty":                  ``,
	"spaces only":            "  \n",
	"truncated":              `{"process":{"args":["a"`,
	"truncated string":       `{"hostname":"ab`,
	"trailing comma":         `{"hostname":"h",}`,
	"single quotes":          `{'hostname':'h'}`,
	"bare word":              `{"hostname":h}`,
	"comment":                `{"hostname":"h" /* c */}`,
	"byte order mark":        "\xef\xbb\xbf{\"hostname\":\"h\"}",
	"control character":      "{\"hostname\":\"a\x01b\"}",
	"bad escape":             `{"hostname":"\x"}`,
	"short unicode escape":   `{"hostname":"\u12"}`,
	"leading zero":           `{"process":{"user":{"uid":01}}}`,
	"array for string":       `{"hostname":["h"]}`,
	"string for array":       `{"process":{"args":"/bin/sh"}}`,
	"string for number":      `{"process":{"user":{"uid":"1"}}}`,
	"negative unsigned":      `{"process":{"user":{"uid":-1}}}`,
	"fraction for integer":   `{"process":{"user":{"uid":1.5}}}`,
	"exponent for integer":   `{"process":{"rlimits":[{"type":"RLIMIT_NOFILE","hard":1,"soft":1e3}]}}`,
	"overflow":               `{"process":{"user":{"uid":4294967296}}}`,
	"object for bool":        `{"root":{"readonly":{}}}`,
	"top-level array":        `[{"hostname":"h"}]`,
	"top-level string":       `"config"`,
	"number for map":         `{"annotations":1}`,
	"type error then more":   `{"hostname":1,"process":{"args":["a"]},"root":{"path":"r"}}`,
	"two type errors":        `{"process":{"args":[1,"b"],"cwd":2},"hostname":"h"}`,
	"file mode out of range": `{"linux":{"devices":[{"path":"/dev/x","type":"c","fileMode":99999999999}]}}`,
}

func readTestdata(t testing.TB, name string) []byte {
	t.Helper()
	data, err := os.ReadFile(filepath.Join("testdata", name))
	if err != nil {
		t.Fatal(err)
	}
	return data
}

// decodeBoth decodes data into a new T with encoding/json (as a
// json.Decoder when first: spec.Decode's way) and with specjson; it fails
// t when the two differ in having an error, in the error, or, without
// one, in the result, and returns the errors.
func decodeBoth[T any](t testing.TB, data []byte, first bool) (*T, error, error) {
	t.Helper()
	var want, got T
	var werr, gerr error
	if first {
		werr = json.NewDecoder(bytes.NewReader(data)).Decode(&want)
		gerr = specjson.DecodeFirst(data, &got)
	} else {
		werr = json.Unmarshal(data, &want)
		gerr = specjson.Unmarshal(data, &got)
	}
	if (werr == nil) != (gerr == nil) {
		t.Fatalf("encoding/json: %v; specjson: %v\ninput: %q", werr, gerr, data)
	}
	if werr != nil {
		// On failure specjson's result is not used (every caller
		// drops it), its error is.
		if reflect.TypeOf(werr) != reflect.TypeOf(gerr) || werr.Error() != gerr.Error() {
			t.Fatalf("errors differ:\n  encoding/json: %T %v\n  specjson:      %T %v\ninput: %q", werr, werr, gerr, gerr, data)
		}
		return &got, werr, gerr
	}
	if !reflect.DeepEqual(want, got) {
		t.Fatalf("decoded differently (errors %v; %v)\nencoding/json: %#v\nspecjson:      %#v\ninput: %q", werr, gerr, want, got, data)
	}
	return &got, werr, gerr
}

// encodeBoth requires byte-equal encodings of v.
func encodeBoth(t testing.TB, v any) {
	t.Helper()
	want, werr := json.Marshal(v)
	got, gerr := specjson.Marshal(v)
	if (werr == nil) != (gerr == nil) || !bytes.Equal(want, got) {
		t.Fatalf("Marshal differs:\nencoding/json: %s (%v)\nspecjson:      %s (%v)", want, werr, got, gerr)
	}
	want, werr = json.MarshalIndent(v, "", "  ")
	got, gerr = specjson.MarshalIndent(v, "", "  ")
	if (werr == nil) != (gerr == nil) || !bytes.Equal(want, got) {
		t.Fatalf("MarshalIndent differs:\nencoding/json: %s (%v)\nspecjson:      %s (%v)", want, werr, got, gerr)
	}
}

func TestConfigsDecodeAsEncodingJSON(t *testing.T) {
	for _, name := range configFiles {
		t.Run(name, func(t *testing.T) {
			data := readTestdata(t, name)
			for _, first := range []bool{true, false} {
				s, werr, _ := decodeBoth[specs.Spec](t, data, first)
				if werr != nil {
					t.Fatal(werr)
				}
				if s.Process == nil || s.Root == nil || s.Linux == nil {
					t.Fatalf("%s decoded without process, root or linux: %+v", name, s)
				}
				encodeBoth(t, s)
			}
			// What exec and the exec init decode of it.
			if _, werr, _ := decodeBoth[initproc.ExecConfig](t, data, false); werr != nil {
				t.Fatal(werr)
			}
		})
	}
}

func TestPodmanConfigKeepsItsParts(t *testing.T) {
	var s specs.Spec
	if err := specjson.DecodeFirst(readTestdata(t, "podman.json"), &s); err != nil {
		t.Fatal(err)
	}
	if s.Hooks == nil {
		t.Fatal("podman.json decoded without its hooks")
	}
	//lint:ignore SA1019 deprecated, not gone: podman 4.3 writes its hooks dir's prestart hooks there
	if pre := s.Hooks.Prestart; len(pre) != 1 || pre[0].Path != "/bin/true" {
		t.Errorf("hooks: %+v", s.Hooks)
	}
	if s.Annotations["io.container.manager"] != "libpod" {
		t.Errorf("annotations: %v", s.Annotations)
	}
	if s.Linux.Seccomp == nil || len(s.Linux.Seccomp.Syscalls) == 0 || s.Linux.Seccomp.DefaultAction != specs.ActErrno {
		t.Errorf("seccomp: %+v", s.Linux.Seccomp)
	}
}

func TestEdgeConfigsDecodeAsEncodingJSON(t *testing.T) {
	for name, in := range edgeConfigs {
		t.Run(name, func(t *testing.T) {
			for _, first := range []bool{true, false} {
				s, werr, _ := decodeBoth[specs.Spec](t, []byte(in), first)
				if werr != nil {
					if !first && (strings.HasPrefix(name, "trailing") || strings.HasPrefix(name, "second")) {
						continue // Unmarshal refuses what follows the value; both did
					}
					t.Fatal(werr)
				}
				encodeBoth(t, s)
			}
		})
	}
}

// TestEdgeConfigsMeaning pins what the edge cases mean, so that the
// agreement above is not an agreement on nothing.
func TestEdgeConfigsMeaning(t *testing.T) {
	dec := func(name string) *specs.Spec {
		t.Helper()
		var s specs.Spec
		if err := specjson.DecodeFirst([]byte(edgeConfigs[name]), &s); err != nil {
			t.Fatalf("%s: %v", name, err)
		}
		return &s
	}
	if s := dec("upper-case names"); s.Version != "1.0.2" || s.Process.User.UID != 1 || s.Process.User.GID != 2 || !s.Root.Readonly || s.Hostname != "h" {
		t.Errorf("upper-case names: %+v", s)
	}
	// The last of duplicate names wins; a duplicate object merges into
	// the first, as encoding/json does.
	if s := dec("duplicate names"); s.Hostname != "b" || s.Process.Cwd != "/y" || len(s.Process.Args) != 1 ||
		s.Annotations["k"] != "2" || s.Annotations["l"] != "3" || !reflect.DeepEqual(s.Linux.MaskedPaths, []string{"/c"}) {
		t.Errorf("duplicate names: %+v %+v %+v", s, s.Process, s.Linux)
	}
	if s := dec("invalid UTF-8"); s.Hostname != "a\uFFFDb" || s.Annotations["k\uFFFD"] != "v\uFFFD" {
		t.Errorf("invalid UTF-8: %q %q", s.Hostname, s.Annotations)
	}
	if s := dec("delimiters differ"); s.Version != "" || s.Process.NoNewPrivileges {
		t.Errorf("names with _ or - matched: %+v", s)
	}
	if s := dec("non-ASCII folding"); s.Hostname != "h" || s.Linux.Sysctl["a"] != "b" {
		t.Errorf("non-ASCII folding: %+v", s)
	}
	if s := dec("trailing text"); s.Hostname != "h" {
		t.Errorf("trailing text: %+v", s)
	}
}

func TestMalformedFailsInBoth(t *testing.T) {
	for name, in := range malformed {
		t.Run(name, func(t *testing.T) {
			for _, first := range []bool{true, false} {
				_, werr, gerr := decodeBoth[specs.Spec](t, []byte(in), first)
				if werr == nil {
					t.Fatalf("accepted: %q", in)
				}
				// The same error, word for word: its type, message and
				// offset (spec.Decode makes the line and column of it).
				if reflect.TypeOf(werr) != reflect.TypeOf(gerr) || werr.Error() != gerr.Error() {
					t.Fatalf("errors differ:\n  encoding/json: %T %v\n  specjson:      %T %v", werr, werr, gerr, gerr)
				}
				var wse, gse *json.SyntaxError
				if errors.As(werr, &wse) && errors.As(gerr, &gse) && wse.Offset != gse.Offset {
					t.Errorf("syntax error at offset %d, specjson's at %d", wse.Offset, gse.Offset)
				}
				var wte, gte *json.UnmarshalTypeError
				if errors.As(werr, &wte) && errors.As(gerr, &gte) && *wte != *gte {
					t.Errorf("type errors differ: %+v; %+v", *wte, *gte)
				}
			}
		})
	}
}

func TestStateFilesDecodeAsEncodingJSON(t *testing.T) {
	for _, name := range stateFiles {
		t.Run(name, func(t *testing.T) {
			data := readTestdata(t, name)
			c, werr, _ := decodeBoth[state.Container](t, data, false)
			if werr != nil {
				t.Fatal(werr)
			}
			if c.ID == "" || c.Pid == 0 || c.Created.IsZero() || len(c.Cgroup) == 0 {
				t.Fatalf("%s decoded without id, pid, created or cgroup: %+v", name, c)
			}
			encodeBoth(t, c)
			// state.Save writes it so: sandy's own file, byte for byte.
			out, err := specjson.MarshalIndent(c, "", "  ")
			if err != nil {
				t.Fatal(err)
			}
			if !bytes.Equal(out, data) {
				t.Errorf("re-encoded state differs from the file:\n%s\nfile:\n%s", out, data)
			}
		})
	}
}

// TestMessagesRoundTrip: the config the host sends the init (and the
// exec init) encodes and decodes as with encoding/json, each way.
func TestMessagesRoundTrip(t *testing.T) {
	var s specs.Spec
	if err := specjson.DecodeFirst(readTestdata(t, "podman.json"), &s); err != nil {
		t.Fatal(err)
	}
	cfg := initproc.Config{
		Spec: &s, ID: "c1", Bundle: "/b", Rootfs: "/b/rootfs", LayerDir: "/s/c1/layer",
		Layers:  &overlay.Layers{Driver: "overlay", Lowers: []string{"/l1", "/l2"}, Upper: "/u"},
		MountNS: "/proc/1/ns/mnt", Pdeathsig: 9, ResolvConf: "nameserver 10.0.2.3\n", Hosts: "127.0.0.1 localhost\n",
		NoSeccomp: true, StartSocket: true, Debug: true, Tap: &initproc.RawTap{Socket: 5, FD: 6, MTU: 65520},
	}
	encodeBoth(t, &cfg)
	data, err := specjson.Marshal(&cfg)
	if err != nil {
		t.Fatal(err)
	}
	got, werr, _ := decodeBoth[initproc.Config](t, data, false)
	if werr != nil {
		t.Fatal(werr)
	}
	if !reflect.DeepEqual(*got, cfg) {
		t.Errorf("round trip changed the config:\n%+v\n%+v", *got, cfg)
	}
	ec := initproc.ExecConfig{Process: s.Process, Seccomp: s.Linux.Seccomp}
	encodeBoth(t, &ec)
}

// TestStateRoundTrip: a state with every field set survives Save's
// encoding and Load's decoding, and both equal encoding/json's.
func TestStateRoundTrip(t *testing.T) {
	timeout := 3
	c := state.Container{
		ID: "c1", Bundle: "/b", Rootfs: "/b/rootfs", Pid: 42, PidStart: 1234567,
		Created:     time.Date(2026, 12, 7, 1, 2, 3, 456789, time.FixedZone("X", 3600)),
		Annotations: map[string]string{"a": "b", "é": "<&>"},
		Owner:       7, OwnerStart: 8,
		UIDMappings: []specs.LinuxIDMapping{{ContainerID: 0, HostID: 1000, Size: 1}, {ContainerID: 1, HostID: 100000, Size: 65536}},
		GIDMappings: []specs.LinuxIDMapping{{ContainerID: 0, HostID: 1000, Size: 1}},
		MapHelpers:  true, LayerDir: "/s/c1/layer", KeepLayer: "/k", LayerTemp: "/t", RootfsMode: "overlay",
		Cgroup:  json.RawMessage(`{"kind":"systemd","path":"/user.slice/x","unit":"sandy-c1.scope"}`),
		Network: json.RawMessage(`{"mode":"slirp4netns","stateDir":"/s/c1"}`),
		Hooks:   &specs.Hooks{Poststop: []specs.Hook{{Path: "/h", Args: []string{"h"}, Env: []string{"A=1"}, Timeout: &timeout}}},
		Paused:  true, NoSeccomp: true, NoProcess: true,
	}
	encodeBoth(t, &c)
	data, err := specjson.MarshalIndent(&c, "", "  ")
	if err != nil {
		t.Fatal(err)
	}
	got, werr, _ := decodeBoth[state.Container](t, data, false)
	if werr != nil {
		t.Fatal(werr)
	}
	if !got.Created.Equal(c.Created) {
		t.Errorf("created %v, want %v", got.Created, c.Created)
	}
	got.Created = c.Created // the zone's name is not in RFC 3339
	// Raw members keep the file's indentation, with both.
	for _, raw := range []*json.RawMessage{&got.Cgroup, &got.Network} {
		var b bytes.Buffer
		if err := json.Compact(&b, *raw); err != nil {
			t.Fatal(err)
		}
		*raw = b.Bytes()
	}
	if !reflect.DeepEqual(*got, c) {
		t.Errorf("round trip changed the state:\n%+v\n%+v", *got, c)
	}
}

// FuzzDecodeAsEncodingJSON: for any input, specjson and encoding/json
// both fail or both decode the same config, and the same state.
func FuzzDecodeAsEncodingJSON(f *testing.F) {
	for _, name := range append(append([]string{}, configFiles...), stateFiles...) {
		f.Add(readTestdata(f, name))
	}
	for _, in := range edgeConfigs {
		f.Add([]byte(in))
	}
	for _, in := range malformed {
		f.Add([]byte(in))
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		decodeBoth[specs.Spec](t, data, true)
		decodeBoth[specs.Spec](t, data, false)
		decodeBoth[state.Container](t, data, false)
	})
}
