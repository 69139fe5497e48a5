package containers

import (
	"github.com/sandy-rt/sandy/internal/lifecycle"
	"github.com/sandy-rt/sandy/internal/volumes"
)

// OpenVolumes opens sandy's volume store (volumes.DefaultRoot) with the
// hooks sandy has: what a container user wrote into a volume, owned by
// the caller's subordinate ids, is removed from a user namespace
// (lifecycle.RemoveTreeInUserNS). No hook says yet which containers use a
// volume: for the store, none does.
func OpenVolumes() (*volumes.Store, error) {
	root, err := volumes.DefaultRoot()
	if err != nil {
		return nil, err
	}
	s, err := volumes.Open(root)
	if err != nil {
		return nil, err
	}
	s.RemoveForeign = lifecycle.RemoveTreeInUserNS
	return s, nil
}
