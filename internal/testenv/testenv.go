package testenv

import (
	"os"
	"slices"
	"strings"
	"testing"
)

// RequireEnv is the variable CI sets: a comma-separated list of services
// whose tests must run ("postgres,slapd"), or "all".
const RequireEnv = "BRIDGE_TEST_REQUIRE"

// Required reports whether CI demands the service.
func Required(service string) bool {
	list := strings.Split(os.Getenv(RequireEnv), ",")
	return slices.Contains(list, service) || slices.Contains(list, "all")
}

// Unavailable ends the test because service is missing: a skip with how
// to enable it, or a failure if the service is required.
func Unavailable(t testing.TB, service, howToEnable string) {
	t.Helper()
	if Required(service) {
		t.Fatalf("%s is required (%s=%s) but unavailable: %s", service, RequireEnv, os.Getenv(RequireEnv), howToEnable)
	}
	t.Skipf("%s unavailable, skipping: %s", service, howToEnable)
}
