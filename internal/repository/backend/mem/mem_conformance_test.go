package mem_test

import (
	"testing"

	"github.com/clusterguard/terraform-provider-clusterguard/internal/repository"
	"github.com/clusterguard/terraform-provider-clusterguard/internal/repository/backend/mem"
	"github.com/clusterguard/terraform-provider-clusterguard/internal/repository/backendtest"
)

func TestConformance(t *testing.T) {
	backendtest.Run(t, func(t *testing.T) repository.Backend { return mem.New() })
}
