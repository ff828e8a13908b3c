package container

import (
	"bufio"
	"bytes"
	"context"
	"fmt"
	"strconv"
	"strings"
	"time"
)

// User is an entry of the container's /etc/passwd.
type User struct {
	Name  string
	UID   int
	GID   int
	Home  string
	Shell string
}

// LookupUser finds name in the container's /etc/passwd.
func (c *Container) LookupUser(name string) (User, error) {
	data, err := c.readFile("/etc/passwd")
	if err != nil {
		return User{}, err
	}
	sc := bufio.NewScanner(bytes.NewReader(data))
	for sc.Scan() {
		f := strings.Split(sc.Text(), ":")
		if len(f) < 7 || f[0] != name {
			continue
		}
		uid, err1 := strconv.Atoi(f[2])
		gid, err2 := strconv.Atoi(f[3])
		if err1 != nil || err2 != nil {
			return User{}, fmt.Errorf("container: /etc/passwd: bad ids for user %q", name)
		}
		return User{Name: name, UID: uid, GID: gid, Home: f[5], Shell: f[6]}, nil
	}
	return User{}, fmt.Errorf("container: user %q does not exist in the container", name)
}

// hasGroup reports whether the container's /etc/group has name.
func (c *Container) hasGroup(name string) (bool, error) {
	data, err := c.readFile("/etc/group")
	if err != nil {
		return false, err
	}
	sc := bufio.NewScanner(bytes.NewReader(data))
	for sc.Scan() {
		if g, _, _ := strings.Cut(sc.Text(), ":"); g == name {
			return true, nil
		}
	}
	return false, nil
}

// AddUser creates a user inside with useradd -m -s /bin/bash (home
// /home/<name>, a group of the same name), a password field of "*" (no
// password login possible, but not "locked" as sshd understands it, so
// public-key logins work), and supplementary groups, which are created
// first if missing. It returns the uid.
func (c *Container) AddUser(name string, groups ...string) (int, error) {
	args := []string{"-m", "-s", "/bin/bash", "-p", "*"}
	if len(groups) > 0 {
		for _, g := range groups {
			ok, err := c.hasGroup(g)
			if err != nil {
				return 0, err
			}
			if !ok {
				if err := c.AddGroup(g); err != nil {
					return 0, err
				}
			}
		}
		args = append(args, "-G", strings.Join(groups, ","))
	}
	if err := c.run("useradd", append(args, name)...); err != nil {
		return 0, err
	}
	u, err := c.LookupUser(name)
	if err != nil {
		return 0, err
	}
	return u.UID, nil
}

// AddGroup creates a group inside with groupadd.
func (c *Container) AddGroup(name string) error {
	return c.run("groupadd", name)
}

// run runs name with args inside as root, with a deadline of runTimeout; the
// error carries the output.
func (c *Container) run(name string, args ...string) error {
	ctx, cancel := context.WithTimeout(context.Background(), runTimeout)
	defer cancel()
	out, _, err := c.Exec(ctx, name, args...)
	if err != nil {
		return fmt.Errorf("%w\noutput:\n%s", err, out)
	}
	return nil
}

// runTimeout bounds the commands AddUser and AddGroup run.
const runTimeout = 60 * time.Second
