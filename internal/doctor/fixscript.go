package doctor

import (
	"bufio"
	"os"
	"slices"
	"strconv"
	"strings"
)

// sysctlLines sets each "name=value" now and persists it in a file of its
// own under /etc/sysctl.d (rewritten, not appended to: the script may run
// twice).
func sysctlLines(kvs []string) []string {
	var lines []string
	for _, kv := range kvs {
		name, _, _ := strings.Cut(kv, "=")
		q := shellQuote(kv)
		lines = append(lines, "sysctl -w "+q, "echo "+q+" > /etc/sysctl.d/50-sandy-"+name+".conf")
	}
	return lines
}

// shellQuote quotes s for sh when it needs it.
func shellQuote(s string) string {
	if s != "" && strings.IndexFunc(s, func(r rune) bool {
		return !(r >= 'a' && r <= 'z' || r >= 'A' && r <= 'Z' || r >= '0' && r <= '9' || strings.ContainsRune("-_./=:,+@%", r))
	}) < 0 {
		return s
	}
	return "'" + strings.ReplaceAll(s, "'", `'\''`) + "'"
}

// osRelease is what the fix script needs of os-release(5).
type osRelease struct {
	ID     string
	IDLike []string
}

// readOSRelease reads os-release(5) at path: the name to show (PRETTY_NAME,
// else NAME VERSION_ID) and the ids the package manager follows. An
// unreadable file gives "".
func readOSRelease(path string) (string, osRelease) {
	f, err := os.Open(path)
	if err != nil {
		return "", osRelease{}
	}
	defer f.Close()
	kv := map[string]string{}
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		k, v, ok := strings.Cut(strings.TrimSpace(sc.Text()), "=")
		if !ok || strings.HasPrefix(k, "#") {
			continue
		}
		if u, err := strconv.Unquote(v); err == nil {
			v = u
		} else {
			v = strings.Trim(v, `'"`)
		}
		kv[k] = v
	}
	name := kv["PRETTY_NAME"]
	if name == "" {
		name = strings.TrimSpace(kv["NAME"] + " " + kv["VERSION_ID"])
	}
	return name, osRelease{ID: kv["ID"], IDLike: strings.Fields(kv["ID_LIKE"])}
}

func (o osRelease) is(ids ...string) bool {
	for _, id := range append([]string{o.ID}, o.IDLike...) {
		if slices.Contains(ids, id) {
			return true
		}
	}
	return false
}

// installLine installs pkgs (Debian names) with the distribution's
// package manager, or says what to install where doctor does not know it.
func installLine(pkgs []string, o osRelease) string {
	switch {
	case o.is("debian", "ubuntu"):
		return "apt-get install -y " + strings.Join(pkgs, " ")
	case o.is("fedora", "rhel", "centos"):
		var rpms []string
		for _, p := range pkgs {
			switch p {
			case "uidmap":
				p = "shadow-utils"
			case "dbus-user-session":
				p = "dbus-daemon"
			}
			rpms = append(rpms, p)
		}
		return "dnf install -y " + strings.Join(rpms, " ")
	}
	return "echo 'install with your package manager: " + strings.Join(pkgs, " ") + " (Debian names)' >&2"
}

// fixScript is the root script for the checks that are not ok: the
// packages they miss, in one install line, then each root fix in check
// order, each once. "" when nothing needs root.
func fixScript(checks []Check, o osRelease) string {
	var pkgs, lines []string
	for _, c := range checks {
		if c.Status == OK {
			continue
		}
		for _, p := range c.Packages {
			if !slices.Contains(pkgs, p) {
				pkgs = append(pkgs, p)
			}
		}
		for _, l := range c.RootFix {
			if !slices.Contains(lines, l) {
				lines = append(lines, l)
			}
		}
	}
	if len(pkgs) > 0 {
		lines = append([]string{installLine(pkgs, o)}, lines...)
	}
	if len(lines) == 0 {
		return ""
	}
	return "sudo sh -eux <<'EOF'\n" + strings.Join(lines, "\n") + "\nEOF\n"
}
