package api

import (
	"net"
	"strings"
)

// IsLoopbackHost reports whether host (an IP address or a name, without
// port) stays on the machine: 127.0.0.0/8, ::1 or "localhost". Both the agent
// and the engine allow plain HTTP only to such hosts unless told the network
// is trusted. An empty host means every address, which is not loopback.
func IsLoopbackHost(host string) bool {
	host = strings.TrimSuffix(strings.Trim(host, "[]"), ".")
	if strings.EqualFold(host, "localhost") {
		return true
	}
	if i := strings.IndexByte(host, '%'); i >= 0 {
		host = host[:i] // zone of an IPv6 address
	}
	ip := net.ParseIP(host)
	return ip != nil && ip.IsLoopback()
}
