// Command clusterguard-testworkload is the test and demo workload; see package
// testworkload for what it does and how the agent drives it.
package main

import (
	"os"

	"github.com/clusterguard/terraform-provider-clusterguard/internal/testworkload"
)

func main() {
	os.Exit(testworkload.Main(os.Args[1:]))
}
