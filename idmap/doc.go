// Package idmap decides which host uids and gids a rootless container's user
// namespace maps, and writes those maps for a process.
//
// It owns, on the host side only:
//
//   - reading the caller's subordinate ranges: getsubids(1) from shadow's
//     uidmap package when installed (it honours NSS subid plugins, see
//     subid in nsswitch.conf(5)), else /etc/subuid and /etc/subgid
//     (subuid(5)); ParseSubID is the pure parser;
//   - building the maps (Resolve): automatic, container id 0 to the caller's
//     own id and 1..N to the subordinate ranges in file order, or the
//     uidMappings/gidMappings of config.json, validated the way the kernel
//     and newuidmap will (ValidateMappings; ownership of every host id);
//   - writing them for a pid (Plan.Apply) with newuidmap(1) and newgidmap(1),
//     or, on the single-mapping rung of the degradation ladder, directly to
//     /proc/PID/{setgroups,gid_map,uid_map} (user_namespaces(7));
//   - translating ids for ownership (Plan.ToHost, Plan.ToContainer).
//
// When the helpers are missing or not setuid root, or the caller has no
// subordinate range, an automatic plan degrades to the single mapping (own
// id to root) and Plan.Warning holds the one line to print: what is missing
// and the fix. Mappings asked for in config.json never degrade: they are
// an error naming the mapping and the fix.
//
// It does not create, enter or inspect namespaces, and never runs inside
// one: package userns clones the child into its new namespaces and, while
// the child waits on the sync pipe, calls Resolve's Plan.Apply with the
// child's pid from the parent, which is still in the initial user
// namespace (newuidmap must run there: it checks the caller's real uid
// against /etc/subuid). internal/lifecycle calls Resolve once per container
// and prints Plan.Warning; ToHost serves chown and ownership reports.
//
// Nothing here keeps state: a Plan is a value, and Resolve reads the host
// afresh each time.
package idmap
