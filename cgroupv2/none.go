package cgroupv2

import (
	"context"
	"encoding/json"

	specs "github.com/opencontainers/runtime-spec/specs-go"
)

// noneManager runs the container in sandy's own cgroup: no limits, no
// stats. New only returns it when no limit is lost or the user allowed it.
type noneManager struct{}

func (noneManager) Kind() string                         { return KindNone }
func (noneManager) Prepare(context.Context) error        { return nil }
func (noneManager) CgroupFD() (int, bool)                { return -1, false }
func (noneManager) Apply(context.Context, int) error     { return nil }
func (noneManager) Path() string                         { return "" }
func (noneManager) State() ([]byte, error)               { return json.Marshal(state{Kind: KindNone}) }
func (noneManager) Destroy(context.Context) error        { return nil }
func (noneManager) Close() error                         { return nil }
func (noneManager) Pids() ([]int, error)                 { return nil, ErrNoCgroup }
func (noneManager) Freeze(context.Context, bool) error   { return ErrNoCgroup }
func (noneManager) Stats() (*Stats, error)               { return nil, ErrNoCgroup }
func (noneManager) Events() (*Events, error)             { return nil, ErrNoCgroup }
func (noneManager) Kill(int) error                       { return ErrNoCgroup }
func (noneManager) Watch() (*Watcher, error)             { return nil, ErrNoCgroup }
func (noneManager) Join(context.Context, int) error      { return nil }
func (noneManager) Supervise(context.Context, int) error { return nil }
func (noneManager) Update(context.Context, *specs.LinuxResources) error {
	return ErrNoCgroup
}
