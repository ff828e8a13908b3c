package sshd

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"net"
	"os"
	"path/filepath"
	"strings"
	"time"

	"github.com/otpgate/otpgate/internal/sshpattern"
	"golang.org/x/crypto/ssh"
	"golang.org/x/sys/unix"
)

// maxAuthorizedKeys bounds the size of an authorized_keys file.
const maxAuthorizedKeys = 1 << 20

// errInsecure is returned for an authorized_keys file (or a directory
// above it) that someone other than root or the user could change.
var errInsecure = errors.New("sshd: insecure authorized_keys path")

// errTooLarge is returned for an authorized_keys file over the size limit.
var errTooLarge = errors.New("sshd: authorized_keys too large")

// authorizedKeysPath is where a user's keys are read from.
func authorizedKeysPath(home string) string {
	return filepath.Join(home, ".ssh", "authorized_keys")
}

// readAuthorizedKeys reads file on behalf of uid with OpenSSH StrictModes
// rules, without following a symlink anywhere in the path: the file must be
// a regular file, and the file and every directory from / down to it must
// be owned by root or uid and not writable by group or others. A
// root-owned sticky directory (like /tmp) is allowed above the user's
// files, since nobody else can replace its entries. The home directory is
// resolved with EvalSymlinks first (as OpenSSH's realpath does); a symlink
// that appears later makes the read fail. A missing file returns an error
// wrapping fs.ErrNotExist.
func readAuthorizedKeys(file string, uid uint32) ([]byte, error) {
	dir, err := filepath.EvalSymlinks(filepath.Dir(file))
	if err != nil {
		return nil, fmt.Errorf("sshd: authorized_keys: %w", err)
	}
	if !filepath.IsAbs(dir) {
		return nil, fmt.Errorf("sshd: authorized_keys: %s is not absolute", dir)
	}
	fd, err := unix.Open("/", unix.O_RDONLY|unix.O_DIRECTORY|unix.O_CLOEXEC, 0)
	if err != nil {
		return nil, fmt.Errorf("sshd: authorized_keys: open /: %w", err)
	}
	cur := "/"
	if err := checkOwner(fd, uid, cur, true); err != nil {
		unix.Close(fd)
		return nil, err
	}
	for _, name := range strings.Split(strings.Trim(dir, "/"), "/") {
		if name == "" {
			continue
		}
		next, err := unix.Openat(fd, name, unix.O_RDONLY|unix.O_DIRECTORY|unix.O_NOFOLLOW|unix.O_CLOEXEC, 0)
		unix.Close(fd)
		cur = filepath.Join(cur, name)
		if err != nil {
			return nil, fmt.Errorf("sshd: authorized_keys: %s: %w", cur, err)
		}
		fd = next
		if err := checkOwner(fd, uid, cur, true); err != nil {
			unix.Close(fd)
			return nil, err
		}
	}
	ffd, err := unix.Openat(fd, filepath.Base(file), unix.O_RDONLY|unix.O_NOFOLLOW|unix.O_NONBLOCK|unix.O_CLOEXEC, 0)
	unix.Close(fd)
	if err != nil {
		if errors.Is(err, unix.ENOENT) {
			return nil, fmt.Errorf("sshd: authorized_keys: %w", fs.ErrNotExist)
		}
		return nil, fmt.Errorf("sshd: authorized_keys: %s: %w", file, err)
	}
	f := os.NewFile(uintptr(ffd), file)
	defer f.Close()
	if err := checkOwner(ffd, uid, file, false); err != nil {
		return nil, err
	}
	data, err := io.ReadAll(io.LimitReader(f, maxAuthorizedKeys+1))
	if err != nil {
		return nil, fmt.Errorf("sshd: authorized_keys: %w", err)
	}
	if len(data) > maxAuthorizedKeys {
		return nil, fmt.Errorf("%w: %s is larger than %d bytes", errTooLarge, file, maxAuthorizedKeys)
	}
	return data, nil
}

// checkOwner applies the StrictModes rule to the open file fd.
func checkOwner(fd int, uid uint32, name string, wantDir bool) error {
	var st unix.Stat_t
	if err := unix.Fstat(fd, &st); err != nil {
		return fmt.Errorf("sshd: authorized_keys: stat %s: %w", name, err)
	}
	typ := st.Mode & unix.S_IFMT
	if wantDir && typ != unix.S_IFDIR || !wantDir && typ != unix.S_IFREG {
		return fmt.Errorf("%w: %s is not a %s", errInsecure, name, map[bool]string{true: "directory", false: "regular file"}[wantDir])
	}
	if st.Uid != 0 && st.Uid != uid {
		return fmt.Errorf("%w: %s is owned by uid %d", errInsecure, name, st.Uid)
	}
	if st.Mode&0o022 != 0 {
		if wantDir && st.Uid == 0 && st.Mode&unix.S_ISVTX != 0 && name != "/" {
			return nil
		}
		return fmt.Errorf("%w: %s has mode %04o (writable by group or others)", errInsecure, name, st.Mode&0o7777)
	}
	return nil
}

// keyOptions are the authorized_keys options otpgate-sshd enforces.
type keyOptions struct {
	noPTY             bool
	noPortForwarding  bool
	noAgentForwarding bool
	// command is a forced command ("command=").
	command    string
	hasCommand bool
	// permitOpen restricts forwarding destinations ("permitopen=").
	permitOpen []string
	// from is the source pattern list ("from=").
	from string
	// expiry is when the key stops working ("expiry-time="); zero: never.
	expiry time.Time
}

// parseKeyOptions parses one key's options. Options that only disable
// features the server lacks anyway are accepted; options it cannot honour
// (certificates, user verification, tunnels) and unknown ones are errors,
// so the key is not used.
func parseKeyOptions(opts []string) (keyOptions, error) {
	var o keyOptions
	for _, opt := range opts {
		name, value, hasValue := strings.Cut(opt, "=")
		name = strings.ToLower(name)
		if hasValue {
			v, err := unquoteOption(value)
			if err != nil {
				return o, fmt.Errorf("option %s: %w", name, err)
			}
			value = v
		}
		needValue := func() error {
			if !hasValue {
				return fmt.Errorf("option %s needs a value", name)
			}
			return nil
		}
		switch name {
		case "restrict":
			o.noPTY, o.noPortForwarding, o.noAgentForwarding = true, true, true
		case "no-pty":
			o.noPTY = true
		case "pty":
			o.noPTY = false
		case "no-port-forwarding":
			o.noPortForwarding = true
		case "port-forwarding":
			o.noPortForwarding = false
		case "no-agent-forwarding":
			o.noAgentForwarding = true
		case "agent-forwarding":
			o.noAgentForwarding = false
		case "no-x11-forwarding", "no-user-rc", "x11-forwarding", "user-rc", "no-touch-required":
			// X11 forwarding and ~/.ssh/rc are never offered; security-key
			// touch is always required.
		case "command":
			if err := needValue(); err != nil {
				return o, err
			}
			o.command, o.hasCommand = value, true
		case "permitopen":
			if err := needValue(); err != nil {
				return o, err
			}
			for _, p := range strings.Split(value, ",") {
				if _, err := parsePermitOpen(p); err != nil {
					return o, fmt.Errorf("option permitopen: %w", err)
				}
				o.permitOpen = append(o.permitOpen, p)
			}
		case "from":
			if err := needValue(); err != nil {
				return o, err
			}
			if _, err := matchFrom(value, net.IPv4(127, 0, 0, 1)); err != nil {
				return o, err
			}
			o.from = value
		case "expiry-time":
			if err := needValue(); err != nil {
				return o, err
			}
			t, err := parseExpiry(value)
			if err != nil {
				return o, err
			}
			o.expiry = t
		case "environment":
			// Ignored, as OpenSSH does with PermitUserEnvironment=no.
		default:
			return o, fmt.Errorf("unsupported option %q", name)
		}
	}
	return o, nil
}

func unquoteOption(v string) (string, error) {
	if len(v) < 2 || v[0] != '"' || v[len(v)-1] != '"' {
		return "", errors.New("value must be quoted")
	}
	return strings.ReplaceAll(v[1:len(v)-1], `\"`, `"`), nil
}

// parseExpiry parses OpenSSH's YYYYMMDD[HHMM[SS]] in local time.
func parseExpiry(v string) (time.Time, error) {
	for _, layout := range []string{"20060102150405", "200601021504", "20060102"} {
		if len(v) == len(layout) {
			if t, err := time.ParseInLocation(layout, v, time.Local); err == nil {
				return t, nil
			}
		}
	}
	return time.Time{}, fmt.Errorf("option expiry-time: bad time %q", v)
}

// matchFrom evaluates an OpenSSH from= pattern list against ip: entries
// are IP wildcard patterns ("192.168.1.*", "?" for one character) or CIDR
// blocks, optionally negated with "!". A negated match denies, otherwise
// any positive match allows. Host names cannot match, as the server does
// no reverse lookups (OpenSSH's UseDNS=no).
func matchFrom(list string, ip net.IP) (bool, error) {
	addr := ip.String()
	matched := false
	for _, p := range strings.Split(list, ",") {
		neg := strings.HasPrefix(p, "!")
		p = strings.TrimPrefix(p, "!")
		if p == "" {
			return false, errors.New("option from: empty pattern")
		}
		var ok bool
		if strings.Contains(p, "/") {
			_, n, err := net.ParseCIDR(p)
			if err != nil {
				return false, fmt.Errorf("option from: bad network %q", p)
			}
			ok = n.Contains(ip)
		} else {
			ok = sshpattern.Match(strings.ToLower(p), strings.ToLower(addr))
		}
		if ok && neg {
			return false, nil
		}
		matched = matched || ok
	}
	return matched, nil
}

// findAuthorizedKey returns the options of the first line of data that
// lists key and whose options allow a login from ip at now. Lines with
// options the server cannot honour are skipped (and reported through
// skipped, for the log).
func findAuthorizedKey(data []byte, key ssh.PublicKey, ip net.IP, now time.Time, skipped func(line int, err error)) (keyOptions, bool) {
	want := key.Marshal()
	for n, line := range bytes.Split(data, []byte("\n")) {
		line = bytes.TrimSpace(line)
		if len(line) == 0 || line[0] == '#' {
			continue
		}
		k, _, opts, _, err := ssh.ParseAuthorizedKey(line)
		if err != nil || !bytes.Equal(k.Marshal(), want) {
			continue
		}
		o, err := parseKeyOptions(opts)
		if err != nil {
			skipped(n+1, err)
			continue
		}
		if o.from != "" {
			if ok, err := matchFrom(o.from, ip); err != nil || !ok {
				skipped(n+1, fmt.Errorf("source %s not allowed by from=", ip))
				continue
			}
		}
		if !o.expiry.IsZero() && !now.Before(o.expiry) {
			skipped(n+1, errors.New("key expired (expiry-time)"))
			continue
		}
		return o, true
	}
	return keyOptions{}, false
}
