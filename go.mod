module github.com/sandy-rt/sandy

go 1.26.0

require (
	github.com/containerd/console v1.0.5
	github.com/cyphar/filepath-securejoin v0.7.0
	github.com/godbus/dbus/v5 v5.2.4
	github.com/moby/profiles/seccomp v0.3.0
	github.com/moby/sys/capability v0.5.0
	github.com/moby/sys/userns v0.2.1
	github.com/opencontainers/runtime-spec v1.3.0
	github.com/rootless-containers/rootlesskit/v3 v3.3.0
	github.com/spf13/pflag v1.1.0
	golang.org/x/crypto v0.58.0
	golang.org/x/net v0.62.0
	golang.org/x/sys v0.49.0
)

require (
	github.com/coreos/go-systemd/v22 v22.7.0 // indirect
	github.com/moby/sys/mountinfo v0.7.3 // indirect
)
