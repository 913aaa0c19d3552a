package agent

import (
	"context"
	"fmt"
	"time"

	"github.com/clusterguard/terraform-provider-clusterguard/internal/agent/api"
	"github.com/clusterguard/terraform-provider-clusterguard/internal/repository"
	"github.com/clusterguard/terraform-provider-clusterguard/internal/repository/backend/location"
)

// openRepository opens the repository a request names; the caller runs
// the returned close. The access carries secrets: never log it.
func openRepository(ctx context.Context, a api.RepositoryAccess, now func() time.Time) (*repository.Repository, string, func(), error) {
	be, err := location.Open(ctx, location.Config{
		URL: a.URL, Endpoint: a.Endpoint, Region: a.Region, AccessKeyID: a.AccessKeyID, SecretAccessKey: a.SecretAccessKey,
		SessionToken: a.SessionToken, PathStyle: a.PathStyle, Insecure: a.Insecure,
	})
	if err != nil {
		return nil, "", nil, fmt.Errorf("open repository: %w", err)
	}
	repo, err := repository.Open(ctx, be, a.Password, repository.OpenOptions{Now: now})
	if err != nil {
		be.Close()
		return nil, "", nil, fmt.Errorf("open repository %s: %w", be.Location(), err)
	}
	return repo, be.Location(), func() { repo.Close(); be.Close() }, nil
}
