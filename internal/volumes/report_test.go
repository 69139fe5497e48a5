package volumes

import (
	"encoding/json"
	"strings"
	"testing"
	"time"
)

func reportVols() []*Volume {
	at := time.Date(2026, 12, 6, 4, 22, 34, 159169809, time.UTC)
	return []*Volume{
		{Name: "foo", Driver: "local", Mountpoint: "/v/foo/_data", CreatedAt: at, Labels: map[string]string{"a": "b", "c": ""}, NeedsCopyUp: true},
		{Name: "0123456789abcdef", Driver: "local", Mountpoint: "/v/0123456789abcdef/_data", CreatedAt: at, Options: map[string]string{"nocopy": ""}, Anonymous: true},
	}
}

func TestWriteList(t *testing.T) {
	for _, tc := range []struct {
		name, format string
		quiet        bool
		want         string
	}{
		{"default", "", false, "DRIVER      VOLUME NAME\nlocal       foo\nlocal       0123456789abcdef\n"},
		{"quiet", "json", true, "foo\n0123456789abcdef\n"},
		{"names", "{{.Name}}", false, "foo\n0123456789abcdef\n"},
		{"escapes", `{{.Name}}\t{{.Scope}}`, false, "foo\tlocal\n0123456789abcdef\tlocal\n"},
		{"fields", "{{.Driver}} {{.Mountpoint}} {{.Labels}} {{.Options}} {{.CreatedAt}}", false,
			"local /v/foo/_data map[a:b c:] map[] 2026-12-06 04:22:34.159169809 +0000 UTC\n" +
				"local /v/0123456789abcdef/_data map[] map[nocopy:] 2026-12-06 04:22:34.159169809 +0000 UTC\n"},
		{"json func", "{{json .Labels}}", false, "{\"a\":\"b\",\"c\":\"\"}\n{}\n"},
		{"table", "table {{.Name}}\t{{.Scope}}\t{{.CreatedAt}}", false,
			"VOLUME NAME       SCOPE       CREATED AT\n" +
				"foo               local       2026-12-06 04:22:34.159169809 +0000 UTC\n" +
				"0123456789abcdef  local       2026-12-06 04:22:34.159169809 +0000 UTC\n"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			var b strings.Builder
			if err := WriteList(&b, reportVols(), tc.format, tc.quiet); err != nil {
				t.Fatal(err)
			}
			if b.String() != tc.want {
				t.Errorf("got\n%q\nwant\n%q", b.String(), tc.want)
			}
		})
	}
}

func TestWriteListJSON(t *testing.T) {
	var b strings.Builder
	if err := WriteList(&b, reportVols(), "json", false); err != nil {
		t.Fatal(err)
	}
	if !strings.HasPrefix(b.String(), "[\n  {\n    \"Name\": \"foo\",") {
		t.Errorf("ls json is not podman's two-space array:\n%s", b.String())
	}
	var got []map[string]any
	if err := json.Unmarshal([]byte(b.String()), &got); err != nil {
		t.Fatal(err)
	}
	want := []string{"Name", "Driver", "Mountpoint", "CreatedAt", "Labels", "Scope", "Options"}
	for _, k := range want {
		if _, ok := got[1][k]; !ok {
			t.Errorf("no %s in %v", k, got[1])
		}
	}
	if got[1]["Anonymous"] != true || got[0]["Anonymous"] != nil || got[0]["NeedsCopyUp"] != true {
		t.Errorf("omitempty fields: %v", got)
	}
	if l, ok := got[1]["Labels"].(map[string]any); !ok || len(l) != 0 {
		t.Errorf("empty labels print as %v, want {}", got[1]["Labels"])
	}
	if got[0]["CreatedAt"] != "2026-12-06T04:22:34.159169809Z" {
		t.Errorf("CreatedAt %v", got[0]["CreatedAt"])
	}
}

func TestWriteInspect(t *testing.T) {
	var b strings.Builder
	if err := WriteInspect(&b, reportVols()[:1], "json"); err != nil {
		t.Fatal(err)
	}
	want := `[
     {
          "Name": "foo",
          "Driver": "local",
          "Mountpoint": "/v/foo/_data",
          "CreatedAt": "2026-12-06T04:22:34.159169809Z",
          "Labels": {
               "a": "b",
               "c": ""
          },
          "Scope": "local",
          "Options": {},
          "NeedsCopyUp": true
     }
]
`
	if b.String() != want {
		t.Errorf("got\n%s\nwant (podman 4.3's shape)\n%s", b.String(), want)
	}
	b.Reset()
	if err := WriteInspect(&b, nil, "json"); err != nil || b.String() != "[]\n" {
		t.Errorf("no volumes: %q, %v", b.String(), err)
	}
	b.Reset()
	if err := WriteInspect(&b, reportVols(), "{{.Name}} {{.Labels}}"); err != nil || b.String() != "foo map[a:b c:]\n0123456789abcdef map[]\n" {
		t.Errorf("template: %q, %v", b.String(), err)
	}
}

func TestTemplateErrors(t *testing.T) {
	for _, f := range []string{"{{.Nope}}", "{{.Name", "table {{.Bogus}}", "{{.Name}} {{.Nope}}"} {
		if err := ParseTemplate(f); err == nil {
			t.Errorf("ParseTemplate(%q) passed", f)
		}
		var b strings.Builder
		if err := WriteList(&b, reportVols(), f, false); err == nil || b.Len() != 0 {
			t.Errorf("WriteList(%q): %v, printed %q; want an error and nothing printed", f, err, b.String())
		}
	}
}
