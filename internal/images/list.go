//go:build containers_image_openpgp

package images

import (
	"cmp"
	"context"
	"slices"
	"time"

	"go.podman.io/image/v5/docker/reference"
	"go.podman.io/storage"
)

// Summary is one image as `sandy images --format json` prints it, with
// podman's field names.
type Summary struct {
	ID          string            `json:"Id"`
	ParentID    string            `json:"ParentId"`
	RepoTags    []string          `json:"RepoTags"`
	RepoDigests []string          `json:"RepoDigests"`
	Size        int64             `json:"Size"`
	SharedSize  int64             `json:"SharedSize"`
	VirtualSize int64             `json:"VirtualSize"`
	Labels      map[string]string `json:"Labels"`
	Containers  int               `json:"Containers"`
	Names       []string          `json:"Names,omitempty"`
	Digest      string            `json:"Digest"`
	History     []string          `json:"History"`
	Created     int64             `json:"Created"`
	CreatedAt   time.Time         `json:"CreatedAt"`
	Dangling    bool              `json:"Dangling"`
	Arch        string            `json:"Arch"`
	Os          string            `json:"Os"`
}

// Row is one line of `sandy images`: an image appears once per name.
type Row struct {
	Repository, Tag, ID, Digest string
	Created                     time.Time
	Size                        int64
	Summary                     *Summary
}

// List returns every image in the store, newest first, with labels read
// from each image's config when withConfig (JSON and templates need them;
// the table does not).
func List(ctx context.Context, s storage.Store, withConfig bool) ([]Summary, error) {
	imgs, err := s.Images()
	if err != nil {
		return nil, err
	}
	users, err := containerUsers(s)
	if err != nil {
		return nil, err
	}
	out := make([]Summary, 0, len(imgs))
	for i := range imgs {
		img := &imgs[i]
		size, err := s.ImageSize(img.ID)
		if err != nil {
			size = -1
		}
		sum := Summary{ID: img.ID, Size: size, VirtualSize: size, Containers: users[img.ID],
			Names: img.Names, Digest: img.Digest.String(), Created: img.Created.Unix(), CreatedAt: img.Created,
			Dangling: len(img.Names) == 0, RepoTags: []string{}, RepoDigests: []string{}, History: []string{}}
		for _, n := range img.Names {
			sum.RepoTags = append(sum.RepoTags, n)
			if named, err := reference.ParseNormalizedNamed(n); err == nil {
				for _, d := range img.Digests {
					sum.RepoDigests = append(sum.RepoDigests, named.Name()+"@"+d.String())
				}
			}
		}
		sum.RepoDigests = slices.Compact(slices.Sorted(slices.Values(sum.RepoDigests)))
		if withConfig {
			if cfg, err := OCIConfig(ctx, s, img.ID); err == nil {
				sum.Labels = cfg.Config.Labels
				sum.Arch, sum.Os = cfg.Architecture, cfg.OS
			}
		}
		out = append(out, sum)
	}
	slices.SortStableFunc(out, func(a, b Summary) int { return cmp.Compare(b.Created, a.Created) })
	return out, nil
}

// Rows expands summaries into table rows, one per repository:tag, and
// one "<none> <none>" row for an image without a name.
func Rows(list []Summary) []Row {
	var rows []Row
	for i := range list {
		sum := &list[i]
		if len(sum.Names) == 0 {
			rows = append(rows, Row{Repository: "<none>", Tag: "<none>", ID: sum.ID, Digest: sum.Digest, Created: sum.CreatedAt, Size: sum.Size, Summary: sum})
			continue
		}
		for _, n := range sum.Names {
			repo, tag := SplitName(n)
			rows = append(rows, Row{Repository: repo, Tag: tag, ID: sum.ID, Digest: sum.Digest, Created: sum.CreatedAt, Size: sum.Size, Summary: sum})
		}
	}
	return rows
}

// SplitName splits a stored name into repository and tag ("<none>" for a
// digest-only name).
func SplitName(n string) (repo, tag string) {
	named, err := reference.ParseNormalizedNamed(n)
	if err != nil {
		return n, "<none>"
	}
	if t, ok := named.(reference.Tagged); ok {
		return named.Name(), t.Tag()
	}
	return named.Name(), "<none>"
}

// containerUsers counts the storage containers (sandy's, podman's,
// buildah's) that use each image.
func containerUsers(s storage.Store) (map[string]int, error) {
	cs, err := s.Containers()
	if err != nil {
		return nil, err
	}
	m := map[string]int{}
	for _, c := range cs {
		m[c.ImageID]++
	}
	return m, nil
}
