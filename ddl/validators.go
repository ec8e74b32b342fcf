package ddl

import (
	"errors"
	"fmt"
	"net/netip"
	"regexp"
	"strings"
)

// checkFunc validates a string input value. Its error says what is wrong
// without repeating the value, which may be secret.
type checkFunc func(string) error

// namedPattern returns the regular expression behind a named validator
// (the list and the reasons for each pattern are in the package doc). The
// expressions are compiled when a DDL is parsed and kept in the Input, never
// at package level.
func namedPattern(name string) (string, bool) {
	switch name {
	case "service_name":
		return `^[a-zA-Z0-9._:@-]+$`, true
	case "package_name":
		return `^[a-zA-Z0-9._+:-]+$`, true
	case "puppet_variable":
		return `^[a-zA-Z0-9_]+$`, true
	case "puppet_tags":
		return `^[a-zA-Z0-9_]+(::[a-zA-Z0-9_]+)*(,[a-zA-Z0-9_]+(::[a-zA-Z0-9_]+)*)*$`, true
	case "puppet_server_address":
		return `^[a-zA-Z0-9]([a-zA-Z0-9-]*[a-zA-Z0-9])?(\.[a-zA-Z0-9]([a-zA-Z0-9-]*[a-zA-Z0-9])?)*(:[0-9]{1,5})?$`, true
	}
	return "", false
}

// validatorNames lists the named validators for error messages.
const validatorNames = "shellsafe, ipv4address, ipv6address, ipaddress, service_name, package_name, puppet_variable, puppet_tags, puppet_server_address"

// isValidatorName reports whether a validation string is meant as a named
// validator rather than a regular expression.
func isValidatorName(s string) bool {
	if s == "" || s[0] < 'a' || s[0] > 'z' {
		return false
	}
	for _, r := range s {
		if (r < 'a' || r > 'z') && (r < '0' || r > '9') && r != '_' {
			return false
		}
	}
	return true
}

// errUnknownValidator marks a validation naming a validator this package does
// not ship.
var errUnknownValidator = errors.New("unknown validator")

// compileValidation turns a DDL validation string into a check.
func compileValidation(validation string) (checkFunc, error) {
	switch validation {
	case "shellsafe":
		return shellSafe, nil
	case "ipv4address":
		return ipCheck("an IPv4 address", netip.Addr.Is4), nil
	case "ipv6address":
		return ipCheck("an IPv6 address", netip.Addr.Is6), nil
	case "ipaddress":
		return ipCheck("an IP address", func(netip.Addr) bool { return true }), nil
	}
	if pattern, ok := namedPattern(validation); ok {
		// Constant patterns, all compiled by the tests. They admit no shell
		// metacharacter, so they imply shellsafe as in MCollective.
		re := regexp.MustCompile(pattern)
		name := validation
		return func(s string) error {
			if !re.MatchString(s) {
				return fmt.Errorf("is not a valid %s", strings.ReplaceAll(name, "_", " "))
			}
			return nil
		}, nil
	}
	if isValidatorName(validation) {
		return nil, fmt.Errorf("%w %q (known: %s; write a regular expression such as \"^%s$\" to match literally)",
			errUnknownValidator, validation, validatorNames, validation)
	}
	re, err := regexp.Compile(validation)
	if err != nil {
		return nil, fmt.Errorf("invalid regular expression %q: %w", validation, err)
	}
	return func(s string) error {
		if !re.MatchString(s) {
			return fmt.Errorf("does not match %q", validation)
		}
		return nil
	}, nil
}

func shellSafe(s string) error {
	for _, bad := range [...]string{"`", "$", ";", "|", "&&", ">", "<", "\n", "\r", "\x00"} {
		if strings.Contains(s, bad) {
			return fmt.Errorf("is not shell safe: may not contain %q", bad)
		}
	}
	return nil
}

func ipCheck(what string, family func(netip.Addr) bool) checkFunc {
	return func(s string) error {
		a, err := netip.ParseAddr(s)
		if err != nil || a.Zone() != "" || !family(a) {
			return errors.New("is not " + what)
		}
		return nil
	}
}
