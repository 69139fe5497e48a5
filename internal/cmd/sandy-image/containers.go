//go:build containers_image_openpgp

package main

import (
	"context"
	"encoding/json"
	"errors"

	"github.com/sandy-rt/sandy/internal/images"
)

// cmdCreateContainer is imagehelper.CreateRole: `sandy run IMAGE` asks
// for a storage container and gets an imagehelper.Prepared as JSON.
func cmdCreateContainer(ctx context.Context, g *global, args []string) error {
	var o images.ContainerOptions
	fs := g.flags("_create-container [flags] IMAGE")
	done := g.remoteFlags(fs, &o.PullOptions.Remote)
	fs.StringVar(&o.Name, "name", "", "the container's name")
	fs.StringVar(&o.Pull, "pull", "missing", "missing, always, never or newer")
	fs.BoolVar(&o.Volatile, "volatile", false, "the container is removed when it exits")
	maxLayer := maxLayerFlag(fs)
	if err := parse(fs, args); err != nil {
		return helpOK(err)
	}
	done()
	var err error
	if o.PullOptions.MaxLayerSize, err = parseSize(*maxLayer); err != nil {
		return err
	}
	if fs.NArg() != 1 {
		return errors.New("want exactly one image")
	}
	s, sys, end, err := g.session()
	if err != nil {
		return err
	}
	defer end()
	o.PullOptions.Progress = g.stderr
	p, err := images.CreateContainer(ctx, s, sys, fs.Arg(0), o)
	if err != nil {
		return err
	}
	return json.NewEncoder(g.stdout).Encode(p)
}

// cmdRemoveContainer is imagehelper.RemoveRole.
func cmdRemoveContainer(_ context.Context, g *global, args []string) error {
	fs := g.flags("_remove-container ID")
	if err := parse(fs, args); err != nil {
		return helpOK(err)
	}
	if fs.NArg() != 1 {
		return errors.New("want exactly one container id")
	}
	s, err := g.openStore()
	if err != nil {
		return err
	}
	defer images.Shutdown(s)
	return images.RemoveContainer(s, fs.Arg(0))
}
