//go:build containers_image_openpgp

package imagestore

import (
	"reflect"
	"strings"
	"testing"

	imgspecv1 "github.com/opencontainers/image-spec/specs-go/v1"
)

func TestApplyChanges(t *testing.T) {
	base := imgspecv1.ImageConfig{Env: []string{"PATH=/bin", "A=1"}, Cmd: []string{"sh"}, WorkingDir: "/srv",
		Labels: map[string]string{"old": "x"}}
	c := base
	err := ApplyChanges(&c, []string{
		`CMD ["cat", "/new"]`,
		`ENTRYPOINT /bin/run it`,
		`ENV A=2 B="two words"`,
		`env C legacy form`,
		`LABEL version=1.0 "quoted key"=v`,
		`EXPOSE 80 53/udp`,
		`USER app:app`,
		`WORKDIR sub`,
		`VOLUME ["/data"]`,
		`VOLUME /cache /logs`,
		`STOPSIGNAL SIGINT`,
	})
	if err != nil {
		t.Fatal(err)
	}
	want := imgspecv1.ImageConfig{
		Cmd: []string{"cat", "/new"}, Entrypoint: []string{"/bin/sh", "-c", "/bin/run it"},
		Env:          []string{"PATH=/bin", "A=2", "B=two words", "C=legacy form"},
		Labels:       map[string]string{"old": "x", "version": "1.0", "quoted key": "v"},
		ExposedPorts: map[string]struct{}{"80/tcp": {}, "53/udp": {}},
		User:         "app:app", WorkingDir: "/srv/sub",
		Volumes:    map[string]struct{}{"/data": {}, "/cache": {}, "/logs": {}},
		StopSignal: "SIGINT",
	}
	if !reflect.DeepEqual(c, want) {
		t.Errorf("got %+v\nwant %+v", c, want)
	}
	if !reflect.DeepEqual(base.Env, []string{"PATH=/bin", "A=1"}) || len(base.Labels) != 1 {
		t.Errorf("the base config was changed: %+v", base)
	}
	for _, bad := range []struct{ change, want string }{
		{"RUN make", "RUN is not an instruction"},
		{"CMD", "needs an argument"},
		{"EXPOSE http", "want PORT"},
		{"VOLUME data", "not an absolute path"},
		{`LABEL a="open`, "unterminated quote"},
		{"ENV =x", "want KEY=VALUE"},
	} {
		c := base
		err := ApplyChanges(&c, []string{"USER nobody", bad.change})
		if err == nil || !strings.Contains(err.Error(), bad.want) || !strings.Contains(err.Error(), bad.change) {
			t.Errorf("%q: %v, want %q", bad.change, err, bad.want)
		}
		if c.User != "" {
			t.Errorf("%q: the changes before the bad one were applied", bad.change)
		}
	}
}
