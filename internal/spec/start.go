package spec

import (
	"encoding/json"
	"fmt"
	"maps"
	"reflect"
	"slices"
	"strings"

	specs "github.com/opencontainers/runtime-spec/specs-go"
)

// CheckStartAgrees refuses a final spec that differs from start in what a
// container's init is started with before its final spec exists (`sandy
// run IMAGE`: lifecycle's CreateOptions.Pending): the namespaces it is
// cloned with or joins (types and paths, in any order), the uid and gid
// maps written for it, and its cgroup (linux.cgroupsPath and
// linux.resources, which made the cgroup it was cloned into). None of
// these can change once the init runs, so a difference is an error that
// names each field with both values, never a container run half with one
// spec and half with the other. The rest of the spec (process, root,
// mounts, …) reaches the init only with the final spec, and may differ.
func CheckStartAgrees(start, final *specs.Spec) error {
	var diffs []string
	differ := func(field string, a, b any) {
		diffs = append(diffs, fmt.Sprintf("%s: started with %s, the final spec has %s", field, compact(a), compact(b)))
	}
	sl, fl := linuxOf(start), linuxOf(final)
	if a, b := namespaceSet(sl.Namespaces), namespaceSet(fl.Namespaces); !maps.Equal(a, b) {
		differ("linux.namespaces", sortedNamespaces(a), sortedNamespaces(b))
	}
	if !slices.Equal(sl.UIDMappings, fl.UIDMappings) {
		differ("linux.uidMappings", sl.UIDMappings, fl.UIDMappings)
	}
	if !slices.Equal(sl.GIDMappings, fl.GIDMappings) {
		differ("linux.gidMappings", sl.GIDMappings, fl.GIDMappings)
	}
	if sl.CgroupsPath != fl.CgroupsPath {
		differ("linux.cgroupsPath", sl.CgroupsPath, fl.CgroupsPath)
	}
	if a, b := resourcesOf(sl), resourcesOf(fl); !reflect.DeepEqual(a, b) {
		differ("linux.resources", a, b)
	}
	if len(diffs) > 0 {
		return fmt.Errorf("the final spec differs from the one the init was started with, which a running init cannot follow (a sandy bug: please report it): %s", strings.Join(diffs, "; "))
	}
	return nil
}

func linuxOf(s *specs.Spec) *specs.Linux {
	if s == nil || s.Linux == nil {
		return &specs.Linux{}
	}
	return s.Linux
}

// resourcesOf is linux.resources with an empty object taken as none.
func resourcesOf(l *specs.Linux) *specs.LinuxResources {
	if l.Resources == nil || reflect.DeepEqual(*l.Resources, specs.LinuxResources{}) {
		return nil
	}
	return l.Resources
}

// namespaceSet is the namespaces as type → path ("" for a new one).
func namespaceSet(nss []specs.LinuxNamespace) map[specs.LinuxNamespaceType]string {
	m := make(map[specs.LinuxNamespaceType]string, len(nss))
	for _, ns := range nss {
		m[ns.Type] = ns.Path
	}
	return m
}

// sortedNamespaces lists a namespaceSet in a stable order, for messages.
func sortedNamespaces(m map[specs.LinuxNamespaceType]string) []string {
	var out []string
	for _, t := range slices.Sorted(maps.Keys(m)) {
		if p := m[t]; p != "" {
			out = append(out, string(t)+"="+p)
		} else {
			out = append(out, string(t))
		}
	}
	return out
}

func compact(v any) string {
	b, err := json.Marshal(v)
	if err != nil {
		return fmt.Sprint(v)
	}
	return string(b)
}
