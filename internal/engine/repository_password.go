package engine

import "github.com/clusterguard/terraform-provider-clusterguard/internal/repository"

// MinRepositoryPasswordLength is the fewest characters a repository password
// set through the engine may have (see repository.MinPasswordLength).
const MinRepositoryPasswordLength = repository.MinPasswordLength

// ValidateRepositoryPassword checks a repository password at plan time. The
// error never repeats the password.
func ValidateRepositoryPassword(pw string) error {
	return repository.CheckNewPassword(pw)
}
