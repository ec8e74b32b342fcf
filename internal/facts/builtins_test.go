package facts

import (
	"testing"

	"github.com/google/go-cmp/cmp"
)

func TestOSFacts(t *testing.T) {
	tests := []struct {
		name      string
		osRelease string
		files     map[string]string // release files: path -> first line
		want      map[string]any
	}{
		{
			name:      "debian: the point release from debian_version, as Facter",
			osRelease: "PRETTY_NAME=\"Debian GNU/Linux 12 (bookworm)\"\nVERSION_ID=\"12\"\nID=debian\n",
			files:     map[string]string{"/etc/debian_version": "12.11"},
			want: map[string]any{
				"os":              map[string]any{"family": "Debian", "name": "Debian", "release": map[string]any{"full": "12.11", "major": "12", "minor": "11"}},
				"operatingsystem": "Debian", "osfamily": "Debian", "operatingsystemrelease": "12.11", "operatingsystemmajrelease": "12",
			},
		},
		{
			name:      "debian testing: debian_version holds no number",
			osRelease: "VERSION_ID=\"13\"\nID=debian\n",
			files:     map[string]string{"/etc/debian_version": "trixie/sid"},
			want: map[string]any{
				"os":              map[string]any{"family": "Debian", "name": "Debian", "release": map[string]any{"full": "13", "major": "13"}},
				"operatingsystem": "Debian", "osfamily": "Debian", "operatingsystemrelease": "13", "operatingsystemmajrelease": "13",
			},
		},
		{
			name:      "ubuntu via ID_LIKE ignores debian_version",
			osRelease: "ID=ubuntu\nID_LIKE=debian\nVERSION_ID=\"22.04\"\n",
			files:     map[string]string{"/etc/debian_version": "12.1"},
			want: map[string]any{
				"os":              map[string]any{"family": "Debian", "name": "Ubuntu", "release": map[string]any{"full": "22.04", "major": "22", "minor": "04"}},
				"operatingsystem": "Ubuntu", "osfamily": "Debian", "operatingsystemrelease": "22.04", "operatingsystemmajrelease": "22",
			},
		},
		{
			name:      "rocky is redhat",
			osRelease: "# comment\nID=\"rocky\"\nID_LIKE=\"rhel centos fedora\"\nVERSION_ID='9.3'\n",
			files:     map[string]string{"/etc/redhat-release": "Rocky Linux release 9.3 (Blue Onyx)"},
			want: map[string]any{
				"os":              map[string]any{"family": "RedHat", "name": "Rocky", "release": map[string]any{"full": "9.3", "major": "9", "minor": "3"}},
				"operatingsystem": "Rocky", "osfamily": "RedHat", "operatingsystemrelease": "9.3", "operatingsystemmajrelease": "9",
			},
		},
		{
			name:      "centos 7: the full release from redhat-release",
			osRelease: "ID=\"centos\"\nID_LIKE=\"rhel fedora\"\nVERSION_ID=\"7\"\n",
			files:     map[string]string{"/etc/redhat-release": "CentOS Linux release 7.9.2009 (Core)"},
			want: map[string]any{
				"os":              map[string]any{"family": "RedHat", "name": "CentOS", "release": map[string]any{"full": "7.9.2009", "major": "7", "minor": "9"}},
				"operatingsystem": "CentOS", "osfamily": "RedHat", "operatingsystemrelease": "7.9.2009", "operatingsystemmajrelease": "7",
			},
		},
		{
			name:      "opensuse",
			osRelease: "ID=\"opensuse-leap\"\nID_LIKE=\"suse opensuse\"\nVERSION_ID=\"15.5\"\n",
			want: map[string]any{
				"os":              map[string]any{"family": "Suse", "name": "OpenSuSE", "release": map[string]any{"full": "15.5", "major": "15", "minor": "5"}},
				"operatingsystem": "OpenSuSE", "osfamily": "Suse", "operatingsystemrelease": "15.5", "operatingsystemmajrelease": "15",
			},
		},
		{
			name:      "unknown distribution without version",
			osRelease: "ID=nixos\n",
			want: map[string]any{
				"os":              map[string]any{"family": "Nixos", "name": "Nixos"},
				"operatingsystem": "Nixos", "osfamily": "Nixos",
			},
		},
		{name: "no ID", osRelease: "NAME=Linux\ngarbage line\n", want: nil},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got := osFacts(parseOSRelease([]byte(tt.osRelease)), func(path string) string { return tt.files[path] })
			if diff := cmp.Diff(tt.want, got); diff != "" {
				t.Errorf("os facts (-want +got):\n%s", diff)
			}
		})
	}
}

func TestParseMeminfo(t *testing.T) {
	tests := []struct {
		name             string
		in               string
		wantTotal, wantF int64
		wantErr          bool
	}{
		{"available preferred", "MemTotal:       16384000 kB\nMemFree:  1024000 kB\nMemAvailable:   8192000 kB\n", 16000, 8000, false},
		{"old kernel without MemAvailable", "MemTotal: 2048 kB\nMemFree: 1024 kB\n", 2, 1, false},
		{"no total", "MemFree: 1024 kB\n", 0, 0, true},
		{"garbage", "x\n\n", 0, 0, true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			total, free, err := parseMeminfo([]byte(tt.in))
			if (err != nil) != tt.wantErr {
				t.Fatalf("error = %v, wantErr %v", err, tt.wantErr)
			}
			if total != tt.wantTotal || free != tt.wantF {
				t.Errorf("got total %d free %d, want %d %d", total, free, tt.wantTotal, tt.wantF)
			}
		})
	}
}

func TestParseUptime(t *testing.T) {
	tests := []struct {
		in      string
		want    int64
		wantErr bool
	}{
		{"12345.67 54321.00\n", 12345, false},
		{"", 0, true},
		{"abc 1", 0, true},
	}
	for _, tt := range tests {
		got, err := parseUptime([]byte(tt.in))
		if (err != nil) != tt.wantErr || got != tt.want {
			t.Errorf("parseUptime(%q) = %d, %v; want %d, error %v", tt.in, got, err, tt.want, tt.wantErr)
		}
	}
}
