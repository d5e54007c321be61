//go:build !linux

package agent

import (
	"errors"
	"io/fs"
	"net"
	"os"
	"syscall"
)

// The agent exists for Linux containers whose kernel keyring is refused;
// elsewhere the system keyring holds the session cache.
var errUnsupported = errors.New("the latch agent runs on Linux only")

func checkPlatform() error { return errUnsupported }

func setNotDumpable() error { return errUnsupported }

func peerUID(*net.UnixConn) (int, error) { return -1, errUnsupported }

func fileOwner(fs.FileInfo) int { return -1 }

var errLocked = errors.New("locked")

func tryLock(*os.File) error { return errUnsupported }

func detached() *syscall.SysProcAttr { return nil }
