// Package pgcluster runs a PostgreSQL cluster of the caller's own: initdb into a folder, a
// loopback port of its own, started and stopped at will. It is for tests and runs that take the
// database away (an outage while the API serves): the machine's shared server must never be
// stopped for that. Debian's server binaries refuse to run as root, so as root they run as the
// postgres user (runuser), which must be able to reach the folder.
package pgcluster

import (
	"bytes"
	"errors"
	"fmt"
	"net"
	"os"
	"os/exec"
	"os/user"
	"path/filepath"
	"strconv"
	"strings"
)

// Cluster is one private cluster.
type Cluster struct {
	Dir  string // the data folder
	Port int
	bin  string
	// as is the user the server runs as when this process is root ("" otherwise).
	as string
}

// New runs initdb into dir (created, or empty) and picks a free loopback port. The cluster is
// not started.
func New(dir string) (*Cluster, error) {
	bin, err := binDir()
	if err != nil {
		return nil, err
	}
	c := &Cluster{Dir: dir, bin: bin}
	if os.Geteuid() == 0 {
		c.as = "postgres"
	}
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return nil, err
	}
	if c.as != "" {
		u, err := user.Lookup(c.as)
		if err != nil {
			return nil, fmt.Errorf("pgcluster: running as root needs the %s user: %w", c.as, err)
		}
		uid, _ := strconv.Atoi(u.Uid)
		gid, _ := strconv.Atoi(u.Gid)
		if err := os.Chown(dir, uid, gid); err != nil {
			return nil, err
		}
	}
	if out, err := c.run("initdb", "-D", dir, "-A", "trust", "-U", "postgres", "--no-sync", "-E", "UTF8"); err != nil {
		return nil, fmt.Errorf("pgcluster: initdb %s: %w\n%s", dir, err, out)
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return nil, err
	}
	c.Port = ln.Addr().(*net.TCPAddr).Port
	_ = ln.Close()
	return c, nil
}

// Start starts the server and waits until it accepts connections.
func (c *Cluster) Start() error {
	opts := fmt.Sprintf("-p %d -k %s -c listen_addresses=127.0.0.1 -c fsync=off -c max_connections=200", c.Port, c.Dir)
	if out, err := c.run("pg_ctl", "-D", c.Dir, "-o", opts, "-l", filepath.Join(c.Dir, "server.log"), "-w", "-t", "60", "start"); err != nil {
		return fmt.Errorf("pgcluster: start: %w\n%s", err, out)
	}
	return nil
}

// Stop stops the server as an operator's restart does (fast: sessions are ended, nothing
// committed is lost) and waits until it is down.
func (c *Cluster) Stop() error {
	if out, err := c.run("pg_ctl", "-D", c.Dir, "-m", "fast", "-w", "-t", "60", "stop"); err != nil {
		return fmt.Errorf("pgcluster: stop: %w\n%s", err, out)
	}
	return nil
}

// Remove stops the server if it runs and deletes its folder.
func (c *Cluster) Remove() {
	_, _ = c.run("pg_ctl", "-D", c.Dir, "-m", "immediate", "-w", "stop")
	_ = os.RemoveAll(c.Dir)
}

// URL is the connection URL of database db.
func (c *Cluster) URL(db string) string {
	return fmt.Sprintf("postgres://postgres@127.0.0.1:%d/%s?sslmode=disable", c.Port, db)
}

func (c *Cluster) run(name string, args ...string) ([]byte, error) {
	path := filepath.Join(c.bin, name)
	var cmd *exec.Cmd
	if c.as != "" {
		cmd = exec.Command("runuser", append([]string{"-u", c.as, "--", path}, args...)...)
	} else {
		cmd = exec.Command(path, args...)
	}
	cmd.Dir = "/"
	var out bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &out
	err := cmd.Run()
	return out.Bytes(), err
}

// binDir finds the server's binaries: initdb on PATH, pg_config --bindir, or Debian's folder.
func binDir() (string, error) {
	if p, err := exec.LookPath("initdb"); err == nil {
		return filepath.Dir(p), nil
	}
	if out, err := exec.Command("pg_config", "--bindir").Output(); err == nil {
		d := strings.TrimSpace(string(out))
		if _, err := os.Stat(filepath.Join(d, "initdb")); err == nil {
			return d, nil
		}
	}
	ms, _ := filepath.Glob("/usr/lib/postgresql/*/bin/initdb")
	if len(ms) > 0 {
		return filepath.Dir(ms[len(ms)-1]), nil
	}
	return "", errors.New("pgcluster: no initdb found (install postgresql)")
}
