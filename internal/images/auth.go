//go:build containers_image_openpgp

package images

import (
	"context"
	"errors"
	"fmt"

	"go.podman.io/image/v5/docker"
	"go.podman.io/image/v5/pkg/docker/config"
)

// Login checks the credentials against the registry and stores them in
// the auth file podman uses ($REGISTRY_AUTH_FILE, else
// $XDG_RUNTIME_DIR/containers/auth.json), or --authfile.
func Login(ctx context.Context, r Remote, registry, user, password string) error {
	if user == "" || password == "" {
		return errors.New("login: a user name and a password are needed (--username, --password-stdin)")
	}
	sys, err := r.SystemContext()
	if err != nil {
		return err
	}
	if err := docker.CheckAuth(ctx, sys, user, password, registry); err != nil {
		return explainCopyError(registry, fmt.Errorf("logging in: %w", err))
	}
	if _, err := config.SetCredentials(sys, registry, user, password); err != nil {
		return fmt.Errorf("storing the credentials for %s: %w", registry, err)
	}
	return nil
}

// Logout removes the stored credentials of registry, or of every
// registry with all.
func Logout(r Remote, registry string, all bool) error {
	sys, err := r.SystemContext()
	if err != nil {
		return err
	}
	if all {
		return config.RemoveAllAuthentication(sys)
	}
	if err := config.RemoveAuthentication(sys, registry); err != nil {
		if errors.Is(err, config.ErrNotLoggedIn) {
			return fmt.Errorf("not logged in to %s", registry)
		}
		return err
	}
	return nil
}
