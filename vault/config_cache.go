package vault

import (
	"errors"
	"io/fs"
	"maps"
	"os"
	"path/filepath"
	"slices"
	"sync"
	"sync/atomic"
)

// configWrites counts the profiles files this process has saved (or tried
// to). A ConfigCache that read the file before one of them reads it again,
// whatever the file system's timestamps can tell apart.
var configWrites atomic.Uint64

// ConfigCache keeps the profiles file as last read, so that a command that
// consults it several times — latch token and the credential helpers open the
// vault, then pick the profile — reads and decodes it once. It reads the file
// again once it changed: saved by this process (counted exactly), or by
// another (every save renames a new file into place, so the name then leads
// to another file). It is only ever a source for reading: UpdateConfig reads
// the file afresh under its lock, so that no change another latch made is
// written over. The zero value is ready to use; do not copy one after use.
type ConfigCache struct {
	mu  sync.Mutex
	dir string
	cfg *Config
	fi  fs.FileInfo // the file cfg was read from; nil: there was none
	gen uint64      // configWrites before cfg was read
}

// Load returns the profiles file in dir, as LoadConfig does. The result is
// the caller's own copy: changing it changes neither the cache nor the file.
func (cc *ConfigCache) Load(dir string) (*Config, error) {
	cc.mu.Lock()
	defer cc.mu.Unlock()
	// Counted before the read: a save of this process that lands during it
	// leaves the count ahead, and the next Load reads again.
	gen := configWrites.Load()
	if cc.cfg == nil || cc.dir != dir || cc.gen != gen || !cc.unchanged() {
		cfg, fi, err := loadConfig(dir)
		if err != nil {
			return nil, err
		}
		cc.dir, cc.cfg, cc.fi, cc.gen = dir, cfg, fi, gen
	}
	return cc.cfg.clone(), nil
}

// unchanged reports whether the profiles file is still the one cc read: the
// same file (not one renamed over it), size and modification time — or still
// missing. One stat, not a read and a decode.
func (cc *ConfigCache) unchanged() bool {
	fi, err := os.Stat(filepath.Join(cc.dir, configFile))
	if cc.fi == nil {
		return errors.Is(err, fs.ErrNotExist)
	}
	return err == nil && os.SameFile(cc.fi, fi) && fi.Size() == cc.fi.Size() && fi.ModTime().Equal(cc.fi.ModTime())
}

// clone is a copy of c that shares nothing with it, down to each profile's
// slices, maps and pointers.
func (c *Config) clone() *Config {
	out := *c
	if c.Vault != nil {
		v := *c.Vault
		out.Vault = &v
	}
	out.CodeLabels = slices.Clone(c.CodeLabels)
	out.Profiles = slices.Clone(c.Profiles)
	for i := range out.Profiles {
		p := &out.Profiles[i]
		if p.EmailVerified != nil {
			v := *p.EmailVerified
			p.EmailVerified = &v
		}
		p.Roles = slices.Clone(p.Roles)
		p.Resource = slices.Clone(p.Resource)
		if p.AuthParams != nil {
			p.AuthParams = maps.Clone(p.AuthParams)
			for k, v := range p.AuthParams {
				p.AuthParams[k] = slices.Clone(v)
			}
		}
		if p.Endpoints != nil {
			e := *p.Endpoints
			p.Endpoints = &e
		}
	}
	return &out
}
