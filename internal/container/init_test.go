package container

import (
	"slices"
	"testing"
)

func TestParseSubmounts(t *testing.T) {
	t.Parallel()
	const mountinfo = `22 1 253:0 / / rw,relatime - ext4 /dev/vda rw
23 22 0:5 / /proc rw - proc proc rw
40 22 253:1 / /usr/local rw - xfs /dev/vdc rw
41 22 253:2 / /usr rw - xfs /dev/vdb rw
42 22 0:40 / /mnt/sandboxing ro - tmpfs none ro
43 22 253:3 / /home/alice rw - ext4 /dev/vdd rw
44 22 253:0 /srv/hosts /etc/hosts rw - ext4 /dev/vda rw
45 22 0:41 / /work\040tree rw - overlay overlay rw
46 22 0:42 / /var/lib/otpgate rw - ext4 /dev/vde rw
47 22 253:4 / /data,x rw - ext4 /dev/vdf rw
48 22 253:1 / /usr/local rw - xfs /dev/vdc rw
`
	got := parseSubmounts(mountinfo, func(p string) bool { return p != "/etc/hosts" })
	want := []string{"/usr", "/work tree", "/usr/local"}
	if !slices.Equal(got, want) {
		t.Errorf("parseSubmounts = %q, want %q", got, want)
	}
}
