//go:build containers_image_openpgp

package imagestore

import (
	"encoding/json"
	"fmt"
	"maps"
	"slices"
	"strings"

	imgspecv1 "github.com/opencontainers/image-spec/specs-go/v1"
)

// ChangeInstructions are the Dockerfile instructions `commit --change`
// takes, as podman's (buildah's) list for the OCI format.
var ChangeInstructions = []string{"CMD", "ENTRYPOINT", "ENV", "EXPOSE", "LABEL", "STOPSIGNAL", "USER", "VOLUME", "WORKDIR"}

// ApplyChanges applies `commit --change` instructions to an image config,
// in order, as one Dockerfile line each: `CMD ["sh","-c","x"]` (JSON
// form) or `CMD echo hi` (shell form: ["/bin/sh","-c","echo hi"]),
// `ENTRYPOINT` the same, `ENV K=V [K2=V2…]` or `ENV K V`, `LABEL K=V…`,
// `EXPOSE 80 53/udp`, `USER u[:g]`, `WORKDIR /dir` (relative to the
// previous one), `VOLUME /a /b` or `VOLUME ["/a"]`, `STOPSIGNAL SIGTERM`.
// Anything else is an error naming the instruction; nothing is applied
// then.
func ApplyChanges(c *imgspecv1.ImageConfig, changes []string) error {
	out := *c
	out.Env = slices.Clone(c.Env)
	out.Labels = maps.Clone(c.Labels)
	out.ExposedPorts = maps.Clone(c.ExposedPorts)
	out.Volumes = maps.Clone(c.Volumes)
	for _, ch := range changes {
		if err := applyChange(&out, ch); err != nil {
			return fmt.Errorf("--change '%s': %w", ch, err)
		}
	}
	*c = out
	return nil
}

func applyChange(c *imgspecv1.ImageConfig, change string) error {
	instr, rest, _ := strings.Cut(strings.TrimSpace(change), " ")
	rest = strings.TrimSpace(rest)
	if rest == "" {
		return fmt.Errorf("%s needs an argument", strings.ToUpper(instr))
	}
	switch strings.ToUpper(instr) {
	case "CMD":
		c.Cmd = commandForm(rest)
	case "ENTRYPOINT":
		c.Entrypoint = commandForm(rest)
	case "ENV":
		pairs, err := keyValues(rest, true)
		if err != nil {
			return err
		}
		for _, kv := range pairs {
			c.Env = setEnv(c.Env, kv[0], kv[1])
		}
	case "LABEL":
		pairs, err := keyValues(rest, false)
		if err != nil {
			return err
		}
		if c.Labels == nil {
			c.Labels = map[string]string{}
		}
		for _, kv := range pairs {
			c.Labels[kv[0]] = kv[1]
		}
	case "EXPOSE":
		if c.ExposedPorts == nil {
			c.ExposedPorts = map[string]struct{}{}
		}
		for _, p := range strings.Fields(rest) {
			port, proto, hasProto := strings.Cut(p, "/")
			if !hasProto {
				proto = "tcp"
			}
			if !isPort(port) || (proto != "tcp" && proto != "udp" && proto != "sctp") {
				return fmt.Errorf("EXPOSE %s: want PORT[/tcp|/udp|/sctp]", p)
			}
			c.ExposedPorts[port+"/"+proto] = struct{}{}
		}
	case "USER":
		c.User = rest
	case "WORKDIR":
		if strings.HasPrefix(rest, "/") || c.WorkingDir == "" {
			c.WorkingDir = rest
		} else {
			c.WorkingDir = strings.TrimSuffix(c.WorkingDir, "/") + "/" + rest
		}
	case "VOLUME":
		var vols []string
		if strings.HasPrefix(rest, "[") {
			if err := json.Unmarshal([]byte(rest), &vols); err != nil {
				return fmt.Errorf("VOLUME: %w", err)
			}
		} else {
			vols = strings.Fields(rest)
		}
		if c.Volumes == nil {
			c.Volumes = map[string]struct{}{}
		}
		for _, v := range vols {
			if !strings.HasPrefix(v, "/") {
				return fmt.Errorf("VOLUME %s: not an absolute path", v)
			}
			c.Volumes[v] = struct{}{}
		}
	case "STOPSIGNAL":
		c.StopSignal = rest
	default:
		return fmt.Errorf("%s is not an instruction commit takes (%s)", instr, strings.Join(ChangeInstructions, ", "))
	}
	return nil
}

// commandForm is a CMD or ENTRYPOINT argument: a JSON array is the argv
// (exec form), anything else runs under /bin/sh -c (shell form).
func commandForm(s string) []string {
	var argv []string
	if strings.HasPrefix(s, "[") && json.Unmarshal([]byte(s), &argv) == nil {
		return argv
	}
	return []string{"/bin/sh", "-c", s}
}

// keyValues reads `K=V K2="V 2"` (or `K V`, the legacy form, when legacy).
func keyValues(s string, legacy bool) ([][2]string, error) {
	words, err := splitWords(s)
	if err != nil {
		return nil, err
	}
	if legacy && len(words) > 0 && !strings.Contains(words[0], "=") {
		k, v, _ := strings.Cut(s, " ")
		return [][2]string{{k, strings.TrimSpace(v)}}, nil
	}
	var out [][2]string
	for _, w := range words {
		k, v, ok := strings.Cut(w, "=")
		if !ok || k == "" {
			return nil, fmt.Errorf("%q: want KEY=VALUE", w)
		}
		out = append(out, [2]string{k, v})
	}
	return out, nil
}

// splitWords splits on blanks, keeping double-quoted parts (with \"
// escapes) together, quotes removed.
func splitWords(s string) ([]string, error) {
	var words []string
	var cur strings.Builder
	in, started := false, false
	for i := 0; i < len(s); i++ {
		switch ch := s[i]; {
		case ch == '\\' && in && i+1 < len(s):
			i++
			cur.WriteByte(s[i])
		case ch == '"':
			in, started = !in, true
		case (ch == ' ' || ch == '\t') && !in:
			if started {
				words = append(words, cur.String())
				cur.Reset()
				started = false
			}
		default:
			cur.WriteByte(ch)
			started = true
		}
	}
	if in {
		return nil, fmt.Errorf("unterminated quote in %q", s)
	}
	if started {
		words = append(words, cur.String())
	}
	return words, nil
}

func setEnv(env []string, k, v string) []string {
	for i, e := range env {
		if name, _, _ := strings.Cut(e, "="); name == k {
			env[i] = k + "=" + v
			return env
		}
	}
	return append(env, k+"="+v)
}

func isPort(s string) bool {
	if s == "" || len(s) > 5 {
		return false
	}
	n := 0
	for _, c := range s {
		if c < '0' || c > '9' {
			return false
		}
		n = n*10 + int(c-'0')
	}
	return n >= 1 && n <= 65535
}
