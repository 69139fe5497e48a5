package spec

import (
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"testing"

	specs "github.com/opencontainers/runtime-spec/specs-go"
)

func writeBundle(t *testing.T, config string) string {
	t.Helper()
	dir := t.TempDir()
	if err := os.Mkdir(filepath.Join(dir, "rootfs"), 0o755); err != nil {
		t.Fatal(err)
	}
	if config != "" {
		if err := os.WriteFile(filepath.Join(dir, "config.json"), []byte(config), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	return dir
}

func exampleJSON(t *testing.T, edit func(m map[string]any)) string {
	t.Helper()
	data, _ := json.Marshal(Example(true))
	var m map[string]any
	_ = json.Unmarshal(data, &m)
	if edit != nil {
		edit(m)
	}
	out, _ := json.MarshalIndent(m, "", "  ")
	return string(out)
}

func TestLoad(t *testing.T) {
	tests := []struct {
		name    string
		config  string
		wantErr string
	}{
		{name: "example", config: exampleJSON(t, nil)},
		{name: "no config", config: "", wantErr: "has no config.json"},
		{name: "syntax error names line", config: "{\n  \"ociVersion\": \"1.0.0\",\n  \"process\": {,\n}", wantErr: "config.json:3:"},
		{name: "type error names field", config: "{\n\"ociVersion\": \"1.0.0\",\n\"process\": {\"args\": \"sh\"}}", wantErr: "process.args"},
		{name: "empty args", config: exampleJSON(t, func(m map[string]any) { m["process"].(map[string]any)["args"] = []string{} }), wantErr: "process.args: empty"},
		{name: "missing root", config: exampleJSON(t, func(m map[string]any) { delete(m, "root") }), wantErr: "root.path: missing"},
		{name: "rootfs missing", config: exampleJSON(t, func(m map[string]any) { m["root"] = map[string]any{"path": "nope"} }), wantErr: `root.path "nope"`},
		{name: "unknown namespace", config: exampleJSON(t, func(m map[string]any) {
			l := m["linux"].(map[string]any)
			l["namespaces"] = []any{map[string]any{"type": "bogus"}}
		}), wantErr: `unknown namespace type "bogus"`},
		{name: "relative cwd", config: exampleJSON(t, func(m map[string]any) { m["process"].(map[string]any)["cwd"] = "tmp" }), wantErr: "process.cwd"},
		{name: "relative mount destination", config: exampleJSON(t, func(m map[string]any) {
			m["mounts"] = []any{map[string]any{"destination": "proc", "type": "proc", "source": "proc"}}
		}), wantErr: "must be absolute"},
		{name: "bad sysctl", config: exampleJSON(t, func(m map[string]any) {
			m["linux"].(map[string]any)["sysctl"] = map[string]string{"../../etc/passwd": "x"}
		}), wantErr: "invalid key"},
		{name: "bad rlimit", config: exampleJSON(t, func(m map[string]any) {
			m["process"].(map[string]any)["rlimits"] = []any{map[string]any{"type": "RLIMIT_BOGUS", "hard": 1, "soft": 1}}
		}), wantErr: "unknown type"},
		{name: "uid -1", config: exampleJSON(t, func(m map[string]any) {
			m["process"].(map[string]any)["user"] = map[string]any{"uid": int64(4294967295), "gid": 0}
		}), wantErr: "process.user.uid 4294967295 is (uid_t)-1"},
		{name: "duplicate rlimit", config: exampleJSON(t, func(m map[string]any) {
			m["process"].(map[string]any)["rlimits"] = []any{
				map[string]any{"type": "RLIMIT_NOFILE", "hard": 1, "soft": 1},
				map[string]any{"type": "RLIMIT_NOFILE", "hard": 2, "soft": 2},
			}
		}), wantErr: "process.rlimits[1]: RLIMIT_NOFILE is already set"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			dir := writeBundle(t, tt.config)
			b, err := Load(dir)
			if tt.wantErr == "" {
				if err != nil {
					t.Fatalf("Load: %v", err)
				}
				if b.Rootfs != filepath.Join(dir, "rootfs") {
					t.Fatalf("rootfs %q", b.Rootfs)
				}
				return
			}
			if err == nil || !strings.Contains(err.Error(), tt.wantErr) {
				t.Fatalf("error %v, want it to contain %q", err, tt.wantErr)
			}
		})
	}
}

// TestDecodeErrorsWordForWord: Decode's errors are the ones it gave with
// encoding/json, word for word (line and column included), though the
// decode itself is specjson's: the words people see and search for stay.
func TestDecodeErrorsWordForWord(t *testing.T) {
	for _, tt := range []struct{ config, want string }{
		{"{\n  \"process\": {\"args\": [\"sh\", 1]}}", `config.json:2:31: field "process.args": cannot use JSON number as string`},
		{"{\"process\": {\"user\": {\"uid\": -1}}}", `config.json:1:32: field "process.user.uid": cannot use JSON number -1 as uint32`},
		{"{\n\"hostname\": \"a\x01\"}", `config.json:2:16: invalid JSON: invalid character '\x01' in string literal`},
		{"\xef\xbb\xbf{}", `config.json:1:2: invalid JSON: invalid character 'ï' looking for beginning of value`},
		{`{"hostname": "\u12"}`, `config.json:1:20: invalid JSON: invalid character '"' in \u hexadecimal character escape`},
		{`{"hostname": "h"`, `config.json: unexpected EOF`},
		{`[]`, `config.json:1:2: field "": cannot use JSON array as specs.Spec`},
	} {
		_, err := Decode("config.json", []byte(tt.config))
		if err == nil || err.Error() != tt.want {
			t.Errorf("Decode(%q) = %v, want %s", tt.config, err, tt.want)
		}
	}
}

func FuzzDecode(f *testing.F) {
	f.Add([]byte(`{"ociVersion":"1.0.0"}`))
	f.Add([]byte("{\n\"process\": {,"))
	f.Fuzz(func(t *testing.T, data []byte) {
		_, _ = Decode("config.json", data)
	})
}

// TestLoadNoProcess: process is OPTIONAL in the runtime spec; a config
// without one loads, marked, with a placeholder process.
func TestLoadNoProcess(t *testing.T) {
	b, err := Load(writeBundle(t, exampleJSON(t, func(m map[string]any) { delete(m, "process") })))
	if err != nil {
		t.Fatal(err)
	}
	if !b.NoProcess || b.Spec.Process == nil || b.Spec.Process.Cwd != "/" {
		t.Fatalf("NoProcess %v, process %+v", b.NoProcess, b.Spec.Process)
	}
	b, err = Load(writeBundle(t, exampleJSON(t, nil)))
	if err != nil || b.NoProcess {
		t.Fatalf("example: NoProcess %v, %v", b.NoProcess, err)
	}
}

// TestBundleEdit: an edit in memory is validated again (the file is not
// written), and gives a config without a process the one it sets.
func TestBundleEdit(t *testing.T) {
	dir := writeBundle(t, exampleJSON(t, nil))
	b, err := Load(dir)
	if err != nil {
		t.Fatal(err)
	}
	before, _ := os.ReadFile(filepath.Join(dir, "config.json"))
	if err := b.Edit(func(s *specs.Spec) error { s.Process.Args = []string{"id"}; return nil }); err != nil {
		t.Fatal(err)
	}
	if b.Spec.Process.Args[0] != "id" {
		t.Errorf("args = %q", b.Spec.Process.Args)
	}
	if after, _ := os.ReadFile(filepath.Join(dir, "config.json")); string(after) != string(before) {
		t.Error("config.json was written")
	}
	err = b.Edit(func(s *specs.Spec) error { s.Mounts = append(s.Mounts, specs.Mount{Destination: "rel"}); return nil })
	if err == nil || !strings.Contains(err.Error(), `config.json with run's overrides: mounts[7]: destination "rel" must be absolute`) {
		t.Errorf("err = %v", err)
	}

	np, err := Load(writeBundle(t, exampleJSON(t, func(m map[string]any) { delete(m, "process") })))
	if err != nil {
		t.Fatal(err)
	}
	if err := np.Edit(func(s *specs.Spec) error { return nil }); err != nil || !np.NoProcess {
		t.Errorf("no edit of args: NoProcess %v, err %v", np.NoProcess, err)
	}
	if err := np.Edit(func(s *specs.Spec) error { s.Process.Args = []string{"true"}; return nil }); err != nil || np.NoProcess {
		t.Errorf("args set: NoProcess %v, err %v", np.NoProcess, err)
	}
}
