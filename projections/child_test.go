package projections_test

import (
	"bufio"
	"context"
	"fmt"
	"os"
	"os/exec"
	"strconv"
	"syscall"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"
	"github.com/stretchr/testify/require"

	"mailplane/eventstore"
	"mailplane/eventstore/eventstoretest"
	"mailplane/projections"
)

// A child process is this test binary run again with MAILPLANE_TEST_CHILD set: it runs a
// runner with the tally projection against MAILPLANE_TEST_CHILD_DB until it is killed.
const (
	childModeEnv = "MAILPLANE_TEST_CHILD"
	childDBEnv   = "MAILPLANE_TEST_CHILD_DB"
	childAtEnv   = "MAILPLANE_TEST_CHILD_AT"
)

// child is a running child process.
type child struct {
	cmd   *exec.Cmd
	lines *bufio.Scanner
}

// startChild starts a child in the given mode ("kill-at": it SIGKILLs itself right after the
// read-model write of the at-th event it handles, before the batch can commit; "hold": it
// prints "active" once it runs the projection and goes on until killed).
func startChild(t *testing.T, mode, dbURL string, at int) *child {
	t.Helper()
	cmd := exec.Command(os.Args[0], "-test.run=^TestChildProcess$", "-test.count=1")
	cmd.Env = append(os.Environ(), childModeEnv+"="+mode, childDBEnv+"="+dbURL, childAtEnv+"="+strconv.Itoa(at))
	cmd.Stderr = os.Stderr
	out, err := cmd.StdoutPipe()
	require.NoError(t, err)
	require.NoError(t, cmd.Start())
	t.Cleanup(func() { _ = cmd.Process.Kill(); _ = cmd.Wait() })
	return &child{cmd: cmd, lines: bufio.NewScanner(out)}
}

// waitFor reads the child's output until a line equal to want.
func (c *child) waitFor(t *testing.T, want string) {
	t.Helper()
	for c.lines.Scan() {
		if c.lines.Text() == want {
			return
		}
	}
	t.Fatalf("the child ended without saying %q", want)
}

// requireKilled waits for the child and checks that SIGKILL ended it.
func (c *child) requireKilled(t *testing.T) {
	t.Helper()
	err := c.cmd.Wait()
	require.Error(t, err)
	ws, ok := c.cmd.ProcessState.Sys().(syscall.WaitStatus)
	require.True(t, ok)
	require.True(t, ws.Signaled() && ws.Signal() == syscall.SIGKILL, "the child ended with %v, not SIGKILL", err)
}

func TestChildProcess(t *testing.T) {
	mode := os.Getenv(childModeEnv)
	if mode == "" {
		t.Skip("runs only as a child process of another test")
	}
	ctx := context.Background()
	pool, err := pgxpool.New(ctx, os.Getenv(childDBEnv))
	require.NoError(t, err)
	at, _ := strconv.Atoi(os.Getenv(childAtEnv))
	c := &tally{name: "tally"}
	handled := 0
	switch mode {
	case "kill-at":
		c.hook = func(context.Context, pgx.Tx, eventstore.RecordedEvent) error {
			if handled++; handled == at {
				_ = syscall.Kill(os.Getpid(), syscall.SIGKILL)
				time.Sleep(time.Minute) // the signal is on its way
			}
			return nil
		}
	case "hold":
	default:
		t.Fatalf("unknown child mode %q", mode)
	}
	r, err := projections.NewRunner(pool, eventstoretest.Registry(t), quiet(),
		projections.Config{BatchSize: 25, LockRetry: 20 * time.Millisecond}, c)
	require.NoError(t, err)
	go func() {
		for !r.Status()[0].Active {
			time.Sleep(time.Millisecond)
		}
		fmt.Println("active")
	}()
	_ = r.Run(ctx) // until killed
	t.Fatal("the runner returned in a child process")
}
