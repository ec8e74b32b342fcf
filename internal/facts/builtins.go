package facts

import (
	"bufio"
	"bytes"
	"fmt"
	"log/slog"
	"net"
	"os"
	"runtime"
	"strconv"
	"strings"
)

// collectBuiltins gathers the built-in facts with the standard library only,
// keeping the daemon small. A fact that cannot be read is left out and logged
// at debug level: a missing /proc file must not stop a node from starting.
func collectBuiltins(version string, log *slog.Logger) map[string]any {
	f := map[string]any{
		"architecture":   runtime.GOARCH,
		"processorcount": int64(runtime.NumCPU()),
	}
	if version != "" {
		f["mco_version"] = version
	}
	if err := addHostFacts(f); err != nil {
		log.Debug("built-in fact unavailable", "fact", "hostname", "error", err)
	}
	if err := addIPFacts(f); err != nil {
		log.Debug("built-in fact unavailable", "fact", "ipaddresses", "error", err)
	}
	addPlatformFacts(f, log)
	return f
}

// addHostFacts sets hostname, fqdn and domain without any network lookup:
// os.Hostname, or /etc/hostname when that holds the dotted form of the same
// name.
func addHostFacts(f map[string]any) error {
	name, err := os.Hostname()
	if err != nil {
		return fmt.Errorf("hostname: %w", err)
	}
	if !strings.Contains(name, ".") {
		if data, err := os.ReadFile("/etc/hostname"); err == nil {
			full := strings.TrimSpace(string(data))
			if short, _, ok := strings.Cut(full, "."); ok && short == name {
				name = full
			}
		}
	}
	short, domain, _ := strings.Cut(name, ".")
	f["hostname"] = short
	f["fqdn"] = name
	if domain != "" {
		f["domain"] = domain
	}
	return nil
}

// addIPFacts sets ipaddresses (every non-loopback, non-link-local address)
// and ipaddress (the first IPv4 one, as Facter does).
func addIPFacts(f map[string]any) error {
	ifaces, err := net.Interfaces()
	if err != nil {
		return fmt.Errorf("interfaces: %w", err)
	}
	ips := []any{}
	first4 := ""
	for _, ifc := range ifaces {
		if ifc.Flags&net.FlagLoopback != 0 {
			continue
		}
		addrs, err := ifc.Addrs()
		if err != nil {
			continue
		}
		for _, a := range addrs {
			ipn, ok := a.(*net.IPNet)
			if !ok || ipn.IP.IsLoopback() || ipn.IP.IsLinkLocalUnicast() {
				continue
			}
			ips = append(ips, ipn.IP.String())
			if first4 == "" && ipn.IP.To4() != nil {
				first4 = ipn.IP.String()
			}
		}
	}
	f["ipaddresses"] = ips
	if first4 != "" {
		f["ipaddress"] = first4
	}
	return nil
}

// parseOSRelease reads the KEY=value lines of os-release(5), unquoting values.
func parseOSRelease(data []byte) map[string]string {
	out := make(map[string]string)
	for line := range bytes.Lines(data) {
		s := strings.TrimSpace(string(line))
		if s == "" || strings.HasPrefix(s, "#") {
			continue
		}
		k, v, ok := strings.Cut(s, "=")
		if !ok {
			continue
		}
		if u, err := strconv.Unquote(v); err == nil {
			v = u
		} else {
			v = strings.Trim(v, `"'`)
		}
		out[k] = v
	}
	return out
}

// osFacts builds the os map and the flat MCollective-era aliases from
// os-release fields. Names follow Facter's spelling (Debian, RedHat, CentOS)
// because existing filters such as `-F osfamily=RedHat` compare
// case-sensitively. releaseFile returns the first line of a file such as
// /etc/debian_version, or "" (see facterRelease).
func osFacts(rel map[string]string, releaseFile func(path string) string) map[string]any {
	id := strings.ToLower(rel["ID"])
	if id == "" {
		return nil
	}
	family := ""
	for cand := range strings.FieldsSeq(id + " " + strings.ToLower(rel["ID_LIKE"])) {
		if family = familyOf(cand); family != "" {
			break
		}
	}
	name := osName(id)
	if family == "" {
		family = name
	}
	osMap := map[string]any{"family": family, "name": name}
	out := map[string]any{"operatingsystem": name, "osfamily": family}
	if full := facterRelease(name, family, rel["VERSION_ID"], releaseFile); full != "" {
		release := map[string]any{"full": full}
		parts := strings.Split(full, ".")
		release["major"] = parts[0]
		if len(parts) > 1 {
			release["minor"] = parts[1]
		}
		osMap["release"] = release
		out["operatingsystemrelease"] = full
		out["operatingsystemmajrelease"] = parts[0]
	}
	out["os"] = osMap
	return out
}

// releaseNumber finds the version in a release line such as "Rocky Linux
// release 9.3 (Blue Onyx)".
func releaseNumber(line string) string {
	_, after, ok := strings.Cut(line, " release ")
	if !ok {
		return ""
	}
	v, _, _ := strings.Cut(after, " ")
	if v == "" || v[0] < '0' || v[0] > '9' {
		return ""
	}
	return v
}

// facterRelease is the full release as Facter reports it: os-release's
// VERSION_ID is only the major number on Debian ("12") and CentOS 7 ("7"),
// while Facter reads /etc/debian_version ("12.11") and /etc/redhat-release
// ("7.9.2009"). A release file that does not hold a version (Debian testing
// says "trixie/sid") leaves VERSION_ID.
func facterRelease(name, family, versionID string, releaseFile func(string) string) string {
	if releaseFile == nil {
		return versionID
	}
	var v string
	switch {
	case name == "Debian": // not Ubuntu: its file names the Debian it derives from
		if line := releaseFile("/etc/debian_version"); line != "" && line[0] >= '0' && line[0] <= '9' {
			v = line
		}
	case family == "RedHat":
		v = releaseNumber(releaseFile("/etc/redhat-release"))
	}
	if v == "" {
		return versionID
	}
	return v
}

func familyOf(id string) string {
	switch id {
	case "debian", "ubuntu":
		return "Debian"
	case "rhel", "fedora", "centos":
		return "RedHat"
	case "suse", "opensuse", "sles":
		return "Suse"
	case "arch":
		return "Archlinux"
	case "gentoo":
		return "Gentoo"
	case "alpine":
		return "Alpine"
	}
	return ""
}

func osName(id string) string {
	switch id {
	case "debian":
		return "Debian"
	case "ubuntu":
		return "Ubuntu"
	case "rhel":
		return "RedHat"
	case "centos":
		return "CentOS"
	case "fedora":
		return "Fedora"
	case "rocky":
		return "Rocky"
	case "almalinux":
		return "AlmaLinux"
	case "ol":
		return "OracleLinux"
	case "amzn":
		return "Amazon"
	case "sles":
		return "SLES"
	case "opensuse", "opensuse-leap", "opensuse-tumbleweed":
		return "OpenSuSE"
	case "alpine":
		return "Alpine"
	case "arch":
		return "Archlinux"
	case "gentoo":
		return "Gentoo"
	}
	return strings.ToUpper(id[:1]) + id[1:]
}

// parseMeminfo returns total and available memory in MiB from
// /proc/meminfo. MemAvailable is preferred over MemFree because it counts
// reclaimable cache, which is what "free" means to an operator.
func parseMeminfo(data []byte) (totalMB, freeMB int64, err error) {
	kb := make(map[string]int64)
	sc := bufio.NewScanner(bytes.NewReader(data))
	for sc.Scan() {
		fields := strings.Fields(sc.Text())
		if len(fields) < 2 {
			continue
		}
		if n, err := strconv.ParseInt(fields[1], 10, 64); err == nil {
			kb[strings.TrimSuffix(fields[0], ":")] = n
		}
	}
	total, ok := kb["MemTotal"]
	if !ok {
		return 0, 0, fmt.Errorf("meminfo: no MemTotal line")
	}
	free, ok := kb["MemAvailable"]
	if !ok {
		free = kb["MemFree"]
	}
	return total / 1024, free / 1024, nil
}

// parseUptime returns the whole seconds of the first field of /proc/uptime.
func parseUptime(data []byte) (int64, error) {
	fields := strings.Fields(string(data))
	if len(fields) == 0 {
		return 0, fmt.Errorf("uptime: empty")
	}
	secs, err := strconv.ParseFloat(fields[0], 64)
	if err != nil {
		return 0, fmt.Errorf("uptime: %w", err)
	}
	return int64(secs), nil
}
